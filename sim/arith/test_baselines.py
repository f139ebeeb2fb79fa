"""pytest entry: the baseline units' Verilog on Verilator against the golden models
(cocotb testbench :mod:`msdf_unet.sim.arith.tb_baselines`)."""
import pytest

from msdf_unet.hdl.arith.bench import build_unit
from msdf_unet.hdl.verilog import write_verilog
from msdf_unet.sim.toolchain import SIM_BUILD_ROOT, require_simulator, run_cocotb

CASES = [
    pytest.param("bitserial", 9, True, id="bitserial-n9-signed"),
    pytest.param("bitparallel-dsp", 9, False, id="bitparallel-dsp-n9-unsigned"),
    pytest.param("bitparallel-lut", 9, True, id="bitparallel-lut-n9-signed", marks=pytest.mark.slow),
    pytest.param("bitserial", 3, False, id="bitserial-n3-unsigned", marks=pytest.mark.slow),
    pytest.param("cascaded", 5, True, id="cascaded-n5-signed", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("variant,n_lanes,signed_acts", CASES)
def test_baselines_verilator(variant, n_lanes, signed_acts):
    require_simulator("verilator")
    name = f"{variant.replace('-', '_')}_n{n_lanes}{'s' if signed_acts else 'u'}"
    src = write_verilog(build_unit(variant, n_lanes, signed_acts=signed_acts),
                        name=name, path=SIM_BUILD_ROOT / "src" / f"{name}.v")
    run_cocotb(simulator="verilator", verilog_sources=[src], toplevel=name,
               test_module="msdf_unet.sim.arith.tb_baselines", build_name=f"baselines-{name}",
               parameters_env={"VARIANT": variant, "N_LANES": str(n_lanes),
                               "SIGNED_ACTS": "1" if signed_acts else "0", "SEED": str(n_lanes)})
