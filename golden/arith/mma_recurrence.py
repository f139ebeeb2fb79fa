"""The MMA digit recurrence, scalar form: the ``T`` digits of one transaction and what each
termination policy makes of them (the specification is :mod:`.mma`).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...spec.arith import MAX_WEIGHT, Policy, online_delay
from ...spec.arith import policy_code as _policy

__all__ = ["digit_stream", "apply_policy", "check_budget"]


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
    p = check_budget(p, T)
    return _prefix(digits, p, T), p, int(p < T)


def check_budget(p, T: int) -> int:
    """The TRUNCATE digit budget ``p`` as an int in ``[1, T]``; ValueError otherwise."""
    if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or not 1 <= p <= T:
        raise ValueError(f"TRUNCATE digit budget must be an integer in [1, {T}], not {p!r}")
    return int(p)
