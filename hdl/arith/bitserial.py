"""LSB-first bit-serial dot-product unit (baseline of the seed paper).

All lanes work in parallel on one activation bit-plane per cycle, least significant plane
first: the plane sum ``P_j = sum_i bit_j(x_i) * w_i`` (negated for the sign plane of
signed activations) goes through an adder tree into a shift-add accumulator. After ``B``
cycles the full dot product is known; only then is a result available, so a bit-serial
unit cannot terminate early (the low bits are produced first).

:func:`full_policy_value` is shared with the other baselines (:func:`tree_sum` lives in
:mod:`.tree`).
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...spec import arith as spec
from .iface import Policy, acc_width, dot_product_io
from .tree import tree_sum

__all__ = ["BitSerialDotProduct", "tree_sum", "full_policy_value", "check_unit_params"]


def check_unit_params(n_lanes, act_bits, signed_acts) -> None:
    """Validate the common parameters of a dot-product unit (TypeError/ValueError)."""
    spec.check_lanes(n_lanes)
    spec.check_act_bits(act_bits)
    if not isinstance(signed_acts, bool):
        raise TypeError(f"signed_acts must be a bool, not {signed_acts!r}")


def full_policy_value(m: Module, policy, s, width: int) -> Signal:
    """Comb signal with the value ``policy`` defines from the full result ``s``.

    FULL and TRUNCATE: ``s`` (no digit prefix exists to truncate; the exact value meets any
    truncation bound). RELU_END: ``max(s, 0)``. SIGN_ONLY: sign of ``s`` (-1, 0, +1).
    """
    value = Signal(signed(width))
    with m.Switch(policy):
        with m.Case(Policy.RELU_END):
            m.d.comb += value.eq(Mux(s < 0, 0, s))
        with m.Case(Policy.SIGN_ONLY):
            m.d.comb += value.eq(Mux(s < 0, -1, Mux(s == 0, 0, 1)))
        with m.Default():
            m.d.comb += value.eq(s)
    return value


class BitSerialDotProduct(wiring.Component):
    """LSB-first bit-serial dot product ``S = sum_i x_i * w_i`` with a shift-add accumulator.

    Parameters
    ----------
    n_lanes : int
        Lanes ``N`` (bias lanes included), >= 1.
    act_bits : int
        Activation width ``B`` in [2, 16].
    signed_acts : bool
        Two's-complement activations (top plane weighs ``-2^(B-1)``) or unsigned.

    Members
    -------
    i : In(stream)
        Transactions (see :mod:`.iface`). ``i.ready = idle or (last plane cycle and
        (o empty or o.ready))``.
    o : Out(stream)
        Results. ``o.valid`` is held until ``o.ready``.

    Contract
    --------
    Recurrence (plane j = 0..B-1, LSB first): ``u = A + P_j``, the low bit of ``u`` is
    shifted into the ``B`` low result bits, ``A <- floor(u / 2)``. After ``B`` planes
    ``S = A * 2^B + low``. ``|A| <= N*127`` sizes the accumulator.

    Latency: a transaction accepted at cycle ``a`` is on ``o`` at ``a + B + 1``.
    Throughput: one transaction every ``B`` cycles (the next one may be accepted in the
    last plane cycle); the last plane cycle waits while ``o`` holds an unread result.
    Policies: the full ``S`` is always computed; RELU_END gives
    ``max(S, 0)``, SIGN_ONLY the sign of ``S``, TRUNCATE ``S`` (digit budget ignored);
    ``digits_used = B`` and ``terminated = 0`` always: the unit cannot stop early.
    Operands out of range (weight -128) are not checked: the result is then the exact dot
    product of the given bits. Golden model: :func:`msdf_unet.golden.arith.baselines.bitserial_dot`,
    cycles: ``SerialShellModel(B, ...)``.
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 plane_select: str = "shift"):
        check_unit_params(n_lanes, act_bits, signed_acts)
        if plane_select not in ("shift", "mux"):
            raise ValueError(f"plane_select must be 'shift' or 'mux', not {plane_select!r}")
        self.n_lanes, self.act_bits, self.signed_acts = n_lanes, act_bits, signed_acts
        # "shift": shifting activation registers; "mux": held activations, a B:1 bit mux
        # per lane picks plane ``count`` (fewer LUTs, same cycles and results)
        self.plane_select = plane_select
        i, o = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({"i": In(i), "o": Out(o)})

    @property
    def compute_cycles(self) -> int:
        """Cycles one transaction occupies the datapath (``B``)."""
        return self.act_bits

    def elaborate(self, platform):
        m = Module()
        n, b = self.n_lanes, self.act_bits
        acc_bits = (n * 127).bit_length() + 1          # |A|, |P_j| <= N * 127
        out_bits = acc_width(n_lanes=n, act_bits=b, signed_acts=self.signed_acts)

        x_sr = [Signal(b, name=f"x_sr{k}", reset_less=True) for k in range(n)]
        w_r = [Signal(signed(8), name=f"w_r{k}", reset_less=True) for k in range(n)]
        policy = Signal(Policy, reset_less=True)
        busy = Signal()
        count = Signal(range(b))
        acc = Signal(signed(acc_bits), reset_less=True)
        low = Signal(b, reset_less=True)

        last, space, advance = Signal(), Signal(), Signal()
        m.d.comb += [
            last.eq(busy & (count == b - 1)),
            space.eq(~self.o.valid | self.o.ready),
            advance.eq(busy & (~last | space)),      # only the last plane waits for o
            self.i.ready.eq(~busy | (last & space)),
        ]

        if self.plane_select == "mux":
            psum = tree_sum(Mux(x_sr[k].bit_select(count, 1), w_r[k], 0) for k in range(n))
        else:
            psum = tree_sum(Mux(x_sr[k][0], w_r[k], 0) for k in range(n))
        plane = Signal(signed(acc_bits))
        m.d.comb += plane.eq(Mux(last, -psum, psum) if self.signed_acts else psum)
        u = Signal(signed(acc_bits + 1))
        m.d.comb += u.eq(acc + plane)
        acc_next = Signal(signed(acc_bits))
        low_next = Signal(b)
        m.d.comb += [acc_next.eq(u >> 1), low_next.eq(Cat(low[1:], u[0]))]
        s = Signal(signed(out_bits))
        m.d.comb += s.eq(Cat(low_next, acc_next))   # S = A * 2^B + low, fits out_bits
        value = full_policy_value(m, policy, s, out_bits)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(advance):
            m.d.sync += [acc.eq(acc_next), low.eq(low_next), count.eq(count + 1)]
            if self.plane_select == "shift":
                m.d.sync += [x_sr[k].eq(x_sr[k] >> 1) for k in range(n)]
            with m.If(last):
                m.d.sync += [
                    busy.eq(0),
                    self.o.valid.eq(1),
                    self.o.payload.value.eq(value),
                    self.o.payload.digits_used.eq(b),
                    self.o.payload.terminated.eq(0),
                ]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), count.eq(0), acc.eq(0), low.eq(0),
                         policy.eq(self.i.payload.policy)]
            m.d.sync += [x_sr[k].eq(self.i.payload.x[k]) for k in range(n)]
            m.d.sync += [w_r[k].eq(self.i.payload.w[k]) for k in range(n)]
        return m
