# amaranth: UnusedElaboratable=no
"""CascadedMSDFDotProduct in the Amaranth simulator against the golden cascaded model
(root digits with their cycles, results with their cycles) and exact math."""
import random

import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import baselines as g
from msdf_unet.hdl.arith.cascaded import CascadedMSDFDotProduct
from msdf_unet.hdl.arith.iface import Policy
from msdf_unet.sim.arith.stream_driver import exact_policy_value, run_stream



def _check(n, act_bits, signed_acts, txns, vp, rp):
    dut = CascadedMSDFDotProduct(n_lanes=n, act_bits=act_bits, signed_acts=signed_acts)
    assert dut.compute_cycles == g.cascaded_cycles(n, act_bits=act_bits)

    def fn(t):
        return g.cascaded_dot(t.x, t.w, act_bits=act_bits, signed_acts=signed_acts,
                              policy=t.policy, digits=t.digits)
    acc, outs = run_stream(dut, txns, vp, rp)
    g_acc, g_outs = g.simulate(g.SerialShellModel(dut.compute_cycles, fn), txns, vp, rp)
    assert len(outs) == len(txns)
    assert acc == g_acc
    assert outs == g_outs
    assert [r.value for _, r in outs] == [exact_policy_value(t) for t in txns]
    assert all(r.digits_used == dut.compute_cycles and r.terminated == 0 for _, r in outs)


@pytest.mark.parametrize("n,act_bits,signed_acts", [
    (1, 8, True), (2, 8, False), (3, 8, True), (5, 8, False), (9, 8, True), (4, 4, True),
])
def test_random_and_corners_with_stalls(n, act_bits, signed_acts):
    rng = random.Random(n * 100 + act_bits + signed_acts)
    txns = g.corner_txns(n, act_bits=act_bits, signed_acts=signed_acts)
    txns += g.random_txns(rng, 12, n, act_bits=act_bits, signed_acts=signed_acts)
    horizon = len(txns) * (g.cascaded_cycles(n, act_bits=act_bits) + 1) * 2
    vp = [rng.random() < 0.6 for _ in range(horizon)]
    rp = [rng.random() < 0.5 for _ in range(horizon)]
    _check(n, act_bits, signed_acts, txns, vp, rp)


@pytest.mark.parametrize("n", [1, 3, 9])
def test_root_digits_and_cycles(n):
    """Every root digit at its cycle (accept + c + 1), back to back, against the golden chain."""
    rng = random.Random(n)
    txns = g.corner_txns(n)[:3] + g.random_txns(rng, 4, n)
    dut = CascadedMSDFDotProduct(n_lanes=n)
    k = dut.compute_cycles
    layout = dut.i.payload.shape()
    seen = []

    accepts = []

    async def testbench(ctx):
        ctx.set(dut.o.ready, 1)
        nxt = 0
        for c in range(len(txns) * k + 10):
            if nxt < len(txns):
                t = txns[nxt]
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, layout.const({"x": list(t.x), "w": list(t.w),
                                                     "policy": Policy.FULL, "digits": 0}))
            else:
                ctx.set(dut.i.valid, 0)
            if ctx.get(dut.digit_valid):
                seen.append((c, ctx.get(dut.digit).value))
            if nxt < len(txns) and ctx.get(dut.i.ready):
                accepts.append(c)
                nxt += 1
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    steps = g.cascade_steps(n)
    assert k == steps + 2
    assert accepts == [j * k for j in range(len(txns))]
    expected = [(a + c + 1, d) for a, t in zip(accepts, txns)
                for c, d in enumerate(g.cascaded_digits(t.x, t.w), start=1)]
    assert seen == expected
    for j, t in enumerate(txns):
        ds = [d for _, d in seen[j * steps:(j + 1) * steps]]
        assert sum(d << (steps - 1 - c) for c, d in enumerate(ds)) == sum(a * b for a, b in zip(t.x, t.w))


def test_back_to_back_throughput():
    n = 9
    txns = g.random_txns(random.Random(9), 5, n)
    k = g.cascaded_cycles(n)
    horizon = 5 * k + k + 3
    acc, outs = run_stream(CascadedMSDFDotProduct(n_lanes=n), txns, [1] * horizon, [1] * horizon)
    assert acc == [j * k for j in range(5)]
    assert [c for c, _ in outs] == [a + k + 1 for a in acc]
    assert [r.value for _, r in outs] == [exact_policy_value(t) for t in txns]


def test_online_delay_grows_with_depth():
    # one more tree level costs 3 cycles: online delay 2 + the operator's output register
    for n in (1, 2, 3, 4, 5, 9, 144, 1152):
        d = (n - 1).bit_length()
        assert g.cascade_depth(n) == d
        assert CascadedMSDFDotProduct(n_lanes=n).compute_cycles == 8 + 11 + 3 * d


@pytest.mark.slow
def test_144_lanes():
    rng = random.Random(144)
    txns = g.corner_txns(144)[:4] + g.random_txns(rng, 4, 144)
    horizon = len(txns) * 100
    _check(144, 8, True, txns, [rng.random() < 0.7 for _ in range(horizon)],
           [rng.random() < 0.7 for _ in range(horizon)])


@pytest.mark.parametrize("kw", [dict(n_lanes=0), dict(n_lanes=2, act_bits=1)])
def test_bad_params(kw):
    with pytest.raises(ValueError):
        CascadedMSDFDotProduct(**kw)
