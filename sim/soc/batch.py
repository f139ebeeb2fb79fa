"""Run dot products on the accelerator's RTL in simulation, through the host driver.

(Moved here from ``host/rtlsim.py``: ``host/`` does not import ``sim/``.)

:func:`run_on_rtl` generates the Verilog for an :class:`AccelConfig`, simulates it with
cocotb (Verilator by default) and runs every case with
:class:`~msdf_unet.host.driver.DotProductDriver` over AXI4-Lite, exactly as on the board.
"""
from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from ...hdl.soc.config import AccelConfig
from ...host.driver import DotResult

__all__ = ["run_on_rtl"]


def run_on_rtl(config: AccelConfig, cases: list[dict], *, simulator: str = "verilator",
               build_name: str | None = None, quiet: bool = True) -> list[DotResult]:
    """Results of ``cases`` (dicts with ``x``, ``w``, ``bias``, ``policy``, ``digits``).

    ``quiet`` keeps the simulator's output in log files under ``build/sim/``."""
    from ...hdl.soc.generate import WRAPPER_NAME, generate
    from ..toolchain import SIM_BUILD_ROOT, available_simulators, run_cocotb

    if simulator not in available_simulators():
        raise RuntimeError(f"simulator {simulator!r} is not available here (run `make setup`); "
                           f"available: {available_simulators()}")
    name = build_name or (f"batch-{config.variant}-{config.data_lanes}-{config.bias_lanes}-"
                          f"{int(config.signed_acts)}")
    SIM_BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{name}-io-", dir=SIM_BUILD_ROOT))  # this call's own
    try:
        (work / "in.json").write_text(json.dumps(cases))
        out = work / "out.json"
        gen = generate(config, SIM_BUILD_ROOT / f"{name}-verilog", top="dot")
        run_cocotb(simulator=simulator, verilog_sources=gen.sources, toplevel=WRAPPER_NAME,
                   test_module="msdf_unet.sim.soc.tb_batch", build_name=name,
                   parameters_env={"MSDF_ACCEL_CONFIG": config.to_json(),
                                   "MSDF_BATCH_IN": str(work / "in.json"),
                                   "MSDF_BATCH_OUT": str(out)}, quiet=quiet)
        results = json.loads(out.read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(results) != len(cases):
        raise RuntimeError(f"RTL returned {len(results)} results for {len(cases)} cases")
    return [DotResult(**r) for r in results]
