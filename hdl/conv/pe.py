"""The engine's processing element: up to SLOTS (5) outputs interleaved, planes of every chunk in plane order.

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
* **Interleaving.** Up to :data:`SLOTS` outputs are in flight at once: the low
  :data:`SLOT_BITS` bits of ``seq`` are the output's slot, ``0 .. SLOTS-1`` (the unit keeps
  one prefix per slot). The chunks of one plane of one
  output are contiguous, but the planes of different slots may interleave in any order
  (slot 0 plane t, slot 1 plane t', slot 0 plane t+1, ...). A slot starts a new output
  with a plane-0 first-chunk beat; its previous output must have sent its last beat
  before (the feeder refills a slot when its output ended or stopped).
* ``cfg``: the layer's policy, TRUNCATE budget and online delay ``F``. **Contract:** it
  holds the layer's value from the handshake of the layer's first beat (at the latest)
  until ``idle`` after its last beat. The unit samples it into registers every cycle and
  derives its per-layer constants over further register levels; each level is ready
  before the first stage that reads it sees that first beat (so nothing combinational
  runs from ``cfg`` into the datapath, and the first beat never sees stale constants).
  The conv core sets it from the command before the layer's first beat and changes it
  only after the layer's last result.
* ``o``: one result per output, in completion order (not issue order), tagged: ``value``
  (as ``golden/hwexact.py`` defines it for the policy), ``early``, ``planes``,
  ``terminated`` and the output's ``tag``.
* ``stop``, ``stop_seq``: a one-cycle pulse when an output stopped before its last plane
  on its data (RELU_END, SIGN_ONLY; a TRUNCATE output is sent ``min(p, B)`` planes only),
  :data:`STOP_LATENCY` cycles after the handshake of the beat that decided it (the last
  chunk of the plane), with the full ``seq`` of that output (and its slot one-hot on
  ``stop_slots``, so a feeder matches a stop to its slots with one LUT). The unit drops every later
  beat of the stopped output (until the slot's next plane-0 first beat), so the feeder
  may issue an output's next plane before it knows the decision (wasted beats) or wait
  for it (bubbles, or other slots' beats). With :data:`SLOTS` slots of one chunk each,
  round-robin, an output's next plane comes exactly when its decision is known (the
  feeder's beat register + :data:`STOP_LATENCY` = :data:`SLOTS` cycles): stops cost
  nothing. ``seq`` is wider than the slot number (:data:`SEQ_BITS`: slot + 1 generation
  bit) so that a stop of an output whose slot was already refilled can be told from one
  of the new output.

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
SIGN_ONLY also stops when the lower bound is positive. Dividing by ``2**r`` (``A_t`` and
the weights are integers) gives the same tests without shifting the prefix:
``A_t + wb < 0`` with ``wb = wrest - ceil(wrest / 2**r)`` and ``A_t + lb >= 0`` with
``lb = wneg - floor(wneg / 2**r) - 1``; ``wb`` and ``lb`` are computed in the plane-sum
stage and the decision is the sign of a three-term sum (one carry-save level, one adder).
Values equal the MMA's exactly; only the
cycle at which the unit stops differs (it is never later than the MMA's).
"""
from __future__ import annotations

from amaranth import Array, Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import ACT_BITS, Policy
from ..arith.tree import tree_sum
from .pe_value import layer_constants, policy_value

__all__ = ["beat_layout", "pe_config_layout", "pe_result_layout", "PlanePE", "ACC_BITS",
           "BOUND_BITS", "PIPELINE_RESULTS", "SLOTS", "SLOT_BITS", "SEQ_BITS", "STOP_LATENCY",
           "GROUP"]

