"""PlanePE in the Amaranth simulator: random dot products over fan-ins wider than the PE,
every policy, outputs interleaved over the PE's slots (results by tag), against the MMA
golden model (``golden/arith/mma.evaluate_planes``) and exact integer arithmetic; END
stops really skip the output's remaining beats, and with SLOTS slots busy round-robin no
beat of a stopped output is sent at all."""
import random

import numpy as np
import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import mma
from msdf_unet.golden.arith.mma_operands import weight_bounds
from msdf_unet.hdl.conv.pe import SLOT_BITS, SLOTS, STOP_LATENCY, PlanePE
from msdf_unet.spec.engine import ACT_BITS, Policy, online_delay

B = ACT_BITS
TAG_BITS = 8


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


def planes_of(x, w, lanes, seq, tag, planes=B):
    """Plane-major beats grouped by plane: ``[[beats of plane 0], [plane 1], ...]``."""
    n_chunks = -(-len(x) // lanes)
    _, wneg = map(int, weight_bounds(w))
    out = []
    for t in range(planes):
        row = []
        low = (1 << (B - 1 - t)) - 1          # the bits below plane t
        for c in range(n_chunks):
            xs = x[c * lanes:(c + 1) * lanes]
            ws = w[c * lanes:(c + 1) * lanes]
            bits = sum((((v & 0xFF) >> (B - 1 - t)) & 1) << i for i, v in enumerate(xs))
            rest = sum(int((v & 0xFF & low) != 0) << i for i, v in enumerate(xs))
            row.append({"bits": bits, "w": ws + [0] * (lanes - len(ws)), "plane": t,
                        "chunk_first": int(c == 0), "chunk_last": int(c == n_chunks - 1),
                        "seq": seq, "wneg": wneg, "tag": tag, "rest": rest})
        out.append(row)
    return out


def expected(x, w, policy, digits):
    L = len(x)
    P = mma.plane_sums(np.array(x), np.array(w))
    r = mma.evaluate_planes(P[:, None], L, policy, digits if policy == Policy.TRUNCATE else None)
    value = int(r.values[0])
    S = sum(a * b for a, b in zip(x, w))
    # the planes the PE needs: END bound (positive weights of the lanes whose remaining
    # bits are not all zero; never looser than wpos) / sign bound / TRUNCATE budget
    wpos, wneg = map(int, weight_bounds(w))
    planes = B
    A = 0
    for t in range(B):
        A = 2 * A + int(P[t])
        rr = B - 1 - t
        wrest = sum(max(wi, 0) for xi, wi in zip(x, w) if (xi & 0xFF) % 2 ** rr)
        assert wrest <= wpos
        up, lo = A * 2 ** rr + wrest * (2 ** rr - 1), A * 2 ** rr + wneg * (2 ** rr - 1)
        if (policy == Policy.RELU_END and up < 0) or (policy == Policy.SIGN_ONLY and (up < 0 or lo > 0)) \
                or (policy == Policy.TRUNCATE and t + 1 == digits):
            planes = t + 1
            break
    if policy == Policy.FULL:
        assert value == S
    return value, planes


def run_pe(lanes, cases, policy, digits, F, rng, *, slots=SLOTS, idle=0.2, backpressure=0.3):
    """Feed ``cases`` round-robin over ``slots`` slots (a slot sends one plane, all its
    chunks, per turn, without waiting for decisions; a stop ends its output and the slot
    takes the next one). Returns (results by tag, counts)."""
    dut = PlanePE(lanes=lanes, tag_bits=TAG_BITS, late_lanes=lanes // 3)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = {}
    fed = {"beats": 0, "skipped": 0, "wasted": 0, "wasted_full": 0}
    n_planes = min(digits, B) if policy == Policy.TRUNCATE else B
    need = [expected(x, w, policy, digits)[1] for x, w in cases]

    async def feeder(ctx):
        ctx.set(dut.cfg.policy, policy)
        ctx.set(dut.cfg.digits, digits)
        ctx.set(dut.cfg.online_delay, F)
        nxt = 0
        gen = [0] * slots
        slot = [None] * slots        # [output, planes, next plane]
        turn = 0

        def refill(s):
            nonlocal nxt
            slot[s] = None
            if nxt < len(cases):
                gen[s] ^= 1
                x, w = cases[nxt]
                slot[s] = [nxt, planes_of(x, w, lanes, s | (gen[s] << SLOT_BITS), nxt, n_planes), 0]
                nxt += 1

        for s in range(slots):
            refill(s)

        def on_stop(stop, sseq, slots_oh):
            assert slots_oh == (1 << (sseq & ((1 << SLOT_BITS) - 1)) if stop else 0)
            if not stop:
                return
            s = sseq & ((1 << SLOT_BITS) - 1)
            if slot[s] is not None and sseq == (s | (gen[s] << SLOT_BITS)):
                _, pl, t = slot[s]
                fed["skipped"] += sum(len(p) for p in pl[t:])
                refill(s)

        while any(slot):
            busy = sum(sl is not None for sl in slot)
            while slot[turn] is None:
                turn = (turn + 1) % slots
            s = turn
            o, pl, t = slot[s]
            k = 0
            while k < len(pl[t]):
                if rng.random() < idle:
                    ctx.set(dut.i.valid, 0)
                    _, _, stop, sseq, soh = await ctx.tick().sample(dut.stop, dut.stop_seq, dut.stop_slots)
                else:
                    ctx.set(dut.i.valid, 1)
                    ctx.set(dut.i.payload, pl[t][k])
                    _, _, ready, stop, sseq, soh = await ctx.tick().sample(dut.i.ready, dut.stop, dut.stop_seq,
                                                                           dut.stop_slots)
                    if ready:
                        k += 1
                        fed["beats"] += 1
                        if t >= need[o]:
                            fed["wasted"] += 1
                            fed["wasted_full"] += busy == slots
                ctx.set(dut.i.valid, 0)
                on_stop(stop, sseq, soh)
                if slot[s] is None or slot[s][0] != o:
                    break            # stopped: the rest of its plane and output are skipped
            else:
                slot[s][2] = t + 1
                if t + 1 == len(pl):
                    refill(s)
            turn = (s + 1) % slots
        ctx.set(dut.i.valid, 0)

    async def collector(ctx):
        while len(got) < len(cases):
            ctx.set(dut.o.ready, int(rng.random() >= backpressure))
            _, _, valid, ready, payload = await ctx.tick().sample(dut.o.valid, dut.o.ready, dut.o.payload)
            if valid and ready:
                assert payload.tag not in got
                got[payload.tag] = (payload.value, payload.early, payload.planes)

    sim.add_testbench(feeder, background=True)
    sim.add_testbench(collector)
    sim.run()
    return got, fed


@pytest.mark.parametrize("slots", [1, SLOTS])
@pytest.mark.parametrize("lanes,fan_in,bias_lanes", [(4, 9, 2), (8, 27, 5), (16, 16, 0), (7, 3, 1)])
@pytest.mark.parametrize("policy", list(Policy))
def test_pe_matches_golden(lanes, fan_in, bias_lanes, policy, slots):
    rng = random.Random(lanes * 1000 + fan_in * 10 + int(policy) + 7 * slots)
    L = fan_in + bias_lanes
    F = online_delay(L)
    T = B + F
    digits_list = [1, 3, B, B + 1, T - 1, T] if policy == Policy.TRUNCATE else [0]
    for digits in digits_list:
        kinds = ["random", "relu_in", "zeros", "sparse"]
        cases = [make_output(rng, fan_in, bias_lanes, rng.choice(kinds)) for _ in range(24)]
        got, fed = run_pe(lanes, cases, policy, digits, F, rng, slots=slots)
        assert sorted(got) == list(range(len(cases)))
        for n, (x, w) in enumerate(cases):
            value, early, planes = got[n]
            exp_value, exp_planes = expected(x, w, policy, digits)
            assert value == exp_value, (n, policy, digits, value, exp_value)
            assert planes == exp_planes, (n, planes, exp_planes)
            assert early == int(exp_planes < B)
        if policy == Policy.RELU_END:
            assert fed["skipped"] > 0   # END stops saved beats


@pytest.mark.parametrize("policy", [Policy.RELU_END, Policy.SIGN_ONLY])
def test_pe_interleaved_stops_are_free(policy):
    """SLOTS slots of one chunk, round-robin, no idle: a slot's next plane is sent exactly when
    the decision on its previous plane is out, so no beat of a stopped output is sent
    while all slots are busy (only the tail, with fewer outputs left, wastes beats)."""
    rng = random.Random(int(policy))
    lanes, fan_in, bias_lanes = 16, 12, 3
    F = online_delay(fan_in + bias_lanes)
    cases = [make_output(rng, fan_in, bias_lanes, rng.choice(["random", "relu_in"])) for _ in range(40)]
    got, fed = run_pe(lanes, cases, policy, 0, F, rng, idle=0.0, backpressure=0.0)
    planes = [expected(x, w, policy, 0)[1] for x, w in cases]
    assert sum(p < B for p in planes) > 10
    assert fed["wasted_full"] == 0
    assert fed["beats"] - fed["wasted"] == sum(planes)
    for n, (x, w) in enumerate(cases):
        assert got[n][0] == expected(x, w, policy, 0)[0]


def test_cycle_model_constants_agree():
    """golden/ restates the PE's timing (it never imports hdl/): the feeder's beat register
    plus the PE's stop latency, and the slot count."""
    from msdf_unet.golden.conv import cycles
    assert cycles.SLOTS == SLOTS
    assert cycles.STOP_LATENCY == STOP_LATENCY + 1
    assert cycles.STOP_LATENCY <= cycles.SLOTS      # stops are free with all slots busy


def test_pe_refuses_bad_parameters():
    with pytest.raises(ValueError, match="lanes"):
        PlanePE(lanes=0)
    with pytest.raises(ValueError, match="tag_bits"):
        PlanePE(lanes=4, tag_bits=0)
    with pytest.raises(ValueError, match="fifo_depth"):
        PlanePE(lanes=4, fifo_depth=2)
    with pytest.raises(ValueError, match="late_lanes"):
        PlanePE(lanes=4, late_lanes=5)
