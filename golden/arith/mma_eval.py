"""Vectorized evaluator of the MMA recurrence: a whole batch of plane sums at once, bit-exact
with the RTL (the arithmetic core of :mod:`msdf_unet.golden.hwexact`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...spec.arith import MAX_WEIGHT, Policy, online_delay
from ...spec.arith import policy_code as _policy
from .mma_operands import check_acts, check_weights, plane_sums
from .mma_recurrence import check_budget as _check_budget

__all__ = ["Result", "evaluate_planes", "evaluate"]


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
