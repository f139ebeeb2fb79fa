"""cocotb testbench of the convolution engine top (:class:`msdf_unet.hdl.conv.engine.ConvEngine`).

Control through cocotbext-axi's AXI-Lite master; memory is cocotbext-axi's AXI RAM with
random latency and backpressure (:class:`msdf_unet.sim.bus.axi_mem.TestMemory`) holding an
image built with the contract's helpers (:mod:`msdf_unet.sim.conv.image`). Every layer's
output is compared with the golden models, computed here.

Parameters arrive in ``MSDF_ENGINE_CONFIG`` (EngineConfig JSON) and ``MSDF_TB_SEED``.
"""
from __future__ import annotations

import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from msdf_unet.hdl.conv.regs import ID_MAGIC, engine_map
from msdf_unet.sim.bus.axi_mem import TestMemory
from msdf_unet.sim.conv.image import (ConvLayer, Image, conv_expected, pool_expected, read_tensor,
                                      upsample_expected)
from msdf_unet.spec.engine import (STATUS_BYTES, EngineConfig, ErrorCode, Op, Policy, decode_status,
                                   encode_descriptor, stream_digits)

CONFIG = EngineConfig.from_json(os.environ["MSDF_ENGINE_CONFIG"])
SEED = int(os.environ.get("MSDF_TB_SEED", "1"))
REGMAP = engine_map()
MEM_BYTES = 1 << 20


