"""The demo's RTL part: dot products on the accelerator's RTL in simulation.

The cocotb-backed code lives in :mod:`msdf_unet.sim.soc.batch` (``host/`` does not import
``sim/`` at module level); this entry point imports it lazily, when a simulation is asked
for, so importing ``msdf_unet.host`` never needs cocotb.
"""
from __future__ import annotations

__all__ = ["run_on_rtl"]


def run_on_rtl(config, cases: list[dict], **kwargs):
    """:func:`msdf_unet.sim.soc.batch.run_on_rtl` (same arguments and results)."""
    from ..sim.soc.batch import run_on_rtl as run  # lazy: the demo's RTL part only

    return run(config, cases, **kwargs)
