"""Cascaded-MSDF dot-product unit (baseline of the seed paper).

The textbook way to build an online dot product: one serial-parallel online multiplier per
lane (activation digits, MSB first, times the parallel INT8 weight) feeding a binary tree
of online adders, the root stream converted on the fly into two's complement. Every
operator in the cascade pays its own online delay, so the delay grows with the tree depth
``d = ceil(log2 N)`` (delta_mult + d * delta_add = 2 + 2d digit positions, plus one output
register per operator): the cost the MMA's merged recurrence avoids.

Operators: :class:`msdf_unet.hdl.arith.online.OnlineMultiplierSP` and
:class:`~msdf_unet.hdl.arith.online.OnlineAdder` (helper H2's units), the converter
:class:`msdf_unet.hdl.arith.otf.OnTheFlyConverter`; an odd node of a tree level is a
three-register digit delay line with the adder's timing (:class:`DigitDelay`).
Golden model: :func:`msdf_unet.golden.arith.baselines.cascaded_dot` (value) and
``SerialShellModel(cascaded_cycles(N, act_bits=B), ...)`` (cycles).
"""

from amaranth import Module, Mux, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .bitserial import check_unit_params, full_policy_value
from .digit import Digit
from .iface import Policy, acc_width, dot_product_io
from .online import OnlineAdder, OnlineMultiplierSP
from .otf import OnTheFlyConverter

__all__ = ["CascadedMSDFDotProduct", "DigitDelay"]


class DigitDelay(wiring.Component):
    """Digit delay line with the ports and timing of an online adder whose ``y`` is 0.

    The digit taken in step ``k`` is on ``z`` after step ``k + 2`` (two internal registers
    and the output register), so the node's output has the value of its input, as an
    adder's ``X + 0``, with the same weights. ``clear`` zeroes the registers. ``z_valid``
    is 1 after every step (a cleared line emits zero digits).
    """

    clear: In(1)
    x_valid: In(1)
    x: In(Digit)
    z_valid: Out(1)
    z: Out(Digit)

    def elaborate(self, platform):
        m = Module()
        r1, r2 = Signal(Digit), Signal(Digit)
        with m.If(self.x_valid):
            m.d.sync += [r1.eq(self.x), r2.eq(Mux(self.clear, 0, r1)),
                         self.z.eq(Mux(self.clear, 0, r2)), self.z_valid.eq(1)]
        with m.Else():
            m.d.sync += self.z_valid.eq(0)
            with m.If(self.clear):
                m.d.sync += [r1.eq(0), r2.eq(0), self.z.eq(0)]
        return m


