"""The engine's processing element: one output at a time, planes of every chunk in plane order.

This is the **PE interface** every PE kind of the engine implements (the MMA-style PE
here; a faster MSDF PE or a bit-parallel DSP48 PE can replace it behind the same ports):

* ``i``: *plane-chunk beats*. An output's fan-in (``cin*k*k`` data lanes + bias lanes) is
  cut into chunks of ``lanes`` lanes; for plane ``t = 0 .. B-1`` (most significant
  first; plane 0 is the two's-complement sign plane) the beats of chunks ``0 .. n-1``
  follow each other: **plane t of every chunk before plane t+1**, so the unit knows the
  whole fan-in's plane sum ``P_t`` before it decides anything (exact END over the whole
  fan-in, not per chunk). A beat carries the plane's activation bits of its chunk
  (``bits``), the chunk's weights (``w``), ``plane``, ``chunk_first``/``chunk_last``
  and, on an output's first beat, the channel's END bounds ``wpos``/``wneg``.
* ``cfg``: the layer's policy, TRUNCATE budget and online delay ``F`` (static while the
  layer runs).
* ``o``: one result per output, in order (``value`` as ``golden/hwexact.py`` defines it
  for the policy, ``early``, ``planes``).
* ``stop``: a one-cycle pulse when an output stopped before its last plane: the feeder
  should skip the output's remaining beats and start the next output (the unit drops
  beats of the stopped output until the next output's first beat). ``stop_seq`` names
  the stopped output (the ``seq`` of its beats: the feeder numbers outputs mod 4, and a
  stop can arrive after the feeder moved on, so it skips only when ``stop_seq`` is the
  output it is sending). This is what turns END into real cycles.

Arithmetic (proofs in :mod:`msdf_unet.golden.arith.mma`)
--------------------------------------------------------
The PE keeps the exact prefix ``A_t = sum_{k<=t} P_k 2**(t-k)`` (Horner). The MMA digit
recurrence with headroom ``F`` keeps ``R_{t+1} = A_t - 2**F Z_{t+1}`` with
``R in [-2**(F-1), 2**(F-1))``, so its digit prefix is the closed form
``Z_{t+1} = floor((A_t + 2**(F-1)) / 2**F)``; TRUNCATE's value
``Z_p = Z_{p} * 2**(T-p)`` is therefore computed from ``A`` with one rounding shift
(steps past plane ``B-1`` add zero planes: ``A`` doubles). FULL is ``A_{B-1} = S``;
RELU_END and SIGN_ONLY use the sign of ``S`` (the sign of the MMA's first nonzero digit).

END: after plane ``t`` the planes still to come are unsigned and each adds at most
``wpos`` (the channel's sum of positive weights, bias lanes included) and at least
``wneg``, so ``S <= A_t 2**r + wpos (2**r - 1)`` with ``r = B-1-t``. When that bound is
negative a ReLU output is 0 (RELU_END stops); SIGN_ONLY also stops when the lower bound
``A_t 2**r + wneg (2**r - 1)`` is positive. Values equal the MMA's exactly; only the
cycle at which the unit stops differs (it is never later than the MMA's).
"""
from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import ACT_BITS, Policy
from ..arith.tree import tree_sum

__all__ = ["beat_layout", "pe_config_layout", "pe_result_layout", "PlanePE", "ACC_BITS",
           "BOUND_BITS", "PIPELINE_RESULTS"]

#: accumulator bits: |A| <= 4096 lanes * 127 * 2**8 < 2**28 (max_fan_in 4096), signed
ACC_BITS = 32
#: bits of the END bounds wpos / wneg (int32 in the channel record)
BOUND_BITS = 32
#: results that can be in flight inside the PE (input register, plane register, result
#: register, the handshake cycle): the output FIFO keeps this much room
PIPELINE_RESULTS = 4


