"""Golden model of the MSDF v2 dot-product unit (``msdf-v2``), exact to the bit and cycle.

Oracle of :class:`msdf_unet.hdl.arith.msdf2.MSDF2DotProduct`. Same transactions, policies
and values as the MMA (:mod:`.mma`); what changes is how the unit gets there.

Arithmetic
----------
Activations enter one bit-plane per cycle, most significant first (``P_t`` as in
:func:`.mma.plane_sums`, the signed top plane counting negative). Instead of emitting
``T = B + F`` signed digits, the unit keeps the MSB-first Horner prefix in plain binary:
``A_t = 2*A_{t-1} + P_t`` (``A_{-1} = 0``), so ``A_{B-1} = S`` right after the last plane
and the result needs no digit tail. The MMA's digits are a function of this prefix: the
recurrence invariant ``-2**(F-1) <= R_t < 2**(F-1)`` with ``R_t = A_t - 2**F * Y_t``
(``Y_t = sum_{k<=t} z_k 2**(t-k)``) fixes ``Y_t = floor((A_t + 2**(F-1)) / 2**F)``, hence
the MMA's TRUNCATE value ``Z_p = Y_{p-1} * 2**(T-p)`` (:func:`truncate_value`). The unit
computes it exactly as ``Z_p = (V + h) & -(2h)`` with ``h = 2**(T-p-1)`` and ``V`` the
dot product of the first ``min(p, B)`` planes (later planes masked to zero).

Exact early END decision
------------------------
With ``Wp >= sum_i max(w_i, 0)`` (the transaction's ``wpos``), the planes after ``t``
add at most ``Wp * (2**m - 1)``, ``m = B-1-t`` (they are 0/1 planes). The unit stops a
RELU_END or SIGN_ONLY transaction after plane ``t < B-1`` when
``A_t < J_t = K_t - Wp`` with ``K_t = floor(Wp * 2**t / 2**(B-1))``: then
``S <= -2**m < 0`` (proof: ``A_t + Wp <= K_t - 1`` gives ``(A_t + Wp) 2**m <= Wp -
2**m``). ``K_t`` is a shift of ``Wp`` (``Wp << t``, top bits), so ``J_t`` costs one small
subtraction per plane beside the lanes; the accumulator is one adder. The values are those of the
MMA's policies: FULL ``S``; RELU_END ``max(S, 0)``; SIGN_ONLY ``sign(S)``; TRUNCATE
``Z_p``. ``terminated``: RELU_END ``S < 0``, SIGN_ONLY ``S != 0``, TRUNCATE ``p < T``,
FULL 0 (as the MMA). ``digits_used`` is the number of plane cycles the transaction
occupied the lanes: ``B``, or after an early stop at plane ``t`` ``t + 1 + lag`` where
``lag`` is 1 for the pipelined unit (the plane after ``t`` was already formed) and 0 for
the flat one.

Timing (:class:`MSDF2CycleModel`, exactly the RTL)
-------------------------------------------------
Registers: ``nx`` (one accepted transaction waiting), the feeder (current transaction,
plane index ``t``), ``s1`` (pipelined only: the group sums of the plane formed last
cycle), the accumulator ``C``, ``fin`` (a finished transaction's tags) and the output
register ``o``. Per cycle: ``i.ready = not nx.valid``; ``stall = fin.valid and o.valid and
not o.ready`` freezes every register but ``nx`` and ``o``; the feeder loads ``nx``
(``swap``) when it is idle, on its last plane, or when the accumulator stage stops its
transaction early this cycle (the plane it formed in that cycle is dropped). A
transaction accepted at ``h`` on an idle unit forms plane 0 at ``h + 2``; its result is on
``o`` at ``h + B + 3 + pipelined``. Back to back with ``o.ready`` high, a transaction
occupies ``max(digits_used, 2)`` cycles (the buffer refills one cycle after the feeder
took its transaction; only the flat unit's stop after plane 0, ``digits_used = 1``, waits
one cycle), so :func:`evaluate_planes` (``cycles``) gives the cycles per dot product
without a cycle-by-cycle run.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .mma import (MAX_WEIGHT, Policy, _check_act_bits, _check_budget, _check_lanes, _policy,
                  check_acts, check_weights, plane_sums, stream_digits)
from .mma_operands import weight_bounds

__all__ = ["MIN_INTERVAL", "wpos_bits", "positive_weight_sum", "truncate_value", "Txn", "Result",
           "evaluate_planes", "evaluate", "lite_accumulate", "MSDF2CycleModel", "latency_cycles",
           "random_txns"]


#: the transaction buffer refills one cycle after the feeder took its transaction, so the
#: feeder starts a transaction at most every 2 cycles
MIN_INTERVAL = 2


def wpos_bits(n_lanes: int) -> int:
    """Bits of the ``wpos`` payload field: ``Wp <= n_lanes * 127``."""
    return (_check_lanes(n_lanes) * MAX_WEIGHT).bit_length()


def positive_weight_sum(w) -> np.ndarray:
    """``sum_i max(w_i, 0)`` over the last axis (the tightest legal ``wpos``)."""
    return weight_bounds(check_weights(w))[0]


def truncate_value(A, p: int, n_lanes: int, act_bits: int = 8):
    """The MMA's TRUNCATE value ``Z_p`` from the Horner prefix ``A = A_{p-1}`` (planes
    ``0..p-1``; for ``p > B`` pass ``S * 2**(p-B)``): ``floor((A + 2**(F-1)) / 2**F) *
    2**(T-p)``. Works on ints and int64 arrays."""
    T = stream_digits(n_lanes, act_bits)
    F = T - act_bits
    p = _check_budget(p, T)
    return ((A + (1 << (F - 1))) >> F) << (T - p)


def latency_cycles(act_bits: int = 8, pipelined: bool = True) -> int:
    """Accept -> ``o.valid`` on an idle unit."""
    return _check_act_bits(act_bits) + 3 + int(bool(pipelined))


@dataclass(frozen=True)
class Txn:
    """One transaction: lanes ``x``, ``w`` (bias lanes included), the policy, the TRUNCATE
    budget ``digits`` and ``wpos`` (an upper bound of ``sum max(w, 0)``; ``None``: the
    exact sum)."""
    x: tuple
    w: tuple
    policy: Policy = Policy.FULL
    digits: int = 0
    wpos: int | None = None


@dataclass(frozen=True)
class Result:
    """One result on ``o`` (fields of iface.py's result payload)."""
    value: int
    digits_used: int
    terminated: int = 0


@dataclass
class Outcome:
    """:func:`evaluate_planes` for a batch: int64 arrays of the batch shape."""
    values: np.ndarray
    digits_used: np.ndarray
    terminated: np.ndarray
    stop_plane: np.ndarray      # plane after which the early stop fired, -1 if none
    cycles: np.ndarray          # cycles back to back: max(digits_used, 2)


def evaluate_planes(P, wpos, n_lanes: int, policy, digits: int | None = None, *,
                    pipelined: bool = True) -> Outcome:
    """Vectorized values and plane cycles of the unit for plane sums ``P`` (``(B, *batch)``,
    MSB plane first, as :func:`.mma.plane_sums`) and bounds ``wpos`` (broadcast to the
    batch). ``digits_used`` is what the unit reports and, back to back with ``o.ready``
    high, ``cycles`` the cycles the transaction occupies (see the module docstring)."""
    pol = _policy(policy)
    P = np.asarray(P).astype(np.int64)
    B = P.shape[0]
    batch = P.shape[1:]
    T = stream_digits(n_lanes, B)
    Wp = np.broadcast_to(np.asarray(wpos, dtype=np.int64), batch)
    if P.size and np.abs(P).max() > n_lanes * MAX_WEIGHT:
        raise ValueError("plane sums exceed n_lanes*127: wrong n_lanes or illegal weights")
    if Wp.size and (Wp.min() < 0 or Wp.max() >= 1 << wpos_bits(n_lanes)):
        raise ValueError(f"wpos must lie in [0, {(1 << wpos_bits(n_lanes)) - 1}]")
    lag = 1 if pipelined else 0
    stop = np.full(batch, -1, np.int64)
    A = np.zeros(batch, np.int64)
    p = _check_budget(digits, T) if pol is Policy.TRUNCATE else T
    for t in range(B):
        live = t < p
        A = 2 * A + (P[t] if live else 0)
        if pol in (Policy.RELU_END, Policy.SIGN_ONLY) and t < B - 1:
            K = (Wp << t) >> (B - 1)
            new = (stop < 0) & (A + Wp < K)
            stop[new] = t
    S = A
    early = stop >= 0
    if early.any():
        assert np.all(S[early] < 0), "early END decision on a non-negative sum"
    used = np.where(early, stop + 1 + lag, B)
    if pol is Policy.FULL:
        values, term = S, np.zeros(batch, np.int64)
    elif pol is Policy.RELU_END:
        values, term = np.maximum(S, 0), (S < 0).astype(np.int64)
    elif pol is Policy.SIGN_ONLY:
        values, term = np.sign(S), (S != 0).astype(np.int64)
    else:
        h = (1 << (T - p - 1)) if p < T else 0
        values = (S + h) & -(2 * h) if p < T else S
        term = np.full(batch, int(p < T), np.int64)
    return Outcome(np.asarray(values, np.int64), np.asarray(used, np.int64),
                   np.asarray(term, np.int64), stop, np.maximum(used, MIN_INTERVAL))


def lite_accumulate(P, wpos, n_lanes: int, policy, digits: int | None = None) -> dict:
    """The arithmetic of ``msdf-v2-lite`` (:mod:`msdf_unet.hdl.arith.msdf2_lite`), plane by
    plane, for plane sums ``P`` (``(B, *batch)``, as :func:`evaluate_planes`).

    **END offset** (every policy but TRUNCATE). The register holds ``D_t = A_t - J_t`` with
    msdf-v2's threshold ``J_t = K_t - Wp``, ``K_t = Wp >> (B-1-t)``. Since ``K_t = 2 K_{t-1}
    + bit_{B-1-t}(Wp)``: ``D_0 = P_0 + Wp - K_0`` and ``D_t = 2 D_{t-1} + P_t - Wp -
    bit_{B-1-t}(Wp)``: a constant per plane (one adder term and a carry), and msdf-v2's stop
    test ``A_t < J_t`` is ``D_t < 0``: the sign bit of the sum. ``K_{B-1} = Wp`` gives
    ``J_{B-1} = 0``: after the last plane ``D = A = S``.

    **TRUNCATE** ``p`` (no offset, ``D = C``): planes ``t >= p`` add 0. The rounding half
    ``h = 2**(T-p-1)`` enters for ``p <= B`` as ``2**(F-1)`` on the last live plane
    ``p - 1``, whose low ``F`` bits are then cleared (the later planes only double ``D``:
    ``D_{B-1} = floor((A_{p-1} + 2**(F-1)) / 2**F) 2**F 2**(B-p) = Z_p``); for ``p > B``
    as ``+1`` on plane ``p - F`` when ``p >= F`` (bit 0 of ``2 D``, free), else as
    ``2**(F-p)`` on plane 0 (whose ``2 D`` is 0), and the low ``T - p < F`` bits of the
    final sum are masked.

    Returns ``{"values", "stop_plane", "D"}``: the policy's values (equal to
    :func:`evaluate_planes`' -- tested), the plane of the END stop (-1: none) and the
    register's values ``D`` (``(B, *batch)``; after a stop they keep running: the unit
    drops them). ``|D| < 2**T`` sizes the register (``T + 1`` bits).
    """
    pol = _policy(policy)
    P = np.asarray(P).astype(np.int64)
    B = P.shape[0]
    batch = P.shape[1:]
    T = stream_digits(n_lanes, B)
    F = T - B
    Wp = np.broadcast_to(np.asarray(wpos, dtype=np.int64), batch)
    p = _check_budget(digits, T) if pol is Policy.TRUNCATE else T
    D = np.zeros(batch, np.int64)
    Ds = []
    stop = np.full(batch, -1, np.int64)
    for t in range(B):
        if pol is Policy.TRUNCATE:
            add = P[t] if t < p else 0
            if p <= B and t == p - 1:
                add = add + (1 << (F - 1))
            if p > B and t == p - F:
                add = add + 1
            if B < p < F and t == 0:
                add = add + (1 << (F - p))
            D = 2 * D + add
            if p <= B and t == p - 1:
                D = D & -(1 << F)
        elif t == 0:
            D = P[0] + Wp - (Wp >> (B - 1))
        else:
            D = 2 * D + P[t] - Wp - ((Wp >> (B - 1 - t)) & 1)
        Ds.append(D)
        if pol in (Policy.RELU_END, Policy.SIGN_ONLY) and t < B - 1:
            stop[(stop < 0) & (D < 0)] = t
    S = D
    if pol is Policy.FULL:
        values = S
    elif pol is Policy.RELU_END:
        values = np.where(stop >= 0, 0, np.maximum(S, 0))
    elif pol is Policy.SIGN_ONLY:
        values = np.where(stop >= 0, -1, np.sign(S))
    else:
        values = S & -(1 << (T - p))
    return {"values": np.asarray(values, np.int64), "stop_plane": stop, "D": np.stack(Ds)}


def evaluate(x, w, policy="FULL", digits: int | None = None, *, wpos=None, act_bits: int = 8,
             signed_acts: bool = True, pipelined: bool = True) -> Outcome:
    """:func:`evaluate_planes` on activations/weights ``x, w`` of shape ``(..., L)``."""
    wa = check_weights(w)
    xa = check_acts(x, act_bits, signed_acts)
    xa, wa = np.broadcast_arrays(xa, wa)
    exact = positive_weight_sum(wa)
    if wpos is None:
        wpos = exact
    elif np.any(np.asarray(wpos) < exact):
        raise ValueError("wpos below the sum of the positive weights: the END decision "
                         "would not be exact")
    P = plane_sums(xa, wa, act_bits, signed_acts)
    return evaluate_planes(P, wpos, xa.shape[-1], policy, digits, pipelined=pipelined)


class MSDF2CycleModel:
    """Cycle model of :class:`~msdf_unet.hdl.arith.msdf2.MSDF2DotProduct` (and of
    :class:`~msdf_unet.hdl.arith.msdf2_lite.MSDF2LiteDotProduct`, same ``pipelined``) with the
    ``step(in_valid, txn, out_ready) -> (i.ready, o.valid, o.payload)`` interface of
    :func:`msdf_unet.golden.arith.baselines.simulate` (see the module docstring for the
    rules)."""

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 pipelined: bool = True):
        self.n_lanes = _check_lanes(n_lanes)
        self.act_bits = _check_act_bits(act_bits)
        self.signed_acts = bool(signed_acts)
        self.pipelined = bool(pipelined)
        self.T = stream_digits(n_lanes, act_bits)
        self.latency_cycles = latency_cycles(act_bits, pipelined)
        self.nx = None            # prepared transaction waiting
        self.f = None             # feeder: dict of the current transaction, or None
        self.s1 = None            # pipelined: plane record formed last cycle
        self.C = 0
        self.fin = None           # (policy, early, t, therm-p, txn)
        self.o_valid = False
        self.o_payload = None

    def _prepare(self, txn) -> dict:
        L, B, T = self.n_lanes, self.act_bits, self.T
        if len(txn.x) != L or len(txn.w) != L:
            raise ValueError(f"transaction needs {L} lanes, got x:{len(txn.x)} w:{len(txn.w)}")
        x = check_acts(np.asarray(txn.x), B, self.signed_acts)
        w = check_weights(np.asarray(txn.w))
        exact = int(np.clip(w, 0, None).sum())
        wp = exact if getattr(txn, "wpos", None) is None else int(txn.wpos)
        if not exact <= wp < 1 << wpos_bits(L):
            raise ValueError(f"wpos {wp} outside [{exact}, {(1 << wpos_bits(L)) - 1}]")
        pol = _policy(txn.policy)
        p = _check_budget(txn.digits, T) if pol is Policy.TRUNCATE else T
        u = x & ((1 << B) - 1)
        # unsigned-digit plane sums, MSB first (the sign plane is negated by the core)
        pg = [int(np.sum(((u >> (B - 1 - t)) & 1) * w)) for t in range(B)]
        return {"pg": pg, "pol": pol, "p": p, "wp": wp}

    def _plane(self, f: dict, t: int) -> dict:
        B, T = self.act_bits, self.T
        F, p = T - B, f["p"]
        return {"pg": f["pg"][t], "first": t == 0, "last": t == B - 1,
                "live": t < p, "pol": f["pol"], "p": p, "t": t,
                # TRUNCATE's rounding half 2**(T-p-1), entered at plane 0 or p - F
                "init": (1 << (F - p)) if p <= F else 0,
                "cin": int(F < p < T and t == p - F),
                "J": ((f["wp"] << t) >> (B - 1)) - f["wp"]}

    def _finish(self, fin) -> Result:
        pol, early, t, p = fin
        B, T, C = self.act_bits, self.T, self.C
        used = t + 1 + int(self.pipelined) if early else B
        if pol is Policy.FULL:
            return Result(C, used, 0)
        if pol is Policy.RELU_END:
            return Result(0 if early or C < 0 else C, used, int(early or C < 0))
        if pol is Policy.SIGN_ONLY:
            return Result(-1 if early else (C > 0) - (C < 0), used, int(early or C != 0))
        mask = -(1 << (T - p))
        return Result(C & mask, used, int(p < T))

    def step(self, in_valid: bool, txn, out_ready: bool):
        """Advance one clock; return the pre-edge ``(i.ready, o.valid, o.payload)``."""
        B = self.act_bits
        i_ready = self.nx is None
        o_valid, o_payload = self.o_valid, self.o_payload
        stall = self.fin is not None and self.o_valid and not out_ready
        f = self.f
        fplane = self._plane(f["txn"], f["t"]) if f is not None else None
        X = self.s1 if self.pipelined else fplane
        early = done = False
        Cn = self.C
        if X is not None and not stall:
            pe = -X["pg"] if (X["first"] and self.signed_acts) else (X["pg"] if X["live"] else 0)
            Cn = (X["init"] if X["first"] else 2 * self.C) + pe + X["cin"]
            early = (not X["last"]) and X["pol"] in (Policy.RELU_END, Policy.SIGN_ONLY) \
                and Cn < X["J"]
            done = X["last"] or early
        f_last = f is not None and f["t"] == B - 1
        swap = self.nx is not None and not stall and (f is None or f_last or early)
        # ---- clock edge
        if not stall:
            # output register
            if self.fin is not None:
                self.o_valid, self.o_payload = True, self._finish(self.fin)
            elif self.o_valid and out_ready:
                self.o_valid, self.o_payload = False, None
            self.fin = (X["pol"], early, X["t"], X["p"]) if done else None
            if X is not None:
                self.C = Cn
            if self.pipelined:
                self.s1 = fplane if (fplane is not None and not early) else None
            if swap:
                self.f = {"txn": self.nx, "t": 0}
                self.nx = None
            elif f is not None:
                self.f = None if (f_last or early) else {"txn": f["txn"], "t": f["t"] + 1}
        elif self.o_valid and out_ready:   # pragma: no cover (stall implies not out_ready)
            self.o_valid = False
        if in_valid and i_ready:
            self.nx = self._prepare(txn)
        return i_ready, o_valid, o_payload


