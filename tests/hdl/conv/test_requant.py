"""Requantizer in the Amaranth simulator against golden.quant.requantize (round half up,
saturation, ReLU) and the head's INT32 pass-through, with random backpressure."""
import random

import torch
from amaranth.sim import Simulator

from msdf_unet.golden.quant import requantize
from msdf_unet.hdl.conv.requant import LATENCY_CYCLES, Requantizer


def test_requant_matches_golden():
    rng = random.Random(5)
    cases = []
    for n in range(400):
        acc = rng.choice([rng.randint(-2 ** 27, 2 ** 27), rng.randint(-3000, 3000), 0, -1])
        mult = rng.randint(1, 2 ** 15 - 1) if n % 7 else rng.randint(1, 2 ** 31 - 1)
        shift = rng.randint(1, 62)
        relu, head = rng.random() < 0.5, n % 11 == 0
        cases.append((acc, mult, shift, relu, head))
    dut = Requantizer()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    got = []

    async def feed(ctx):
        for j, (acc, mult, shift, relu, head) in enumerate(cases):
            ctx.set(dut.i.payload, {"acc": acc, "mult": mult, "shift": shift, "relu": int(relu),
                                    "head": int(head), "tag": j})
            ctx.set(dut.i.valid, 1)
            await ctx.tick().until(dut.i.ready)
            if rng.random() < 0.2:
                ctx.set(dut.i.valid, 0)
                await ctx.tick()
        ctx.set(dut.i.valid, 0)

    async def collect(ctx):
        while len(got) < len(cases):
            ctx.set(dut.o.ready, int(rng.random() < 0.7))
            _, _, v, r, p = await ctx.tick().sample(dut.o.valid, dut.o.ready, dut.o.payload)
            if v and r:
                got.append((p.value, p.tag))

    sim.add_testbench(feed, background=True)
    sim.add_testbench(collect)
    sim.run()
    assert [t for _, t in got] == list(range(len(cases)))
    for (acc, mult, shift, relu, head), (value, _) in zip(cases, got):
        if head:
            assert value == acc
        else:
            exp = requantize(torch.tensor([[[[acc]]]]), torch.tensor([mult]), torch.tensor([shift]), relu)
            assert value == int(exp), (acc, mult, shift, relu, value, int(exp))


def test_requant_latency():
    dut = Requantizer()
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    seen = []

    async def tb(ctx):
        ctx.set(dut.o.ready, 1)
        ctx.set(dut.i.payload, {"acc": 100, "mult": 1, "shift": 1})
        ctx.set(dut.i.valid, 1)
        await ctx.tick()
        ctx.set(dut.i.valid, 0)
        for c in range(1, LATENCY_CYCLES + 3):
            _, _, v = await ctx.tick().sample(dut.o.valid)
            if v:
                seen.append(c)

    sim.add_testbench(tb)
    sim.run()
    assert seen[0] == LATENCY_CYCLES
