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
LATENCY_CYCLES = 4


def requant_in_layout(acc_bits: int = 32) -> data.StructLayout:
    """``acc`` (the policy's value), ``mult`` (int32), ``shift`` (0..63), ``relu``,
    ``head`` (pass ``acc`` through unchanged), ``tag`` (16 bits the caller gets back)."""
    return data.StructLayout({"acc": signed(acc_bits), "mult": signed(32), "shift": unsigned(6),
                              "relu": unsigned(1), "head": unsigned(1), "tag": unsigned(16)})


def requant_out_layout(acc_bits: int = 32) -> data.StructLayout:
    """``value``: the INT8 code (sign-extended) or, for the head, ``acc``; ``tag``."""
    return data.StructLayout({"value": signed(acc_bits), "tag": unsigned(16)})


class Requantizer(wiring.Component):
    """Pipelined requantizer: input register, one ``acc x mult`` product (DSP48E1 on
    7-series: the multiply has registered operands and a registered product so Yosys can
    pack the pipeline registers into the DSPs), round/shift/saturate.

    Members
    -------
    i : ``In(stream(requant_in_layout))``
    o : ``Out(stream(requant_out_layout))``

    Timing: a stall-free 4-stage pipeline (operands, product, rounding, shift/saturate:
    each stage one DSP48E1 or one carry chain, docs/engine.md "Timing") that moves when
    ``o`` is empty or taken
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
        # stage 1: operands
        v1 = Signal()
        a1 = Signal(signed(self.acc_bits))
        m1 = Signal(signed(32))
        s1 = Signal(6)
        r1, h1 = Signal(), Signal()
        t1 = Signal(16)
        # stage 2: product
        v2 = Signal()
        prod = Signal(signed(self.acc_bits + 32))
        a2 = Signal(signed(self.acc_bits))
        s2 = Signal(6)
        r2, h2 = Signal(), Signal()
        t2 = Signal(16)
        # stage 3: rounding term added
        v3 = Signal()
        rnd = Signal(signed(self.acc_bits + 33))
        a3 = Signal(signed(self.acc_bits))
        s3 = Signal(6)
        r3, h3 = Signal(), Signal()
        t3 = Signal(16)
        with m.If(move):
            m.d.sync += [v1.eq(self.i.valid), v2.eq(v1), v3.eq(v2), self.o.valid.eq(v3)]
            m.d.sync += [a1.eq(self.i.payload.acc), m1.eq(self.i.payload.mult),
                         s1.eq(self.i.payload.shift), r1.eq(self.i.payload.relu),
                         h1.eq(self.i.payload.head), t1.eq(self.i.payload.tag)]
            m.d.sync += [prod.eq(a1 * m1), a2.eq(a1), s2.eq(s1), r2.eq(r1), h2.eq(h1), t2.eq(t1)]
            # stage 3: round half up (+ 2**(shift-1))
            m.d.sync += [rnd.eq(prod + Mux(s2 == 0, 0, (Const(1, 2) << (s2 - 1)[:6]))),
                         a3.eq(a2), s3.eq(s2), r3.eq(r2), h3.eq(h2), t3.eq(t2)]
            # stage 4: shift, saturate (range tests as wide AND/OR of the high bits, no
            # comparator: y > 127 iff y >= 0 and a bit above bit 6 is set; y < -128 iff
            # y < 0 and not every bit above bit 6 is set)
            y = Signal(signed(self.acc_bits + 33))
            m.d.comb += y.eq(rnd >> s3)
            neg = y[-1]
            high = y[ACT_BITS - 1:]
            over = ~neg & high.any()
            under = neg & (r3 | ~high.all())
            lo = Mux(r3, 0, ACT_MIN)
            sat = Mux(over, ACT_MAX, Mux(under, lo, y[:ACT_BITS].as_signed()))
            m.d.sync += [self.o.payload.value.eq(Mux(h3, a3, sat)), self.o.payload.tag.eq(t3)]
        return m
