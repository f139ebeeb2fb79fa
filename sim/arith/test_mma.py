"""pytest entry: the MMA unit's Verilog on Verilator and Icarus against the golden cycle
model (cocotb testbench :mod:`msdf_unet.sim.arith.tb_mma`)."""
import pytest

from msdf_unet.hdl.arith.mma import MMADotProduct
from msdf_unet.hdl.verilog import write_verilog
from msdf_unet.sim.toolchain import SIM_BUILD_ROOT, require_simulator, run_cocotb

# (simulator, n_lanes, act_bits, signed_acts, group_size, n_bias_lanes, n_txns)
CASES = [
    pytest.param("verilator", 11, 8, True, 4, 2, 150, id="verilator-n11-b8s-m4"),
    pytest.param("verilator", 6, 4, False, 2, 1, 150, id="verilator-n6-b4u-m2"),
    pytest.param("icarus", 3, 3, True, 1, 1, 40, id="icarus-n3-b3s-m1"),
    pytest.param("verilator", 38, 8, True, 9, 2, 400, id="verilator-n38-b8s-m9", marks=pytest.mark.slow),
    pytest.param("verilator", 146, 8, False, 16, 2, 200, id="verilator-n146-b8u-m16", marks=pytest.mark.slow),
    pytest.param("icarus", 11, 8, True, 4, 2, 80, id="icarus-n11-b8s-m4", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("simulator,n_lanes,act_bits,signed_acts,group_size,n_bias_lanes,n_txns", CASES)
def test_mma_cocotb(simulator, n_lanes, act_bits, signed_acts, group_size, n_bias_lanes, n_txns):
    require_simulator(simulator)
    name = f"mma_n{n_lanes}_b{act_bits}{'s' if signed_acts else 'u'}_m{group_size}"
    dut = MMADotProduct(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts,
                        group_size=group_size)
    src = write_verilog(dut, name=name, path=SIM_BUILD_ROOT / "src" / f"{name}.v")
    run_cocotb(simulator=simulator, verilog_sources=[src], toplevel=name,
               test_module="msdf_unet.sim.arith.tb_mma", build_name=name.replace("_", "-"),
               parameters_env={"N_LANES": str(n_lanes), "ACT_BITS": str(act_bits),
                               "SIGNED_ACTS": "1" if signed_acts else "0",
                               "GROUP_SIZE": str(group_size), "N_BIAS_LANES": str(n_bias_lanes),
                               "SEED": str(n_lanes * 7 + act_bits), "N_TXNS": str(n_txns)})
