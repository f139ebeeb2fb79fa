"""The engine's processing element: up to 4 outputs interleaved, planes of every chunk in plane order.

This is the **PE interface** every PE kind of the engine implements (the MMA-style PE
here; a faster MSDF PE or a bit-parallel DSP48 PE can replace it behind the same ports):

* ``i``: *plane-chunk beats*. An output's fan-in (``cin*k*k`` data lanes + bias lanes) is
  cut into chunks of ``lanes`` lanes; for plane ``t = 0 .. B-1`` (most significant
  first; plane 0 is the two's-complement sign plane) the beats of chunks ``0 .. n-1``
  follow each other: **plane t of every chunk before plane t+1**, so the unit knows the
  whole fan-in's plane sum ``P_t`` before it decides anything (exact END over the whole
  fan-in, not per chunk). A beat carries the plane's activation bits of its chunk
  (``bits``), the chunk's weights (``w``), ``plane``, ``chunk_first``/``chunk_last``,
  the output's *slot* ``seq``, ``rest`` (the lanes whose activation bits below plane
  ``t`` are not all zero; the END upper bound counts only their positive weights) and,
  on every beat (constant over an output), the channel's sum of negative weights
  ``wneg`` (SIGN_ONLY's lower bound) and an opaque ``tag``.
* **Interleaving.** Up to :data:`SLOTS` outputs are in flight at once: ``seq % SLOTS`` is
  the output's slot (the unit keeps one prefix per slot). The chunks of one plane of one
  output are contiguous, but the planes of different slots may interleave in any order
  (slot 0 plane t, slot 1 plane t', slot 0 plane t+1, ...). A slot starts a new output
  with a plane-0 first-chunk beat; its previous output must have sent its last beat
  before (the feeder refills a slot when its output ended or stopped).
* ``cfg``: the layer's policy, TRUNCATE budget and online delay ``F`` (static while the
  layer runs).
* ``o``: one result per output, in completion order (not issue order), tagged: ``value``
  (as ``golden/hwexact.py`` defines it for the policy), ``early``, ``planes``,
  ``terminated`` and the output's ``tag``.
* ``stop``, ``stop_seq``: a one-cycle pulse when an output stopped before its last plane
  on its data (RELU_END, SIGN_ONLY; a TRUNCATE output is sent ``min(p, B)`` planes only),
  :data:`STOP_LATENCY` cycles after the handshake of the beat that decided it (the last
  chunk of the plane), with the full ``seq`` of that output. The unit drops every later
  beat of the stopped output (until the slot's next plane-0 first beat), so the feeder
  may issue an output's next plane before it knows the decision (wasted beats) or wait
  for it (bubbles, or other slots' beats). With 4 slots of one chunk each, round-robin,
  an output's next plane comes exactly when its decision is known: stops cost nothing.
  ``seq`` is wider than the slot number (3 bits: slot + 1 generation bit) so that a stop
  of an output whose slot was already refilled can be told from one of the new output.

Arithmetic (proofs in :mod:`msdf_unet.golden.arith.mma`)
--------------------------------------------------------
The PE keeps the exact prefix ``A_t = sum_{k<=t} P_k 2**(t-k)`` (Horner). The MMA digit
recurrence with headroom ``F`` keeps ``R_{t+1} = A_t - 2**F Z_{t+1}`` with
``R in [-2**(F-1), 2**(F-1))``, so its digit prefix is the closed form
``Z_{t+1} = floor((A_t + 2**(F-1)) / 2**F)``; TRUNCATE's value
``Z_p = Z_{p} * 2**(T-p)`` is therefore computed from ``A`` with one rounding shift
(steps past plane ``B-1`` add zero planes: ``A`` doubles). FULL is ``A_{B-1} = S``;
RELU_END and SIGN_ONLY use the sign of ``S`` (the sign of the MMA's first nonzero digit).

END: after plane ``t`` the planes still to come are unsigned: lane ``i`` adds
``w_i (u_i mod 2**r)`` with ``r = B-1-t`` (``u_i`` the lane's code as unsigned), which is
0 when the lane's remaining bits are all zero and at most ``max(w_i, 0) (2**r - 1)``
otherwise. So ``S <= A_t 2**r + wrest_t (2**r - 1)`` with ``wrest_t`` the sum of the
positive weights of the lanes flagged in ``rest`` (never more than ``wpos``, the
channel's sum of positive weights, bias lanes included), and ``S >= A_t 2**r + wneg
(2**r - 1)``. When the upper bound is negative a ReLU output is 0 (RELU_END stops);
SIGN_ONLY also stops when the lower bound is positive. Values equal the MMA's exactly; only the
cycle at which the unit stops differs (it is never later than the MMA's).
"""
from __future__ import annotations

