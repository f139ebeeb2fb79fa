"""Testbench stimulus for the MMA unit: random legal transactions with the corners mixed in,
and a consumer's random ``o.ready``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from ...spec.arith import MAX_WEIGHT, Policy, act_range, stream_digits
from ...spec.arith import check_lanes as _check_lanes
from ...spec.arith import policy_code as _policy
from .mma_bias import bias_range, fold_bias
from .mma_cycles import Transaction

__all__ = ["random_transactions", "random_ready"]


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
