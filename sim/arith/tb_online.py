"""cocotb testbench of the online operators and the on-the-fly converter.

Runs inside the simulator (see :mod:`msdf_unet.sim.arith.test_online`) against the Verilog
of :class:`msdf_unet.sim.arith.test_online.OnlineUnitsTop`: one top holding an
:class:`~msdf_unet.hdl.arith.online.OnlineAdder` (ports ``add__*``), an
:class:`~msdf_unet.hdl.arith.otf.OnTheFlyConverter` (``otf__*``), an
:class:`~msdf_unet.hdl.arith.online.OnlineMultiplierSP` (``msp__*``) and an
:class:`~msdf_unet.hdl.arith.online.OnlineMultiplierSS` (``mss__*``). Parameters from the
environment: ``OTF_WIDTH``, ``SP_Y_BITS``, ``SS_DIGITS``, ``SEED``, ``N_OPS``.

Inputs are driven at the falling edge, one random operation after another with random
idle cycles and both ``clear`` styles; at the next falling edge every output is compared
with the golden model (:mod:`msdf_unet.golden.arith.online`, :mod:`~msdf_unet.golden.arith.digits`):
``z_valid`` and ``z`` for the operators, ``q`` and ``qm`` for the converter.
"""
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge

from msdf_unet.golden.arith import digits as dg
from msdf_unet.golden.arith import online as g


class Params:
    def __init__(self):
        self.otf_width = int(os.environ.get("OTF_WIDTH", "10"))
        self.sp_y_bits = int(os.environ.get("SP_Y_BITS", "8"))
        self.ss_digits = int(os.environ.get("SS_DIGITS", "6"))
        self.seed = int(os.environ.get("SEED", "1"))
        self.n_ops = int(os.environ.get("N_OPS", "60"))


def _signed(handle) -> int:
    return handle.value.to_signed()


class TB:
    """Clock, reset and the per-unit drivers/monitors."""

    def __init__(self, dut, params: Params):
        self.dut, self.p = dut, params
        self.rng = random.Random(params.seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        d = self.dut
        for prefix in ("add", "msp", "mss"):
            getattr(d, f"{prefix}__x_valid").value = 0
            getattr(d, f"{prefix}__clear").value = 0
        d.otf__digit_valid.value = 0
        d.otf__clear.value = 0
        d.rst.value = 1
        await ClockCycles(d.clk, 2)
        d.rst.value = 0
        await FallingEdge(d.clk)

    async def run_operator(self, prefix, make_model, ops, parallel=False):
        """Drive ``ops`` (lists of (x, y) steps) into unit ``prefix``; return digits checked."""
        d, rng = self.dut, self.rng
        clear, valid = getattr(d, f"{prefix}__clear"), getattr(d, f"{prefix}__x_valid")
        x_in, y_in = getattr(d, f"{prefix}__x"), getattr(d, f"{prefix}__y")
        z_valid, z = getattr(d, f"{prefix}__z_valid"), getattr(d, f"{prefix}__z")
        y_mask = (1 << self.p.sp_y_bits) - 1 if parallel else 3
        checked = 0
        for steps in ops:
            model = make_model()
            with_first = rng.random() < 0.5
            if not with_first:
                clear.value = 1
                await FallingEdge(d.clk)
                clear.value = 0
                assert int(z_valid.value) == 0
            for k, (x, y) in enumerate(steps):
                while rng.random() < 0.2:
                    valid.value = 0
                    await FallingEdge(d.clk)
                    assert int(z_valid.value) == 0, f"{prefix}: z_valid after an idle cycle"
                clear.value = int(k == 0 and with_first)
                valid.value = 1
                x_in.value = x & 3
                y_in.value = y & y_mask
                expected = model.step(x, y)
                await FallingEdge(d.clk)
                valid.value = 0
                clear.value = 0
                got_valid = int(z_valid.value)
                assert got_valid == (expected is not None), f"{prefix}: z_valid at step {k + 1} of {steps}"
                if expected is not None:
                    assert _signed(z) == expected, f"{prefix}: z at step {k + 1} of {steps}"
                    checked += 1
        return checked

    async def run_otf(self, streams):
        d, rng, w = self.dut, self.rng, self.p.otf_width
        checked = 0
        for ds in streams:
            expected = dg.otf_int_steps(ds, w)
            d.otf__clear.value = 1
            d.otf__digit_valid.value = 0
            await FallingEdge(d.clk)
            d.otf__clear.value = 0
            assert _signed(d.otf__q) == 0 and _signed(d.otf__qm) == -1
            for k, digit in enumerate(ds):
                while rng.random() < 0.2:
                    d.otf__digit_valid.value = 0
                    await FallingEdge(d.clk)
                d.otf__digit_valid.value = 1
                d.otf__digit.value = digit & 3
                await FallingEdge(d.clk)
                d.otf__digit_valid.value = 0
                assert _signed(d.otf__q) == dg.to_signed(expected[k].q_bits, w), (ds, k)
                assert _signed(d.otf__qm) == dg.to_signed(expected[k].qm_bits, w), (ds, k)
                checked += 1
        return checked


def _stream(rng, n):
    return [rng.choice(dg.DIGITS) for _ in range(n)]


@cocotb.test()
async def online_adder_vs_golden(dut):
    tb = TB(dut, Params())
    await tb.reset()
    rng = random.Random(tb.p.seed + 1)
    ops = []
    for _ in range(tb.p.n_ops):
        n = rng.randrange(1, 16)
        xs, ys = _stream(rng, n), _stream(rng, n)
        ops.append(list(zip(xs + [0, 0], ys + [0, 0])))
    checked = await tb.run_operator("add", g.OnlineAdder, ops)
    assert checked == sum(len(s) - 1 for s in ops)


@cocotb.test()
async def otf_converter_vs_golden(dut):
    tb = TB(dut, Params())
    await tb.reset()
    rng = random.Random(tb.p.seed + 2)
    streams = [_stream(rng, rng.randrange(1, tb.p.otf_width + 3)) for _ in range(tb.p.n_ops)]
    checked = await tb.run_otf(streams)
    assert checked == sum(map(len, streams))


@cocotb.test()
async def online_multipliers_vs_golden(dut):
    tb = TB(dut, Params())
    await tb.reset()
    p, rng = tb.p, random.Random(tb.p.seed + 3)
    half = 1 << (p.sp_y_bits - 1)
    sp_ops = []
    for _ in range(p.n_ops // 2):
        n, y = rng.randrange(1, 10), rng.randrange(-half, half)
        sp_ops.append([(x, y) for x in _stream(rng, n) + [0] * (p.sp_y_bits + 1)])
    assert await tb.run_operator("msp", lambda: g.OnlineMultiplierSP(y_bits=p.sp_y_bits), sp_ops,
                                 parallel=True) > 0
    ss_ops = []
    for _ in range(p.n_ops // 2):
        n = rng.randrange(1, p.ss_digits + 1)
        ss_ops.append(list(zip(_stream(rng, n) + [0] * (2 * p.ss_digits + 3 - n),
                               _stream(rng, n) + [0] * (2 * p.ss_digits + 3 - n))))
    assert await tb.run_operator("mss", lambda: g.OnlineMultiplierSS(digits=p.ss_digits), ss_ops) > 0
