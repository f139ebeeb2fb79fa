"""pytest entry: the MSDF v2 units' Verilog (msdf-v2, msdf-v2-lite) on Verilator against
their golden cycle model (cocotb testbench :mod:`msdf_unet.sim.arith.tb_msdf2`)."""
import pytest

from msdf_unet.hdl.arith.msdf2 import MSDF2DotProduct
from msdf_unet.hdl.arith.msdf2_lite import MSDF2LiteDotProduct
from msdf_unet.hdl.verilog import write_verilog
from msdf_unet.sim.toolchain import SIM_BUILD_ROOT, require_simulator, run_cocotb

# (n_lanes, act_bits, signed_acts, pipelined, n_txns)
CASES = [
    pytest.param(11, 8, True, True, 120, id="n11-b8s-pipelined"),
    pytest.param(6, 4, False, False, 120, id="n6-b4u-flat"),
    pytest.param(38, 8, True, False, 200, id="n38-b8s-flat", marks=pytest.mark.slow),
    pytest.param(146, 8, False, True, 150, id="n146-b8u-pipelined", marks=pytest.mark.slow),
]

# msdf-v2-lite: pipelining chosen by the unit from N (flat up to one group of lanes: the flat
# cycle model; above: msdf-v2's pipelined one)
LITE_CASES = [
    pytest.param(9, 8, True, 150, id="lite-n9-b8s"),
    pytest.param(6, 4, False, 120, id="lite-n6-b4u"),
    pytest.param(2, 16, True, 60, id="lite-n2-b16s"),
    pytest.param(37, 8, True, 120, id="lite-n37-b8s-pipelined"),
    pytest.param(20, 3, False, 120, id="lite-n20-b3u-pipelined"),
    pytest.param(146, 8, True, 100, id="lite-n146-b8s-pipelined", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("n_lanes,act_bits,signed_acts,pipelined,n_txns", CASES)
def test_msdf2_verilator(n_lanes, act_bits, signed_acts, pipelined, n_txns):
    require_simulator("verilator")
    name = f"msdf2_n{n_lanes}_b{act_bits}{'s' if signed_acts else 'u'}_{'p' if pipelined else 'f'}"
    dut = MSDF2DotProduct(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts,
                          pipelined=pipelined)
    src = write_verilog(dut, name=name, path=SIM_BUILD_ROOT / "src" / f"{name}.v")
    run_cocotb(simulator="verilator", verilog_sources=[src], toplevel=name,
               test_module="msdf_unet.sim.arith.tb_msdf2", build_name=name.replace("_", "-"),
               parameters_env={"N_LANES": str(n_lanes), "ACT_BITS": str(act_bits),
                               "SIGNED_ACTS": "1" if signed_acts else "0",
                               "PIPELINED": "1" if pipelined else "0",
                               "SEED": str(n_lanes * 7 + act_bits), "N_TXNS": str(n_txns)})


@pytest.mark.parametrize("n_lanes,act_bits,signed_acts,n_txns", LITE_CASES)
def test_msdf2_lite_verilator(n_lanes, act_bits, signed_acts, n_txns):
    require_simulator("verilator")
    dut = MSDF2LiteDotProduct(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
    name = f"msdf2_lite_n{n_lanes}_b{act_bits}{'s' if signed_acts else 'u'}_{'p' if dut.pipelined else 'f'}"
    src = write_verilog(dut, name=name, path=SIM_BUILD_ROOT / "src" / f"{name}.v")
    run_cocotb(simulator="verilator", verilog_sources=[src], toplevel=name,
               test_module="msdf_unet.sim.arith.tb_msdf2", build_name=name.replace("_", "-"),
               parameters_env={"N_LANES": str(n_lanes), "ACT_BITS": str(act_bits),
                               "SIGNED_ACTS": "1" if signed_acts else "0",
                               "PIPELINED": "1" if dut.pipelined else "0",
                               "SEED": str(n_lanes * 11 + act_bits), "N_TXNS": str(n_txns)})
