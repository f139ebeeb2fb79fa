"""The AXI4 master's burst cutter in the Amaranth simulator, against the burst rule
(:func:`msdf_unet.hdl.bus.axi4.burst_split`): every burst of random transfers near and
away from 4 KiB boundaries, and the address after it."""
import random

from amaranth import Module, Signal
from amaranth.sim import Simulator

from msdf_unet.hdl.bus.axi4 import burst_split
from msdf_unet.hdl.bus.axi_master import _BurstCutter


def test_burst_cutter_follows_burst_split():
    m = Module()
    addr, left = Signal(32), Signal(16)
    cut = _BurstCutter(m, addr, left, 8)
    rng = random.Random(3)
    transfers = [(rng.choice([rng.randrange(1 << 29), (rng.randrange(1 << 17) << 12) + 4096 - 8 * rng.randrange(1, 40)]) & ~7,
                  rng.choice([rng.randrange(1, 40), rng.randrange(1, 3000)])) for _ in range(300)]

    async def tb(ctx):
        for a0, beats in transfers:
            a, n_left = a0, beats
            for exp_addr, exp_beats in burst_split(a0, beats):
                ctx.set(addr, a)
                ctx.set(left, n_left)
                assert (a, ctx.get(cut.beats)) == (exp_addr, exp_beats), (a0, beats)
                n_left -= exp_beats
                if n_left:
                    a = ctx.get(cut.next_addr)
            assert n_left == 0

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
