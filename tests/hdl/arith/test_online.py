"""Online adder and multipliers (RTL) against the golden models, every digit and cycle."""
import itertools
import random

import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import online as golden
from msdf_unet.golden.arith.digits import DIGITS
from msdf_unet.hdl.arith.digit import Digit
from msdf_unet.hdl.arith.online import OnlineAdder, OnlineMultiplierSP, OnlineMultiplierSS


def _run(dut, make_model, ops, *, seed, parallel=False, idle=0.2):
    """Drive ``ops`` (lists of (x, y) steps) back to back with random idles and both clear
    styles; check z_valid/z in the cycle after every step (and after idles) against the
    golden model's step outputs."""
    rng = random.Random(seed)
    n_checked = [0, 0]

    def put_y(ctx, y):
        ctx.set(dut.y, y if parallel else Digit(y))

    async def bench(ctx):
        assert ctx.get(dut.z_valid) == 0
        for steps in ops:
            model = make_model()
            clear_with_first = bool(steps) and rng.random() < 0.5
            if not clear_with_first:
                ctx.set(dut.clear, 1)
                await ctx.tick()
                ctx.set(dut.clear, 0)
                assert ctx.get(dut.z_valid) == 0
            for k, (x, y) in enumerate(steps):
                while rng.random() < idle:
                    await ctx.tick()
                    assert ctx.get(dut.z_valid) == 0
                ctx.set(dut.clear, int(k == 0 and clear_with_first))
                ctx.set(dut.x_valid, 1)
                ctx.set(dut.x, Digit(x))
                put_y(ctx, y)
                expected = model.step(x, y)
                await ctx.tick()
                ctx.set(dut.x_valid, 0)
                ctx.set(dut.clear, 0)
                if expected is None:
                    assert ctx.get(dut.z_valid) == 0, (steps, k)
                else:
                    assert ctx.get(dut.z_valid) == 1, (steps, k)
                    assert ctx.get(dut.z).value == expected, (steps, k)
                    n_checked[1] += 1
                n_checked[0] += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert n_checked[0] == sum(len(s) for s in ops)
    return n_checked[1]


def _pad(xs, ys, n_steps):
    xs = list(xs) + [0] * (n_steps - len(xs))
    ys = list(ys) + [0] * (n_steps - len(ys))
    return list(zip(xs, ys))


def test_adder_exhaustive_short():
    n = 3
    ops = [_pad(xs, ys, n + 2) for xs in itertools.product(DIGITS, repeat=n)
           for ys in itertools.product(DIGITS, repeat=n)]
    assert _run(OnlineAdder(), golden.OnlineAdder, ops, seed=1) == len(ops) * (n + 1)


def test_adder_random_long_and_continuous():
    rng = random.Random(2)
    ops = []
    for _ in range(20):
        n = rng.randrange(4, 30)
        ops.append(_pad([rng.choice(DIGITS) for _ in range(n)], [rng.choice(DIGITS) for _ in range(n)],
                        n + 2 + rng.randrange(3)))
    _run(OnlineAdder(), golden.OnlineAdder, ops, seed=3, idle=0.0)
    _run(OnlineAdder(), golden.OnlineAdder, ops, seed=4, idle=0.3)


def test_adder_timing_continuous():
    # one step per cycle from cycle 0: output index j is valid in cycle j + ONLINE_DELAY
    dut = OnlineAdder()
    xs, ys = [1, -1, 1, 1, 0], [1, 1, -1, 1, -1]
    expected = golden.online_add(xs, ys).digits
    seen = {}

    async def bench(ctx):
        steps = _pad(xs, ys, len(xs) + 2)
        for cycle in range(len(steps) + 1):
            if cycle < len(steps):
                ctx.set(dut.x_valid, 1)
                ctx.set(dut.clear, int(cycle == 0))
                ctx.set(dut.x, Digit(steps[cycle][0]))
                ctx.set(dut.y, Digit(steps[cycle][1]))
            else:
                ctx.set(dut.x_valid, 0)
            if ctx.get(dut.z_valid):
                seen[cycle] = ctx.get(dut.z).value
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    d = OnlineAdder.ONLINE_DELAY
    assert seen == {j + d: z for j, z in enumerate(expected)}


