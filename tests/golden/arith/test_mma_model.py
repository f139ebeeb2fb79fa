"""Oracle tests of the golden MMA model against exact integer arithmetic.

Expected values are Python/numpy integer sums computed here; the model under test is
``msdf_unet.golden.arith.mma`` (scalar recurrence, vectorized evaluator, cycle model).
"""
import itertools

import numpy as np
import pytest

from msdf_unet.golden.arith import mma
from msdf_unet.golden.arith.mma import Policy


def _exact_policy(S, digits, policy, p=None):
    """Independent statement of the policies from S and the digit list."""
    T = len(digits)
    nz = [t for t, z in enumerate(digits) if z]
    if policy is Policy.FULL:
        return S, T, 0
    if policy is Policy.RELU_END:
        return (0, nz[0] + 1, 1) if S < 0 else (S, T, 0)
    if policy is Policy.SIGN_ONLY:
        return (int(np.sign(S)), nz[0] + 1, 1) if S else (0, T, 0)
    return sum(z * 2 ** (T - 1 - t) for t, z in enumerate(digits[:p])), p, int(p < T)


# --- parameters, planes, bias ----------------------------------------------------------------

def test_online_delay_and_length():
    for L in [1, 2, 3, 11, 576, 3456]:
        F = mma.online_delay(L)
        assert 2 ** (F - 1) > L * 127 >= 2 ** (F - 2)
        assert mma.stream_digits(L, 8) == 8 + F
    with pytest.raises(ValueError, match="n_lanes"):
        mma.online_delay(0)


def test_iface_policy_codes_match():
    from msdf_unet.hdl.arith.iface import Policy as HPolicy
    assert {p.name: p.value for p in HPolicy} == {p.name: int(p) for p in Policy}
    assert mma._policy(HPolicy.SIGN_ONLY) is Policy.SIGN_ONLY
    assert mma._policy("relu_end") is Policy.RELU_END
    with pytest.raises(ValueError):
        mma._policy("nope")


@pytest.mark.parametrize("B,signed", [(3, True), (4, False), (8, True), (8, False)])
def test_plane_digits_exhaustive(B, signed):
    lo, hi = mma.act_range(B, signed)
    x = np.arange(lo, hi + 1)
    d = mma.plane_digits(x, B, signed).astype(np.int64)
    assert np.all(np.isin(d, [-1, 0, 1] if signed else [0, 1]))
    weights = 2 ** np.arange(B - 1, -1, -1)
    assert np.array_equal((d * weights[:, None]).sum(0), x)
    with pytest.raises(ValueError, match="activation"):
        mma.plane_digits([hi + 1], B, signed)
    with pytest.raises(ValueError, match="activation"):
        mma.plane_digits([lo - 1], B, signed)


def test_weight_range():
    mma.check_weights([-127, 127])
    with pytest.raises(ValueError, match="-128"):
        mma.check_weights([3, -128])
    with pytest.raises(ValueError):
        mma.evaluate([1], [128])


@pytest.mark.parametrize("signed", [True, False])
def test_fold_bias_exact_and_range(signed):
    rng = np.random.default_rng(5)
    for nb in [1, 2, 3, 4]:
        g, h = mma.bias_range(nb, 8, signed)
        cases = set(range(-300, 301)) | {g, -g, h, -h, h + 1, -h - 1, g + 1, -g - 1}
        cases |= set(rng.integers(-h - 5, h + 6, 2000).tolist())
        lo, hi = mma.act_range(8, signed)
        for b in cases:
            try:
                ws, xs = mma.fold_bias(b, nb, signed_acts=signed)
            except ValueError as e:
                assert abs(b) > g, (b, nb)
                assert str(b) in str(e)
                continue
            assert len(ws) == len(xs) == nb
            assert sum(w * x for w, x in zip(ws, xs)) == b
            assert all(-127 <= w <= 127 for w in ws) and all(lo <= x <= hi for x in xs)
            assert abs(b) <= h
            nonzero = sum(1 for w, x in zip(ws, xs) if w * x)
            if abs(b) <= 127:
                assert nonzero <= 1
    with pytest.raises(ValueError, match="does not fit"):
        mma.fold_bias(1, 0)