from amaranth import Array, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import ACT_BITS, Policy
from ..arith.tree import tree_sum

__all__ = ["beat_layout", "pe_config_layout", "pe_result_layout", "PlanePE", "ACC_BITS",
           "BOUND_BITS", "PIPELINE_RESULTS", "SLOTS", "SEQ_BITS", "STOP_LATENCY"]

#: accumulator bits: |A| <= 4096 lanes * 127 * 2**8 < 2**28 (max_fan_in 4096), signed
ACC_BITS = 32
#: bits of the END bounds wpos / wneg (int32 in the channel record)
BOUND_BITS = 32
#: results that can be in flight inside the PE (input register, plane register, result
#: register, the handshake cycle): the output FIFO keeps this much room
PIPELINE_RESULTS = 4
#: outputs in flight (one prefix each); ``seq % SLOTS`` selects the slot
SLOTS = 4
#: bits of ``seq``: the slot and one generation bit
SEQ_BITS = 3
#: cycles from the handshake of an output's deciding beat to its ``stop`` pulse
STOP_LATENCY = 3


def beat_layout(lanes: int, tag_bits: int = 1) -> data.StructLayout:
    """One plane-chunk beat (see the module docstring)."""
    return data.StructLayout({
        "bits": unsigned(lanes),                          # bit of plane `plane` of each lane
        "w": data.ArrayLayout(signed(8), lanes),          # weights, [-127, 127]; 0 on unused lanes
        "plane": unsigned(3),                             # t, 0 = sign plane
        "chunk_first": unsigned(1),                       # first chunk of this plane
        "chunk_last": unsigned(1),                        # last chunk of this plane
        "seq": unsigned(SEQ_BITS),                        # slot (seq % SLOTS) + generation
        "wneg": signed(BOUND_BITS),                       # END lower bound (every beat of the output)
        "tag": unsigned(tag_bits),                        # returned with the output's result
        "rest": unsigned(lanes),                          # lane's bits below plane t not all 0
    })


def pe_config_layout() -> data.StructLayout:
    """The layer's settings: ``policy`` (:class:`~msdf_unet.spec.engine.Policy`),
    ``digits`` (TRUNCATE budget ``p`` in [1, T]) and ``online_delay`` ``F`` of the layer's
    lane count ``cin*k*k + bias_lanes`` (``T = 8 + F``)."""
    return data.StructLayout({"policy": unsigned(2), "digits": unsigned(8),
                              "online_delay": unsigned(5)})


def pe_result_layout(tag_bits: int = 1) -> data.StructLayout:
    """One output: ``value`` (the policy's value), ``early`` (stopped before its last
    plane), ``planes`` (planes consumed, 1..8), ``terminated`` (the MMA's flag for
    the output: RELU_END and ``S < 0``, SIGN_ONLY and ``S != 0``, TRUNCATE and ``p < T``;
    what ``golden/hwexact.py`` counts) and the output's ``tag``."""
    return data.StructLayout({"value": signed(ACC_BITS), "early": unsigned(1),
                              "planes": unsigned(4), "terminated": unsigned(1),
                              "tag": unsigned(tag_bits)})


