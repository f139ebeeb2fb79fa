# amaranth: UnusedElaboratable=no
"""BitSerialDotProduct in the Amaranth simulator against the golden cycle model and exact math."""
import random

import pytest

from msdf_unet.golden.arith import baselines as g
from msdf_unet.hdl.arith.bitserial import BitSerialDotProduct
from msdf_unet.sim.arith.stream_driver import exact_policy_value, run_stream


def _golden(n, act_bits, signed_acts):
    def fn(t):
        return g.bitserial_dot(t.x, t.w, act_bits=act_bits, signed_acts=signed_acts,
                               policy=t.policy, digits=t.digits)
    return g.SerialShellModel(act_bits, fn)



def _check(n, act_bits, signed_acts, txns, vp, rp, plane_select="shift"):
    dut = BitSerialDotProduct(n_lanes=n, act_bits=act_bits, signed_acts=signed_acts,
                              plane_select=plane_select)
    acc, outs = run_stream(dut, txns, vp, rp)
    g_acc, g_outs = g.simulate(_golden(n, act_bits, signed_acts), txns, vp, rp)
    assert len(outs) == len(txns)
    assert acc == g_acc
    assert outs == g_outs
    assert [r.value for _, r in outs] == [exact_policy_value(t) for t in txns]
    assert all(r.digits_used == act_bits and r.terminated == 0 for _, r in outs)


@pytest.mark.parametrize("plane_select", ["shift", "mux"])
@pytest.mark.parametrize("n,act_bits,signed_acts", [
    (1, 8, True), (3, 8, False), (9, 8, True), (9, 8, False), (5, 4, True), (16, 8, True),
])
def test_random_and_corners_with_stalls(n, act_bits, signed_acts, plane_select):
    rng = random.Random(n * 100 + act_bits + signed_acts)
    txns = g.corner_txns(n, act_bits=act_bits, signed_acts=signed_acts)
    txns += g.random_txns(rng, 25, n, act_bits=act_bits, signed_acts=signed_acts)
    horizon = len(txns) * (act_bits + 1) * 3 + 50
    vp = [rng.random() < 0.6 for _ in range(horizon)]
    rp = [rng.random() < 0.5 for _ in range(horizon)]
    _check(n, act_bits, signed_acts, txns, vp, rp, plane_select)


def test_back_to_back_throughput():
    n, b = 9, 8
    txns = g.random_txns(random.Random(7), 10, n)
    horizon = 10 * b + b + 3
    dut = BitSerialDotProduct(n_lanes=n)
    acc, outs = run_stream(dut, txns, [1] * horizon, [1] * horizon)
    assert acc == [k * b for k in range(10)]            # one transaction every B cycles
    assert [c for c, _ in outs] == [a + b + 1 for a in acc]
    _check(n, b, True, txns, [1] * horizon, [1] * horizon)


@pytest.mark.slow
def test_144_lanes():
    rng = random.Random(144)
    txns = g.corner_txns(144) + g.random_txns(rng, 10, 144)
    horizon = len(txns) * 30
    _check(144, 8, True, txns, [rng.random() < 0.7 for _ in range(horizon)],
           [rng.random() < 0.7 for _ in range(horizon)])


@pytest.mark.parametrize("kw", [dict(n_lanes=0), dict(n_lanes=2.0), dict(n_lanes=2, act_bits=1),
                                dict(n_lanes=2, act_bits=17)])
def test_bad_params(kw):
    with pytest.raises(ValueError):
        BitSerialDotProduct(**kw)


def test_bad_signed_acts():
    with pytest.raises(TypeError):
        BitSerialDotProduct(n_lanes=2, signed_acts=1)
