"""Run compiled images on the convolution engine's RTL (Verilator by default).

:func:`run_on_rtl` generates the Verilog of :class:`msdf_unet.hdl.conv.engine.ConvEngine`
for the image's :class:`~msdf_unet.spec.engine.EngineConfig`, simulates it with cocotb
(:mod:`.tb_runtime`: the board driver over AXI4-Lite, the image in cocotbext-axi's AXI
RAM) and returns the head output and the ``CYCLES`` register of every input.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ...spec.engine import ArrayConfig, EngineConfig

__all__ = ["RTL_CONFIG", "run_on_rtl"]

#: The engine the ``rtl`` backend simulates: one MMA array of 72 data lanes (+ 5 bias lanes),
#: enough for the shipped programs (the configuration the engine's own tests use for them).
RTL_CONFIG = EngineConfig(arrays=(ArrayConfig(variant="mma", kpbs=1, lanes=72),), max_bias_lanes=5,
                          max_fan_in=1024, max_width=256, max_height=256, max_channels=256)


def run_on_rtl(image, codes, *, simulator: str = "verilator", quiet: bool = True
               ) -> tuple[np.ndarray, np.ndarray]:
    """``(heads [N, C, H, W], cycles [N])`` of ``image`` (a compiled image) run once per
    INT8 input ``codes[i]`` ``[C, H, W]``."""
    from ...hdl.conv.engine import ConvEngine
    from ...hdl.verilog import write_verilog
    from ...host.compiler import save_image
    from ..toolchain import SIM_BUILD_ROOT, available_simulators, run_cocotb

    if simulator not in available_simulators():
        raise RuntimeError(f"simulator {simulator!r} is not available here (run `make setup`); "
                           f"available: {available_simulators()}")
    codes = np.asarray(codes, dtype=np.int8)
    name = f"conv_engine_{image.config.digest[:8]}"
    SIM_BUILD_ROOT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="runtime-io-", dir=SIM_BUILD_ROOT))  # this call's own
    try:
        save_image(work / "image.bin", image)
        np.save(work / "codes.npy", codes)
        out = work / "out.npz"
        src = write_verilog(ConvEngine(image.config), name=name,
                            path=SIM_BUILD_ROOT / "src" / f"runtime-{name}-{simulator}.v")
        run_cocotb(simulator=simulator, verilog_sources=[src], toplevel=name,
                   test_module="msdf_unet.sim.runtime.tb_runtime",
                   build_name=f"runtime-{name}".replace("_", "-"),
                   parameters_env={"MSDF_RT_IMAGE": str(work / "image.bin"),
                                   "MSDF_RT_CODES": str(work / "codes.npy"), "MSDF_RT_OUT": str(out)},
                   quiet=quiet)
        with np.load(out) as z:
            heads, cycles = z["heads"], z["cycles"]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if len(heads) != len(codes):
        raise RuntimeError(f"the RTL returned {len(heads)} outputs for {len(codes)} inputs")
    return heads, cycles
