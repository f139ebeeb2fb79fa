"""Bias folding of the MMA unit: the bias as exact pseudo-products in ``NB`` extra lanes
(DEX style; see :mod:`.mma` for the specification).
"""
from __future__ import annotations

import numpy as np

from ...spec.arith import MAX_WEIGHT, act_range
from .mma_operands import plane_digits

__all__ = ["bias_range", "fold_bias", "fold_bias_array", "bias_plane_sums"]


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
