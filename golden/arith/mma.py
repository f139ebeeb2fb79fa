"""Golden model of the MMA (merged multiply-add) dot-product unit, exact to the bit and cycle.

This is the oracle of :class:`msdf_unet.hdl.arith.mma.MMADotProduct` and the arithmetic
core of the hardware-exact network model (``msdf_unet.golden.hwexact``). The facts the RTL shares
(:class:`Policy`, :func:`online_delay`, :func:`stream_digits`, the timing constants) are
declared once in :mod:`msdf_unet.spec.arith`; the specification is this docstring:

Dot product with bias ``S = sum_{i<N} x_i*w_i + b`` over ``L = N + NB`` lanes (the bias is
folded into ``NB`` pseudo-product lanes by :func:`fold_bias`). Activations are streamed one
bit-plane per input step, MSB first: step ``k`` uses digit ``d_{i,k}`` of ``x_i`` with
``x = sum_k d_k 2**(B-1-k)`` (:func:`plane_digits`; the signed top plane has ``d = -bit``).

Recurrence (integer form), one output digit per step ``t = 0 .. T-1``::

    P_t = sum_i d_{i,t} * w_i      (P_t = 0 for t >= B),   |P_t| <= L*127 < 2**Lb
    v_t = 2*R_{t-1} + P_t          (R_{-1} = 0)
    z_t = +1 if v_t >= 2**(F-1);  -1 if v_t < -2**(F-1);  0 otherwise
    R_t = v_t - z_t * 2**F

with ``Lb`` the smallest integer with ``2**Lb > L*127`` and ``F = Lb + 1``.

Proved bounds (and tested exhaustively / randomly in ``tests/golden/arith``):

* invariant ``-2**(F-1) <= R_t < 2**(F-1)``, so the residual fits ``signed(F)`` and
  ``v_t`` fits ``signed(F+2)``; the selection only looks at ``v_t >> (F-1)`` (3 bits);
* with ``Z_p = sum_{t<p} z_t 2**(T-1-t)`` (``T = B + F``), unrolling gives
  ``S - Z_p = R_{p-1} * 2**(B-p) + sum_{p<=k<B} P_k 2**(B-1-k)``, hence
  ``-2**(T-1-p) <= S - Z_p < 2**(T-1-p)`` once ``p >= B`` (no input left) and
  ``|S - Z_p| < 2**(T-p) - 2**(F-1)`` (so ``< 2**(T-p)``) while ``p < B``;
* ``R_{T-1}`` is a multiple of ``2**F`` inside ``[-2**(F-1), 2**(F-1))``, so it is 0 and
  ``Z_T = S`` exactly: ``T`` digits always suffice;
* the first nonzero digit ``z_j`` has the sign of ``S`` (``|S - Z_{j+1}| < 2**(T-1-j)`` and
  ``Z_{j+1} = z_j 2**(T-1-j)``), and all ``T`` digits are 0 iff ``S == 0``.

Online delay: the output stream carries ``F`` more integer digits than the input planes
(digit ``z_t`` has weight ``2**(T-1-t) = 2**F * 2**(B-1-t)``); digit ``t`` depends only on
planes ``0..t``. A transaction is ``T = B + F`` digits long.

Termination policies (:class:`Policy`): ``FULL`` all ``T`` digits, value ``S``;
``RELU_END`` stop after the first nonzero digit when it is ``-1`` (value 0), else value
``S``; ``SIGN_ONLY`` stop at the first nonzero digit, value its sign (0 when every digit is
0); ``TRUNCATE p`` ``p`` digits, value ``Z_p``. ``digits_used`` counts the digits emitted.
``terminated`` is 1 when the policy's stop fired: the negative sign was detected
(``RELU_END``), a nonzero digit was found (``SIGN_ONLY``), or ``p < T`` (``TRUNCATE``).
The early stop can fire on the last digit ``T-1`` (``digits_used == T``, ``terminated == 1``).

Timing of the RTL as built (see :class:`MMACycleModel` for the exact rules): a transaction
accepted on ``i`` at cycle ``h`` shows digit ``t`` on the digit port at cycle ``h + 2 + t``
and raises ``o.valid`` with its result at ``h + 1 + digits_used``. Back-to-back
transactions follow without an idle digit cycle, except one bubble after an early stop.

Entry points: :func:`fold_bias`, :func:`bias_plane_sums`, :func:`plane_digits`,
:func:`plane_sums`, :func:`digit_stream` (scalar recurrence), :func:`evaluate_planes`
(vectorized, the one the network model calls), :func:`evaluate`, :func:`transaction`
(single transaction on an idle unit, with cycles) and :class:`MMACycleModel` (many
transactions with input gaps and output backpressure).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ...spec.arith import (LATENCY_TO_DIGIT0, MAX_WEIGHT, RESULT_DEPTH, Policy, act_range,
                           online_delay, stream_digits)
from ...spec.arith import check_act_bits as _check_act_bits
from ...spec.arith import check_lanes as _check_lanes
from ...spec.arith import policy_code as _policy

__all__ = [
    "Policy", "MAX_WEIGHT", "online_delay", "stream_digits", "act_range", "check_weights",
    "check_acts", "fold_bias", "fold_bias_array", "bias_range", "bias_plane_sums", "plane_digits", "plane_sums",
    "digit_stream", "apply_policy", "Result", "evaluate_planes", "evaluate", "Transaction",
    "TxnTrace", "CycleTrace", "MMACycleModel", "transaction", "random_transactions", "random_ready", "LATENCY_TO_DIGIT0", "RESULT_DEPTH",
]


def check_weights(w) -> np.ndarray:
    """``w`` as int64 array; ValueError when any weight is outside [-127, 127]."""
    a = np.asarray(w)
    if a.dtype.kind not in "iub":
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError("weights must be integers")
    a = a.astype(np.int64)
    if a.size and (a.min() < -MAX_WEIGHT or a.max() > MAX_WEIGHT):
        bad = a[(a < -MAX_WEIGHT) | (a > MAX_WEIGHT)].flat[0]
        raise ValueError(f"weight {int(bad)} outside [-{MAX_WEIGHT}, {MAX_WEIGHT}] "
                         "(symmetric INT8; -128 is not a legal MMA weight)")
    return a


def check_acts(x, act_bits: int = 8, signed_acts: bool = True) -> np.ndarray:
    """``x`` as int64 array; ValueError when any activation is out of range."""
    lo, hi = act_range(act_bits, signed_acts)
    a = np.asarray(x)
    if a.dtype.kind not in "iub":
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError("activations must be integers")
    a = a.astype(np.int64)
    if a.size and (a.min() < lo or a.max() > hi):
        bad = a[(a < lo) | (a > hi)].flat[0]
        raise ValueError(f"activation {int(bad)} outside [{lo}, {hi}] "
                         f"({'signed' if signed_acts else 'unsigned'} {act_bits}-bit)")
    return a


# --- bias folding --------------------------------------------------------------------------

def _max_term(act_bits: int, signed_acts: bool) -> tuple[int, int]:
    """(x, |w|*|x|) of the largest-magnitude legal product (x >= 0 magnitude form)."""
    lo, hi = act_range(act_bits, signed_acts)
    xmag = max(-lo, hi)
    return xmag, MAX_WEIGHT * xmag


def bias_range(n_bias_lanes: int, act_bits: int = 8, signed_acts: bool = True) -> tuple[int, int]:
    """``(guaranteed, hard)``: every ``|b| <= guaranteed`` folds into ``n_bias_lanes`` lanes
    with :func:`fold_bias`; no ``|b| > hard`` can fold into that many lanes at all."""
    _, mterm = _max_term(act_bits, signed_acts)
    if n_bias_lanes <= 0:
        return 0, 0
    if n_bias_lanes == 1:
        return MAX_WEIGHT, mterm
    return (n_bias_lanes - 1) * mterm - 1, n_bias_lanes * mterm


def fold_bias(b: int, n_bias_lanes: int, act_bits: int = 8, *, signed_acts: bool = True
              ) -> tuple[list[int], list[int]]:
    """Fold the bias ``b`` exactly into ``n_bias_lanes`` pseudo-products (DEX bias folding).

    Greedy: ``k = |b| // M1`` whole terms of the largest magnitude ``M1 = 127 * max|x|``
    (``w = -127, x = -128`` for +16256 in signed 8-bit mode, ``w = +127, x = 255`` in
    unsigned mode; signs mirrored for negative ``b``), then the rest ``r0`` (``|r0| < M1``)
    as ``(s*127, |r0| // 127) + (s*(|r0| % 127), 1)`` with ``s = sign(r0)``; zero terms are
    dropped (fewer lanes when possible) and unused lanes are ``(0, 0)``.

    Returns
    -------
    (weights, acts) : two lists of ``n_bias_lanes`` ints with ``sum(w*x) == b``, every
        ``w`` in [-127, 127] and every ``x`` a legal activation of the mode.

    Raises
    ------
    ValueError
        When the greedy folding needs more than ``n_bias_lanes`` lanes; the message names
        ``b`` and the representable range (:func:`bias_range`).
    """
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
        raise TypeError(f"bias must be an integer, not {b!r}")
    if isinstance(n_bias_lanes, bool) or not isinstance(n_bias_lanes, (int, np.integer)) or n_bias_lanes < 0:
        raise ValueError(f"n_bias_lanes must be a non-negative integer, not {n_bias_lanes!r}")
    b = int(b)
    xmag, mterm = _max_term(act_bits, signed_acts)
    lo, hi = act_range(act_bits, signed_acts)
    s = 1 if b >= 0 else -1
    terms: list[tuple[int, int]] = []
    k, r0 = divmod(abs(b), mterm)
    # a whole term of sign s: weight*act = s*mterm with a legal act of magnitude xmag
    xw = -xmag if lo < 0 and -xmag >= lo and xmag > hi else xmag
    terms += [(s * MAX_WEIGHT * (1 if xw > 0 else -1), xw)] * k
    q, r = divmod(r0, MAX_WEIGHT)
    if q:
        terms.append((s * MAX_WEIGHT, q))
    if r:
        terms.append((s * r, 1))
    if len(terms) > n_bias_lanes:
        g, h = bias_range(n_bias_lanes, act_bits, signed_acts)
        raise ValueError(
            f"bias {b} does not fit in {n_bias_lanes} bias lanes (greedy folding needs "
            f"{len(terms)}); with {n_bias_lanes} lanes every |b| <= {g} folds, and no |b| > {h} can")
    terms += [(0, 0)] * (n_bias_lanes - len(terms))
    ws = [t[0] for t in terms]
    xs = [t[1] for t in terms]
    assert sum(wi * xi for wi, xi in zip(ws, xs)) == b
    assert all(-MAX_WEIGHT <= wi <= MAX_WEIGHT for wi in ws) and all(lo <= xi <= hi for xi in xs)
    return ws, xs


def fold_bias_array(b, n_bias_lanes: int, act_bits: int = 8, *, signed_acts: bool = True
                    ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`fold_bias` for an integer array ``b`` at once: ``(W, X)`` int64 of shape
    ``(*b.shape, n_bias_lanes)``, lane for lane identical to :func:`fold_bias`.

    Raises ValueError (naming the first bias that does not fit) like :func:`fold_bias`.
    """
    barr = np.asarray(b)
    if barr.dtype.kind not in "iu":
        raise TypeError(f"biases must be an integer array, not {barr.dtype}")
    barr = barr.astype(np.int64)
    nb = int(n_bias_lanes)
    if nb < 0:
        raise ValueError(f"n_bias_lanes must be a non-negative integer, not {n_bias_lanes!r}")
    xmag, mterm = _max_term(act_bits, signed_acts)
    lo, hi = act_range(act_bits, signed_acts)
    s = np.where(barr >= 0, 1, -1)
    k, r0 = np.divmod(np.abs(barr), mterm)
    q, r = np.divmod(r0, MAX_WEIGHT)
    need = k + (q != 0) + (r != 0)
    if need.size and need.max() > nb:
        bad = int(barr.reshape(-1)[np.argmax(need.reshape(-1) > nb)])
        fold_bias(bad, nb, act_bits, signed_acts=signed_acts)   # raises with the message
    xw = -xmag if xmag > hi else xmag
    ww = MAX_WEIGHT * (1 if xw > 0 else -1)
    lane = np.arange(nb)
    kk = k[..., None]
    W = np.zeros((*barr.shape, nb), dtype=np.int64)
    X = np.zeros((*barr.shape, nb), dtype=np.int64)
    whole = lane < kk
    W = np.where(whole, s[..., None] * ww, W)
    X = np.where(whole, xw, X)
    at_q = (lane == kk) & (q[..., None] != 0)
    W = np.where(at_q, s[..., None] * MAX_WEIGHT, W)
    X = np.where(at_q, q[..., None], X)
    at_r = (lane == kk + (q[..., None] != 0)) & (r[..., None] != 0)
    W = np.where(at_r, s[..., None] * r[..., None], W)
    X = np.where(at_r, 1, X)
    return W, X


def bias_plane_sums(b, n_bias_lanes: int, act_bits: int = 8, *, signed_acts: bool = True) -> np.ndarray:
    """Per-plane contribution of the folded bias lanes: shape ``(B, *np.shape(b))`` int64.

    ``bias_plane_sums(b)[k]`` is what the bias lanes add to ``P_k``; the network model adds
    it to the per-plane conv sums of the data lanes (one bias per output channel).
    """
    W, X = fold_bias_array(np.asarray(b, dtype=np.int64), n_bias_lanes, act_bits,
                           signed_acts=signed_acts)
    d = plane_digits(X, act_bits, signed_acts).astype(np.int64)   # (B, *b.shape, NB)
    return np.sum(d * W[None], axis=-1)


# --- activation planes and lane sums ---------------------------------------------------------

def plane_digits(x, act_bits: int = 8, signed_acts: bool = True) -> np.ndarray:
    """Digits ``d_k`` (MSB plane first) of activations: int8 array ``(B, *x.shape)``.

    ``x == sum_k d_k * 2**(B-1-k)``; signed mode: ``d_0 = -bit_{B-1}`` (two's complement
    sign plane), every other ``d_k = bit_{B-1-k}``.
    """
    a = check_acts(x, act_bits, signed_acts)
    u = a & ((1 << act_bits) - 1)
    d = np.stack([(u >> (act_bits - 1 - k)) & 1 for k in range(act_bits)]).astype(np.int8)
    if signed_acts:
        d[0] = -d[0]
    return d


def plane_sums(x, w, act_bits: int = 8, signed_acts: bool = True) -> np.ndarray:
    """Per-plane lane sums ``P_k = sum_i d_{i,k} w_i``: ``x, w`` shape ``(..., L)`` ->
    int64 ``(B, ...)``."""
    wa = check_weights(w)
    d = plane_digits(x, act_bits, signed_acts).astype(np.int64)
    return np.sum(d * wa[None], axis=-1)


# --- the recurrence ------------------------------------------------------------------------

def digit_stream(P: Sequence[int], n_lanes: int) -> list[int]:
    """The ``T`` digits of the recurrence for the ``B`` plane sums ``P`` (Python ints)."""
    F = online_delay(n_lanes)
    B = len(P)
    T = B + F
    half, full = 1 << (F - 1), 1 << F
    bound = n_lanes * MAX_WEIGHT
    R = 0
    out = []
    for t in range(T):
        p = int(P[t]) if t < B else 0
        if abs(p) > bound:
            raise ValueError(f"plane sum P_{t} = {p} exceeds n_lanes*127 = {bound}")
        v = 2 * R + p
        z = 1 if v >= half else (-1 if v < -half else 0)
        R = v - z * full
        assert -half <= R < half
        out.append(z)
    assert R == 0
    return out


def _prefix(digits: Sequence[int], p: int, T: int) -> int:
    return sum(z << (T - 1 - t) for t, z in enumerate(digits[:p]))


def apply_policy(digits: Sequence[int], policy, p: int | None = None) -> tuple[int, int, int]:
    """``(value, digits_used, terminated)`` of a full ``T``-digit stream under ``policy``."""
    pol = _policy(policy)
    T = len(digits)
    nz = [t for t, z in enumerate(digits) if z]
    if pol is Policy.FULL:
        return _prefix(digits, T, T), T, 0
    if pol is Policy.RELU_END:
        if nz and digits[nz[0]] < 0:
            return 0, nz[0] + 1, 1
        return _prefix(digits, T, T), T, 0
    if pol is Policy.SIGN_ONLY:
        if nz:
            return digits[nz[0]], nz[0] + 1, 1
        return 0, T, 0
    p = _check_budget(p, T)
    return _prefix(digits, p, T), p, int(p < T)


def _check_budget(p, T: int) -> int:
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= T:
        raise ValueError(f"TRUNCATE digit budget must be an integer in [1, {T}], not {p!r}")
    return int(p)


# --- vectorized evaluator --------------------------------------------------------------------

@dataclass
class Result:
    """Outcome of :func:`evaluate_planes` for a batch (arrays of the batch shape).

    ``values`` int64, ``digits_used`` int64, ``terminated`` int8 (0/1),
    ``first_nonzero_index`` int64 (-1 when every digit is 0, i.e. ``S == 0``), ``digits``
    int8 ``(T, *batch)`` with all ``T`` digits of the recurrence (only the first
    ``digits_used`` are emitted by the unit) or ``None`` unless requested.
    """
    values: np.ndarray
    digits_used: np.ndarray
    terminated: np.ndarray
    first_nonzero_index: np.ndarray
    digits: np.ndarray | None = None


def evaluate_planes(P: np.ndarray, n_lanes: int, policy, digits: int | None = None, *,
                    return_digits: bool = False, check: bool = True) -> Result:
    """Run the MMA recurrence on plane sums of a whole batch; bit-exact with the RTL.

    Parameters
    ----------
    P : integer array ``(B, *batch)``
        ``P[k]`` = sum over every lane (data and bias lanes) of ``d_{i,k} * w_i`` for plane
        ``k`` (MSB plane first). ``B`` is the activation width. For a conv layer:
        ``P[k] = conv2d(plane_k(x), w) + bias_plane_sums(b)[k]``.
    n_lanes : int
        ``L``, lanes of the unit including bias lanes; fixes ``F`` and ``T = B + F``.
    policy : :class:`Policy` (or its int code / name, or ``iface.Policy``)
    digits : int, only for ``TRUNCATE``: the digit budget ``p`` in ``[1, T]``.
    return_digits : also return the ``(T, *batch)`` digit array.
    check : raise ValueError when some ``|P_k| > n_lanes*127`` (the recurrence bound).

    Returns
    -------
    :class:`Result`; ``values`` follow the policy (``S`` for ``FULL``).

    Notes
    -----
    ``n_lanes`` is the lane count of the unit that computes the value (data lanes, bias
    lanes and any zero padding lanes): it fixes ``F``, hence ``T``, the digit indices and
    ``digits_used``; the values of FULL/RELU_END/SIGN_ONLY do not depend on it.

    Example, one conv layer (NCHW, signed INT8, ``NB`` bias lanes)::

        d = plane_digits(x)                                  # (B, N, Cin, H, W) int8
        P = np.stack([conv2d(d[k], w) for k in range(B)])    # exact integer conv per plane
        P += bias_plane_sums(b, NB)[:, None, :, None, None]  # b: (Cout,)
        r = evaluate_planes(P, Cin * Kh * Kw + NB, "RELU_END")
    """
    pol = _policy(policy)
    P = np.asarray(P)
    if P.ndim < 1:
        raise ValueError("P must have the plane axis first: shape (B, *batch)")
    if P.dtype.kind == "f":
        if not np.all(np.equal(np.mod(P, 1), 0)):
            raise ValueError("plane sums must be integer valued")
    P = P.astype(np.int64)
    B = P.shape[0]
    F = online_delay(n_lanes)
    T = B + F
    if check and P.size and np.abs(P).max() > n_lanes * MAX_WEIGHT:
        raise ValueError(f"max |P_k| = {int(np.abs(P).max())} exceeds n_lanes*127 = "
                         f"{n_lanes * MAX_WEIGHT}: wrong n_lanes or illegal weights")
    if pol is Policy.TRUNCATE:
        p = _check_budget(digits, T)
    else:
        p = T
    batch = P.shape[1:]
    half, full = 1 << (F - 1), 1 << F
    R = np.zeros(batch, dtype=np.int64)
    Z = np.zeros(batch, dtype=np.int64)       # Horner value of the digits so far
    Zp = None
    first = np.full(batch, -1, dtype=np.int64)
    first_sign = np.zeros(batch, dtype=np.int64)
    zs = np.empty((T, *batch), dtype=np.int8) if return_digits else None
    for t in range(T):
        v = 2 * R + P[t] if t < B else 2 * R
        z = (v >= half).astype(np.int64) - (v < -half).astype(np.int64)
        R = v - z * full
        Z = 2 * Z + z
        new = (first < 0) & (z != 0)
        first[new] = t
        first_sign[new] = z[new]
        if zs is not None:
            zs[t] = z
        if t == p - 1:
            Zp = Z << (T - p)
    if check:
        assert not np.any(R), "recurrence did not converge; is n_lanes right?"
    S = Z
    nzf = first >= 0
    if pol is Policy.FULL:
        values, used, term = S, np.full(batch, T, np.int64), np.zeros(batch, np.int8)
    elif pol is Policy.RELU_END:
        neg = nzf & (first_sign < 0)
        values = np.where(neg, 0, S)
        used = np.where(neg, first + 1, T)
        term = neg.astype(np.int8)
    elif pol is Policy.SIGN_ONLY:
        values = first_sign.copy()
        used = np.where(nzf, first + 1, T)
        term = nzf.astype(np.int8)
    else:
        values = Zp
        used = np.full(batch, p, np.int64)
        term = np.full(batch, int(p < T), np.int8)
    return Result(np.asarray(values, np.int64), np.asarray(used, np.int64), np.asarray(term, np.int8),
                  first, zs)


def evaluate(x, w, policy="FULL", digits: int | None = None, *, act_bits: int = 8,
             signed_acts: bool = True, return_digits: bool = False) -> Result:
    """:func:`evaluate_planes` on activations/weights ``x, w`` of shape ``(..., L)``
    (bias lanes included as ordinary lanes)."""
    wa = check_weights(w)
    xa = check_acts(x, act_bits, signed_acts)
    xa, wa = np.broadcast_arrays(xa, wa)
    P = plane_sums(xa, wa, act_bits, signed_acts)
    return evaluate_planes(P, xa.shape[-1], policy, digits, return_digits=return_digits)


# --- cycle-exact model of the RTL -------------------------------------------------------------

@dataclass
class Transaction:
    """One dot product offered on ``i``: lanes ``x``, ``w`` (bias lanes included)."""
    x: Sequence[int]
    w: Sequence[int]
    policy: Policy | int | str = Policy.FULL
    digits: int = 0
    #: idle cycles between the previous handshake (or cycle 0) and raising ``i.valid``
    gap: int = 0


@dataclass
class TxnTrace:
    """What the unit did with one transaction (cycles count from 0 after reset)."""
    accept_cycle: int = -1               # i.valid & i.ready
    digits: list = field(default_factory=list)   # (cycle, index, digit) on the digit port
    value: int | None = None
    digits_used: int | None = None
    terminated: int | None = None
    result_cycle: int = -1               # first cycle the result is in the o FIFO
    pop_cycle: int = -1                  # o.valid & o.ready


@dataclass
class CycleTrace:
    """Trace of :meth:`MMACycleModel.run`: one :class:`TxnTrace` per transaction and the
    digit port per cycle (``port[c] = (digit, index, first, last)`` when valid)."""
    txns: list
    port: dict
    cycles: int


class MMACycleModel:
    """Cycle-by-cycle model of the RTL :class:`~msdf_unet.hdl.arith.mma.MMADotProduct`.

    Registers mirrored (names as in the RTL):

    * feeder: ``active``, the shifting activations, ``step``, ``last`` (``T-1`` or
      ``p-1`` for a legal TRUNCATE budget, else ``T-1``); at the handshake cycle the
      feeder forms step 0 straight from ``i.payload``, later steps from its registers;
    * stage 1 (``s1``): the registered group sums of one step plus tags;
    * stage 2: the recurrence on ``s1`` (``R``), the prefix value, the digit port
      registers, ``flush``/``abort`` after an early stop, the result FIFO (depth
      :data:`RESULT_DEPTH`) and
      ``count`` = accepted transactions whose result was not popped.

    Rules per cycle: ``i.ready = (~active | flush) & (count < RESULT_DEPTH)`` where
    ``active`` is cleared after the feeder formed the ``last`` step and ``flush`` (one
    cycle after stage 2 stopped a transaction before its planned last digit) drops the
    stale ``s1`` step and stops the feeder if it is still active on that transaction.
    ``o.valid`` = FIFO not empty.
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True):
        self.n_lanes = _check_lanes(n_lanes)
        self.act_bits = _check_act_bits(act_bits)
        self.signed_acts = bool(signed_acts)
        self.F = online_delay(n_lanes)
        self.T = self.act_bits + self.F

    def _prepare(self, txn: Transaction):
        if len(txn.x) != self.n_lanes or len(txn.w) != self.n_lanes:
            raise ValueError(f"transaction needs {self.n_lanes} lanes, got x:{len(txn.x)} w:{len(txn.w)}")
        pol = _policy(txn.policy)
        P = plane_sums(np.asarray(txn.x), np.asarray(txn.w), self.act_bits, self.signed_acts)
        if pol is Policy.TRUNCATE:
            last = _check_budget(txn.digits, self.T) - 1
        else:
            last = self.T - 1
        return [int(p) for p in P] + [0] * self.F, pol, last

    def run(self, txns: Sequence[Transaction], o_ready: Callable[[int], bool] | Sequence[bool] | None = None,
            max_cycles: int | None = None) -> CycleTrace:
        """Simulate until every transaction's result was popped from ``o``.

        ``o_ready(cycle)`` (or a sequence, True past its end; default always True) is the
        consumer's ``o.ready``. Transaction ``j`` raises ``i.valid`` ``txns[j].gap`` cycles
        after the handshake of transaction ``j-1`` (+1), or at cycle ``gap`` for ``j = 0``.
        """
        if o_ready is None:
            ready = lambda c: True  # noqa: E731
        elif callable(o_ready):
            ready = o_ready
        else:
            seq = list(o_ready)
            ready = lambda c: bool(seq[c]) if c < len(seq) else True  # noqa: E731
        prep = [self._prepare(t) for t in txns]
        T, F = self.T, self.F
        half, full = 1 << (F - 1), 1 << F
        traces = [TxnTrace() for _ in txns]
        port = {}
        nxt = 0                    # next transaction to offer
        offer_at = txns[0].gap if txns else 0
        # feeder registers
        active = False
        f_txn = f_step = f_last = 0
        # stage 1 register: None or (txn, step, last, P)
        s1 = None
        # stage 2 registers
        R = 0
        Z = 0
        seen = False
        flush = False
        abort = False
        port_reg = None
        fifo: list = []
        count = 0
        popped = 0
        limit = max_cycles if max_cycles is not None else 64 + sum(t.gap + 4 * T for t in txns)
        c = 0
        while popped < len(txns):
            if c > limit:
                raise RuntimeError(f"cycle model did not finish within {limit} cycles")
            # ---- combinational
            if port_reg is not None:
                port[c] = port_reg
            o_valid = bool(fifo)
            o_pop = o_valid and ready(c)
            if o_pop:
                j = fifo[0][0]
                traces[j].pop_cycle = c
            f_abort = abort and active
            i_ready = (not active or f_abort) and count < RESULT_DEPTH
            i_valid = nxt < len(txns) and c >= offer_at
            hs = i_valid and i_ready
            # feeder output this cycle
            s1_next = None
            n_active, n_txn, n_step, n_last = active, f_txn, f_step, f_last
            if hs:
                j = nxt
                traces[j].accept_cycle = c
                Pj, pol, last = prep[j]
                s1_next = (j, 0, last == 0, Pj[0])
                n_active, n_txn, n_step, n_last = last != 0, j, 1, last
                nxt += 1
                if nxt < len(txns):
                    offer_at = c + 1 + txns[nxt].gap
            elif active and not f_abort:
                Pj = prep[f_txn][0]
                s1_next = (f_txn, f_step, f_step == f_last, Pj[f_step])
                n_step = f_step + 1
                n_active = f_step != f_last
            elif f_abort:
                n_active = False
            # stage 2 on s1 (dropped in a flush cycle)
            n_port = None
            n_flush = n_abort = False
            if s1 is not None and not flush:
                j, t, is_last, p = s1
                pol = prep[j][1]
                first = t == 0
                Rp, Zp, seenp = (0, 0, False) if first else (R, Z, seen)
                v = 2 * Rp + p
                z = 1 if v >= half else (-1 if v < -half else 0)
                R = v - z * full
                assert -half <= R < half
                Z = Zp + z * (1 << (T - 1 - t))
                if pol is Policy.RELU_END:
                    early = not seenp and z < 0
                elif pol is Policy.SIGN_ONLY:
                    early = z != 0
                else:
                    early = False
                seen = seenp or z != 0
                stop = is_last or early
                n_port = (z, t, first, stop)
                traces[j].digits.append((c + 1, t, z))
                if stop:
                    if pol is Policy.RELU_END and early:
                        val = 0
                    elif pol is Policy.SIGN_ONLY:
                        val = z
                    else:
                        val = Z
                    term = int(early or (pol is Policy.TRUNCATE and t < T - 1))
                    tr = traces[j]
                    tr.value, tr.digits_used, tr.terminated, tr.result_cycle = val, t + 1, term, c + 1
                    fifo.append((j,))
                    assert len(fifo) - int(o_pop) <= RESULT_DEPTH, "result FIFO overflow"
                    if not is_last:
                        # the feeder formed step t+1 of this transaction this cycle; if that
                        # was not its last step it is still active on it next cycle
                        n_flush = n_abort = True
            # ---- clock edge
            if o_pop:
                fifo.pop(0)
                popped += 1
            count += int(hs) - int(o_pop)
            s1 = s1_next
            active, f_txn, f_step, f_last = n_active, n_txn, n_step, n_last
            flush, abort = n_flush, n_abort
            port_reg = n_port
            c += 1
        return CycleTrace(traces, port, c)


def random_transactions(rng: np.random.Generator, n_lanes: int, count: int, *, act_bits: int = 8,
                        signed_acts: bool = True, n_bias_lanes: int = 0, gaps: bool = True,
                        policies: Sequence = tuple(Policy)) -> list[Transaction]:
    """Random legal transactions with the corners mixed in (for the RTL testbenches).

    Kinds: extreme activations (all -128, or all 2**B-1 unsigned) with +-127 weights, all
    zero activations, all-equal +-127 weights, sparse activations, uniform. The last
    ``n_bias_lanes`` lanes hold a folded bias, half of the time one that cancels the data
    sum to within +-3 (so the bias flips the sign). Budgets favour 1, 2, B, T-1, T. Gaps of
    0..3 idle cycles on 30 % of the transactions when ``gaps``.
    """
    lo, hi = act_range(act_bits, signed_acts)
    L = _check_lanes(n_lanes)
    T = stream_digits(L, act_bits)
    nb = n_bias_lanes
    txns = []
    for _ in range(count):
        kind = rng.integers(6)
        x = rng.integers(lo, hi + 1, L)
        w = rng.integers(-MAX_WEIGHT, MAX_WEIGHT + 1, L)
        if kind == 0:
            x[:] = lo if signed_acts else hi
            w[:] = rng.choice([-MAX_WEIGHT, MAX_WEIGHT], L)
        elif kind == 1:
            x[:] = 0
        elif kind == 2:
            w[:] = MAX_WEIGHT * rng.choice([-1, 1])
        elif kind == 3:
            x = x * (rng.random(L) < 0.2)
        if nb:
            S = int(np.dot(x[:L - nb], w[:L - nb]))
            g = bias_range(nb, act_bits, signed_acts)[0]
            if rng.random() < 0.5:
                b = int(np.clip(-S + rng.integers(-3, 4), -g, g))
            else:
                b = int(rng.integers(-g, g + 1))
            ws, xs = fold_bias(b, nb, act_bits, signed_acts=signed_acts)
            x[L - nb:], w[L - nb:] = xs, ws
        pol = Policy(int(rng.choice([int(_policy(p)) for p in policies])))
        p = int(rng.choice([1, 2, act_bits, T - 1, T, int(rng.integers(1, T + 1))]))
        gap = int(rng.integers(0, 4)) if gaps and rng.random() < 0.3 else 0
        txns.append(Transaction(x.tolist(), w.tolist(), pol, p, gap))
    return txns


def random_ready(rng: np.random.Generator, cycles: int) -> list[bool]:
    """A consumer's ``o.ready`` per cycle: random ready ratios and stretches of
    backpressure up to 40 cycles (long enough to fill the result FIFO)."""
    out: list[bool] = []
    while len(out) < cycles:
        if rng.random() < 0.3:
            out += [False] * int(rng.integers(1, 40))
        out += (rng.random(int(rng.integers(1, 60))) < rng.choice([0.3, 0.8, 1.0])).tolist()
    return out[:cycles]


def transaction(x, w, policy="FULL", digits: int = 0, *, act_bits: int = 8,
                signed_acts: bool = True) -> TxnTrace:
    """One transaction on an idle unit with ``o.ready`` high: digits with their cycles
    (relative to the handshake at cycle 0), value, digits_used, terminated."""
    m = MMACycleModel(n_lanes=len(x), act_bits=act_bits, signed_acts=signed_acts)
    return m.run([Transaction(list(x), list(w), policy, digits)]).txns[0]
