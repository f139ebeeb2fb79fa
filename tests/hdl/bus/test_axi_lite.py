"""AXI4-Lite register file in the Amaranth simulator: every access rule of its contract."""
import random

from amaranth.sim import Simulator

from msdf_unet.hdl.bus.axi_lite import RESP_OKAY, RESP_SLVERR, AXI4LiteRegisters
from msdf_unet.hdl.bus.regmap import Field, Register, RegisterMap

MAP = RegisterMap("t", (
    Register("RO", "r", (Field("v", 0, 32),)),
    Register("RW", "rw", (Field("lo", 0, 8, signed=True), Field("hi", 16, 16)), count=2),
    Register("GO", "w", (Field("go", 0, 1), Field("arg", 8, 8))),
), addr_width=6)  # wider than the map needs: addresses past the map decode as unmapped


async def axi_write(ctx, bus, addr, data, strb=0xF, rng=None):
    ctx.set(bus.awaddr, addr)
    ctx.set(bus.wdata, data)
    ctx.set(bus.wstrb, strb)
    ctx.set(bus.awvalid, 1)
    ctx.set(bus.wvalid, 1)
    await ctx.tick().until(bus.awready & bus.wready)
    ctx.set(bus.awvalid, 0)
    ctx.set(bus.wvalid, 0)
    if rng:  # backpressure on the response channel
        await ctx.tick().repeat(1 + rng.randrange(3))
    ctx.set(bus.bready, 1)
    resp, = await ctx.tick().sample(bus.bresp).until(bus.bvalid)
    ctx.set(bus.bready, 0)
    return resp


async def axi_read(ctx, bus, addr, rng=None):
    ctx.set(bus.araddr, addr)
    ctx.set(bus.arvalid, 1)
    await ctx.tick().until(bus.arready)
    ctx.set(bus.arvalid, 0)
    if rng:
        await ctx.tick().repeat(1 + rng.randrange(3))
    ctx.set(bus.rready, 1)
    data, resp = await ctx.tick().sample(bus.rdata, bus.rresp).until(bus.rvalid)
    ctx.set(bus.rready, 0)
    return data, resp


def run(testbench):
    dut = AXI4LiteRegisters(MAP)
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    strobes = []

    async def watch(ctx):
        async for _, _, stb, value in ctx.tick().sample(dut.regs.GO_stb, dut.regs.GO.as_value()):
            if stb:
                strobes.append(value)

    sim.add_process(watch)
    async def main(ctx):
        await testbench(ctx, dut, strobes)

    sim.add_testbench(main)
    sim.run()


def test_read_write_rules():
    async def tb(ctx, dut, strobes):
        bus = dut.s_axil
        ctx.set(dut.regs.RO.as_value(), 0xDEADBEEF)
        assert await axi_read(ctx, bus, MAP.address("RO")) == (0xDEADBEEF, RESP_OKAY)
        # a write to a read-only register is refused and changes nothing
        assert await axi_write(ctx, bus, MAP.address("RO"), 1) == RESP_SLVERR
        # rw registers store, per element, and byte strobes select bytes
        assert await axi_write(ctx, bus, MAP.address("RW", 1), 0x1234_00FF) == RESP_OKAY
        assert ctx.get(dut.regs.RW[1].lo) == -1 and ctx.get(dut.regs.RW[1].hi) == 0x1234
        assert ctx.get(dut.regs.RW[0].as_value()) == 0
        assert await axi_write(ctx, bus, MAP.address("RW", 1), 0xAAAA_AA05, strb=0b0001) == RESP_OKAY
        assert (await axi_read(ctx, bus, MAP.address("RW", 1)))[0] == 0x1234_0005
        # out of the map and unaligned: SLVERR, nothing changes
        assert await axi_write(ctx, bus, 4 * MAP.n_words, 7) == RESP_SLVERR
        assert await axi_write(ctx, bus, MAP.address("RW", 0) + 1, 7) == RESP_SLVERR
        assert await axi_read(ctx, bus, 4 * MAP.n_words) == (0, RESP_SLVERR)
        assert ctx.get(dut.regs.RW[0].as_value()) == 0
        # a write-strobe register pulses once per write and reads back as 0
        assert await axi_write(ctx, bus, MAP.address("GO"), 0x0301) == RESP_OKAY
        assert await axi_read(ctx, bus, MAP.address("GO")) == (0, RESP_OKAY)
        await ctx.tick().repeat(2)
        assert strobes == [0x0301]
    run(tb)


def test_random_traffic_with_backpressure_matches_a_dict_model():
    rng = random.Random(1)

    async def tb(ctx, dut, strobes):
        bus = dut.s_axil
        model = {MAP.address("RW", i): 0 for i in range(2)}
        for _ in range(60):
            addr = rng.choice(list(model))
            if rng.random() < 0.5:
                data, strb = rng.getrandbits(32), rng.getrandbits(4)
                mask = sum(0xFF << (8 * b) for b in range(4) if strb >> b & 1)
                model[addr] = (model[addr] & ~mask) | (data & mask)
                assert await axi_write(ctx, bus, addr, data, strb, rng) == RESP_OKAY
            else:
                assert await axi_read(ctx, bus, addr, rng) == (model[addr], RESP_OKAY)
            await ctx.tick().repeat(1 + rng.randrange(2))
    run(tb)
