"""OnTheFlyConverter against the golden on-the-fly model, every digit and cycle."""
import itertools
import random

import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import digits as dg
from msdf_unet.hdl.arith.digit import Digit
from msdf_unet.hdl.arith.otf import OnTheFlyConverter


def _run(width, streams, seed):
    """Feed ``streams`` back to back (random idles, clear alone or with the first digit)
    and check ``q``/``qm`` after every digit against ``otf_int_steps``."""
    dut = OnTheFlyConverter(width=width)
    rng = random.Random(seed)
    checked = []

    async def bench(ctx):
        assert ctx.get(dut.q) == 0 and ctx.get(dut.qm) == -1  # reset values
        for ds in streams:
            expected = dg.otf_int_steps(ds, width)
            clear_with_first = bool(ds) and rng.random() < 0.5
            if not clear_with_first:
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                assert ctx.get(dut.q) == 0 and ctx.get(dut.qm) == -1
            for k, d in enumerate(ds):
                while rng.random() < 0.2:  # idle cycle: registers hold
                    before = ctx.get(dut.q), ctx.get(dut.qm)
                    await ctx.tick()
                    assert (ctx.get(dut.q), ctx.get(dut.qm)) == before
                ctx.set(dut.clear, int(k == 0 and clear_with_first))
                ctx.set(dut.digit_valid, 1)
                ctx.set(dut.digit, Digit(d))
                await ctx.tick()
                ctx.set(dut.digit_valid, 0)
                ctx.set(dut.clear, 0)
                st = expected[k]
                assert ctx.get(dut.q) == dg.to_signed(st.q_bits, width), (ds, k)
                assert ctx.get(dut.qm) == dg.to_signed(st.qm_bits, width), (ds, k)
                checked.append(1)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(checked) == sum(len(s) for s in streams)


def test_exhaustive_short_streams():
    streams = [ds for n in range(0, 6) for ds in itertools.product(dg.DIGITS, repeat=n)]
    _run(6, streams, seed=1)


def test_narrow_register_wraps_like_golden():
    # 4 digits into 3 bits: values overflow, the registers keep the value mod 8
    _run(3, list(itertools.product(dg.DIGITS, repeat=4)), seed=2)


def test_width_one():
    _run(1, list(itertools.product(dg.DIGITS, repeat=3)), seed=3)


def test_random_long_streams():
    rng = random.Random(4)
    _run(24, [[rng.choice(dg.DIGITS) for _ in range(22)] for _ in range(30)], seed=5)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
@pytest.mark.parametrize("bad", [0, -3, 2.0, True])
def test_bad_width(bad):
    with pytest.raises(ValueError, match="width"):
        OnTheFlyConverter(width=bad)


def test_no_carry_propagate_adder():
    # the conversion only selects and shifts: the netlist has no adder or subtractor
    from msdf_unet.sim.formal import to_rtlil
    text = to_rtlil(OnTheFlyConverter(width=16))
    cells = {line.split()[1] for line in text.splitlines() if line.strip().startswith("cell ")}
    assert cells and not cells & {"$add", "$sub", "$alu", "$neg", "$mul"}, cells