#: accumulator bits: |A| <= 4096 lanes * 127 * 2**8 < 2**28 (max_fan_in 4096), signed
ACC_BITS = 32
#: bits of the END bounds wpos / wneg (int32 in the channel record)
BOUND_BITS = 32
#: results that can be in flight inside the PE (stage A, B, C and D registers, the
#: handshake cycle): the output FIFO keeps this much room
PIPELINE_RESULTS = 5
#: outputs in flight (one prefix each); the low :data:`SLOT_BITS` bits of ``seq`` select the slot
SLOTS = 5
#: bits of the slot number in ``seq``
SLOT_BITS = max(1, (SLOTS - 1).bit_length())
#: bits of ``seq``: the slot and one generation bit
SEQ_BITS = SLOT_BITS + 1
#: cycles from the handshake of an output's deciding beat to its ``stop`` pulse
STOP_LATENCY = 4
#: lanes summed per group in stage A (the chunk sum adds the groups in stage B)
GROUP = 8


def beat_layout(lanes: int, tag_bits: int = 1) -> data.StructLayout:
    """One plane-chunk beat (see the module docstring)."""
    return data.StructLayout({
        "bits": unsigned(lanes),                          # bit of plane `plane` of each lane
        "w": data.ArrayLayout(signed(8), lanes),          # weights, [-127, 127]; 0 on unused lanes
        "plane": unsigned(3),                             # t, 0 = sign plane
        "chunk_first": unsigned(1),                       # first chunk of this plane
        "chunk_last": unsigned(1),                        # last chunk of this plane
        "seq": unsigned(SEQ_BITS),                        # slot (low SLOT_BITS) + generation
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
    late_lanes : int in [0, lanes]
        The top ``late_lanes`` lanes are summed in smaller groups in stage A because their
        inputs settle later in the cycle (the conv core's bias lanes, decoded from its
        parameter table); any lane may carry any data.

    Members
    -------
    i : ``In(stream(beat_layout(lanes, tag_bits)))``
    cfg : ``In(pe_config_layout())``
    o : ``Out(stream(pe_result_layout(tag_bits)))``
    stop : ``Out(1)``, stop_seq : ``Out(SEQ_BITS)``, stop_slots : ``Out(SLOTS)`` -- the
        stopped output's slot one-hot (0 without a stop), beside ``stop_seq``
    idle : ``Out(1)`` -- no beat or result inside the PE (``o`` may still hold results)

    Timing
    ------
    Register stages (each about 6 ns or less by the synthesis estimate): beat handshake at
    ``h`` -> A: sums of groups of :data:`GROUP` lanes (``h+1``) -> B: the chunk sums
    (``h+2``) -> C: plane sum ``P_t``, the slot's previous prefix and the END bound terms
    (``h+3``, on the plane's last chunk) -> D: prefix ``A_t``, END decision and ``stop``
    (``h+4`` = :data:`STOP_LATENCY`) -> E: value into the ``o`` FIFO (``h+5``). One beat
    per cycle while ``i.ready``; ``i.ready`` depends only on the FIFO level (room for
    every result that may be in flight, :data:`PIPELINE_RESULTS`). A beat of an output is
    never refused: an output of ``n`` chunks costs ``n`` beats per plane it is sent.
    ``cfg``: see the contract in the module docstring.

    Bad input
    ---------
    Beats must follow the plane/chunk order above; a beat out of order gives an
    unspecified value (never a hang). ``digits`` outside [1, T] under TRUNCATE runs as
    ``p = T``.
    """

    def __init__(self, *, lanes: int, tag_bits: int = 1, fifo_depth: int = 8, late_lanes: int = 0):
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if isinstance(tag_bits, bool) or not isinstance(tag_bits, int) or tag_bits < 1:
            raise ValueError(f"tag_bits must be a positive integer, not {tag_bits!r}")
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or \
                fifo_depth < PIPELINE_RESULTS + 1:
            raise ValueError(f"fifo_depth must be an integer >= {PIPELINE_RESULTS + 1}, "
                             f"not {fifo_depth!r}")
        if isinstance(late_lanes, bool) or not isinstance(late_lanes, int) or \
                not 0 <= late_lanes <= lanes:
            raise ValueError(f"late_lanes must be an integer in [0, {lanes}], not {late_lanes!r}")
        self.lanes = lanes
        self.late_lanes = late_lanes
        self.tag_bits = tag_bits
        self.fifo_depth = fifo_depth
        super().__init__({
            "i": In(stream.Signature(beat_layout(lanes, tag_bits))),
            "cfg": In(pe_config_layout()),
            "o": Out(stream.Signature(pe_result_layout(tag_bits))),
            "stop": Out(1),
            "stop_slots": Out(SLOTS),
            "stop_seq": Out(SEQ_BITS),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B = ACT_BITS
        beat = self.i.payload
        TB = self.tag_bits
        SB = SLOT_BITS
        m.submodules.results = results = fifo.SyncFIFO(
            width=len(self.o.payload.as_value()), depth=self.fifo_depth)
        m.d.comb += self.i.ready.eq(results.level <= self.fifo_depth - PIPELINE_RESULTS)
        hs = Signal()
        m.d.comb += hs.eq(self.i.valid & self.i.ready)

        # ---------------- the layer's constants, registered from cfg -----------------------
        # (stage C uses the level-2 constants, D level 2, E level 4: the ``cfg`` contract)
        lk = layer_constants(m, self.cfg, ACC_BITS)
        relu, sign, trunc, tmask = lk.relu, lk.sign, lk.trunc, lk.tmask

        # ---------------- stage A: lane contributions, summed in groups of GROUP lanes -------
        # (plane 0's weight -2**(B-1) is applied to the plane sum in stage C)
        contrib, rterms = [], []
        for lane in range(self.lanes):
            w = beat.w[lane]
            contrib.append(Mux(beat.bits[lane], w, 0))
            # the lane's positive weight, if its bits below the plane are not all zero
            # (w >= 0 is enough: a zero weight adds zero)
            rterms.append(Mux(beat.rest[lane] & ~w[7], w.as_unsigned()[:7], 0))
        # groups of GROUP lanes; the top late_lanes lanes (their inputs settle later) in
        # groups of GROUP // 2
        head = self.lanes - self.late_lanes
        bounds = [(lo, min(head, lo + GROUP)) for lo in range(0, head, GROUP)]
        bounds += [(lo, min(self.lanes, lo + GROUP // 2)) for lo in range(head, self.lanes, GROUP // 2)]
        a_g = []
        a_r = []
        for k, (lo, hi) in enumerate(bounds):
            g = Signal(signed(8 + (hi - lo - 1).bit_length()), name=f"a_g{k}")
            r = Signal((127 * (hi - lo)).bit_length(), name=f"a_r{k}")
            m.d.sync += [g.eq(tree_sum(contrib[lo:hi])), r.eq(tree_sum(rterms[lo:hi]))]
            a_g.append(g)
            a_r.append(r)
        a_valid = Signal()
        a_plane = Signal(3)
        a_cf, a_cl = Signal(), Signal()
        a_seq = Signal(SEQ_BITS)
        a_wneg = Signal(signed(BOUND_BITS))
        a_tag = Signal(TB)
        m.d.sync += [a_valid.eq(hs), a_plane.eq(beat.plane), a_cf.eq(beat.chunk_first),
                     a_cl.eq(beat.chunk_last), a_seq.eq(beat.seq), a_wneg.eq(beat.wneg),
                     a_tag.eq(beat.tag)]

        # ---------------- stage B: the chunk's sums over the groups --------------------------
        sum_bits = (self.lanes * 128).bit_length() + 1
        b_valid = Signal()
        b_sum = Signal(signed(sum_bits))
        b_wr = Signal((self.lanes * 127).bit_length())
        b_plane = Signal(3)
        b_r = Signal(3)                # planes still to come after this one
        b_low = Signal(B - 1)          # 2**b_r - 1
        b_neg = Signal()               # plane 0: the sign plane
        b_first = Signal()             # the first beat of an output
        b_cf, b_cl = Signal(), Signal()
        b_seq = Signal(SEQ_BITS)
        b_wneg = Signal(signed(BOUND_BITS))
        b_tag = Signal(TB)
        m.d.sync += [b_valid.eq(a_valid), b_sum.eq(tree_sum(a_g)), b_wr.eq(tree_sum(a_r)),
                     b_plane.eq(a_plane), b_r.eq(B - 1 - a_plane),
                     b_low.eq((Const(1, B) << (B - 1 - a_plane)[:3]) - 1),
                     b_neg.eq(a_plane == 0), b_first.eq(a_cf & (a_plane == 0)),
                     b_cf.eq(a_cf), b_cl.eq(a_cl), b_seq.eq(a_seq), b_wneg.eq(a_wneg),
                     b_tag.eq(a_tag)]
        b_slot = b_seq[:SB]

        # ---------------- stage C: plane sum over the chunks, the slot's prefix, bounds ------
        early = Signal()           # stage D stops the output of slot s2_slot now (comb)
        s2_seq = Signal(SEQ_BITS)
        s2_slot = s2_seq[:SB]
        dropping = Signal(SLOTS)   # beats of a stopped output of the slot may still arrive
        take = Signal()
        m.d.comb += take.eq(b_valid & (b_first | ~(dropping.bit_select(b_slot, 1) |
                                                   (early & (s2_slot == b_slot)))))
        drop_set = Signal(SLOTS)
        drop_clr = Signal(SLOTS)
        m.d.comb += [drop_set.eq(Mux(early, Const(1, SLOTS) << s2_slot, 0)),
                     drop_clr.eq(Mux(b_valid & b_first, Const(1, SLOTS) << b_slot, 0))]
        m.d.sync += dropping.eq((dropping | drop_set) & ~drop_clr)
        # P += chunk (-chunk on the sign plane) as one adder: x + (y ^ -neg) + neg
        p_acc = Signal(signed(ACC_BITS))
        p_base = Signal(ACC_BITS)
        p_add = Signal(ACC_BITS)
        p_next = Signal(signed(ACC_BITS))
        m.d.comb += [p_base.eq(Mux(b_cf, 0, p_acc)),
                     p_add.eq(b_sum.as_signed() ^ Mux(b_neg, -1, 0)),
                     p_next.eq((Cat(b_neg, p_base) + Cat(b_neg, p_add))[1:ACC_BITS + 1])]
        wr_acc = Signal(BOUND_BITS)           # wrest over the plane's chunks so far
        wr_next = Signal(BOUND_BITS)
        m.d.comb += wr_next.eq(Mux(b_cf, 0, wr_acc) + b_wr)
        # the END bounds without a shift of the prefix (A_t, wrest, wneg integers):
        #   A_t 2**r + wrest (2**r - 1) < 0  <=>  A_t + wb < 0,   wb = wrest - ceil(wrest / 2**r)
        #   A_t 2**r + wneg (2**r - 1) > 0   <=>  A_t + lb >= 0,  lb = wneg - floor(wneg / 2**r) - 1
        # wb = wrest + ~(wrest >> r) + (low r bits all zero), one adder with its carry in
        nz = Signal()
        m.d.comb += nz.eq((wr_next[:B - 1] & b_low).any())
        wb_next = Signal(BOUND_BITS)
        m.d.comb += wb_next.eq((Cat(Const(1, 1), wr_next) +
                                Cat(~nz, ~(wr_next >> b_r)[:BOUND_BITS]))[1:BOUND_BITS + 1])
        acc = Array(Signal(signed(ACC_BITS), name=f"acc{s}") for s in range(SLOTS))
        acc_next = Signal(signed(ACC_BITS))
        s2_valid = Signal()
        s2_P = Signal(signed(ACC_BITS))
        s2_prev = Signal(signed(ACC_BITS))     # the slot's prefix A_{t-1} (0 on plane 0)
        s2_wb = Signal(BOUND_BITS)
        s2_lb = Signal(signed(BOUND_BITS + 1))
        s2_plane = Signal(3)
        s2_last = Signal()                     # plane B-1
        s2_tstop = Signal()                    # TRUNCATE's last plane
        s2_tag = Signal(TB)
        m.d.sync += s2_valid.eq(take & b_cl)
        with m.If(take):
            m.d.sync += [p_acc.eq(p_next), wr_acc.eq(wr_next)]
            with m.If(b_cl):
                # the previous prefix of the slot: stage D may be writing it this cycle
                prev = Mux(s2_valid & (s2_slot == b_slot), acc_next, acc[b_slot])
                m.d.sync += [s2_P.eq(p_next), s2_plane.eq(b_plane), s2_seq.eq(b_seq),
                             s2_tag.eq(b_tag), s2_prev.eq(Mux(b_neg, 0, prev)),
                             s2_wb.eq(wb_next), s2_lb.eq(b_wneg + ~(b_wneg >> b_r)),
                             s2_last.eq(b_plane == B - 1),
                             s2_tstop.eq(tmask.bit_select(b_plane, 1))]

        # ---------------- stage D: prefix, END decision --------------------------------------
        m.d.comb += acc_next.eq((s2_prev << 1) + s2_P)
        with m.If(s2_valid):
            m.d.sync += acc[s2_slot].eq(acc_next)
        N = ACC_BITS + 3

        def sign_of_sum(name, *terms):
            # the sign of a sum of three terms: one carry-save level, then one adder
            ext = []
            for k, t in enumerate(terms):
                e = Signal(signed(N), name=f"{name}_x{k}")
                m.d.comb += e.eq(t)
                ext.append(e.as_unsigned())
            x, y, z = ext
            s, c, tot = Signal(N, name=f"{name}_s"), Signal(N, name=f"{name}_c"), Signal(N, name=name)
            m.d.comb += [s.eq(x ^ y ^ z), c.eq((x & y) | (x & z) | (y & z)),
                         tot.eq(s + (c << 1)[:N])]
            return tot[N - 1]
        up_neg = sign_of_sum("upper", s2_prev << 1, s2_P, s2_wb)     # A_t + wb < 0
        lo_pos = ~sign_of_sum("lower", s2_prev << 1, s2_P, s2_lb)    # A_t + lb >= 0
        stop_here = Signal()
        m.d.comb += stop_here.eq((relu & up_neg) | (sign & (up_neg | lo_pos)) | (trunc & s2_tstop))
        done = Signal()
        m.d.comb += [done.eq(s2_valid & (s2_last | stop_here)),
                     early.eq(s2_valid & stop_here & ~s2_last)]
        # only data-dependent stops are signalled: the feeder knows the TRUNCATE budget
        m.d.sync += [self.stop.eq(early & (relu | sign)), self.stop_seq.eq(s2_seq),
                     self.stop_slots.eq(Mux(relu | sign, drop_set, 0))]
        s3_valid = Signal()
        s3_A = Signal(signed(ACC_BITS))
        s3_early = Signal()
        s3_planes = Signal(4)
        s3_tag = Signal(TB)
        m.d.sync += s3_valid.eq(done)
        with m.If(done):
            m.d.sync += [s3_A.eq(acc_next), s3_early.eq(early), s3_planes.eq(s2_plane + 1),
                         s3_tag.eq(s2_tag)]

        # ---------------- stage E: the policy's value -> result FIFO -------------------------
        value, term = policy_value(m, lk, s3_A, ACC_BITS)
        res = Signal(pe_result_layout(TB))
        m.d.comb += [
            res.value.eq(value), res.early.eq(s3_early), res.planes.eq(s3_planes),
            res.terminated.eq(term), res.tag.eq(s3_tag),
            results.w_data.eq(res.as_value()),
            results.w_en.eq(s3_valid),
            self.o.valid.eq(results.r_rdy),
            self.o.payload.eq(results.r_data),
            results.r_en.eq(self.o.ready),
            self.idle.eq(~a_valid & ~b_valid & ~s2_valid & ~s3_valid),
        ]
        return m
