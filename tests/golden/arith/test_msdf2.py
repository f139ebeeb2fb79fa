"""Golden MSDF v2 model: values against exact integers and the MMA's policy values, the
TRUNCATE closed form against the MMA digit recurrence, the END decision's exactness, and
the cycle model's timing rules."""
import numpy as np
import pytest

from msdf_unet.golden.arith import baselines as g
from msdf_unet.golden.arith import mma
from msdf_unet.golden.arith import msdf2
from msdf_unet.golden.arith.mma import Policy

N_SWEEP = [1, 9, 16, 36, 144, 576, 1152]


def _operands(rng, batch, L, signed, B=8):
    lo, hi = mma.act_range(B, signed)
    x = rng.integers(lo, hi + 1, (batch, L))
    w = rng.integers(-127, 128, (batch, L))
    # corners: extremes, zeros, ReLU-like (nonnegative, small) activations, sparse weights
    x[0], w[0] = lo if signed else hi, 127
    x[1], w[1] = lo if signed else hi, -127
    x[2] = 0
    x[3:batch // 2] = np.minimum(np.abs(x[3:batch // 2]), hi) // rng.integers(1, 64, (batch // 2 - 3, 1))
    w[batch // 2:] *= rng.random((batch - batch // 2, L)) < 0.3
    return x, w


def _check_sweep(L, signed, batch, seed):
    rng = np.random.default_rng(seed)
    x, w = _operands(rng, batch, L, signed)
    S = np.einsum("bl,bl->b", x, w)
    T = mma.stream_digits(L)
    for pol in Policy:
        budgets = [1, 2, 7, 8, 9, T - 1, T] if pol is Policy.TRUNCATE else [None]
        for p in budgets:
            for pipelined in (True, False):
                r = msdf2.evaluate(x, w, pol, p, pipelined=pipelined, signed_acts=signed)
                ref = mma.evaluate(x, w, pol, p, signed_acts=signed)
                assert np.array_equal(r.values, ref.values), (pol, p)
                assert np.array_equal(r.terminated, ref.terminated), (pol, p)
                if pol is Policy.FULL:
                    assert np.array_equal(r.values, S)
                elif pol is Policy.RELU_END:
                    assert np.array_equal(r.values, np.maximum(S, 0))
                elif pol is Policy.SIGN_ONLY:
                    assert np.array_equal(r.values, np.sign(S))
                assert np.all((r.digits_used >= 1) & (r.digits_used <= 8))
                if pol not in (Policy.RELU_END, Policy.SIGN_ONLY):
                    assert np.all(r.digits_used == 8)


@pytest.mark.parametrize("L", [n for n in N_SWEEP if n <= 144])
@pytest.mark.parametrize("signed", [True, False])
def test_exact_sweep(L, signed):
    _check_sweep(L, signed, 400, L * 2 + signed)


@pytest.mark.slow
@pytest.mark.parametrize("L", [576, 1152])
@pytest.mark.parametrize("signed", [True, False])
def test_exact_sweep_large(L, signed):
    _check_sweep(L, signed, 2000, L * 2 + signed)


def test_truncate_closed_form_equals_mma_prefix_exhaustive_small():
    """Z_p = floor((A_{p-1} + 2**(F-1)) / 2**F) * 2**(T-p) for every 2-lane 4-bit input."""
    B = 4
    xs = np.arange(-8, 8)
    ws = np.array([-127, -64, -1, 0, 1, 3, 100, 127])
    X = np.array(np.meshgrid(xs, xs, ws, ws)).reshape(4, -1).T
    x, w = X[:, :2], X[:, 2:]
    T = mma.stream_digits(2, B)
    for p in range(1, T + 1):
        ref = mma.evaluate(x, w, "TRUNCATE", p, act_bits=B)
        got = msdf2.evaluate(x, w, "TRUNCATE", p, act_bits=B)
        assert np.array_equal(got.values, ref.values), p
        P = mma.plane_sums(x, w, B)
        A = np.zeros(len(x), np.int64)
        for t in range(min(p, B)):
            A = 2 * A + P[t]
        A = A << max(0, p - B)
        assert np.array_equal(msdf2.truncate_value(A, p, 2, B), ref.values)


def test_end_decision_tight_and_loose_bounds():
    """A looser wpos only delays the stop; the values never change."""
    rng = np.random.default_rng(3)
    x, w = _operands(rng, 500, 36, True)
    exact = msdf2.positive_weight_sum(w)
    tight = msdf2.evaluate(x, w, "RELU_END")
    loose = msdf2.evaluate(x, w, "RELU_END", wpos=np.minimum(exact * 2 + 5, 36 * 127))
    assert np.array_equal(tight.values, loose.values)
    assert np.all(tight.digits_used <= loose.digits_used)
    assert (tight.stop_plane >= 0).sum() > 0
    with pytest.raises(ValueError, match="wpos"):
        msdf2.evaluate(x, w, "RELU_END", wpos=exact - 1)


def _sim(model, txns, vp, rp):
    return g.simulate(model, txns, vp, rp)


def _txns(rng, L, n, signed=True, B=8, policies=tuple(Policy)):
    T = mma.stream_digits(L, B)
    x, w = _operands(rng, max(n, 8), L, signed, B)
    out = []
    for k in range(n):
        pol = Policy(int(rng.choice([int(p) for p in policies])))
        p = int(rng.choice([1, 2, B, T - 1, T, int(rng.integers(1, T + 1))]))
        wp = int(np.clip(w[k], 0, None).sum())
        if rng.random() < 0.3:
            wp = int(rng.integers(wp, L * 127 + 1))
        out.append(msdf2.Txn(tuple(int(v) for v in x[k]), tuple(int(v) for v in w[k]), pol, p, wp))
    return out


@pytest.mark.parametrize("pipelined", [True, False])
def test_cycle_model_back_to_back_takes_digits_used_cycles(pipelined):
    rng = np.random.default_rng(11)
    L, B = 9, 8
    txns = _txns(rng, L, 60, policies=(Policy.RELU_END, Policy.SIGN_ONLY, Policy.FULL))
    model = msdf2.MSDF2CycleModel(n_lanes=L, pipelined=pipelined)
    horizon = 60 * 12 + 40
    acc, outs = _sim(model, txns, [1] * horizon, [1] * horizon)
    assert len(outs) == len(txns)
    used = [r.digits_used for _, r in outs]
    # interval between accepts = plane cycles of the transaction then in the feeder
    assert [b - a for a, b in zip(acc[1:], acc[2:])] == [max(u, 2) for u in used[:-2]]
    for (c, r), t in zip(outs, txns):
        ref = msdf2.evaluate(np.array(t.x), np.array(t.w), t.policy, t.digits, wpos=t.wpos,
                             pipelined=pipelined)
        assert (r.value, r.digits_used, r.terminated) == (int(ref.values), int(ref.digits_used),
                                                          int(ref.terminated))
    # latency of the first transaction on an idle unit
    assert outs[0][0] == acc[0] + msdf2.latency_cycles(B, pipelined)


def test_cycle_model_with_stalls_keeps_values():
    rng = np.random.default_rng(5)
    L = 5
    txns = _txns(rng, L, 80)
    model = msdf2.MSDF2CycleModel(n_lanes=L)
    horizon = 80 * 40
    vp = [rng.random() < 0.5 for _ in range(horizon)]
    rp = [rng.random() < 0.4 for _ in range(horizon)]
    _, outs = _sim(model, txns, vp, rp)
    assert len(outs) == len(txns)
    for (_, r), t in zip(outs, txns):
        ref = mma.evaluate(np.array(t.x), np.array(t.w), t.policy, t.digits)
        assert r.value == int(ref.values) and r.terminated == int(ref.terminated)


def test_bad_inputs():
    with pytest.raises(ValueError):
        msdf2.evaluate([[1, 2]], [[3, 128]], "FULL")
    with pytest.raises(ValueError):
        msdf2.evaluate([[1, 2]], [[3, 4]], "TRUNCATE", 0)
    m = msdf2.MSDF2CycleModel(n_lanes=2)
    with pytest.raises(ValueError, match="lanes"):
        m.step(True, msdf2.Txn((1,), (1,)), True)


# --- msdf-v2-lite's arithmetic (END offset in the register, TRUNCATE rounding/clearing) ------

def _lite_check(x, w, signed, B=8, wpos=None):
    L = x.shape[-1]
    T = mma.stream_digits(L, B)
    P = mma.plane_sums(x, w, B, signed)
    Wp = msdf2.positive_weight_sum(w) if wpos is None else wpos
    for pol in Policy:
        for p in ([1, 2, B - 1, B, B + 1, T - 2, T - 1, T] if pol is Policy.TRUNCATE else [None]):
            ref = msdf2.evaluate_planes(P, Wp, L, pol, p, pipelined=False)
            got = msdf2.lite_accumulate(P, Wp, L, pol, p)
            assert np.array_equal(got["values"], ref.values), (pol, p)
            assert np.array_equal(got["stop_plane"], ref.stop_plane), (pol, p)
            # the register fits T + 1 bits
            assert np.abs(got["D"]).max(initial=0) < 1 << T, (pol, p)
            if pol is not Policy.TRUNCATE:
                # D_t = A_t - J_t, J_t = (Wp >> (B-1-t)) - Wp: the END test is D's sign
                A = np.zeros(P.shape[1:], np.int64)
                for t in range(B):
                    A = 2 * A + P[t]
                    J = (Wp >> (B - 1 - t)) - Wp
                    assert np.array_equal(got["D"][t], A - J), (pol, t)


@pytest.mark.parametrize("L", [n for n in N_SWEEP if n <= 144])
@pytest.mark.parametrize("signed", [True, False])
def test_lite_arithmetic_equals_msdf2(L, signed):
    """lite_accumulate (the arithmetic of msdf-v2-lite) has msdf-v2-flat's values and stop
    planes for every policy and budget, with the exact and with loose bounds."""
    rng = np.random.default_rng(L * 3 + signed)
    x, w = _operands(rng, 300, L, signed)
    _lite_check(x, w, signed)
    loose = np.minimum(msdf2.positive_weight_sum(w) + rng.integers(0, 200, len(w)),
                       (1 << msdf2.wpos_bits(L)) - 1)
    _lite_check(x, w, signed, wpos=loose)


@pytest.mark.slow
@pytest.mark.parametrize("L", [576, 1152])
def test_lite_arithmetic_equals_msdf2_large(L):
    rng = np.random.default_rng(L)
    x, w = _operands(rng, 600, L, True)
    _lite_check(x, w, True)


@pytest.mark.parametrize("B", [3, 4, 16])
def test_lite_arithmetic_small_and_wide_activations(B):
    """Every 2-lane input at B = 3 and 4 (F > B), and B = 16 with one lane (F <= B: the
    rounding of p > B then lands on planes p - F >= 0 only)."""
    if B == 16:
        rng = np.random.default_rng(16)
        for signed in (True, False):
            lo, hi = mma.act_range(B, signed)
            x = rng.integers(lo, hi + 1, (2000, 1))
            w = rng.integers(-127, 128, (2000, 1))
            _lite_check(x, w, signed, B)
        return
    lo, hi = mma.act_range(B, True)
    xs = np.arange(lo, hi + 1)
    ws = np.array([-127, -100, -3, -1, 0, 1, 2, 64, 127])
    X = np.array(np.meshgrid(xs, xs, ws, ws)).reshape(4, -1).T
    _lite_check(X[:, :2], X[:, 2:], True, B)
