"""PlanePE in the Amaranth simulator: random dot products over fan-ins wider than the PE,
every policy, against the MMA golden model (``golden/arith/mma.evaluate_planes``) and
exact integer arithmetic; END stops really skip the output's remaining beats."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import mma
from msdf_unet.golden.arith.mma_operands import weight_bounds
from msdf_unet.hdl.conv.pe import PlanePE, beat_layout
from msdf_unet.spec.engine import ACT_BITS, Policy, online_delay

B = ACT_BITS


def make_output(rng, fan_in, bias_lanes, kind):
    """Activations/weights of one output (bias lanes folded as in hwexact)."""
    x = [rng.randint(-128, 127) for _ in range(fan_in)]
    w = [rng.randint(-127, 127) for _ in range(fan_in)]
    if kind == "relu_in":      # ReLU-like inputs (non-negative), as in a real layer
        x = [abs(v) if v != -128 else 0 for v in x]
    elif kind == "zeros":
        x = [0] * fan_in
    elif kind == "sparse":
        x = [v if rng.random() < 0.2 else 0 for v in x]
    guaranteed, _ = mma.bias_range(bias_lanes, B, True)
    b = rng.randint(-guaranteed, guaranteed)
    bw, bx = mma.fold_bias(b, bias_lanes, B, signed_acts=True)
    return x + list(bx), w + list(bw)


def beats_of(x, w, lanes, seq, planes=B):
    """Plane-major beats (plane t of every chunk before plane t+1)."""
    n_chunks = -(-len(x) // lanes)
    wpos, wneg = map(int, weight_bounds(w))
    out = []
    for t in range(planes):
        for c in range(n_chunks):
            xs = x[c * lanes:(c + 1) * lanes]
            ws = w[c * lanes:(c + 1) * lanes]
            bits = sum((((v & 0xFF) >> (B - 1 - t)) & 1) << i for i, v in enumerate(xs))
            out.append({"bits": bits, "w": ws + [0] * (lanes - len(ws)), "plane": t,
                        "chunk_first": int(c == 0), "chunk_last": int(c == n_chunks - 1),
                        "seq": seq, "wpos": wpos, "wneg": wneg, "_plane": t})
    return out


def expected(x, w, policy, digits):
    L = len(x)
    P = mma.plane_sums(np.array(x), np.array(w))
    r = mma.evaluate_planes(P[:, None], L, policy, digits if policy == Policy.TRUNCATE else None)
    value = int(r.values[0])
    S = sum(a * b for a, b in zip(x, w))
    # the planes the PE needs: END bound / sign bound / TRUNCATE budget
    wpos, wneg = map(int, weight_bounds(w))
    planes = B
    A = 0
    for t in range(B):
        A = 2 * A + int(P[t])
        rr = B - 1 - t
        up, lo = A * 2 ** rr + wpos * (2 ** rr - 1), A * 2 ** rr + wneg * (2 ** rr - 1)
        if (policy == Policy.RELU_END and up < 0) or (policy == Policy.SIGN_ONLY and (up < 0 or lo > 0)) \
                or (policy == Policy.TRUNCATE and t + 1 == digits):
            planes = t + 1
            break
    if policy == Policy.FULL:
        assert value == S
    return value, planes


def run_pe(lanes, cases, policy, digits, F, rng, *, idle=0.2, backpressure=0.3):
    dut = PlanePE(lanes=lanes)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []
    fed = {"beats": 0, "skipped": 0}

    async def feeder(ctx):
        ctx.set(dut.cfg.policy, policy)
        ctx.set(dut.cfg.digits, digits)
        ctx.set(dut.cfg.online_delay, F)
        for n, (x, w) in enumerate(cases):
            plan = beats_of(x, w, lanes, n % 4, planes=min(digits, B) if policy == Policy.TRUNCATE else B)
            k = 0
            while k < len(plan):
                if rng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    _, _, stop, sseq = await ctx.tick().sample(dut.stop, dut.stop_seq)
                else:
                    beat = {f: v for f, v in plan[k].items() if not f.startswith("_")}
                    ctx.set(dut.i.valid, 1)
                    ctx.set(dut.i.payload, beat)
                    _, _, ready, stop, sseq = await ctx.tick().sample(dut.i.ready, dut.stop, dut.stop_seq)
                    if ready:
                        k += 1
                        fed["beats"] += 1
                if stop and sseq == n % 4 and k < len(plan):
                    fed["skipped"] += len(plan) - k
                    k = len(plan)
        ctx.set(dut.i.valid, 0)

    async def collector(ctx):
        while len(got) < len(cases):
            ctx.set(dut.o.ready, int(rng.random() >= backpressure))
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                got.append((payload.value, payload.early, payload.planes))

    sim.add_testbench(feeder, background=True)
    sim.add_testbench(collector)
    sim.run()
    return got, fed


@pytest.mark.parametrize("lanes,fan_in,bias_lanes", [(4, 9, 2), (8, 27, 5), (16, 16, 0), (7, 3, 1)])
@pytest.mark.parametrize("policy", list(Policy))
def test_pe_matches_golden(lanes, fan_in, bias_lanes, policy):
    rng = random.Random(lanes * 1000 + fan_in * 10 + int(policy))
    L = fan_in + bias_lanes
    F = online_delay(L)
    T = B + F
    digits_list = [1, 3, B, B + 1, T - 1, T] if policy == Policy.TRUNCATE else [0]
    for digits in digits_list:
        kinds = ["random", "relu_in", "zeros", "sparse"]
        cases = [make_output(rng, fan_in, bias_lanes, rng.choice(kinds)) for _ in range(24)]
        got, fed = run_pe(lanes, cases, policy, digits, F, rng)
        assert len(got) == len(cases)
        for n, ((x, w), (value, early, planes)) in enumerate(zip(cases, got)):
            exp_value, exp_planes = expected(x, w, policy, digits)
            assert value == exp_value, (n, policy, digits, value, exp_value)
            assert planes == exp_planes, (n, planes, exp_planes)
            assert early == int(exp_planes < B)
        if policy == Policy.RELU_END:
            assert fed["skipped"] > 0   # END stops saved beats


def test_pe_refuses_bad_parameters():
    with pytest.raises(ValueError, match="lanes"):
        PlanePE(lanes=0)
    with pytest.raises(ValueError, match="fifo_depth"):
        PlanePE(lanes=4, fifo_depth=2)
