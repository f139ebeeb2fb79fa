"""MMA (merged multiply-add) dot-product unit: the seed's online dot product, DEX style.

Golden model: :mod:`msdf_unet.golden.arith.mma` (the arithmetic, its proofs, and
:class:`~msdf_unet.golden.arith.mma.MMACycleModel`, which this RTL matches cycle for cycle).
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from ...spec import arith as spec
from ...spec.arith import LATENCY_TO_DIGIT0, RESULT_DEPTH, online_delay
from .iface import Policy, dot_product_io
from .tree import tree_sum

__all__ = ["MMADotProduct", "digit_port_layout"]


def digit_port_layout() -> data.StructLayout:
    """Payload of the digit observation port ``digits``."""
    return data.StructLayout({
        # the output digit z_t, encoded as :class:`Digit` (-1, 0, +1). The field is plain
        # signed(2): Amaranth 0.5 cannot format a signed enum inside a struct signal.
        "digit": signed(2),
        "index": unsigned(8),    # t, 0 for the most significant digit
        "first": unsigned(1),    # t == 0
        "last": unsigned(1),     # the transaction's final digit (its result enters ``o``)
    })


class MMADotProduct(wiring.Component):
    """Online (MSDF) dot product ``S = sum_i x_i * w_i`` with one shared digit recurrence.

    Activations enter one bit-plane per cycle, most significant first; every lane adds
    ``0`` or ``+-w_i``; a two-stage grouped adder feeds the recurrence
    ``v = 2*R + P_t``, which emits one radix-2 signed digit per cycle, most significant
    first (see :mod:`msdf_unet.golden.arith.mma` for the proof of exactness). Bias lanes are
    ordinary lanes (fold the bias offline with :func:`~msdf_unet.golden.arith.mma.fold_bias`).

    Parameters (keyword-only)
    -------------------------
    n_lanes : int >= 1
        ``L``, lanes including bias lanes.
    act_bits : int in [2, 16]
        ``B``, activation width.
    signed_acts : bool
        Two's-complement activations (top plane weighs ``-2**(B-1)``); else unsigned.
    group_size : int in [1, n_lanes] or None
        ``M`` lanes per stage-1 group (``None``: all lanes, one group); ``G = ceil(L/M)``
        groups. Changes the logic depth, never the digits or the timing.

    Attributes
    ----------
    online_delay : ``F = (L*127).bit_length() + 1`` headroom digits
    n_digits : ``T = B + F`` digits of a full transaction
    n_groups : ``G``
    latency_cycles : cycles from the ``i`` handshake to digit 0 on ``digits`` (2)

    Members
    -------
    i : ``In(stream)`` -- one transaction per dot product; payload ``x[L]``
        (``signed``/``unsigned(B)``), ``w[L]`` (``signed(8)``, legal range [-127, 127]),
        ``policy`` (:class:`~msdf_unet.hdl.arith.iface.Policy`), ``digits`` (TRUNCATE budget
        ``p``).
    o : ``Out(stream)`` -- one result per transaction, in order; payload ``value``
        (``signed(T+1)`` or wider), ``digits_used``, ``terminated``.
    digits : ``Out`` valid/payload without ``ready`` -- observation port, no backpressure:
        ``valid``, ``payload.digit`` (``signed(2)``, a :class:`~msdf_unet.hdl.arith.digit.Digit` code),
        ``payload.index``, ``payload.first``, ``payload.last``.

    Timing contract (exactly :class:`~msdf_unet.golden.arith.mma.MMACycleModel`)
    ----------------------------------------------------------------------------
    * Online delay: ``F`` digits; digit ``t`` has ``2**F`` times the weight of input
      plane ``t`` and depends on planes ``0..t`` only. A full transaction is ``T = B + F``
      digit cycles; its result enters ``o`` ``T + 1`` cycles after the handshake.
    * Handshake on ``i`` at cycle ``h``: digit ``t`` is on ``digits`` at ``h + 2 + t``;
      the result enters the ``o`` FIFO at ``h + 1 + digits_used`` (``o.valid`` then if the
      FIFO held nothing older). ``digits_used``: ``T`` (FULL), ``p`` (TRUNCATE), index of
      the stopping digit + 1 (RELU_END negative, SIGN_ONLY nonzero).
    * ``i.ready = (no transaction in the feeder, or it was just stopped early) and
      (fewer than 3 accepted results not yet popped from o)``; it depends only on
      registers, never on ``i.valid`` or ``o.ready``. Throughput with ``o.ready`` high and
      ``i.valid`` held: one transaction every ``digits_used`` cycles (no idle digit cycle),
      ``digits_used + 1`` after an early stop (RELU_END/SIGN_ONLY before the last digit).
    * ``o`` follows the stream rules (``valid`` held until ``ready``); a 3-entry result
      FIFO decouples it, so ``o.ready`` low never stalls digits already in flight; new
      transactions wait instead.

    Bad input (the unit cannot flag it at run time)
    -----------------------------------------------
    * ``w = -128``: lanes compute ``+-128`` exactly (9-bit contributions); the result is
      still exact while every plane sum keeps ``|P_t| < 2**(F-1)``, otherwise the digits
      and value are unspecified. The golden model raises ValueError.
    * TRUNCATE with ``digits`` 0 or above ``T`` runs ``T`` digits (value ``S``,
      ``terminated`` 0). The golden model raises ValueError.
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 group_size: int | None = None):
        n_lanes = spec.check_lanes(n_lanes)
        act_bits = spec.check_act_bits(act_bits)
        if not isinstance(signed_acts, bool):
            raise TypeError(f"signed_acts must be a bool, not {signed_acts!r}")
        if group_size is None:
            group_size = n_lanes
        if isinstance(group_size, bool) or not isinstance(group_size, int) or not 1 <= group_size <= n_lanes:
            raise ValueError(f"group_size must be an integer in [1, n_lanes={n_lanes}] or None, "
                             f"not {group_size!r}")
        self.n_lanes = n_lanes
        self.act_bits = act_bits
        self.signed_acts = signed_acts
        self.group_size = group_size
        self.n_groups = -(-n_lanes // group_size)
        self.online_delay = online_delay(n_lanes)
        self.n_digits = spec.stream_digits(n_lanes, act_bits)
        if self.n_digits > spec.MAX_DIGITS:
            raise ValueError(f"n_lanes={n_lanes} gives {self.n_digits} digits; at most "
                             f"{spec.MAX_DIGITS} fit digits_used")
        self.latency_cycles = LATENCY_TO_DIGIT0
        self.result_depth = RESULT_DEPTH
        i, o = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({
            "i": In(i),
            "o": Out(o),
            # valid/payload without ready (a Const ready could not become a Verilog port)
            "digits": Out(wiring.Signature({"valid": Out(1), "payload": Out(digit_port_layout())})),
        })

    def elaborate(self, platform):
        m = Module()
        # stage 2 stopped a transaction early last cycle: s1 holds its next step (drop it),
        # and the feeder, if still active on that transaction, stops
        flush = Signal()
        count = Signal(range(RESULT_DEPTH + 1))   # accepted results not yet popped from o
        feed = self._feeder(m, abort=flush, count=count)
        s1 = self._stage1(m, feed)
        sel = self._digit_selection(m, s1, flush)
        prefix = self._on_the_fly_conversion(m, s1, sel)
        end = self._termination(m, s1, sel, prefix, flush)
        self._digit_port(m, s1, sel, end)
        self._result_fifo(m, feed, s1, sel, end, count)
        return m

    def _feeder(self, m: Module, *, abort, count) -> SimpleNamespace:
        """Accepts a transaction on ``i`` and forms one step's lane contributions per cycle.

        Step 0 comes straight from ``i.payload`` in the handshake cycle (sign plane), the
        later steps from the shifting copy of the activations (zeros after ``B`` shifts, so
        the ``F`` tail steps add nothing). ``abort`` stops the feeder (early stop of its
        transaction); ``count`` is the credit of the result FIFO.

        Returns ``hs`` (handshake on ``i``), ``contrib`` (signed(9) per lane), ``valid`` (a
        step is formed this cycle), ``last`` (it is the transaction's last step), ``step``
        and ``policy`` (registers of the transaction in the feeder).
        """
        L, B, T = self.n_lanes, self.act_bits, self.n_digits
        act_x = Signal(data.ArrayLayout(unsigned(B), L))
        act_w = Signal(data.ArrayLayout(signed(8), L))
        active = Signal()
        step = Signal(8)
        last = Signal(8)
        policy = Signal(Policy)

        hs = Signal()
        m.d.comb += [
            self.i.ready.eq((~active | abort) & (count < RESULT_DEPTH)),
            hs.eq(self.i.valid & self.i.ready),
        ]

        # digit budget of the incoming transaction -> index of its last step
        p_in = self.i.payload.digits
        last_in = Signal(8)
        with m.If((self.i.payload.policy == Policy.TRUNCATE) & (p_in >= 1) & (p_in <= T)):
            m.d.comb += last_in.eq(p_in - 1)
        with m.Else():
            m.d.comb += last_in.eq(T - 1)

        neg_plane = Signal()       # this step is the two's-complement sign plane
        m.d.comb += neg_plane.eq(hs & self.signed_acts)
        contrib = []
        for lane in range(L):
            x_in = Value.cast(self.i.payload.x[lane])
            bit = Mux(hs, x_in[B - 1], act_x[lane][B - 1])
            w = Mux(hs, self.i.payload.w[lane], act_w[lane])
            c = Signal(signed(9), name=f"c{lane}")
            m.d.comb += c.eq(Mux(bit, Mux(neg_plane, -w, w), 0))
            contrib.append(c)

        feed = Signal()            # the feeder produces a step this cycle
        feed_last = Signal()
        m.d.comb += [
            feed.eq(hs | (active & ~abort)),
            feed_last.eq(Mux(hs, last_in == 0, step == last)),
        ]
        with m.If(hs):
            m.d.sync += [
                act_x.eq(Cat(*[Cat(Const(0, 1), Value.cast(self.i.payload.x[lane])[:B - 1])
                               for lane in range(L)])),
                act_w.eq(self.i.payload.w),
                policy.eq(self.i.payload.policy),
                step.eq(1),
                last.eq(last_in),
                active.eq(last_in != 0),
            ]
        with m.Elif(active & ~abort):
            m.d.sync += [
                act_x.eq(Cat(*[Cat(Const(0, 1), act_x[lane][:B - 1]) for lane in range(L)])),
                step.eq(step + 1),
                active.eq(step != last),
            ]
        with m.Elif(abort):
            m.d.sync += active.eq(0)
        return SimpleNamespace(hs=hs, contrib=contrib, valid=feed, last=feed_last, step=step,
                               policy=policy)

    def _stage1(self, m: Module, feed: SimpleNamespace) -> SimpleNamespace:
        """Stage 1 register: the ``G`` group sums of the step the feeder formed, plus its tags
        (``valid``, ``step``, ``last``, ``policy``)."""
        M, G = self.group_size, self.n_groups
        contrib = feed.contrib
        group_bits = (M * 128).bit_length() + 1
        s1_sum = [Signal(signed(group_bits), name=f"s1_sum{g}") for g in range(G)]
        s1_valid = Signal()
        s1_step = Signal(8)
        s1_last = Signal()
        s1_policy = Signal(Policy)
        m.d.sync += s1_valid.eq(feed.valid)
        with m.If(feed.valid):
            m.d.sync += [s1_sum[g].eq(tree_sum(contrib[g * M:(g + 1) * M])) for g in range(G)]
            m.d.sync += s1_last.eq(feed.last)
        with m.If(feed.hs):
            m.d.sync += [s1_step.eq(0), s1_policy.eq(self.i.payload.policy)]
        with m.Elif(feed.valid):
            m.d.sync += [s1_step.eq(feed.step), s1_policy.eq(feed.policy)]
        return SimpleNamespace(sums=s1_sum, valid=s1_valid, step=s1_step, last=s1_last,
                               policy=s1_policy)

    def _digit_selection(self, m: Module, s1: SimpleNamespace, flush) -> SimpleNamespace:
        """Stage 2: the ``G``-input sum and the digit recurrence ``v = 2R + P``.

        Invariant ``-2**(F-1) <= R < 2**(F-1)`` (``R`` fits ``signed(F)``);
        ``|P| <= L*127 < 2**(F-1)``, so ``v`` fits ``signed(F+2)`` and the digit is chosen
        exactly from ``v >> (F-1)``. Returns ``proc`` (stage 2 works on a step this cycle;
        not in a ``flush`` cycle), ``first`` (it is step 0) and the digit ``z``.
        """
        F = self.online_delay
        proc = Signal()
        first = Signal()
        m.d.comb += [proc.eq(s1.valid & ~flush), first.eq(s1.step == 0)]
        R = Signal(signed(F))
        v = Signal(signed(F + 2))
        m.d.comb += v.eq(Mux(first, 0, R) * 2 + tree_sum(s1.sums))
        top = v[F - 1:].as_signed()              # 3 bits, in [-3, 2]
        z = Signal(signed(2))
        with m.If(top >= 1):
            m.d.comb += z.eq(1)
        with m.Elif(top <= -2):
            m.d.comb += z.eq(-1)
        with m.Else():
            m.d.comb += z.eq(0)
        R_next = Signal(signed(F))
        m.d.comb += R_next.eq(v - z * (1 << F))  # low F bits; exact by the invariant
        with m.If(proc):
            m.d.sync += R.eq(R_next)
        return SimpleNamespace(proc=proc, first=first, z=z)

    def _on_the_fly_conversion(self, m: Module, s1: SimpleNamespace, sel: SimpleNamespace) -> Signal:
        """The prefix value ``Z_p = sum z_t 2**(T-1-t)`` including this cycle's digit.

        On-the-fly conversion at fixed weights: ``Q = Z_t``, ``QM = Z_t - 2**(T-t)``, both
        multiples of ``2*wt``, so adding the digit weight ``wt`` is an OR.
        """
        T = self.n_digits
        Q = Signal(signed(T + 1))
        QM = Signal(signed(T + 1))
        Qp, QMp, Qn, QMn = (Signal(signed(T + 1), name=n) for n in ("Qp", "QMp", "Qn", "QMn"))
        wt = Signal(unsigned(T + 1))
        m.d.comb += [
            Qp.eq(Mux(sel.first, 0, Q)),
            QMp.eq(Mux(sel.first, -(1 << T), QM)),
            wt.eq(Const(1 << (T - 1), unsigned(T + 1)) >> s1.step),
        ]
        with m.If(sel.z == 1):
            m.d.comb += [Qn.eq(Qp | wt), QMn.eq(Qp)]
        with m.Elif(sel.z == -1):
            m.d.comb += [Qn.eq(QMp | wt), QMn.eq(QMp)]
        with m.Else():
            m.d.comb += [Qn.eq(Qp), QMn.eq(QMp | wt)]
        with m.If(sel.proc):
            m.d.sync += [Q.eq(Qn), QM.eq(QMn)]
        return Qn

    def _termination(self, m: Module, s1: SimpleNamespace, sel: SimpleNamespace, prefix,
                     flush) -> SimpleNamespace:
        """The policy's stop rule on this digit, the result value, and ``flush``.

        Returns ``early`` (the stop condition fired), ``stop`` (the transaction's last digit:
        planned last step or early stop), ``value`` and ``terminated``. ``flush`` is set for
        one cycle after an early stop before the planned last step: the feeder formed the
        next step of this transaction this cycle and, if that was not its last step, is
        still active on it.
        """
        T = self.n_digits
        z = sel.z
        seen = Signal()            # a nonzero digit of this transaction was emitted
        seen_p = Signal()
        early = Signal()           # the policy's stop condition fired on this digit
        m.d.comb += seen_p.eq(~sel.first & seen)
        with m.Switch(s1.policy):
            with m.Case(Policy.RELU_END):
                m.d.comb += early.eq(~seen_p & (z == -1))
            with m.Case(Policy.SIGN_ONLY):
                m.d.comb += early.eq(z != 0)
        stop = Signal()
        m.d.comb += stop.eq(s1.last | early)

        value = Signal(self.o.payload.value.shape())
        with m.If((s1.policy == Policy.RELU_END) & early):
            m.d.comb += value.eq(0)
        with m.Elif(s1.policy == Policy.SIGN_ONLY):
            m.d.comb += value.eq(Mux(early, z, 0))
        with m.Else():
            m.d.comb += value.eq(prefix)
        terminated = Signal()
        m.d.comb += terminated.eq(early | ((s1.policy == Policy.TRUNCATE) & (s1.step != T - 1)))

        with m.If(sel.proc):
            m.d.sync += seen.eq(seen_p | (z != 0))
        m.d.sync += flush.eq(sel.proc & early & ~s1.last)
        return SimpleNamespace(early=early, stop=stop, value=value, terminated=terminated)

    def _digit_port(self, m: Module, s1: SimpleNamespace, sel: SimpleNamespace,
                    end: SimpleNamespace) -> None:
        """Registers the digit observation port: one digit per stage-2 step."""
        m.d.sync += self.digits.valid.eq(sel.proc)
        with m.If(sel.proc):
            m.d.sync += [
                self.digits.payload.digit.eq(sel.z),
                self.digits.payload.index.eq(s1.step),
                self.digits.payload.first.eq(sel.first),
                self.digits.payload.last.eq(end.stop),
            ]

    def _result_fifo(self, m: Module, feed: SimpleNamespace, s1: SimpleNamespace,
                     sel: SimpleNamespace, end: SimpleNamespace, count) -> None:
        """The ``RESULT_DEPTH``-entry result FIFO in front of ``o`` and its credit counter
        ``count`` (accepted transactions whose result was not popped)."""
        m.submodules.results = results = fifo.SyncFIFO(width=len(self.o.payload.as_value()),
                                                       depth=RESULT_DEPTH)
        res = Signal(self.o.payload.shape())
        m.d.comb += [
            res.value.eq(end.value),
            res.digits_used.eq(s1.step + 1),
            res.terminated.eq(end.terminated),
            results.w_data.eq(res.as_value()),
            results.w_en.eq(sel.proc & end.stop),
            self.o.valid.eq(results.r_rdy),
            self.o.payload.eq(results.r_data),
            results.r_en.eq(self.o.ready),
        ]
        pop = Signal()
        m.d.comb += pop.eq(self.o.valid & self.o.ready)
        m.d.sync += count.eq(count + feed.hs - pop)
