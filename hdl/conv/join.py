"""Joins the conv cores of a command: done when every core is done; summed counts."""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["CoreJoin"]


class CoreJoin(wiring.Component):
    """``start`` clears; each core's ``done`` pulse is remembered; ``all_done`` pulses
    once every core has pulsed. ``outputs``/``terminated`` are the sums of the cores'
    counts (valid with ``all_done``)."""

    def __init__(self, n: int):
        self.n = n
        super().__init__({
            "start": In(1), "done": In(n),
            "core_outputs": In(data.ArrayLayout(32, n)), "core_terminated": In(data.ArrayLayout(32, n)),
            "all_done": Out(1), "outputs": Out(32), "terminated": Out(32),
        })

    def elaborate(self, platform):
        m = Module()
        seen = Signal(self.n)
        now = Signal(self.n)
        m.d.comb += now.eq(seen | self.done)
        m.d.sync += seen.eq(now)
        with m.If(self.start):
            m.d.sync += seen.eq(0)
        fired = Signal()
        with m.If(self.start):
            m.d.sync += fired.eq(0)
        with m.Elif(now.all() & ~fired):
            m.d.sync += fired.eq(1)
        m.d.comb += self.all_done.eq(now.all() & ~fired & ~self.start)
        m.d.comb += [self.outputs.eq(sum(self.core_outputs[j] for j in range(self.n))),
                     self.terminated.eq(sum(self.core_terminated[j] for j in range(self.n)))]
        return m
