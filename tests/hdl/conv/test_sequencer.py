"""Helpers of the engine's sequencer in the Amaranth simulator: the bit-length encoder
(TRUNCATE budget T, the PE's online delay) against ``int.bit_length``."""
import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from msdf_unet.hdl.conv.sequencer import bit_length


@pytest.mark.parametrize("width,plus", [(1, 0), (2, 0), (5, 1), (20, 3), (32, 9)])
def test_bit_length(width, plus):
    m = Module()
    x = Signal(width)
    out = bit_length(m, x, plus)
    rng = random.Random(width)
    values = sorted({0, 1, (1 << width) - 1, *(1 << b for b in range(width)),
                     *(rng.randrange(1 << width) for _ in range(100))})

    async def tb(ctx):
        for v in values:
            ctx.set(x, v)
            assert ctx.get(out) == (v.bit_length() + plus if v else 0), v

    sim = Simulator(m)
    sim.add_testbench(tb)
    sim.run()
