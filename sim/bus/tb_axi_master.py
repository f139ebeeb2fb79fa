"""cocotb testbench of :class:`msdf_unet.hdl.bus.axi_master.AXI4Master` against
cocotbext-axi's AXI RAM with random latency and backpressure.

Expected values: the memory's own contents (reads) and a Python bytearray model of the
memory (writes); expected bursts: :func:`msdf_unet.hdl.bus.axi4.burst_split`.
"""
from __future__ import annotations

import os
import random

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from msdf_unet.hdl.bus.axi4 import MAX_BURST_BEATS, BOUNDARY_BYTES, RESP_OKAY, RESP_SLVERR, burst_split
from msdf_unet.hdl.bus.axi_master import read_beat_layout, transfer_layout, write_beat_layout
from msdf_unet.sim.bus.axi_mem import TestMemory
from msdf_unet.sim.bus.streams import StreamSink, StreamSource, pack, unpack

MEM_BYTES = 1 << 16
MAX_READS = int(os.environ.get("MAX_READS", "4"))
N_TRANSFERS = int(os.environ.get("N_TRANSFERS", "40"))
TL, RL, WL = transfer_layout(), read_beat_layout(), write_beat_layout()


class TB:
    def __init__(self, dut, seed, *, pause=0.3, latency=(0, 12), bad=()):
        self.dut = dut
        self.rng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.clear.value = 0
        self.mem = TestMemory(dut, clock=dut.clk, reset=dut.rst, size=MEM_BYTES, seed=seed,
                              latency_cycles=latency, pause=pause, bad=bad)
        self.rd_cmd = StreamSource(dut, "port__rd_cmd", dut.clk, rng=self.rng, idle=0.2)
        self.wr_cmd = StreamSource(dut, "port__wr_cmd", dut.clk, rng=self.rng, idle=0.2)
        self.wr_data = StreamSource(dut, "port__wr_data", dut.clk, rng=self.rng, idle=0.2)
        self.rd_data = StreamSink(dut, "port__rd_data", dut.clk, rng=self.rng, stall=0.2)
        cocotb.start_soon(self.rd_data.run())

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def random_transfer(self):
        rng = self.rng
        beats = rng.choice([1, 2, 15, 16, 17, rng.randint(1, 100)])
        if rng.random() < 0.5:  # start just below a 4 KiB boundary
            page = rng.randrange(1, MEM_BYTES // BOUNDARY_BYTES - 1)
            addr = page * BOUNDARY_BYTES - 8 * rng.randint(1, 20)
        else:
            addr = 8 * rng.randrange(0, (MEM_BYTES - 8 * beats) // 8)
        return addr, beats

    async def wait_idle(self, name, timeout=20000):
        for _ in range(timeout):
            await RisingEdge(self.dut.clk)
            await ReadOnly()
            if getattr(self.dut, name).value == 1:
                await RisingEdge(self.dut.clk)
                return
        raise AssertionError(f"{name} never rose")


def check_bursts(log, transfers):
    expected = [b for addr, beats in transfers for b in burst_split(addr, beats)]
    assert log == expected, (log[:8], expected[:8])
    for addr, beats in log:
        assert 1 <= beats <= MAX_BURST_BEATS
        assert addr // BOUNDARY_BYTES == (addr + 8 * beats - 1) // BOUNDARY_BYTES


@cocotb.test()
async def test_reads(dut):
    """Random read transfers: data, transfer ends, burst rules, reads outstanding."""
    tb = TB(dut, seed=1)
    await tb.reset()
    tb.mem.write(0, bytes(tb.rng.randrange(256) for _ in range(MEM_BYTES)))
    transfers = [tb.random_transfer() for _ in range(N_TRANSFERS)]
    for addr, beats in transfers:
        await tb.rd_cmd.send(pack(TL, addr=addr, beats=beats))
    await tb.wait_idle("port__rd_idle")
    expected = []
    for addr, beats in transfers:
        for k in range(beats):
            expected.append({"data": int.from_bytes(tb.mem.read(addr + 8 * k, 8), "little"),
                             "resp": RESP_OKAY, "last": int(k == beats - 1)})
    got = [unpack(RL, w) for w in tb.rd_data.items]
    assert len(got) == len(expected)
    for j, (g, e) in enumerate(zip(got, expected)):
        assert g == e, (j, g, e)
    check_bursts(tb.mem.ar_log, transfers)
    assert tb.mem.max_reads_outstanding == MAX_READS, tb.mem.max_reads_outstanding
    assert int(dut.rd_resp.value) == RESP_OKAY


@cocotb.test()
async def test_writes(dut):
    """Random write transfers with random byte enables land in memory exactly."""
    tb = TB(dut, seed=2)
    await tb.reset()
    model = bytearray(tb.rng.randrange(256) for _ in range(MEM_BYTES))
    tb.mem.write(0, bytes(model))
    transfers = [tb.random_transfer() for _ in range(N_TRANSFERS)]

    async def feed_data():
        for addr, beats in transfers:
            for k in range(beats):
                data = bytes(tb.rng.randrange(256) for _ in range(8))
                strb = tb.rng.choice([0xFF, 0xFF, tb.rng.randrange(256)])
                for b in range(8):
                    if strb >> b & 1:
                        model[addr + 8 * k + b] = data[b]
                await tb.wr_data.send(pack(WL, data=int.from_bytes(data, "little"), strb=strb))

    feeder = cocotb.start_soon(feed_data())
    for addr, beats in transfers:
        await tb.wr_cmd.send(pack(TL, addr=addr, beats=beats))
    await feeder
    await tb.wait_idle("port__wr_idle")
    assert tb.mem.read(0, MEM_BYTES) == bytes(model)
    check_bursts(tb.mem.aw_log, transfers)
    assert int(dut.wr_resp.value) == RESP_OKAY


@cocotb.test()
async def test_error_responses(dut):
    """SLVERR on read and write is reported (sticky) and the transfers still complete."""
    bad = (0x3000, 0x3100)
    tb = TB(dut, seed=3, bad=[bad])
    await tb.reset()
    await tb.rd_cmd.send(pack(TL, addr=0x1000, beats=20))
    await tb.wait_idle("port__rd_idle")
    assert int(dut.rd_resp.value) == RESP_OKAY
    await tb.rd_cmd.send(pack(TL, addr=bad[0] - 64, beats=20))
    await tb.wait_idle("port__rd_idle")
    assert int(dut.rd_resp.value) == RESP_SLVERR
    beats = [unpack(RL, w) for w in tb.rd_data.items]
    assert len(beats) == 40 and beats[-1]["last"] == 1
    assert [b["resp"] for b in beats[20:]] == [RESP_OKAY] * 8 + [RESP_SLVERR] * 12
    assert int(dut.wr_resp.value) == RESP_OKAY
    await tb.wr_cmd.send(pack(TL, addr=bad[1] - 8, beats=2))
    for _ in range(2):
        await tb.wr_data.send(pack(WL, data=0, strb=0xFF))
    await tb.wait_idle("port__wr_idle")
    assert int(dut.wr_resp.value) == RESP_SLVERR
    dut.clear.value = 1
    await RisingEdge(dut.clk)
    dut.clear.value = 0
    await RisingEdge(dut.clk)
    await ReadOnly()
    assert int(dut.rd_resp.value) == RESP_OKAY and int(dut.wr_resp.value) == RESP_OKAY