def test_mul_ss_exhaustive_short():
    n = 3
    ops = [_pad(xs, ys, 2 * n + 3) for xs in itertools.product(DIGITS, repeat=n)
           for ys in itertools.product(DIGITS, repeat=n)]
    _run(OnlineMultiplierSS(digits=n), lambda: golden.OnlineMultiplierSS(digits=n), ops, seed=5)


def test_mul_ss_random_long():
    rng = random.Random(6)
    n = 12
    ops = []
    for _ in range(25):
        k = rng.randrange(1, n + 1)
        ops.append(_pad([rng.choice(DIGITS) for _ in range(k)], [rng.choice(DIGITS) for _ in range(k)],
                        2 * n + 3 + rng.randrange(3)))
    _run(OnlineMultiplierSS(digits=n), lambda: golden.OnlineMultiplierSS(digits=n), ops, seed=7)


def test_mul_ss_ignores_digits_past_width():
    # the RTL treats digits after the n-th as 0: equal to the golden run on the zero tail
    n = 2
    rng = random.Random(8)
    for _ in range(5):
        xs, ys = [rng.choice(DIGITS) for _ in range(n)], [rng.choice(DIGITS) for _ in range(n)]
        dut = OnlineMultiplierSS(digits=n)
        noisy = list(zip(xs, ys)) + [(rng.choice(DIGITS), rng.choice(DIGITS)) for _ in range(n + 3)]
        model_steps = [s for s in golden.online_mul_ss(xs, ys, n_out=2 * n).steps]
        got = []

        async def bench(ctx):
            for k, (x, y) in enumerate(noisy):
                ctx.set(dut.clear, int(k == 0))
                ctx.set(dut.x_valid, 1)
                ctx.set(dut.x, Digit(x))
                ctx.set(dut.y, Digit(y))
                await ctx.tick()
                got.append(ctx.get(dut.z).value if ctx.get(dut.z_valid) else None)

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        assert got == model_steps


def test_mul_sp_exhaustive_short():
    n, y_bits = 3, 4
    ops = [[(x, y) for x in list(xs) + [0] * (y_bits + 1)]
           for xs in itertools.product(DIGITS, repeat=n) for y in range(-8, 8)]
    _run(OnlineMultiplierSP(y_bits=y_bits), lambda: golden.OnlineMultiplierSP(y_bits=y_bits), ops,
         seed=9, parallel=True)


def test_mul_sp_int8_random():
    rng = random.Random(10)
    ops = []
    for _ in range(40):
        n = rng.randrange(1, 12)
        y = rng.randrange(-128, 128)
        ops.append([(rng.choice(DIGITS) if k < n else 0, y) for k in range(n + 9)])
    _run(OnlineMultiplierSP(), lambda: golden.OnlineMultiplierSP(y_bits=8), ops, seed=11, parallel=True)


def test_uniform_interface():
    for cls, kw in ((OnlineAdder, {}), (OnlineMultiplierSS, {"digits": 4}), (OnlineMultiplierSP, {})):
        dut = cls(**kw)
        members = dict(dut.signature.members)
        assert {"clear", "x_valid", "x", "y", "z_valid", "z"} <= set(members)
        assert cls.ONLINE_DELAY == getattr(golden, cls.__name__).ONLINE_DELAY
        assert cls.FIRST_INDEX == getattr(golden, cls.__name__).FIRST_INDEX
    assert (OnlineAdder.ONLINE_DELAY, OnlineMultiplierSS.ONLINE_DELAY, OnlineMultiplierSP.ONLINE_DELAY) == (2, 3, 2)


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_bad_parameters():
    with pytest.raises(ValueError, match="digits"):
        OnlineMultiplierSS(digits=0)
    with pytest.raises(ValueError, match="y_bits"):
        OnlineMultiplierSP(y_bits=True)