class CascadedMSDFDotProduct(wiring.Component):
    """Cascaded online dot product ``S = sum_i x_i * w_i``: multipliers + online adder tree.

    Parameters
    ----------
    n_lanes : int
        Lanes ``N`` (bias lanes included), >= 1.
    act_bits : int
        Activation width ``B`` in [2, 16].
    signed_acts : bool
        Two's-complement (top plane digit ``-bit``) or unsigned activations.

    Members
    -------
    i, o : streams of :mod:`.iface`, with the shell rules of the bit-serial unit:
        ``i.ready = idle or (last cycle and (o empty or o.ready))``.
    digit_valid, digit : Out(1), Out(Digit)
        The root digit stream as it enters the converter (observation only): root digit
        ``r_c`` of step ``c`` is here at cycle ``a + c + 1``, ``c = 1 .. C - 1``.

    Contract
    --------
    A transaction accepted at cycle ``a`` clears every operator in that cycle, then runs
    ``C - 1 = B + 9 + 3d`` operator steps (cycles ``a+1 ..``): multiplier inputs are the
    activation digits MSB first, then zeros. Each tree level consumes the registered,
    ``z_valid``-gated digits of the level below, so a level scales the stream by 1/8 in the
    consumer's step weights (online delay 2 + output register) and the root digit stream
    ``r_1 .. r_{C-1}`` has the integer value ``S`` (``sum r_c 2^(C-1-c)``). The root digits
    go through the on-the-fly converter (no carry chain); the converted value is ready
    ``K = C + 1 = B + 11 + 3d`` cycles after the accept and on ``o`` at ``a + K + 1``.
    Throughput: one transaction every ``K`` cycles (the next one is accepted in the
    converter's cycle, when the operators are idle).

    Policies: every digit is computed (no early stop in this baseline, although the root
    stream's first nonzero digit would give the sign): RELU_END gives ``max(S, 0)``,
    SIGN_ONLY the sign, TRUNCATE ``S``; ``digits_used = K``, ``terminated = 0``.
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True):
        check_unit_params(n_lanes, act_bits, signed_acts)
        self.n_lanes, self.act_bits, self.signed_acts = n_lanes, act_bits, signed_acts
        i, o = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({"i": In(i), "o": Out(o), "digit_valid": Out(1), "digit": Out(Digit)})

    @property
    def depth(self) -> int:
        """Adder levels ``d = ceil(log2 N)``."""
        return (self.n_lanes - 1).bit_length()

    @property
    def steps(self) -> int:
        """Operator steps per transaction, ``C - 1 = B + 9 + 3d``."""
        return self.act_bits + 9 + 3 * self.depth

    @property
    def compute_cycles(self) -> int:
        """Cycles one transaction occupies the unit, ``K = C + 1``."""
        return self.steps + 2

    def elaborate(self, platform):
        m = Module()
        n, b = self.n_lanes, self.act_bits
        steps, k_cycles = self.steps, self.compute_cycles
        out_bits = acc_width(n_lanes=n, act_bits=b, signed_acts=self.signed_acts)

        busy = Signal()
        count = Signal(range(k_cycles))
        last, space = Signal(), Signal()
        accept = Signal()
        m.d.comb += [
            last.eq(busy & (count == k_cycles - 1)),
            space.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(~busy | (last & space)),
            accept.eq(self.i.valid & self.i.ready),
        ]
        advance = busy & (~last | space)
        stepping = Signal()
        m.d.comb += stepping.eq(busy & (count < steps))

        x_sr = [Signal(b, name=f"x_sr{k}", reset_less=True) for k in range(n)]
        policy = Signal(Policy, reset_less=True)

        # lane multipliers: digit of plane B-1-count (MSB first), zero once shifted out
        level = []
        for k in range(n):
            mul = OnlineMultiplierSP(y_bits=8)
            m.submodules[f"mul{k}"] = mul
            w_r = Signal.like(mul.y, name=f"w_r{k}", reset_less=True)
            bit = x_sr[k][b - 1]
            if self.signed_acts:
                digit = Mux(bit, Mux(count == 0, Digit.NEG, Digit.POS), Digit.ZERO)
            else:
                digit = Mux(bit, Digit.POS, Digit.ZERO)
            m.d.comb += [mul.clear.eq(accept), mul.x_valid.eq(stepping), mul.x.eq(digit),
                         mul.y.eq(w_r)]
            with m.If(accept):
                m.d.sync += w_r.eq(self.i.payload.w[k])
            level.append(mul)

        def gated(op):
            return Mux(op.z_valid, op.z, Digit.ZERO)

        for lv in range(self.depth):
            nxt = []
            for j in range(0, len(level), 2):
                if j + 1 < len(level):
                    op = OnlineAdder()
                    m.d.comb += [op.x.eq(gated(level[j])), op.y.eq(gated(level[j + 1]))]
                else:
                    op = DigitDelay()
                    m.d.comb += op.x.eq(gated(level[j]))
                m.submodules[f"l{lv}n{j // 2}"] = op
                m.d.comb += [op.clear.eq(accept), op.x_valid.eq(stepping)]
                nxt.append(op)
            level = nxt
        root = level[0]

        # root digit of step c reaches the converter in the cycle after (counts 1 .. C-1)
        otf = m.submodules.otf = OnTheFlyConverter(width=out_bits)
        m.d.comb += [
            otf.clear.eq(busy & (count == 1)),
            otf.digit_valid.eq(busy & (count >= 1) & (count <= steps)),
            otf.digit.eq(gated(root)),
            self.digit_valid.eq(otf.digit_valid),
            self.digit.eq(otf.digit),
        ]
        value = full_policy_value(m, policy, otf.q, out_bits)

        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(advance):
            m.d.sync += count.eq(count + 1)
            with m.If(stepping):
                m.d.sync += [x_sr[k].eq(x_sr[k] << 1) for k in range(n)]
            with m.If(last):
                m.d.sync += [
                    busy.eq(0),
                    self.o.valid.eq(1),
                    self.o.payload.value.eq(value),
                    self.o.payload.digits_used.eq(k_cycles),
                    self.o.payload.terminated.eq(0),
                ]
        with m.If(accept):
            m.d.sync += [busy.eq(1), count.eq(0), policy.eq(self.i.payload.policy)]
            m.d.sync += [x_sr[k].eq(self.i.payload.x[k]) for k in range(n)]
        return m