class TB:
    def __init__(self, dut, *, pause=0.2, latency=(0, 8), bad=(), size=MEM_BYTES, monitor=True):
        self.dut = dut
        dut.rst.value = 1           # inputs defined from time 0 (Icarus starts them at X)
        for n in ("awaddr", "awprot", "awvalid", "wdata", "wstrb", "wvalid", "bready", "araddr",
                  "arprot", "arvalid", "rready"):
            getattr(dut, f"s_axil__{n}").value = 0
        for n in ("awready", "wready", "bid", "bresp", "bvalid", "arready", "rid", "rdata", "rresp",
                  "rlast", "rvalid"):
            getattr(dut, f"m_axi__{n}").value = 0
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
        self.mem = TestMemory(dut, clock=dut.clk, reset=dut.rst, size=size, seed=SEED,
                              latency_cycles=latency, pause=pause, bad=bad, monitor=monitor)

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 4)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def write(self, name, **fields):
        await self.axil.write(REGMAP.address(name), REGMAP[name].encode(**fields).to_bytes(4, "little"))

    async def read(self, name):
        return REGMAP[name].decode(int.from_bytes((await self.axil.read(REGMAP.address(name), 4)).data, "little"))

    async def run(self, image, *, watchdog=0, max_cycles=3_000_000):
        """Load ``image`` (an :class:`Image` or a compiled image), run it, wait for irq."""
        memory = image.mem if isinstance(image, Image) else image.memory
        self.mem.write(0, bytes(memory))
        await self.write("MEM_BASE_LO", addr=0)
        await self.write("MEM_SIZE", bytes=len(memory))
        await self.write("CMD_OFFSET", offset=image.cmd_offset)
        await self.write("WATCHDOG", cycles=watchdog)
        await self.write("CTRL", irq_en=1)
        await self.write("START", go=1)
        for _ in range(max_cycles // 64):
            await ClockCycles(self.dut.clk, 64)
            if self.dut.irq.value == 1:
                break
        else:
            raise AssertionError("the engine never raised irq")
        status = await self.read("STATUS")
        assert status["done"] == 1 and status["busy"] == 0, status
        return status, await self.read("ERROR"), await self.read("CYCLES")

    def status_record(self, image, i):
        return decode_status(self.mem.read(image.status + i * STATUS_BYTES, STATUS_BYTES))


def rand_codes(rng, shape, relu_like=False):
    x = rng.integers(-128, 128, shape)
    return np.abs(x).clip(0, 127) if relu_like else x


@cocotb.test()
async def test_registers(dut):
    """ID, version and digests read back as declared."""
    tb = TB(dut)
    await tb.reset()
    assert (await tb.read("ID"))["magic"] == ID_MAGIC
    assert (await tb.read("MAP_DIGEST"))["digest"] == REGMAP.digest32
    assert (await tb.read("CONFIG_DIGEST"))["digest"] == CONFIG.digest32


@cocotb.test()
async def test_layers_every_policy(dut):
    """Conv (3x3 and 1x1, odd sizes, fan-in wider than the PE, channel counts not multiples
    of anything, heights that leave a core's band of rows short or empty) under every
    policy, the INT32 head, max-pool and upsampling, bit-exact."""
    rng = np.random.default_rng(SEED)
    tb = TB(dut)
    await tb.reset()
    img = Image(size=MEM_BYTES)
    checks = []
    cin, h, w = 3, 5, 7
    x = rand_codes(rng, (cin, h, w))
    x_off = img.tensor(cin, h, w, data=x)
    cases = [(Policy.FULL, 0, True), (Policy.RELU_END, 0, True), (Policy.FULL, 0, False)]
    for pol, digits, relu in cases:
        layer = ConvLayer.random(rng, cin, 5, 3, 2, relu=relu)
        y_off = img.tensor(5, h, w)
        i = img.conv(layer, x_off, y_off, cin, h, w, pol, digits, cout_tile=3)
        checks.append((i, "conv", y_off, (5, h, w), 1, conv_expected(x, layer, pol, digits)))
    # the cores split the output rows into bands of ceil(H / cores): fewer rows than cores
    # (an empty band) and short bands, 3x3 (halo rows) and 1x1
    for hb in (1, 2):
        xb = rand_codes(rng, (cin, hb, w))
        xb_off = img.tensor(cin, hb, w, data=xb)
        for kb, pol in ((3, Policy.RELU_END), (1, Policy.FULL)):
            layer = ConvLayer.random(rng, cin, 4, kb, 2, relu=True)
            y_off = img.tensor(4, hb, w)
            i = img.conv(layer, xb_off, y_off, cin, hb, w, pol)
            checks.append((i, "conv", y_off, (4, hb, w), 1, conv_expected(xb, layer, pol)))
    L = 3 * 9 + 2
    for digits in (2, 8, 9, stream_digits(L) - 1):
        layer = ConvLayer.random(rng, cin, 4, 3, 2, relu=False)
        y_off = img.tensor(4, h, w)
        i = img.conv(layer, x_off, y_off, cin, h, w, Policy.TRUNCATE, digits)
        checks.append((i, "conv", y_off, (4, h, w), 1, conv_expected(x, layer, Policy.TRUNCATE, digits)))
    # 1x1 head, INT32 (multi-class FULL, binary SIGN_ONLY)
    for cout, pol in ((2, Policy.FULL), (1, Policy.SIGN_ONLY)):
        head = ConvLayer.random(rng, cin, cout, 1, 1, relu=False, head=True)
        y_off = img.tensor(cout, h, w, 4)
        i = img.conv(head, x_off, y_off, cin, h, w, pol)
        checks.append((i, "conv", y_off, (cout, h, w), 4, conv_expected(x, head, pol)))
    # pool and upsample on an even-sized tensor
    xp = rand_codes(rng, (2, 6, 10))
    xp_off = img.tensor(2, 6, 10, data=xp)
    yp_off = img.tensor(2, 3, 5)
    i = img.command(op=Op.MAXPOOL, cin=2, height=6, width=10, in_offset=xp_off, out_offset=yp_off)
    checks.append((i, "pool", yp_off, (2, 3, 5), 1, (pool_expected(xp), 0)))
    yu_off = img.tensor(2, 10, 14)
    i = img.command(op=Op.UPSAMPLE, cin=2, height=5, width=7, in_offset=x_off, out_offset=yu_off)
    checks.append((i, "up", yu_off, (2, 10, 14), 1, (upsample_expected(x[:2]), 0)))
    end = img.end()
    status, error, cycles = await tb.run(img)
    assert status["error"] == 0, error
    data = tb.mem.read(0, MEM_BYTES)
    for i, kind, off, shape, eb, (exp, term) in checks:
        got = read_tensor(data, off, shape, eb)
        assert np.array_equal(got, exp), (i, kind, img.commands[i].get("policy"), got, exp)
        st = tb.status_record(img, i)
        assert st["done"] == 1 and st["error"] == 0 and st["op"] == img.commands[i]["op"], st
        assert st["outputs"] == int(np.prod(shape)), st
        assert st["terminated"] == term, (i, st, term)
        dut._log.info("command %d (%s): %d cycles", i, kind, st["cycles"])
    assert tb.status_record(img, end)["done"] == 1
    dut._log.info("total %d cycles", cycles["count"])


@cocotb.test()
async def test_record_alignments(dut):
    """Channel records of every alignment the parameter parser meets, bit-exact: fan-ins
    below, at and above the parser's group of ``gcd(lanes, 8)`` bytes and the PE width
    (several weight rows per channel), every residue of the fan-in mod 8, 0 .. the most
    bias lanes, 4-byte fields on and off a beat boundary (a record padding word),
    requantization multipliers using all 4 bytes (FULL and RELU_END convs), and ``wneg``
    (SIGN_ONLY heads: the stop decisions, counted in ``terminated``). Small outputs, many
    channels: the parameter load is most of each command, so the cycle model's load term
    is checked too (deterministic memory, logged per command)."""
    from msdf_unet.golden.conv.cycles import TESTBENCH, image_cycles
    rng = np.random.default_rng(SEED + 7)
    tb = TB(dut, pause=0.0, latency=(0, 0), monitor=False)
    await tb.reset()
    img = Image(size=MEM_BYTES)
    L, NB = CONFIG.lanes, CONFIG.max_bias_lanes
    h, w, cout = 2, 3, 12
    # (cin, k, bias lanes, head): fan-ins 1..9, 16 (1x1), 9, 18, 45, 72, 153, lanes + 9 (3x3)
    shapes = [(1, 1, 0, 0), (2, 1, 1, 0), (3, 1, 2, 0), (4, 1, 0, 0), (5, 1, NB, 0), (6, 1, 3, 0),
              (7, 1, 0, 0), (8, 1, 0, 0), (9, 1, 1, 0), (16, 1, 2, 0), (1, 3, NB, 0), (2, 3, 4, 0),
              (5, 3, 0, 0), (8, 3, 0, 0), (17, 3, NB, 0), (L // 9 + 1, 3, 1, 0),
              (5, 1, 3, 1), (16, 1, 0, 1), (3, 1, NB, 1)]
    checks = []
    for i, (cin, k, nb, head) in enumerate(shapes):
        fan, nb = cin * k * k, min(nb, NB)
        if fan > CONFIG.max_fan_in or cin > CONFIG.max_channels:
            continue
        x = rand_codes(rng, (cin, h, w))
        x_off = img.tensor(cin, h, w, data=x)
        if head:
            pol, co = Policy.SIGN_ONLY, 1
            layer = ConvLayer.random(rng, cin, co, k, nb, relu=False, head=True)
        else:
            pol, co = (Policy.FULL, Policy.RELU_END)[i % 2], cout
            layer = ConvLayer.random(rng, cin, co, k, nb, relu=True)
            # multipliers of 29-30 bits, the shift keeping the codes in range
            layer.mult = rng.integers(1 << 29, 1 << 30, co)
            layer.shift = np.full(co, 29 + int(np.log2(np.sqrt(fan) * 127 * 74)) - 6)
        eb = 4 if head else 1
        y_off = img.tensor(co, h, w, eb)
        j = img.conv(layer, x_off, y_off, cin, h, w, pol)
        checks.append((j, (fan, nb, pol.name), y_off, eb, conv_expected(x, layer, pol)))
    img.end()
    predicted = image_cycles(bytearray(img.mem), CONFIG, img.cmd_offset, TESTBENCH)
    status, error, _ = await tb.run(img)
    assert status["error"] == 0, error
    data = tb.mem.read(0, MEM_BYTES)
    for j, what, off, eb, (exp, term) in checks:
        got = read_tensor(data, off, exp.shape, eb)
        assert np.array_equal(got, exp), (j, what, got, exp)
        assert eb == 4 or 0 < np.count_nonzero(exp) < exp.size, (what, exp)   # neither all 0 nor none
        st = tb.status_record(img, j)
        assert st["terminated"] == term, (what, st, term)
        dut._log.info("fan %3d, %2d bias lanes, %-9s: rtl %6d cycles, model %6d (%+.2f%%)", *what,
                      st["cycles"], predicted[j].cycles, 100 * (predicted[j].cycles - st["cycles"]) / st["cycles"])


@cocotb.test()
async def test_errors(dut):
    """Malformed commands and memory errors stop the list with the right code; never a hang."""
    rng = np.random.default_rng(SEED + 1)
    tb = TB(dut, bad=[(0xF0000, 0xF1000)])
    await tb.reset()
    x = rand_codes(rng, (2, 4, 4))
    layer = ConvLayer.random(rng, 2, 2, 3, 1, relu=True)

    def base():
        img = Image(size=MEM_BYTES)
        xo = img.tensor(2, 4, 4, data=x)
        return img, xo, img.tensor(2, 4, 4)

    cases = []
    img, xo, yo = base()
    raw = bytearray(encode_descriptor(op=Op.END, status_offset=img.status))
    raw[0] = 9                                                     # unknown op
    img.raw_command(bytes(raw))
    cases.append((img, ErrorCode.UNKNOWN_OP, 0))
    img, xo, yo = base()
    img.conv(layer, xo, yo, 2, 4, 4)
    img.command(op=Op.MAXPOOL, cin=0, height=4, width=4, in_offset=xo, out_offset=yo)   # zero size
    cases.append((img, ErrorCode.ZERO_SIZE, 1))
    img, xo, yo = base()
    img.command(op=Op.MAXPOOL, cin=2, height=4, width=4, in_offset=xo + 4, out_offset=yo)
    cases.append((img, ErrorCode.MISALIGNED, 0))
    img, xo, yo = base()
    img.command(op=Op.UPSAMPLE, cin=2, height=4, width=CONFIG.max_width, in_offset=xo, out_offset=yo)
    cases.append((img, ErrorCode.SIZE_LIMIT, 0))
    img, xo, yo = base()
    img.command(op=Op.MAXPOOL, cin=2, height=4, width=4, in_offset=xo, out_offset=MEM_BYTES - 8)
    cases.append((img, ErrorCode.OUT_OF_IMAGE, 0))
    img, xo, yo = base()
    img.command(op=Op.MAXPOOL, cin=2, height=4, width=4, in_offset=0xF0000, out_offset=yo)
    cases.append((img, ErrorCode.AXI_READ_SLVERR, 0))
    img, xo, yo = base()
    img.command(op=Op.MAXPOOL, cin=2, height=4, width=4, in_offset=xo, out_offset=0xF0000)
    cases.append((img, ErrorCode.AXI_WRITE_SLVERR, 0))
    for img, code, index in cases:
        img.end()
        status, error, _ = await tb.run(img)
        assert status["error"] == 1 and error == {"code": code, "index": index}, (code, status, error)
        assert tb.status_record(img, index)["done"] == 0      # no status for a failing command
    # watchdog: a conv cannot finish in 3 idle cycles of a slow memory
    tb.mem.latency_cycles = (20, 30)
    img, xo, yo = base()
    img.conv(layer, xo, yo, 2, 4, 4)
    img.end()
    status, error, _ = await tb.run(img, watchdog=3)
    assert status["error"] == 1 and error["code"] == ErrorCode.WATCHDOG, error


@cocotb.test(skip=os.environ.get("MSDF_TB_PROGRAM") is None)
async def test_program(dut):
    """A shipped program on a real test slice (``MSDF_TB_PROGRAM`` = task, ``MSDF_TB_HW`` =
    ``HxW`` crop of the slice, ``MSDF_TB_POLICY``), compiled by host/compiler.py: every
    tensor equals hwexact's, the labels too, and the status records (outputs, terminated)
    equal the functional model's."""
    from msdf_unet.golden.conv.model import run_image
    from msdf_unet.golden.data import load_dataset
    from msdf_unet.golden.evaluate import build_program
    from msdf_unet.golden.quant import quantize_input
    from msdf_unet.host.compiler import compile_program, write_input
    from msdf_unet.sim.conv.image import check_against_hwexact

    task = os.environ["MSDF_TB_PROGRAM"]
    policy = os.environ.get("MSDF_TB_POLICY", "end")
    program = build_program(task)
    imgs = load_dataset(task, "test").images
    x = quantize_input(program, imgs[len(imgs) // 2:len(imgs) // 2 + 1])[0].numpy()
    hw = os.environ.get("MSDF_TB_HW")
    if hw:
        h, w = (int(v) for v in hw.split("x"))
        y0, x0 = (x.shape[1] - h) // 2, (x.shape[2] - w) // 2
        x = np.ascontiguousarray(x[:, y0:y0 + h, x0:x0 + w])
    image = compile_program(program, CONFIG, policy=policy, reuse_memory=False,
                            input_hw=tuple(x.shape[1:]))
    write_input(image, x)
    size = 1 << max(20, (len(image.memory) - 1).bit_length())
    timed = os.environ.get("MSDF_TB_CYCLES") == "1"   # deterministic memory: compare the cycle model
    tb = TB(dut, pause=0.0 if timed else 0.05, latency=(0, 0) if timed else (0, 4), size=size,
            monitor=False)
    await tb.reset()
    pristine = bytearray(image.memory)
    status, error, cycles = await tb.run(image, max_cycles=200_000_000)
    assert status["error"] == 0, error
    image.memory[:] = tb.mem.read(0, len(image.memory))
    check_against_hwexact(image, program, x, policy)
    model_mem = bytearray(image.memory)
    model = run_image(model_mem, CONFIG, image.cmd_offset)
    assert not model.error
    for cmd, st, want in zip(image.commands, image.statuses(), model.statuses):
        assert st["done"] == 1 and st["error"] == 0 and st["op"] == cmd.op, (cmd.layer, st)
        assert (st["outputs"], st["terminated"]) == (want["outputs"], want["terminated"]), (cmd.layer, st, want)
        dut._log.info("%-12s %-8s cycles %9d outputs %7d terminated %6d", cmd.layer, cmd.op.name,
                      st["cycles"], st["outputs"], st["terminated"])
    dut._log.info("%s %s %s: %d cycles in total", task, hw or "full size", policy, cycles["count"])
    if timed:
        from msdf_unet.golden.conv.cycles import TESTBENCH, image_cycles
        predicted = image_cycles(pristine, CONFIG, image.cmd_offset, TESTBENCH)
        worst = 0.0
        for cmd, st, pc in zip(image.commands, image.statuses(), predicted):
            err = (pc.cycles - st["cycles"]) / st["cycles"]
            worst = max(worst, abs(err)) if cmd.op != Op.END else worst
            dut._log.info("cycle model %-12s rtl %8d model %8d  %+.2f%%", cmd.layer, st["cycles"],
                          pc.cycles, 100 * err)
        dut._log.info("cycle model: worst layer error %.2f%%", 100 * worst)
        assert worst <= float(os.environ.get("MSDF_TB_CYCLE_TOL", "0.02")), worst