def random_txns(rng: np.random.Generator, n_lanes: int, count: int, *, act_bits: int = 8,
                signed_acts: bool = True, policies: Sequence = tuple(Policy),
                loose: float = 0.3) -> list[Txn]:
    """Random legal transactions for the testbenches: the corners of
    :func:`.mma.random_transactions` (bias lanes that flip the sign included), 30 % with
    ReLU-like (nonnegative, small) activations, ``wpos`` the exact positive-weight sum or,
    with probability ``loose``, any larger legal bound."""
    from .mma import act_range, random_transactions
    L = _check_lanes(n_lanes)
    out = []
    for mt in random_transactions(rng, L, count, act_bits=act_bits, signed_acts=signed_acts,
                                  n_bias_lanes=min(2, L - 1) if L > 2 else 0, gaps=False,
                                  policies=policies):
        x = [int(v) for v in mt.x]
        w = [int(v) for v in mt.w]
        if rng.random() < 0.3:
            _, hi = act_range(act_bits, signed_acts)
            x = [min(abs(v), hi) >> int(rng.integers(0, act_bits)) for v in x]
        wp = int(np.clip(w, 0, None).sum())
        if rng.random() < loose:
            wp = int(rng.integers(wp, (1 << wpos_bits(L))))
        out.append(Txn(tuple(x), tuple(w), _policy(mt.policy), int(mt.digits), wp))
    return out
