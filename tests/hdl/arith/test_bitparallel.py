# amaranth: UnusedElaboratable=no
"""BitParallelDotProduct (LUT and DSP multipliers) in the Amaranth simulator against the
golden cycle model and exact math."""
import random

import pytest

from msdf_unet.golden.arith import baselines as g
from msdf_unet.hdl.arith.bitparallel import BitParallelDotProduct
from msdf_unet.sim.arith.stream_driver import exact_policy_value, run_stream



def _check(n, act_bits, signed_acts, multiplier, txns, vp, rp):
    dut = BitParallelDotProduct(n_lanes=n, act_bits=act_bits, signed_acts=signed_acts,
                                multiplier=multiplier)

    def fn(t):
        return g.bitparallel_dot(t.x, t.w, act_bits=act_bits, signed_acts=signed_acts,
                                 policy=t.policy, digits=t.digits)
    acc, outs = run_stream(dut, txns, vp, rp)
    g_acc, g_outs = g.simulate(g.PipelineShellModel(dut.latency_cycles, fn), txns, vp, rp)
    assert len(outs) == len(txns)
    assert acc == g_acc
    assert outs == g_outs
    assert [r.value for _, r in outs] == [exact_policy_value(t) for t in txns]
    assert all(r.digits_used == 1 and r.terminated == 0 for _, r in outs)


@pytest.mark.parametrize("multiplier", ["lut", "dsp"])
@pytest.mark.parametrize("n,act_bits,signed_acts", [
    (1, 8, True), (3, 8, False), (9, 8, True), (9, 8, False), (5, 4, True), (16, 8, True),
])
def test_random_and_corners_with_stalls(n, act_bits, signed_acts, multiplier):
    rng = random.Random(n * 100 + act_bits + signed_acts)
    txns = g.corner_txns(n, act_bits=act_bits, signed_acts=signed_acts)
    txns += g.random_txns(rng, 40, n, act_bits=act_bits, signed_acts=signed_acts)
    horizon = len(txns) * 6 + 30
    vp = [rng.random() < 0.6 for _ in range(horizon)]
    rp = [rng.random() < 0.5 for _ in range(horizon)]
    _check(n, act_bits, signed_acts, multiplier, txns, vp, rp)


@pytest.mark.parametrize("multiplier", ["lut", "dsp"])
def test_back_to_back_throughput(multiplier):
    txns = g.random_txns(random.Random(3), 20, 9)
    horizon = 25
    dut = BitParallelDotProduct(n_lanes=9, multiplier=multiplier)
    acc, outs = run_stream(dut, txns, [1] * horizon, [1] * horizon)
    assert acc == list(range(20))                        # one transaction per cycle
    assert [c for c, _ in outs] == [a + 3 for a in acc]
    assert [r.value for _, r in outs] == [exact_policy_value(t) for t in txns]


@pytest.mark.slow
@pytest.mark.parametrize("multiplier", ["lut", "dsp"])
def test_144_lanes(multiplier):
    rng = random.Random(144)
    txns = g.corner_txns(144) + g.random_txns(rng, 20, 144)
    horizon = len(txns) * 4
    _check(144, 8, True, multiplier, txns, [rng.random() < 0.7 for _ in range(horizon)],
           [rng.random() < 0.7 for _ in range(horizon)])


@pytest.mark.parametrize("kw", [dict(n_lanes=0), dict(n_lanes=2, act_bits=1),
                                dict(n_lanes=2, multiplier="booth")])
def test_bad_params(kw):
    with pytest.raises(ValueError):
        BitParallelDotProduct(**kw)
