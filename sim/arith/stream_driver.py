"""Amaranth-simulator driver for dot-product units with the ``i``/``o`` streams of iface.py.

:func:`run_stream` drives a unit with exactly the rule of
:func:`msdf_unet.golden.arith.baselines.simulate` (valid stays up until accepted; new
offers follow ``valid_pattern``; ``o.ready`` follows ``ready_pattern``), so a test compares
the accept cycles and ``(cycle, result)`` outputs of the RTL with the golden cycle model.
"""
from __future__ import annotations

from typing import Sequence

from amaranth.sim import Simulator

from msdf_unet.golden.arith.baselines import Result
from msdf_unet.golden.arith.msdf2 import positive_weight_sum

__all__ = ["run_stream"]


def run_stream(dut, txns: Sequence, valid_pattern: Sequence[bool], ready_pattern: Sequence[bool],
               vcd: str | None = None) -> tuple[list[int], list[tuple[int, Result]]]:
    """Simulate ``dut`` for ``len(valid_pattern)`` cycles; return accepts and outputs."""
    layout = dut.i.payload.shape()
    has_wpos = "wpos" in dict(layout.members)

    def fields(t) -> dict:
        d = {"x": list(t.x), "w": list(t.w), "policy": t.policy, "digits": t.digits}
        if has_wpos:  # a unit with a bound input gets the bound the golden model assumes
            wpos = getattr(t, "wpos", None)
            d["wpos"] = int(positive_weight_sum(t.w)) if wpos is None else wpos
        return d

    consts = [layout.const(fields(t)) for t in txns]
    accepts, outputs = [], []

    async def testbench(ctx):
        nxt, offering = 0, False
        for c, (want, rdy) in enumerate(zip(valid_pattern, ready_pattern)):
            offering = nxt < len(txns) and (offering or bool(want))
            ctx.set(dut.i.valid, offering)
            if offering:
                ctx.set(dut.i.payload, consts[nxt])
            ctx.set(dut.o.ready, bool(rdy))
            in_ready, o_valid = ctx.get(dut.i.ready), ctx.get(dut.o.valid)
            if o_valid and rdy:
                p = ctx.get(dut.o.payload)
                outputs.append((c, Result(value=p.value, digits_used=p.digits_used,
                                          terminated=p.terminated)))
            if offering and in_ready:
                accepts.append(c)
                nxt += 1
                offering = False
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    if vcd:
        with sim.write_vcd(vcd):
            sim.run()
    else:
        sim.run()
    return accepts, outputs


def exact_policy_value(t) -> int:
    """Independent oracle for the baselines (not the golden model): what the policy of
    transaction ``t`` defines from the exact integer dot product of its lanes."""
    from msdf_unet.hdl.arith.iface import Policy

    s = sum(a * b for a, b in zip(t.x, t.w))
    return {Policy.FULL: s, Policy.TRUNCATE: s, Policy.RELU_END: max(s, 0),
            Policy.SIGN_ONLY: (s > 0) - (s < 0)}[Policy(t.policy)]
