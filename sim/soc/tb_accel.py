"""cocotb testbench of the accelerator top (the Vivado-facing wrapper ``msdf_accel``).

The bus is driven by cocotbext-axi's ``AxiLiteMaster`` with random idle cycles on the
AW/W/AR channels and random backpressure on B/R. The host driver
(:class:`msdf_unet.host.driver.DotProductDriver`) runs unchanged through
:class:`msdf_unet.host.mmio.CocotbMMIO`. Expected values come from the golden model
(``golden/arith/mma.py``) and exact integer arithmetic, computed here.

Parameters arrive in ``MSDF_ACCEL_CONFIG`` (AccelConfig JSON); ``MSDF_TB_TXNS`` sets the
number of random dot products.
"""
from __future__ import annotations

import itertools
import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiResp

from msdf_unet.golden.arith import mma as golden
from msdf_unet.hdl.soc.config import AccelConfig
from msdf_unet.hdl.soc.regs import ID_MAGIC, accelerator_map
from msdf_unet.host.driver import POLICIES, DotProductDriver
from msdf_unet.host.mmio import CocotbMMIO, control_cycles

CONFIG = AccelConfig.from_json(os.environ["MSDF_ACCEL_CONFIG"])
N_TXNS = int(os.environ.get("MSDF_TB_TXNS", "40"))
REGMAP = accelerator_map(n_lanes=CONFIG.n_lanes, act_bits=CONFIG.act_bits,
                         signed_acts=CONFIG.signed_acts)


def random_pauses(rng, p):
    while True:
        yield rng.random() < p


class TB:
    def __init__(self, dut, seed=0):
        self.dut = dut
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_ctrl"), dut.aclk,
                                  dut.aresetn, reset_active_level=False)
        self.mmio = CocotbMMIO(self.axil)

    def set_idle_and_backpressure(self, p=0.3):
        w, r = self.axil.write_if, self.axil.read_if
        for ch in (w.aw_channel, w.w_channel, w.b_channel, r.ar_channel, r.r_channel):
            ch.set_pause_generator(random_pauses(self.rng, p) if p else None)

    async def reset(self):
        self.dut.aresetn.value = 0
        await ClockCycles(self.dut.aclk, 4)
        self.dut.aresetn.value = 1
        await ClockCycles(self.dut.aclk, 2)

    def random_case(self):
        rng = self.rng
        lo, hi = golden.act_range(CONFIG.act_bits, CONFIG.signed_acts)
        n = CONFIG.data_lanes
        kind = rng.choice(["random", "random", "random", "min_acts", "max_weights", "zeros", "flip"])
        x = [rng.randint(lo, hi) for _ in range(n)]
        w = [rng.randint(-127, 127) for _ in range(n)]
        guaranteed, _ = golden.bias_range(CONFIG.bias_lanes, CONFIG.act_bits, CONFIG.signed_acts)
        b = rng.randint(-guaranteed, guaranteed)
        if kind == "min_acts":
            x = [lo] * n
            w = [rng.choice([-127, 127]) for _ in range(n)]
        elif kind == "max_weights":
            w = [127] * n
        elif kind == "zeros":
            x, w, b = [0] * n, [0] * n, 0
        elif kind == "flip":  # a bias that flips the sign of the sum
            s = sum(a * c for a, c in zip(x, w))
            b = max(-guaranteed, min(guaranteed, -2 * s))
        return x, w, b

    def expected(self, x, w, b, policy, digits):
        bw, bx = golden.fold_bias(b, CONFIG.bias_lanes, CONFIG.act_bits,
                                  signed_acts=CONFIG.signed_acts)
        trace = golden.transaction(x + bx, w + bw, policy.upper(), digits or 0,
                                   act_bits=CONFIG.act_bits, signed_acts=CONFIG.signed_acts)
        return trace


