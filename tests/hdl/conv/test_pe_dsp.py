"""BytePE (the engine's bit-parallel DSP48 PE) in the Amaranth simulator: random dot
products over fan-ins wider than the PE, every policy and TRUNCATE budget, random idle
cycles and backpressure, against the MMA golden model (``golden/arith/mma``) and exact
integer arithmetic; results in order with their tags; the output FIFO never overflows."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import mma
from msdf_unet.hdl.conv.pe_dsp import BytePE, pipeline_depth, tree_stages
from msdf_unet.spec.engine import ACT_BITS, Policy, online_delay

B = ACT_BITS
TAG_BITS = 8


def make_output(rng, fan_in, bias_lanes):
    """Activations/weights of one output, the bias folded into lanes as hwexact does."""
    kind = rng.choice(["random", "relu_in", "zeros", "extreme"])
    x = [rng.randint(-128, 127) for _ in range(fan_in)]
    w = [rng.randint(-127, 127) for _ in range(fan_in)]
    if kind == "relu_in":
        x = [max(v, 0) for v in x]
    elif kind == "zeros":
        x = [0] * fan_in
    elif kind == "extreme":
        x = [rng.choice([-128, 127]) for _ in range(fan_in)]
        w = [rng.choice([-127, 127]) for _ in range(fan_in)]
    guaranteed, _ = mma.bias_range(bias_lanes, B, True)
    bw, bx = mma.fold_bias(rng.randint(-guaranteed, guaranteed), bias_lanes, B, signed_acts=True)
    return x + list(bx), w + list(bw)


def golden_value(x, w, policy, digits):
    P = mma.plane_sums(np.array(x), np.array(w))
    r = mma.evaluate_planes(P[:, None], len(x), policy, digits if policy == Policy.TRUNCATE else None)
    value, S = int(r.values[0]), sum(a * b for a, b in zip(x, w))
    exact = {Policy.FULL: S, Policy.RELU_END: max(S, 0), Policy.SIGN_ONLY: (S > 0) - (S < 0)}
    if policy in exact:
        assert value == exact[policy]
    return value, bool(r.terminated[0])


def run(lanes, cases, policy, digits, F, rng, *, idle=0.2, backpressure=0.3):
    dut = BytePE(lanes=lanes, tag_bits=TAG_BITS)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []

    async def feeder(ctx):
        ctx.set(dut.cfg.policy, policy)
        ctx.set(dut.cfg.digits, digits)
        ctx.set(dut.cfg.online_delay, F)
        await ctx.tick().repeat(2)
        for n, (x, w) in enumerate(cases):
            chunks = -(-len(x) // lanes)
            for c in range(chunks):
                xs, ws = x[c * lanes:(c + 1) * lanes], w[c * lanes:(c + 1) * lanes]
                pad = [0] * (lanes - len(xs))
                beat = {"x": xs + pad, "w": ws + pad, "chunk_first": int(c == 0),
                        "chunk_last": int(c == chunks - 1), "tag": n}
                while rng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    await ctx.tick()
                ctx.set(dut.i.valid, 1)
                ctx.set(dut.i.payload, beat)
                while True:
                    _, _, ready = await ctx.tick().sample(dut.i.ready)
                    if ready:
                        break
                ctx.set(dut.i.valid, 0)

    async def collector(ctx):
        while len(got) < len(cases):
            ctx.set(dut.o.ready, int(rng.random() >= backpressure))
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                got.append((payload.tag, payload.value, payload.terminated, payload.early))
        await ctx.tick().repeat(pipeline_depth(lanes) + 4)
        assert ctx.get(dut.idle) and not ctx.get(dut.o.valid)

    sim.add_testbench(feeder, background=True)
    sim.add_testbench(collector)
    sim.run()
    return got


@pytest.mark.parametrize("lanes,fan_in,bias_lanes", [(4, 9, 2), (12, 27, 5), (16, 16, 0), (7, 3, 1), (86, 200, 14)])
@pytest.mark.parametrize("policy", list(Policy))
def test_byte_pe_matches_golden(lanes, fan_in, bias_lanes, policy):
    rng = random.Random(lanes * 1000 + fan_in * 10 + int(policy))
    L = fan_in + bias_lanes
    F = online_delay(L)
    T = B + F
    for digits in ([1, 3, B - 1, B, B + 1, T - 1, T] if policy == Policy.TRUNCATE else [0]):
        cases = [make_output(rng, fan_in, bias_lanes) for _ in range(16)]
        got = run(lanes, cases, policy, digits, F, rng)
        assert [g[0] for g in got] == list(range(len(cases)))       # in order, every output
        for (n, value, term, early), (x, w) in zip(got, cases):
            exp, exp_term = golden_value(x, w, policy, digits)
            assert value == exp, (n, policy, digits, value, exp)
            assert term == exp_term and early == 0


def test_byte_pe_full_rate():
    """No idle, no backpressure: one beat per cycle (ready never drops)."""
    rng = random.Random(5)
    lanes = 9
    cases = [make_output(rng, 9, 0) for _ in range(40)]
    dut = BytePE(lanes=lanes, tag_bits=TAG_BITS)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    stalls = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        for n, (x, w) in enumerate(cases):
            ctx.set(dut.i.valid, 1)
            ctx.set(dut.i.payload, {"x": x, "w": w, "chunk_first": 1, "chunk_last": 1, "tag": n})
            _, _, ready = await ctx.tick().sample(dut.i.ready)
            stalls.append(not ready)
    sim.add_testbench(tb)
    sim.run()
    assert not any(stalls)


def test_byte_pe_depth_and_bad_parameters():
    assert tree_stages(1) == 1 and tree_stages(86) == 4 and pipeline_depth(86) == 10
    with pytest.raises(ValueError, match="lanes"):
        BytePE(lanes=0)
    with pytest.raises(ValueError, match="tag_bits"):
        BytePE(lanes=4, tag_bits=0)
    with pytest.raises(ValueError, match="fifo_depth"):
        BytePE(lanes=4, fifo_depth=3)
