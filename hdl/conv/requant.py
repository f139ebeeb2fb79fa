"""Requantization of conv accumulators to INT8 codes (or INT32 pass-through for the head).

``y = sat(floor((acc * mult + 2**(shift-1)) / 2**shift))`` -- round half up, saturation to
[0, 127] after a ReLU, else [-128, 127] -- exactly :func:`msdf_unet.golden.quant.requantize`.
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.quant import ACT_MAX, ACT_MIN
from ...spec.engine import ACT_BITS

__all__ = ["requant_in_layout", "requant_out_layout", "Requantizer", "LATENCY_CYCLES"]

#: handshake -> result valid, with ``o.ready`` high
LATENCY_CYCLES = 8


def requant_in_layout(acc_bits: int = 32) -> data.StructLayout:
    """``acc`` (the policy's value), ``mult`` (int32), ``shift`` (0..63), ``relu``,
    ``head`` (pass ``acc`` through unchanged), ``tag`` (16 bits the caller gets back)."""
    return data.StructLayout({"acc": signed(acc_bits), "mult": signed(32), "shift": unsigned(6),
                              "relu": unsigned(1), "head": unsigned(1), "tag": unsigned(16)})


def requant_out_layout(acc_bits: int = 32) -> data.StructLayout:
    """``value``: the INT8 code (sign-extended) or, for the head, ``acc``; ``tag``."""
    return data.StructLayout({"value": signed(acc_bits), "tag": unsigned(16)})


class Requantizer(wiring.Component):
    """Pipelined requantizer: input register, the ``acc x mult`` product as four partial
    products of 17-bit pieces (one DSP48E1 each, registered twice so Yosys packs the
    pipeline registers into the DSPs) summed two adders deep, round, shift/saturate.

    Members
    -------
    i : ``In(stream(requant_in_layout))``
    o : ``Out(stream(requant_out_layout))``

    Timing: a stall-free 8-stage pipeline (operands, partial products x2, two adder
    levels, rounding, shift, saturation: each stage one DSP48E1 or one carry chain,
    docs/engine.md "Timing") that moves when ``o`` is empty or taken
    (``i.ready = ~o.valid | o.ready``): one result per cycle, latency
    :data:`LATENCY_CYCLES`. ``shift = 0`` gives ``acc * mult`` saturated (no rounding term).
    """

    def __init__(self, *, acc_bits: int = 32):
        if isinstance(acc_bits, bool) or not isinstance(acc_bits, int) or not 9 <= acc_bits <= 32:
            raise ValueError(f"acc_bits must be an integer in [9, 32], not {acc_bits!r}")
        self.acc_bits = acc_bits
        super().__init__({
            "i": In(stream.Signature(requant_in_layout(acc_bits))),
            "o": Out(stream.Signature(requant_out_layout(acc_bits))),
        })

    def elaborate(self, platform):
        m = Module()
        move = Signal()
        m.d.comb += [move.eq(~self.o.valid | self.o.ready), self.i.ready.eq(move)]
        ab = self.acc_bits
        pw = ab + 32                              # product width
        # stage 1: operands
        a1 = Signal(signed(ab))
        m1 = Signal(signed(32))
        with m.If(move):
            m.d.sync += [a1.eq(self.i.payload.acc), m1.eq(self.i.payload.mult)]
        # the side band (valid, acc, shift, relu, head, tag) travels beside the data
        side = data.StructLayout({"v": 1, "acc": signed(ab), "shift": 6, "relu": 1, "head": 1, "tag": 16})
        sides = [Signal(side, name=f"side{j}") for j in range(LATENCY_CYCLES - 1)]
        p = self.i.payload
        with m.If(move):
            m.d.sync += [sides[0].v.eq(self.i.valid), sides[0].acc.eq(p.acc),
                         sides[0].shift.eq(p.shift), sides[0].relu.eq(p.relu),
                         sides[0].head.eq(p.head), sides[0].tag.eq(p.tag)]
            m.d.sync += [sides[j].eq(sides[j - 1]) for j in range(1, LATENCY_CYCLES - 1)]

        # stages 2-3: partial products of 17-bit pieces (each one DSP48E1), registered
        # twice (Yosys packs MREG and PREG); stages 4-5: their sum, two adders deep
        def pieces(x):
            if len(x) <= 18:
                return [(x, 0)]
            return [(x[:17], 0), (x[17:].as_signed(), 17)]
        parts = []
        for pa, sa in pieces(a1):
            for pm, sm in pieces(m1):
                pp_m = Signal(signed(len(pa) + len(pm) + 1), name=f"pp{sa}_{sm}_m")
                pp = Signal.like(pp_m, name=f"pp{sa}_{sm}")
                with m.If(move):
                    m.d.sync += [pp_m.eq(pa * pm), pp.eq(pp_m)]
                parts.append(pp << (sa + sm))
        parts += [Const(0, 1)] * (4 - len(parts))
        s_lo, s_hi = Signal(signed(pw)), Signal(signed(pw))
        prod = Signal(signed(pw))
        with m.If(move):
            m.d.sync += [s_lo.eq(parts[0] + parts[1]), s_hi.eq(parts[2] + parts[3]),
                         prod.eq(s_lo + s_hi)]
        # stage 6: round half up (+ 2**(shift-1))
        sd = sides[4]
        rnd = Signal(signed(pw + 1))
        with m.If(move):
            m.d.sync += rnd.eq(prod + Mux(sd.shift == 0, 0, (Const(1, 2) << (sd.shift - 1)[:6])))
        # stage 7: shift
        se = sides[5]
        y = Signal(signed(pw + 1))
        with m.If(move):
            m.d.sync += y.eq(rnd >> se.shift)
        # stage 8: saturate (range tests as wide AND/OR of the high bits, no comparator:
        # y > 127 iff y >= 0 and a bit above bit 6 is set; y < -128 iff y < 0 and not every
        # bit above bit 6 is set)
        se = sides[6]
        neg = y[-1]
        high = y[ACT_BITS - 1:]
        over = ~neg & high.any()
        under = neg & (se.relu | ~high.all())
        lo = Mux(se.relu, 0, ACT_MIN)
        sat = Mux(over, ACT_MAX, Mux(under, lo, y[:ACT_BITS].as_signed()))
        with m.If(move):
            m.d.sync += [self.o.payload.value.eq(Mux(se.head, se.acc, sat)),
                         self.o.payload.tag.eq(se.tag), self.o.valid.eq(se.v)]
        return m