@cocotb.test()
async def test_register_map(dut):
    """ID, digest and CONFIG read back as declared; lanes store; bad accesses get SLVERR."""
    tb = TB(dut, seed=1)
    await tb.reset()
    read = lambda name, i=0: tb.axil.read(REGMAP.address(name, i), 4)  # noqa: E731
    assert int.from_bytes((await read("ID")).data, "little") == ID_MAGIC
    assert int.from_bytes((await read("MAP_DIGEST")).data, "little") == REGMAP.digest32
    cfg = REGMAP["CONFIG"].decode(int.from_bytes((await read("CONFIG")).data, "little"))
    assert cfg == {"n_lanes": CONFIG.n_lanes, "bias_lanes": CONFIG.bias_lanes,
                   "act_bits": CONFIG.act_bits, "signed_acts": int(CONFIG.signed_acts),
                   "digits_total": golden.stream_digits(CONFIG.n_lanes, CONFIG.act_bits)}
    tb.set_idle_and_backpressure(0.4)
    values = {}
    for i in range(CONFIG.n_lanes):
        values[i] = tb.rng.randint(-127, 127)
        resp = await tb.axil.write(REGMAP.address("W", i), REGMAP["W"].encode(value=values[i]).to_bytes(4, "little"))
        assert resp.resp == AxiResp.OKAY
    for i in range(CONFIG.n_lanes):
        word = int.from_bytes((await read("W", i)).data, "little")
        assert REGMAP["W"].decode(word)["value"] == values[i]
    # read-only register, an unmapped and an unaligned address: SLVERR, nothing changes
    for addr in (REGMAP.address("RESULT"), 4 * REGMAP.n_words, REGMAP.address("W", 0) + 2):
        resp = await tb.axil.write(addr, b"\xff\xff\xff\xff")
        assert resp.resp == AxiResp.SLVERR, (hex(addr), resp)
    assert (await tb.axil.read(4 * REGMAP.n_words, 4)).resp == AxiResp.SLVERR
    word = int.from_bytes((await read("W", 0)).data, "little")
    assert REGMAP["W"].decode(word)["value"] == values[0]


@cocotb.test()
async def test_driver_against_golden(dut):
    """The host driver, unchanged, runs random dot products; every result equals golden."""
    tb = TB(dut, seed=2)
    await tb.reset()
    tb.set_idle_and_backpressure(0.3)
    policies = list(POLICIES) if CONFIG.variant == "mma" else ["full"]
    T = golden.stream_digits(CONFIG.n_lanes, CONFIG.act_bits)

    def run_all():
        driver = DotProductDriver(tb.mmio)
        checked = 0
        for j, policy in zip(range(N_TXNS), itertools.cycle(policies)):
            x, w, b = tb.random_case()
            digits = tb.rng.randint(1, T) if policy == "truncate" else None
            got = driver.dot(x, w, b, policy=policy, digits=digits, timeout_s=60)
            exact = sum(a * c for a, c in zip(x, w)) + b
            if CONFIG.variant == "mma":
                exp = tb.expected(x, w, b, policy, digits)
                assert (got.value, got.digits_used, got.terminated) == \
                    (exp.value, exp.digits_used, bool(exp.terminated)), (j, policy, x, w, b, got, exp)
                assert got.cycles == control_cycles(exp.result_cycle), (j, got, exp)
                if policy == "full":
                    assert got.value == exact
            else:
                assert got.value == exact, (j, x, w, b, got)
            checked += 1
        # bad input is refused before it reaches the hardware
        try:
            driver.dot([0] * CONFIG.data_lanes, [128] * CONFIG.data_lanes)
        except ValueError:
            pass
        else:
            raise AssertionError("weight 128 was not refused")
        return checked

    checked = await bridge(run_all)()
    assert checked == N_TXNS


@cocotb.test()
async def test_start_while_busy_sets_overrun(dut):
    """A second START during a transaction is ignored and flagged; the result is intact."""
    tb = TB(dut, seed=3)
    await tb.reset()

    async def write(name, i=0, **f):
        await tb.axil.write(REGMAP.address(name, i), REGMAP[name].encode(**f).to_bytes(4, "little"))

    async def read(name, i=0):
        return REGMAP[name].decode(int.from_bytes((await tb.axil.read(REGMAP.address(name, i), 4)).data, "little"))

    for i in range(CONFIG.n_lanes):
        await write("W", i, value=100)
        await write("X", i, value=golden.act_range(CONFIG.act_bits, CONFIG.signed_acts)[1])
    await write("CTRL", policy=0, digits=0, irq_en=1)
    await write("START", go=1)
    await write("START", go=1)   # while busy
    while not (await read("STATUS"))["done"]:
        pass
    status = await read("STATUS")
    assert status["overrun"] == 1 and status["busy"] == 0
    assert dut.irq.value == 1
    x_max = golden.act_range(CONFIG.act_bits, CONFIG.signed_acts)[1]
    assert (await read("RESULT"))["value"] == 100 * x_max * CONFIG.n_lanes
    await write("CTRL", policy=0, digits=0, irq_en=0)
    await RisingEdge(dut.aclk)
    assert dut.irq.value == 0
