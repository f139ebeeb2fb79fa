"""Bit-parallel dot-product unit (baseline of the seed paper): full multipliers + adder tree.

Two multiplier styles, chosen at generation time:

``multiplier="dsp"``
    A registered multiply ``x * w`` between operand and product registers, written so
    Yosys ``synth_xilinx`` (and Vivado) infer one DSP48E1 per lane with the operand
    registers as AREG/BREG and the product register as MREG. Portable Amaranth: no vendor
    primitive is instantiated, so it simulates and maps anywhere (``platform`` unused).
``multiplier="lut"``
    A shift-add array of ``B`` partial products ``bit_j(x) * (w << j)`` (the sign plane
    negated for signed activations) summed by a balanced tree. It contains no ``*``, so it
    maps to LUTs and carry chains, never to DSPs.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bitserial import check_unit_params, full_policy_value, tree_sum
from .iface import Policy, acc_width, dot_product_io

__all__ = ["BitParallelDotProduct", "MULTIPLIERS"]

#: accepted values of ``multiplier``
MULTIPLIERS = ("lut", "dsp")


def shift_add_mul(x, w, *, act_bits: int, signed_acts: bool):
    """``x * w`` as a sum of ``act_bits`` partial products (no ``*`` operator)."""
    terms = []
    for j in range(act_bits):
        pp = w << j
        if signed_acts and j == act_bits - 1:
            pp = -pp
        terms.append(Mux(x[j], pp, 0))
    return tree_sum(terms)


class BitParallelDotProduct(wiring.Component):
    """Bit-parallel dot product ``S = sum_i x_i * w_i``, one result per cycle.

    Parameters
    ----------
    n_lanes : int
        Lanes ``N`` (bias lanes included), >= 1.
    act_bits : int
        Activation width ``B`` in [2, 16].
    signed_acts : bool
        Two's-complement or unsigned activations.
    multiplier : ``"lut"`` or ``"dsp"``
        Multiplier style (see the module docstring).

    Members
    -------
    i : In(stream)
        Transactions. ``i.ready = enable = not o.valid or o.ready``.
    o : Out(stream)
        Results, held until ``o.ready``.

    Contract
    --------
    Pipeline of three register stages with one global stall ``enable``: operands,
    products, policy value of the product sum. Latency: accepted at cycle ``a`` -> on ``o``
    at ``a + 3``. Throughput: one transaction per cycle. Policies use the full ``S``
    (RELU_END ``max(S, 0)``, SIGN_ONLY sign, TRUNCATE ``S``); ``digits_used = 1``,
    ``terminated = 0``. Golden model: :func:`msdf_unet.golden.arith.baselines.bitparallel_dot`
    with ``PipelineShellModel(3, ...)``. Operand ranges are not checked in hardware.
    """

    latency_cycles = 3

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 multiplier: str = "lut"):
        check_unit_params(n_lanes, act_bits, signed_acts)
        if multiplier not in MULTIPLIERS:
            raise ValueError(f"multiplier must be one of {MULTIPLIERS}, not {multiplier!r}")
        self.n_lanes, self.act_bits, self.signed_acts = n_lanes, act_bits, signed_acts
        self.multiplier = multiplier
        i, o = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({"i": In(i), "o": Out(o)})

    @property
    def compute_cycles(self) -> int:
        """Cycles one transaction occupies the datapath (1)."""
        return 1

    def elaborate(self, platform):
        m = Module()
        n, b = self.n_lanes, self.act_bits
        out_bits = acc_width(n_lanes=n, act_bits=b, signed_acts=self.signed_acts)
        act_shape = self.i.payload.x[0].shape()
        prod_bits = b + 8 + 1

        enable = Signal()
        m.d.comb += [enable.eq(~self.o.valid | self.o.ready), self.i.ready.eq(enable)]

        # Data registers carry no reset so that they pack into DSP48E1 A/B/M registers.
        x_r = [Signal(act_shape, name=f"x_r{k}", reset_less=True) for k in range(n)]
        w_r = [Signal(signed(8), name=f"w_r{k}", reset_less=True) for k in range(n)]
        attrs = {"use_dsp": "yes"} if self.multiplier == "dsp" else {}
        prod_r = [Signal(signed(prod_bits), name=f"prod_r{k}", reset_less=True, attrs=attrs)
                  for k in range(n)]
        pol0 = Signal(Policy, reset_less=True)
        pol1 = Signal(Policy, reset_less=True)
        v0, v1 = Signal(), Signal()

        if self.multiplier == "dsp":
            prods = [x_r[k] * w_r[k] for k in range(n)]
        else:
            prods = [shift_add_mul(x_r[k], w_r[k], act_bits=b, signed_acts=self.signed_acts)
                     for k in range(n)]
        s = Signal(signed(out_bits))
        m.d.comb += s.eq(tree_sum(prod_r))
        value = full_policy_value(m, pol1, s, out_bits)

        with m.If(enable):
            m.d.sync += [v0.eq(self.i.valid), pol0.eq(self.i.payload.policy)]
            m.d.sync += [x_r[k].eq(self.i.payload.x[k]) for k in range(n)]
            m.d.sync += [w_r[k].eq(self.i.payload.w[k]) for k in range(n)]
            m.d.sync += [v1.eq(v0), pol1.eq(pol0)]
            m.d.sync += [prod_r[k].eq(prods[k]) for k in range(n)]
            m.d.sync += [
                self.o.valid.eq(v1),
                self.o.payload.value.eq(value),
                self.o.payload.digits_used.eq(1),
                self.o.payload.terminated.eq(0),
            ]
        return m