@pytest.mark.parametrize("signed,B", [(True, 8), (False, 8), (True, 3), (False, 4)])
def test_fold_bias_array_equals_scalar(signed, B):
    for nb in [0, 1, 2, 3]:
        g, h = mma.bias_range(nb, B, signed)
        b = np.arange(-h, h + 1, max(1, h // 3000)) if h else np.zeros(1, np.int64)
        fits = []
        for bj in b.tolist():
            try:
                fits.append(mma.fold_bias(bj, nb, B, signed_acts=signed))
            except ValueError:
                fits.append(None)
        ok = np.array([f is not None for f in fits])
        W, X = mma.fold_bias_array(b[ok], nb, B, signed_acts=signed)
        assert W.tolist() == [f[0] for f in fits if f is not None]
        assert X.tolist() == [f[1] for f in fits if f is not None]
        if not ok.all():
            with pytest.raises(ValueError, match="does not fit"):
                mma.fold_bias_array(b, nb, B, signed_acts=signed)


def test_fold_bias_greedy_shape():
    # whole largest terms first, then (127, q) + (r, 1)
    ws, xs = mma.fold_bias(2 * 16256 + 127 * 5 + 3, 4)
    assert [w * x for w, x in zip(ws, xs)] == [16256, 16256, 127 * 5, 3]
    ws, xs = mma.fold_bias(-(127 * 9), 2)
    assert (ws, xs) == ([-127, 0], [9, 0])


def test_bias_plane_sums():
    b = np.array([[0, 5, -300], [16000, -16256, 127]])
    Pb = mma.bias_plane_sums(b, 2)
    assert Pb.shape == (8, 2, 3)
    assert np.array_equal((Pb * (2 ** np.arange(7, -1, -1))[:, None, None]).sum(0), b)


# --- recurrence: exhaustive small widths ------------------------------------------------------

def _all_cases(B, N, signed):
    """All activation vectors x a weight set per lane: every weight for N = 1, a spread of
    17 (N = 2) or 9 (N = 3) weights including the extremes otherwise."""
    lo, hi = mma.act_range(B, signed)
    wset = {1: range(-127, 128), 2: [-127, -126, -100, -64, -33, -8, -2, -1, 0, 1, 2, 7, 31, 64, 99, 126, 127],
            3: [-127, -126, -64, -1, 0, 1, 63, 126, 127]}[N]
    xs = np.array(list(itertools.product(range(lo, hi + 1), repeat=N)), dtype=np.int64)
    ws = np.array(list(itertools.product(wset, repeat=N)), dtype=np.int64)
    return xs, ws


@pytest.mark.parametrize("B,N,signed,nb", [(3, 1, True, 1), (4, 1, False, 1), (4, 1, True, 2),
                                           (3, 2, True, 1), (4, 2, False, 0), (3, 2, False, 1),
                                           (3, 3, True, 0), (3, 3, False, 1)])
def test_exhaustive_small(B, N, signed, nb):
    """Every activation vector x the weight set (and random bias lanes): digits decode to
    S, truncation bounds, first nonzero digit sign, END/SIGN policies."""
    xs, ws = _all_cases(B, N, signed)
    L = N + nb
    F = mma.online_delay(L)
    T = B + F
    lo, hi = mma.act_range(B, signed)
    rng = np.random.default_rng(B * 10 + N)
    xg = np.repeat(xs, len(ws), axis=0)
    wg = np.tile(ws, (len(xs), 1))
    if nb:  # bias lanes with random legal (w, x)
        bx = rng.integers(lo, hi + 1, (len(xg), nb))
        bw = rng.integers(-127, 128, (len(xg), nb))
        xg = np.concatenate([xg, bx], 1)
        wg = np.concatenate([wg, bw], 1)
    S = (xg * wg).sum(1)
    r = mma.evaluate(xg, wg, "FULL", act_bits=B, signed_acts=signed, return_digits=True)
    assert np.array_equal(r.values, S)
    z = r.digits.astype(np.int64)
    assert z.shape == (T, len(S))
    # prefix bounds
    Zp = np.zeros_like(S)
    for p in range(1, T + 1):
        Zp = Zp + z[p - 1] * 2 ** (T - p)
        err = S - Zp
        if p < B:
            assert np.all(np.abs(err) < 2 ** (T - p) - 2 ** (F - 1))
        else:
            assert np.all((-(2 ** (T - 1 - p)) <= err) & (err < 2 ** (T - 1 - p)))
    # first nonzero digit
    fnz = r.first_nonzero_index
    assert np.array_equal(fnz < 0, S == 0)
    idx = np.where(fnz >= 0, fnz, 0)
    sign = np.where(fnz >= 0, z[idx, np.arange(len(S))], 0)
    assert np.array_equal(sign, np.sign(S))
    for pol in [Policy.RELU_END, Policy.SIGN_ONLY]:
        rp = mma.evaluate(xg, wg, pol, act_bits=B, signed_acts=signed)
        used_exp = np.where((fnz >= 0) & ((S < 0) | (pol is Policy.SIGN_ONLY)), fnz + 1, T)
        assert np.array_equal(rp.digits_used, used_exp)
        if pol is Policy.RELU_END:
            assert np.array_equal(rp.values, np.maximum(S, 0))
            assert np.array_equal(rp.terminated, (S < 0).astype(np.int8))
        else:
            assert np.array_equal(rp.values, np.sign(S))
            assert np.array_equal(rp.terminated, (S != 0).astype(np.int8))
    for p in [1, B, T - 1, T]:
        rp = mma.evaluate(xg, wg, "TRUNCATE", p, act_bits=B, signed_acts=signed)
        assert np.array_equal(rp.values, (z[:p] * (2 ** np.arange(T - 1, T - 1 - p, -1))[:, None]).sum(0))
        assert np.all(rp.digits_used == p) and np.all(rp.terminated == int(p < T))


@pytest.mark.slow
def test_exhaustive_plane_sequences_one_lane():
    """Every plane-sum sequence one lane can produce with B = 3 (|P_k| <= 127)."""
    P = np.stack(np.meshgrid(*[np.arange(-127, 128)] * 3, indexing="ij")).reshape(3, -1)
    S = P[0] * 4 + P[1] * 2 + P[2]
    r = mma.evaluate_planes(P, 1, "FULL", return_digits=True)
    assert np.array_equal(r.values, S)
    fnz = r.first_nonzero_index
    assert np.array_equal(fnz < 0, S == 0)
    sign = r.digits[np.where(fnz >= 0, fnz, 0), np.arange(S.size)]
    assert np.array_equal(np.where(fnz >= 0, sign, 0), np.sign(S))


def test_scalar_stream_matches_vectorized_and_policies():
    rng = np.random.default_rng(11)
    for _ in range(300):
        L = int(rng.integers(1, 20))
        signed = bool(rng.integers(2))
        lo, hi = mma.act_range(8, signed)
        x = rng.integers(lo, hi + 1, L)
        w = rng.integers(-127, 128, L)
        S = int((x * w).sum())
        P = mma.plane_sums(x, w, 8, signed)
        dig = mma.digit_stream(P.tolist(), L)
        assert sum(z * 2 ** (len(dig) - 1 - t) for t, z in enumerate(dig)) == S
        r = mma.evaluate_planes(P, L, "FULL", return_digits=True)
        assert r.digits.tolist() == dig
        for pol in Policy:
            p = int(rng.integers(1, len(dig) + 1))
            exp = _exact_policy(S, dig, pol, p)
            assert mma.apply_policy(dig, pol, p) == exp
            rv = mma.evaluate_planes(P[:, None], L, pol, p)
            assert (int(rv.values[0]), int(rv.digits_used[0]), int(rv.terminated[0])) == exp


def test_evaluate_planes_contract():
    P = np.zeros((8, 2, 3), dtype=np.int64)
    r = mma.evaluate_planes(P, 4, "SIGN_ONLY")
    assert r.values.shape == (2, 3) and np.all(r.first_nonzero_index == -1)
    assert np.all(r.digits_used == mma.stream_digits(4))
    with pytest.raises(ValueError, match="exceeds"):
        mma.evaluate_planes(np.full((8, 1), 4 * 127 + 1), 4, "FULL")
    with pytest.raises(ValueError, match="budget"):
        mma.evaluate_planes(P, 4, "TRUNCATE", 0)
    with pytest.raises(ValueError, match="budget"):
        mma.evaluate_planes(P, 4, "TRUNCATE", mma.stream_digits(4) + 1)
    # float planes (torch conv2d outputs) are accepted when integer valued
    r = mma.evaluate_planes(np.ones((8, 5)) * 3.0, 1, "FULL")
    assert np.all(r.values == 3 * 255)


# --- random sweeps, B = 8 ---------------------------------------------------------------------

N_SWEEP = [1, 9, 16, 36, 144, 576, 1152, 3456]


def _sweep(N, count, signed, rng, nb=2):
    lo, hi = mma.act_range(8, signed)
    L = N + nb
    # mix uniform, extreme and sparse vectors so every digit pattern shows up
    x = rng.integers(lo, hi + 1, (count, N))
    w = rng.integers(-127, 128, (count, N))
    k = count // 4
    x[:k] = rng.choice([lo, hi, 0], (k, N))
    w[:k] = rng.choice([-127, 127], (k, N))
    x[k:2 * k] *= rng.random((k, N)) < 0.05
    g = mma.bias_range(nb, 8, signed)[0]
    b = rng.integers(-g, g + 1, count)
    b[: count // 8] = 0
    P = mma.plane_sums(x, w, 8, signed) + mma.bias_plane_sums(b, nb, signed_acts=signed)
    # exact: |S| < 3458 * 127 * 255 is far inside int64
    S = np.einsum("ij,ij->i", x.astype(np.int64), w.astype(np.int64)) + b
    T = mma.stream_digits(L)
    full = mma.evaluate_planes(P, L, "FULL", return_digits=True)
    assert np.array_equal(full.values, S)
    assert np.all(full.digits_used == T)
    end = mma.evaluate_planes(P, L, "RELU_END")
    assert np.array_equal(end.values, np.maximum(S, 0))
    assert np.array_equal(end.terminated, (S < 0).astype(np.int8))
    sgn = mma.evaluate_planes(P, L, "SIGN_ONLY")
    assert np.array_equal(sgn.values, np.sign(S))
    assert np.all(sgn.digits_used[S != 0] < T + 1)
    for p in [1, 8, T // 2, T - 1]:
        tr = mma.evaluate_planes(P, L, "TRUNCATE", p)
        err = S - tr.values
        bound = 2 ** (T - p) if p < 8 else 2 ** (T - 1 - p)
        assert np.all(np.abs(err) <= bound)
        z = full.digits[:p].astype(np.int64)
        assert np.array_equal(tr.values, (z * (2 ** np.arange(T - 1, T - 1 - p, -1))[:, None]).sum(0))


@pytest.mark.parametrize("N", N_SWEEP)
def test_random_sweep_quick(N):
    rng = np.random.default_rng(N)
    count = max(200, 40000 // N)
    _sweep(N, count, True, rng)
    _sweep(N, count // 2, False, rng, nb=1)


@pytest.mark.slow
@pytest.mark.parametrize("N", N_SWEEP)
def test_random_sweep_100k(N):
    rng = np.random.default_rng(1000 + N)
    total = 0
    while total < 100_000:
        count = min(100_000 - total, max(1000, 2_000_000 // N))
        _sweep(N, count, bool(total % 2 == 0), rng)
        total += count


# --- vectorized == cycle model ------------------------------------------------------------------

def test_cycle_model_single_transaction():
    rng = np.random.default_rng(3)
    for _ in range(60):
        L = int(rng.integers(1, 12))
        signed = bool(rng.integers(2))
        lo, hi = mma.act_range(8, signed)
        x = rng.integers(lo, hi + 1, L)
        w = rng.integers(-127, 128, L)
        pol = Policy(int(rng.integers(4)))
        T = mma.stream_digits(L)
        p = int(rng.integers(1, T + 1))
        tr = mma.transaction(x, w, pol, p, signed_acts=signed)
        r = mma.evaluate(x[None], w[None], pol, p, signed_acts=signed, return_digits=True)
        assert tr.accept_cycle == 0
        assert (tr.value, tr.digits_used, tr.terminated) == (int(r.values[0]), int(r.digits_used[0]),
                                                              int(r.terminated[0]))
        assert [c for c, _, _ in tr.digits] == [mma.LATENCY_TO_DIGIT0 + t for t in range(tr.digits_used)]
        assert [z for _, _, z in tr.digits] == r.digits[: tr.digits_used, 0].tolist()
        assert tr.result_cycle == 1 + tr.digits_used


def test_cycle_model_back_to_back_throughput():
    """FULL transactions with o.ready high run without idle digit cycles; an early stop
    costs one bubble; results are those of the vectorized evaluator."""
    rng = np.random.default_rng(4)
    L = 5
    T = mma.stream_digits(L)
    model = mma.MMACycleModel(n_lanes=L)
    txns = [mma.Transaction(rng.integers(-128, 128, L), rng.integers(-127, 128, L), "FULL") for _ in range(6)]
    trace = model.run(txns)
    starts = [t.accept_cycle for t in trace.txns]
    assert starts == [i * T for i in range(6)]
    assert sorted(trace.port) == list(range(2, 2 + 6 * T))
    # random policies, gaps and backpressure: results equal the vectorized evaluator
    txns = []
    for _ in range(80):
        pol = Policy(int(rng.integers(4)))
        txns.append(mma.Transaction(rng.integers(-128, 128, L), rng.integers(-127, 128, L), pol,
                                    int(rng.integers(1, T + 1)), gap=int(rng.integers(0, 3)) * int(rng.random() < 0.3)))
    ready = (rng.random(5000) < 0.6).tolist()
    trace = model.run(txns, o_ready=ready)
    last_pop = -1
    for t, tr in zip(txns, trace.txns):
        r = mma.evaluate(np.asarray(t.x)[None], np.asarray(t.w)[None], t.policy, t.digits, return_digits=True)
        assert (tr.value, tr.digits_used, tr.terminated) == (int(r.values[0]), int(r.digits_used[0]),
                                                              int(r.terminated[0]))
        assert [z for _, _, z in tr.digits] == r.digits[: tr.digits_used, 0].tolist()
        assert tr.digits[0][0] == tr.accept_cycle + 2
        assert tr.pop_cycle > last_pop and ready[tr.pop_cycle]
        last_pop = tr.pop_cycle
    # with no gaps and o.ready high, the next transaction enters right after the last
    # digit; an early stop before the planned last digit costs exactly one bubble
    txns = [mma.Transaction(t.x, t.w, t.policy, t.digits) for t in txns]
    trace = model.run(txns)
    for t, a, b in zip(txns, trace.txns, trace.txns[1:]):
        pol = mma._policy(t.policy)
        planned = t.digits if pol is Policy.TRUNCATE else T
        early = pol in (Policy.RELU_END, Policy.SIGN_ONLY) and a.terminated and a.digits_used < planned
        assert b.accept_cycle == a.accept_cycle + a.digits_used + int(early)
