"""Golden baseline models against exact integer math, and their cycle models."""
import itertools
import random

import pytest

from msdf_unet.golden.arith import baselines as g
from msdf_unet.hdl.arith.iface import Policy


@pytest.mark.parametrize("signed_acts", [True, False])
def test_bitserial_exhaustive_small(signed_acts):
    # act_bits=3, two lanes: every activation pair against a grid of weights
    lo, hi = (-4, 3) if signed_acts else (0, 7)
    for x in itertools.product(range(lo, hi + 1), repeat=2):
        for w in itertools.product((-127, -5, 0, 1, 127), repeat=2):
            r = g.bitserial_dot(x, w, act_bits=3, signed_acts=signed_acts)
            assert r == g.Result(x[0] * w[0] + x[1] * w[1], 3, 0)


@pytest.mark.parametrize("signed_acts", [True, False])
@pytest.mark.parametrize("n", [1, 9, 144])
def test_bitserial_and_bitparallel_random(n, signed_acts):
    rng = random.Random(n)
    txns = g.random_txns(rng, 50, n, signed_acts=signed_acts, policies=[Policy.FULL])
    txns += g.corner_txns(n, signed_acts=signed_acts)
    for t in txns:
        s = sum(a * b for a, b in zip(t.x, t.w))
        planes = g.bitserial_planes(t.x, t.w, signed_acts=signed_acts)
        assert sum(p << j for j, p in enumerate(planes)) == s
        assert max(abs(p) for p in planes) <= n * 127
        assert g.bitserial_dot(t.x, t.w, signed_acts=signed_acts) == g.Result(s, 8, 0)
        assert g.bitparallel_dot(t.x, t.w, signed_acts=signed_acts) == g.Result(s, 1, 0)


def test_policies_from_full_result():
    for s in (-1000, -1, 0, 1, 777):
        sign = (s > 0) - (s < 0)
        assert g.apply_full_policy(s, Policy.FULL, 8) == g.Result(s, 8, 0)
        assert g.apply_full_policy(s, Policy.TRUNCATE, 8) == g.Result(s, 8, 0)
        assert g.apply_full_policy(s, Policy.RELU_END, 8) == g.Result(s if s > 0 else 0, 8, 0)
        assert g.apply_full_policy(s, Policy.SIGN_ONLY, 8) == g.Result(sign, 8, 0)


@pytest.mark.parametrize("x,w,signed_acts", [
    ((0,), (-128,), True), ((128,), (1,), True), ((-129,), (1,), True), ((-1,), (1,), False),
    ((256,), (1,), False), ((1, 2), (1,), True), ((), (), True),
])
def test_bad_operands(x, w, signed_acts):
    with pytest.raises(ValueError):
        g.bitserial_dot(x, w, signed_acts=signed_acts)
    with pytest.raises(ValueError):
        g.bitparallel_dot(x, w, signed_acts=signed_acts)


def _fn(t):
    return g.bitparallel_dot(t.x, t.w)


@pytest.mark.parametrize("cycles", [1, 2, 8])
def test_serial_shell_back_to_back(cycles):
    txns = g.random_txns(random.Random(0), 6, 3)
    horizon = 6 * cycles + 10
    acc, outs = g.simulate(g.SerialShellModel(cycles, _fn), txns, [1] * horizon, [1] * horizon)
    assert acc == [k * cycles for k in range(6)]
    assert [c for c, _ in outs] == [a + cycles + 1 for a in acc]
    assert [r for _, r in outs] == [_fn(t) for t in txns]


def test_pipeline_shell_back_to_back():
    txns = g.random_txns(random.Random(0), 6, 3)
    acc, outs = g.simulate(g.PipelineShellModel(3, _fn), txns, [1] * 12, [1] * 12)
    assert acc == list(range(6))
    assert [c for c, _ in outs] == [a + 3 for a in acc]


@pytest.mark.parametrize("model", ["serial", "pipeline"])
def test_shell_random_stalls_keep_order_and_latency(model):
    rng = random.Random(5)
    txns = g.random_txns(rng, 40, 2)
    horizon = 1500
    vp = [rng.random() < 0.5 for _ in range(horizon)]
    rp = [rng.random() < 0.4 for _ in range(horizon)]
    m = g.SerialShellModel(8, _fn) if model == "serial" else g.PipelineShellModel(3, _fn)
    acc, outs = g.simulate(m, txns, vp, rp)
    assert len(acc) == len(outs) == len(txns)
    assert [r for _, r in outs] == [_fn(t) for t in txns]
    for a, (c, _) in zip(acc, outs):
        assert c >= a + m.latency_cycles
        assert rp[c]
    if model == "serial":
        assert all(b - a >= 8 for a, b in zip(acc, acc[1:]))


def test_shell_params():
    with pytest.raises(ValueError):
        g.SerialShellModel(0, _fn)
    with pytest.raises(ValueError):
        g.PipelineShellModel(0, _fn)


@pytest.mark.parametrize("signed_acts", [True, False])
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 9, 17])
def test_cascaded_digits_exact(n, signed_acts):
    rng = random.Random(n + 1000 * signed_acts)
    txns = g.corner_txns(n, signed_acts=signed_acts)
    txns += g.random_txns(rng, 15, n, signed_acts=signed_acts, policies=[Policy.FULL])
    d = (n - 1).bit_length()
    steps = g.cascade_steps(n)
    assert steps == 8 + 9 + 3 * d
    for t in txns:
        s = sum(a * b for a, b in zip(t.x, t.w))
        digits = g.cascaded_digits(t.x, t.w, signed_acts=signed_acts)
        assert len(digits) == steps and set(digits) <= {-1, 0, 1}
        assert sum(z << (steps - 1 - c) for c, z in enumerate(digits)) == s
        # online delay delta = delta_mult + d * delta_add = 2 + 2d: no root digit before it
        assert not any(digits[:2 + 2 * d])
        nz = [z for z in digits if z]
        assert (nz[0] if nz else 0) == (s > 0) - (s < 0)   # first nonzero digit = sign
        r = g.cascaded_dot(t.x, t.w, signed_acts=signed_acts)
        assert r == g.Result(s, g.cascaded_cycles(n), 0)


def test_cascade_tree_shape():
    assert g.cascade_tree(1) == []
    assert g.cascade_tree(5) == [[(0, 1), (2, 3), (4,)], [(0, 1), (2,)], [(0, 1)]]
    for n in range(1, 40):
        tree = g.cascade_tree(n)
        assert len(tree) == g.cascade_depth(n) == (n - 1).bit_length()
        assert (len(tree[-1]) if tree else n) == 1