def beat_layout(lanes: int) -> data.StructLayout:
    """One plane-chunk beat (see the module docstring)."""
    return data.StructLayout({
        "bits": unsigned(lanes),                          # bit of plane `plane` of each lane
        "w": data.ArrayLayout(signed(8), lanes),          # weights, [-127, 127]; 0 on unused lanes
        "plane": unsigned(3),                             # t, 0 = sign plane
        "chunk_first": unsigned(1),                       # first chunk of this plane
        "chunk_last": unsigned(1),                        # last chunk of this plane
        "seq": unsigned(2),                               # output number mod 4 (stop_seq)
        "wpos": signed(BOUND_BITS),                       # END bounds, read on the output's first beat
        "wneg": signed(BOUND_BITS),
    })


def pe_config_layout() -> data.StructLayout:
    """The layer's settings: ``policy`` (:class:`~msdf_unet.spec.engine.Policy`),
    ``digits`` (TRUNCATE budget ``p`` in [1, T]) and ``online_delay`` ``F`` of the layer's
    lane count ``cin*k*k + bias_lanes`` (``T = 8 + F``)."""
    return data.StructLayout({"policy": unsigned(2), "digits": unsigned(8),
                              "online_delay": unsigned(5)})


def pe_result_layout() -> data.StructLayout:
    """One output: ``value`` (the policy's value), ``early`` (stopped before its last
    plane), ``planes`` (planes consumed, 1..8) and ``terminated`` (the MMA's flag for
    the output: RELU_END and ``S < 0``, SIGN_ONLY and ``S != 0``, TRUNCATE and ``p < T``;
    what ``golden/hwexact.py`` counts)."""
    return data.StructLayout({"value": signed(ACC_BITS), "early": unsigned(1),
                              "planes": unsigned(4), "terminated": unsigned(1)})