class PlanePE(wiring.Component):
    """MMA-style PE over ``lanes`` lanes per beat, any number of chunks per plane, up to
    :data:`SLOTS` outputs interleaved.

    Parameters (keyword-only)
    -------------------------
    lanes : int >= 1
        Lanes per beat (chunk width).
    tag_bits : int >= 1
        Width of the opaque ``tag`` a beat carries and its result returns.
    fifo_depth : int >= PIPELINE_RESULTS + 1
        Results buffered at ``o``.

    Members
    -------
    i : ``In(stream(beat_layout(lanes, tag_bits)))``
    cfg : ``In(pe_config_layout())``
    o : ``Out(stream(pe_result_layout(tag_bits)))``
    stop : ``Out(1)``, stop_seq : ``Out(SEQ_BITS)``
    idle : ``Out(1)`` -- no beat or result inside the PE (``o`` may still hold results)

    Timing
    ------
    Three register stages: beat handshake at ``h`` -> chunk sum (``h+1``) -> plane sum
    ``P_t`` and the slot's previous prefix (``h+2``, on the plane's last chunk) -> prefix
    ``A_t``, END decision and ``stop`` (``h+3``) -> value into the ``o`` FIFO (``h+4``).
    One beat per cycle while ``i.ready``; ``i.ready`` depends only on the FIFO level (room
    for every result that may be in flight). A beat of an output is never refused: an
    output of ``n`` chunks costs ``n`` beats per plane it is sent.

    Bad input
    ---------
    Beats must follow the plane/chunk order above; a beat out of order gives an
    unspecified value (never a hang). ``digits`` outside [1, T] under TRUNCATE runs as
    ``p = T``.
    """

    def __init__(self, *, lanes: int, tag_bits: int = 1, fifo_depth: int = 8):
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if isinstance(tag_bits, bool) or not isinstance(tag_bits, int) or tag_bits < 1:
            raise ValueError(f"tag_bits must be a positive integer, not {tag_bits!r}")
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or \
                fifo_depth < PIPELINE_RESULTS + 1:
            raise ValueError(f"fifo_depth must be an integer >= {PIPELINE_RESULTS + 1}, "
                             f"not {fifo_depth!r}")
        self.lanes = lanes
        self.tag_bits = tag_bits
        self.fifo_depth = fifo_depth
        super().__init__({
            "i": In(stream.Signature(beat_layout(lanes, tag_bits))),
            "cfg": In(pe_config_layout()),
            "o": Out(stream.Signature(pe_result_layout(tag_bits))),
            "stop": Out(1),
            "stop_seq": Out(SEQ_BITS),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = ACT_BITS
        beat = self.i.payload
        cfg = self.cfg
        TB = self.tag_bits
        m.submodules.results = results = fifo.SyncFIFO(
            width=len(self.o.payload.as_value()), depth=self.fifo_depth)
        m.d.comb += self.i.ready.eq(results.level <= self.fifo_depth - PIPELINE_RESULTS)
        hs = Signal()
        m.d.comb += hs.eq(self.i.valid & self.i.ready)

        # ---------------- stage 1: the chunk's lane contributions, summed --------------------
        contrib = []
        rterms = []
        for lane in range(self.lanes):
            w = beat.w[lane]
            c = Signal(signed(9), name=f"c{lane}")
            # plane 0 is the sign plane of two's-complement codes: weight -2**(B-1)
            m.d.comb += c.eq(Mux(beat.bits[lane], Mux(beat.plane == 0, -w, w), 0))
            contrib.append(c)
            rt = Signal(7, name=f"rt{lane}")   # its positive weight, if bits remain
            m.d.comb += rt.eq(Mux(beat.rest[lane] & (w > 0), w.as_unsigned()[:7], 0))
            rterms.append(rt)
        sum_bits = (self.lanes * 128).bit_length() + 1
        s1_valid = Signal()
        s1_sum = Signal(signed(sum_bits))
        s1_plane = Signal(3)
        s1_cf, s1_cl = Signal(), Signal()
        s1_seq = Signal(SEQ_BITS)
        s1_wneg = Signal(signed(BOUND_BITS))
        s1_tag = Signal(TB)
        s1_wr = Signal((self.lanes * 127).bit_length())
        m.d.sync += s1_valid.eq(hs)
        with m.If(hs):
            m.d.sync += [s1_sum.eq(tree_sum(contrib)), s1_plane.eq(beat.plane),
                         s1_cf.eq(beat.chunk_first), s1_cl.eq(beat.chunk_last), s1_seq.eq(beat.seq),
                         s1_wneg.eq(beat.wneg), s1_tag.eq(beat.tag),
                         s1_wr.eq(tree_sum(rterms))]
        s1_slot = s1_seq[:2]
        s1_first = Signal()        # the first beat of an output
        m.d.comb += s1_first.eq(s1_cf & (s1_plane == 0))

        # ---------------- stage 2: plane sum over the chunks, the slot's prefix ---------------
        early = Signal()           # stage 3 stops the output of slot s2_slot now (comb)
        s2_seq = Signal(SEQ_BITS)
        s2_slot = s2_seq[:2]
        dropping = Signal(SLOTS)   # beats of a stopped output of the slot may still arrive
        take = Signal()
        m.d.comb += take.eq(s1_valid & (s1_first | ~(dropping.bit_select(s1_slot, 1) |
                                                    (early & (s2_slot == s1_slot)))))
        drop_set = Signal(SLOTS)
        drop_clr = Signal(SLOTS)
        m.d.comb += [drop_set.eq(Mux(early, Const(1, SLOTS) << s2_slot, 0)),
                     drop_clr.eq(Mux(s1_valid & s1_first, Const(1, SLOTS) << s1_slot, 0))]
        m.d.sync += dropping.eq((dropping | drop_set) & ~drop_clr)
        p_acc = Signal(signed(ACC_BITS))
        p_next = Signal(signed(ACC_BITS))
        m.d.comb += p_next.eq(Mux(s1_cf, 0, p_acc) + s1_sum)
        wr_acc = Signal(BOUND_BITS)           # wrest over the plane's chunks so far
        wr_next = Signal(BOUND_BITS)
        m.d.comb += wr_next.eq(Mux(s1_cf, 0, wr_acc) + s1_wr)
        acc = Array(Signal(signed(ACC_BITS), name=f"acc{s}") for s in range(SLOTS))
        acc_next = Signal(signed(ACC_BITS))
        s2_valid = Signal()
        s2_P = Signal(signed(ACC_BITS))
        s2_prev = Signal(signed(ACC_BITS))     # the slot's prefix A_{t-1} (0 on plane 0)
        s2_plane = Signal(3)
        s2_tag = Signal(TB)
        wide = ACC_BITS + B + 1
        s2_wup, s2_wlo = Signal(signed(wide)), Signal(signed(wide))   # wrest/wneg (2**r - 1)
        r1 = Signal(3)
        m.d.comb += r1.eq(B - 1 - s1_plane)
        m.d.sync += s2_valid.eq(take & s1_cl)
        with m.If(take):
            m.d.sync += [p_acc.eq(p_next), wr_acc.eq(wr_next)]
            with m.If(s1_cl):
                # the previous prefix of the slot: stage 3 may be writing it this cycle
                prev = Mux(s2_valid & (s2_slot == s1_slot), acc_next, acc[s1_slot])
                m.d.sync += [s2_P.eq(p_next), s2_plane.eq(s1_plane), s2_seq.eq(s1_seq),
                             s2_tag.eq(s1_tag), s2_prev.eq(Mux(s1_plane == 0, 0, prev)),
                             s2_wup.eq((wr_next << r1) - wr_next),
                             s2_wlo.eq((s1_wneg << r1) - s1_wneg)]

        # ---------------- stage 3: prefix, END decision --------------------------------------
        m.d.comb += acc_next.eq((s2_prev << 1) + s2_P)
        with m.If(s2_valid):
            m.d.sync += acc[s2_slot].eq(acc_next)
        r = Signal(3)                                  # planes still to come
        m.d.comb += r.eq(B - 1 - s2_plane)
        upper, lower = Signal(signed(wide)), Signal(signed(wide))
        m.d.comb += [upper.eq((acc_next << r) + s2_wup),
                     lower.eq((acc_next << r) + s2_wlo)]
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
        # only data-dependent stops are signalled: the feeder knows the TRUNCATE budget
        m.d.sync += [self.stop.eq(early & ((cfg.policy == Policy.RELU_END) |
                                           (cfg.policy == Policy.SIGN_ONLY))),
                     self.stop_seq.eq(s2_seq)]
        s3_valid = Signal()
        s3_A = Signal(signed(ACC_BITS))
        s3_early = Signal()
        s3_planes = Signal(4)
        s3_tag = Signal(TB)
        m.d.sync += s3_valid.eq(done)
        with m.If(done):
            m.d.sync += [s3_A.eq(acc_next), s3_early.eq(early), s3_planes.eq(s2_plane + 1),
                         s3_tag.eq(s2_tag)]

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
        res = Signal(pe_result_layout(TB))
        m.d.comb += [
            res.value.eq(value), res.early.eq(s3_early), res.planes.eq(s3_planes),
            res.terminated.eq(term), res.tag.eq(s3_tag),
            results.w_data.eq(res.as_value()),
            results.w_en.eq(s3_valid),
            self.o.valid.eq(results.r_rdy),
            self.o.payload.eq(results.r_data),
            results.r_en.eq(self.o.ready),
            self.idle.eq(~s1_valid & ~s2_valid & ~s3_valid),
        ]
        return m
