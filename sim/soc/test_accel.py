"""pytest entry: the accelerator top in Verilator and Icarus, driven by the host driver."""
import pytest

from msdf_unet.hdl.soc.config import AccelConfig
from msdf_unet.hdl.soc.generate import WRAPPER_NAME, generate
from msdf_unet.sim.toolchain import SIM_BUILD_ROOT, require_simulator, run_cocotb


CASES = [
    pytest.param("verilator", AccelConfig(), 40, id="verilator-mma"),
    pytest.param("icarus", AccelConfig(), 12, id="icarus-mma"),
    pytest.param("verilator", AccelConfig(signed_acts=False), 24, id="verilator-mma-unsigned"),
    pytest.param("verilator", AccelConfig(variant="bitserial"), 12, id="verilator-bitserial"),
    pytest.param("verilator", AccelConfig(data_lanes=36, bias_lanes=3, group_size=8), 60,
                 id="verilator-mma-36", marks=pytest.mark.slow),
    pytest.param("icarus", AccelConfig(variant="bitserial"), 8, id="icarus-bitserial",
                 marks=pytest.mark.slow),
]


@pytest.mark.parametrize("simulator,config,n_txns", CASES)
def test_accelerator(simulator, config, n_txns):
    require_simulator(simulator)
    name = f"accel-{config.variant}-{config.data_lanes}-{config.bias_lanes}-{int(config.signed_acts)}"
    gen = generate(config, SIM_BUILD_ROOT / f"{name}-{simulator}-verilog", top="dot")  # one per xdist worker
    run_cocotb(simulator=simulator, verilog_sources=gen.sources, toplevel=WRAPPER_NAME,
               test_module="msdf_unet.sim.soc.tb_accel", build_name=name,
               parameters_env={"MSDF_ACCEL_CONFIG": config.to_json(),
                               "MSDF_TB_TXNS": str(n_txns)})