class PlanePE(wiring.Component):
    """MMA-style PE over ``lanes`` lanes per beat, any number of chunks per plane.

    Parameters (keyword-only)
    -------------------------
    lanes : int >= 1
        Lanes per beat (chunk width).
    fifo_depth : int >= PIPELINE_RESULTS + 1
        Results buffered at ``o``.

    Members
    -------
    i : ``In(stream(beat_layout(lanes)))``
    cfg : ``In(pe_config_layout())``
    o : ``Out(stream(pe_result_layout()))``
    stop : ``Out(1)``, stop_seq : ``Out(2)``
    idle : ``Out(1)`` -- no beat or result inside the PE (``o`` may still hold results)

    Timing
    ------
    Three register stages: beat handshake at ``h`` -> chunk sum (``h+1``) -> plane sum
    ``P_t`` (``h+2``, on the plane's last chunk) -> prefix ``A_t``, END decision and
    ``stop`` (``h+3``) -> value into the ``o`` FIFO (``h+4``). One beat per cycle while
    ``i.ready``; ``i.ready`` depends only on the FIFO level (room for every result that
    may be in flight). An output of ``n`` chunks costs ``8 n`` beats (``8 n`` cycles) when
    it runs to its last plane, ``(t+1) n + 2`` cycles when it stops after plane ``t``
    (the beats the feeder sent before it saw ``stop`` are dropped).

    Bad input
    ---------
    Beats must follow the plane/chunk order above; a beat out of order gives an
    unspecified value (never a hang). ``digits`` outside [1, T] under TRUNCATE runs as
    ``p = T``.
    """

    def __init__(self, *, lanes: int, fifo_depth: int = 8):
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or \
                fifo_depth < PIPELINE_RESULTS + 1:
            raise ValueError(f"fifo_depth must be an integer >= {PIPELINE_RESULTS + 1}, "
                             f"not {fifo_depth!r}")
        self.lanes = lanes
        self.fifo_depth = fifo_depth
        super().__init__({
            "i": In(stream.Signature(beat_layout(lanes))),
            "cfg": In(pe_config_layout()),
            "o": Out(stream.Signature(pe_result_layout())),
            "stop": Out(1),
            "stop_seq": Out(2),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = ACT_BITS
        beat = self.i.payload
        cfg = self.cfg
        m.submodules.results = results = fifo.SyncFIFO(
            width=len(self.o.payload.as_value()), depth=self.fifo_depth)
        m.d.comb += self.i.ready.eq(results.level <= self.fifo_depth - PIPELINE_RESULTS)
        hs = Signal()
        m.d.comb += hs.eq(self.i.valid & self.i.ready)

        # ---------------- stage 1: the chunk's lane contributions, summed --------------------
        contrib = []
        for lane in range(self.lanes):
            w = beat.w[lane]
            c = Signal(signed(9), name=f"c{lane}")
            # plane 0 is the sign plane of two's-complement codes: weight -2**(B-1)
            m.d.comb += c.eq(Mux(beat.bits[lane], Mux(beat.plane == 0, -w, w), 0))
            contrib.append(c)
        sum_bits = (self.lanes * 128).bit_length() + 1
        s1_valid = Signal()
        s1_sum = Signal(signed(sum_bits))
        s1_plane = Signal(3)
        s1_cf, s1_cl = Signal(), Signal()
        s1_seq = Signal(2)
        s1_wpos, s1_wneg = Signal(signed(BOUND_BITS)), Signal(signed(BOUND_BITS))
        m.d.sync += s1_valid.eq(hs)
        with m.If(hs):
            m.d.sync += [s1_sum.eq(tree_sum(contrib)), s1_plane.eq(beat.plane),
                         s1_cf.eq(beat.chunk_first), s1_cl.eq(beat.chunk_last), s1_seq.eq(beat.seq),
                         s1_wpos.eq(beat.wpos), s1_wneg.eq(beat.wneg)]
        s1_first = Signal()        # the first beat of an output
        m.d.comb += s1_first.eq(s1_cf & (s1_plane == 0))

        # ---------------- stage 2: plane sum over the chunks --------------------------------
        early = Signal()           # stage 3 stops the output now (comb)
        dropping = Signal()        # beats of a stopped output are still arriving
        take = Signal()
        m.d.comb += take.eq(s1_valid & (s1_first | ~(dropping | early)))
        with m.If(early):
            m.d.sync += dropping.eq(1)
        with m.If(s1_valid & s1_first):
            m.d.sync += dropping.eq(0)
        p_acc = Signal(signed(ACC_BITS))
        p_next = Signal(signed(ACC_BITS))
        m.d.comb += p_next.eq(Mux(s1_cf, 0, p_acc) + s1_sum)
        s2_valid = Signal()
        s2_P = Signal(signed(ACC_BITS))
        s2_plane = Signal(3)
        s2_seq = Signal(2)
        wpos, wneg = Signal(signed(BOUND_BITS)), Signal(signed(BOUND_BITS))
        m.d.sync += s2_valid.eq(take & s1_cl)
        with m.If(take):
            m.d.sync += p_acc.eq(p_next)
            with m.If(s1_cl):
                m.d.sync += [s2_P.eq(p_next), s2_plane.eq(s1_plane), s2_seq.eq(s1_seq)]
            with m.If(s1_first):
                m.d.sync += [wpos.eq(s1_wpos), wneg.eq(s1_wneg)]

        # ---------------- stage 3: prefix, END decision --------------------------------------
        acc = Signal(signed(ACC_BITS))
        acc_next = Signal(signed(ACC_BITS))
        m.d.comb += acc_next.eq(Mux(s2_plane == 0, 0, acc << 1) + s2_P)
        m.d.sync += acc.eq(Mux(s2_valid, acc_next, acc))
        r = Signal(3)                                  # planes still to come
        m.d.comb += r.eq(B - 1 - s2_plane)
        wide = ACC_BITS + B + 1
        upper, lower = Signal(signed(wide)), Signal(signed(wide))
        m.d.comb += [upper.eq((acc_next << r) + (wpos << r) - wpos),
                     lower.eq((acc_next << r) + (wneg << r) - wneg)]
        last_plane = Signal()
        m.d.comb += last_plane.eq(s2_plane == B - 1)
        stop_here = Signal()
        with m.Switch(cfg.policy):
            with m.Case(Policy.RELU_END):
                m.d.comb += stop_here.eq(upper < 0)
            with m.Case(Policy.SIGN_ONLY):
                m.d.comb += stop_here.eq((upper < 0) | (lower > 0))
            with m.Case(Policy.TRUNCATE):
                m.d.comb += stop_here.eq(s2_plane + 1 == cfg.digits)
        done = Signal()
        m.d.comb += [done.eq(s2_valid & (last_plane | stop_here)),
                     early.eq(s2_valid & stop_here & ~last_plane)]
        m.d.sync += [self.stop.eq(early), self.stop_seq.eq(s2_seq)]
        s3_valid = Signal()
        s3_A = Signal(signed(ACC_BITS))
        s3_early = Signal()
        s3_planes = Signal(4)
        m.d.sync += s3_valid.eq(done)
        with m.If(done):
            m.d.sync += [s3_A.eq(acc_next), s3_early.eq(early), s3_planes.eq(s2_plane + 1)]

        # ---------------- stage 4: the policy's value -> result FIFO -------------------------
        F = cfg.online_delay
        T = Signal(6)
        p = Signal(6)
        m.d.comb += T.eq(B + F)
        with m.If((cfg.digits >= 1) & (cfg.digits <= T)):
            m.d.comb += p.eq(cfg.digits)
        with m.Else():
            m.d.comb += p.eq(T)
        # TRUNCATE: Z_p = floor((A' + 2**(F-1)) / 2**F) * 2**(T-p), A' = A_{p-1} (p <= B) or
        # A_{B-1} * 2**(p-B); for p > B that is A rounded (half up) to a multiple of 2**(T-p)
        sh = Signal(6)
        up = Signal(6)
        m.d.comb += [sh.eq(Mux(p <= B, F, T - p)), up.eq(T - p)]
        half = Signal(signed(ACC_BITS + 1))
        m.d.comb += half.eq(Mux(sh == 0, 0, Const(1, 2) << (sh - 1)[:6]))
        rounded = Signal(signed(ACC_BITS + 1))
        m.d.comb += rounded.eq((s3_A + half) >> sh)
        value = Signal(signed(ACC_BITS))
        with m.Switch(cfg.policy):
            with m.Case(Policy.RELU_END):
                m.d.comb += value.eq(Mux(s3_A < 0, 0, s3_A))
            with m.Case(Policy.SIGN_ONLY):
                m.d.comb += value.eq(Mux(s3_A < 0, -1, Mux(s3_A > 0, 1, 0)))
            with m.Case(Policy.TRUNCATE):
                m.d.comb += value.eq(rounded << up)
            with m.Default():
                m.d.comb += value.eq(s3_A)
        term = Signal()
        with m.Switch(cfg.policy):
            with m.Case(Policy.RELU_END):
                m.d.comb += term.eq(s3_A < 0)
            with m.Case(Policy.SIGN_ONLY):
                m.d.comb += term.eq(s3_A != 0)
            with m.Case(Policy.TRUNCATE):
                m.d.comb += term.eq(p < T)
        res = Signal(pe_result_layout())
        m.d.comb += [
            res.value.eq(value), res.early.eq(s3_early), res.planes.eq(s3_planes),
            res.terminated.eq(term),
            results.w_data.eq(res.as_value()),
            results.w_en.eq(s3_valid),
            self.o.valid.eq(results.r_rdy),
            self.o.payload.eq(results.r_data),
            results.r_en.eq(self.o.ready),
            self.idle.eq(~s1_valid & ~s2_valid & ~s3_valid),
        ]
        return m
