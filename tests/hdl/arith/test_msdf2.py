# amaranth: UnusedElaboratable=no
"""MSDF2DotProduct in the Amaranth simulator against the golden cycle model
(:class:`msdf_unet.golden.arith.msdf2.MSDF2CycleModel`) and exact integer arithmetic:
every accept cycle on ``i`` and every ``(cycle, result)`` on ``o`` under random idle
cycles and backpressure."""
import numpy as np
import pytest

from msdf_unet.golden.arith import baselines as g
from msdf_unet.golden.arith import mma, msdf2
from msdf_unet.golden.arith.mma import Policy
from msdf_unet.hdl.arith.iface import Policy as HPolicy
from msdf_unet.hdl.arith.msdf2 import MSDF2DotProduct
from msdf_unet.sim.arith.stream_driver import run_stream


def make_txns(rng, L, n, *, B=8, signed=True, policies=tuple(Policy), loose=0.3):
    """Random legal transactions with corners; wpos exact or (``loose``) a looser bound."""
    T = mma.stream_digits(L, B)
    out = []
    for mt in mma.random_transactions(rng, L, n, act_bits=B, signed_acts=signed,
                                      n_bias_lanes=min(2, L - 1) if L > 2 else 0, gaps=False,
                                      policies=policies):
        x = [int(v) for v in mt.x]
        w = [int(v) for v in mt.w]
        if rng.random() < 0.3:      # ReLU-like activations: nonnegative and small
            lo, hi = mma.act_range(B, signed)
            x = [min(abs(v), hi) >> int(rng.integers(0, B)) for v in x]
        wp = int(np.clip(w, 0, None).sum())
        if rng.random() < loose:
            wp = int(rng.integers(wp, L * 127 + 1))
        pol = HPolicy(int(mma._policy(mt.policy)))
        out.append(msdf2.Txn(tuple(x), tuple(w), pol, int(mt.digits), wp))
    return out


def check(dut, txns, vp, rp):
    acc, outs = run_stream(dut, txns, vp, rp)
    model = msdf2.MSDF2CycleModel(n_lanes=dut.n_lanes, act_bits=dut.act_bits,
                                  signed_acts=dut.signed_acts, pipelined=dut.pipelined)
    g_acc, g_outs = g.simulate(model, txns, vp, rp)
    assert len(outs) == len(txns), f"{len(outs)} of {len(txns)} results"
    assert acc == g_acc
    assert [(c, r.value, r.digits_used, r.terminated) for c, r in outs] == \
        [(c, r.value, r.digits_used, r.terminated) for c, r in g_outs]
    # independent oracle: exact integers and the MMA's TRUNCATE prefix
    B = dut.act_bits
    for (_, r), t in zip(outs, txns):
        S = sum(a * b for a, b in zip(t.x, t.w))
        pol = mma._policy(t.policy)
        if pol is Policy.FULL:
            assert (r.value, r.digits_used, r.terminated) == (S, B, 0)
        elif pol is Policy.RELU_END:
            assert (r.value, r.terminated) == (max(S, 0), int(S < 0))
        elif pol is Policy.SIGN_ONLY:
            assert (r.value, r.terminated) == ((S > 0) - (S < 0), int(S != 0))
        else:
            ref = mma.evaluate(np.array(t.x), np.array(t.w), "TRUNCATE", t.digits, act_bits=B,
                               signed_acts=dut.signed_acts)
            assert r.value == int(ref.values)
    return acc, outs


PARAMS = [
    # (lanes, act_bits, signed, pipelined, group_size, transactions)
    (11, 8, True, True, 4, 120),
    (11, 8, True, False, None, 120),
    (1, 8, True, True, None, 60),
    (3, 4, False, True, 1, 80),
    (5, 3, True, False, None, 80),
    (20, 8, False, True, 16, 60),
    (38, 8, True, True, 9, 40),
]


@pytest.mark.parametrize("L,B,signed,pipelined,M,n", PARAMS)
def test_random_with_idle_and_backpressure(L, B, signed, pipelined, M, n):
    rng = np.random.default_rng(L * 100 + B + pipelined)
    dut = MSDF2DotProduct(n_lanes=L, act_bits=B, signed_acts=signed, pipelined=pipelined,
                          group_size=M)
    txns = make_txns(rng, L, n, B=B, signed=signed)
    horizon = n * (B + 6) * 3
    vp = [rng.random() < 0.6 for _ in range(horizon)]
    rp = [rng.random() < 0.5 for _ in range(horizon)]
    check(dut, txns, vp, rp)


@pytest.mark.parametrize("pipelined", [True, False])
def test_back_to_back_no_bubble(pipelined):
    rng = np.random.default_rng(3)
    L, B = 9, 8
    dut = MSDF2DotProduct(n_lanes=L, pipelined=pipelined)
    txns = make_txns(rng, L, 40, policies=(Policy.RELU_END, Policy.SIGN_ONLY, Policy.FULL), loose=0)
    horizon = 40 * B + 20
    acc, outs = check(dut, txns, [1] * horizon, [1] * horizon)
    used = [r.digits_used for _, r in outs]
    assert [b - a for a, b in zip(acc[1:], acc[2:])] == used[:-2]
    assert any(u < B for u in used)
    assert outs[0][0] == acc[0] + dut.latency_cycles


def test_corners():
    L = 6
    T = mma.stream_digits(L)
    dut = MSDF2DotProduct(n_lanes=L, group_size=3)
    txns = []
    for pol in Policy:
        for x, w in [([-128] * L, [127] * L), ([-128] * L, [-127] * L), ([127] * L, [127] * L),
                     ([127] * L, [-127] * L), ([0] * L, [127] * L), ([5] * L, [0] * L),
                     ([1, 0, 0, 0, 0, 0], [-1, 0, 0, 0, 0, 0]), ([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0])]:
            for p in ([1, 2, 7, 8, 9, T - 1, T] if pol is Policy.TRUNCATE else [0]):
                wp = int(np.clip(w, 0, None).sum())
                txns.append(msdf2.Txn(tuple(x), tuple(w), HPolicy(int(pol)), p, wp))
    rp = ([False] * 5 + [True] * 3) * 200
    check(dut, txns, [1] * len(rp), rp)


@pytest.mark.slow
@pytest.mark.parametrize("pipelined", [True, False])
def test_144_lanes(pipelined):
    rng = np.random.default_rng(144)
    dut = MSDF2DotProduct(n_lanes=144, pipelined=pipelined)
    txns = make_txns(rng, 144, 40)
    horizon = 40 * 30
    check(dut, txns, [rng.random() < 0.7 for _ in range(horizon)],
          [rng.random() < 0.7 for _ in range(horizon)])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameter_validation():
    with pytest.raises(ValueError, match="n_lanes"):
        MSDF2DotProduct(n_lanes=0)
    with pytest.raises(ValueError, match="act_bits"):
        MSDF2DotProduct(n_lanes=2, act_bits=1)
    with pytest.raises(TypeError, match="signed_acts"):
        MSDF2DotProduct(n_lanes=2, signed_acts=1)
    with pytest.raises(TypeError, match="pipelined"):
        MSDF2DotProduct(n_lanes=2, pipelined=1)
    with pytest.raises(ValueError, match="group_size"):
        MSDF2DotProduct(n_lanes=2, group_size=3)
