"""Operands of the MMA unit: legal weights and activations, and the activation bit-planes
(MSB first) with their per-plane lane sums ``P_k`` (see :mod:`.mma` for the specification).
"""
from __future__ import annotations

import numpy as np

from ...spec.arith import MAX_WEIGHT, act_range

__all__ = ["check_weights", "weight_bounds", "check_acts", "plane_digits", "plane_sums"]


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


def weight_bounds(w) -> tuple[np.ndarray, np.ndarray]:
    """``(wpos, wneg)``: the sums of the positive and of the negative weights over the last
    axis (int64; ``w`` holds every lane of a dot product, bias lanes included). The tightest
    END bounds of a channel (``wpos`` of the ``msdf-v2`` unit, ``wpos``/``wneg`` of the conv
    engine's channel record). Plain numpy, no range check (:func:`check_weights`)."""
    a = np.asarray(w, dtype=np.int64)
    return np.clip(a, 0, None).sum(axis=-1), np.clip(a, None, 0).sum(axis=-1)


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
