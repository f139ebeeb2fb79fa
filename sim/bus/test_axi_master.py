"""pytest entry: the AXI4 master's Verilog on Verilator (and Icarus) against cocotbext-axi's
RAM with random latency and backpressure (:mod:`msdf_unet.sim.bus.tb_axi_master`)."""
import pytest

from msdf_unet.hdl.bus.axi_master import AXI4Master
from msdf_unet.hdl.verilog import write_verilog
from msdf_unet.sim.toolchain import SIM_BUILD_ROOT, require_simulator, run_cocotb

CASES = [
    pytest.param("verilator", 4, 40, id="verilator-r4"),
    pytest.param("verilator", 1, 15, id="verilator-r1"),
    pytest.param("icarus", 4, 12, id="icarus-r4", marks=pytest.mark.slow),
]


@pytest.mark.parametrize("simulator,max_reads,n_transfers", CASES)
def test_axi_master_cocotb(simulator, max_reads, n_transfers):
    require_simulator(simulator)
    name = f"axi4_master_r{max_reads}"
    src = write_verilog(AXI4Master(max_reads=max_reads), name=name,
                        path=SIM_BUILD_ROOT / "src" / f"{name}-{simulator}.v")
    run_cocotb(simulator=simulator, verilog_sources=[src], toplevel=name,
               test_module="msdf_unet.sim.bus.tb_axi_master", build_name=name.replace("_", "-"),
               parameters_env={"MAX_READS": str(max_reads), "N_TRANSFERS": str(n_transfers)})
