"""Memory for cocotb testbenches of AXI4 masters: cocotbext-axi's RAM with random latency,
random backpressure and address windows that answer SLVERR.

:class:`TestMemory` binds the ``m_axi__*`` ports of a DUT (``AxiBus.from_prefix(dut,
"m_axi_")``) and keeps cocotbext-axi's own checks (it asserts that no INCR burst crosses a
4 KiB boundary and that WLAST falls on the burst's last beat). It also records every
AR/AW burst, so a test can check the burst rules and count outstanding reads.
"""
from __future__ import annotations

import random

import cocotb
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus
from cocotbext.axi.axi_ram import AxiRamRead, AxiRamWrite
from cocotbext.axi.memory import Memory

__all__ = ["TestMemory", "random_pauses"]


def random_pauses(rng: random.Random, p: float):
    """Pause generator for cocotbext-axi channels: pause with probability ``p``."""
    while True:
        yield rng.random() < p


class _Faulty:
    """Mixin: raise (-> SLVERR) on addresses in ``owner.bad``; a per-burst latency."""

    owner: "TestMemory"

    def _bad(self, address, length):
        return any(lo < address + length and address < hi for lo, hi in self.owner.bad)


class _Read(_Faulty, AxiRamRead):
    async def _read(self, address, length):
        if self._bad(address, length):
            raise IOError(f"read of a bad address {address:#x}")
        return await super()._read(address, length)


class _Write(_Faulty, AxiRamWrite):
    async def _write(self, address, data):
        if self._bad(address, len(data)):
            raise IOError(f"write to a bad address {address:#x}")
        return await super()._write(address, data)


class TestMemory(Memory):
    """AXI4 slave memory of ``size`` bytes on the DUT's ``prefix`` ports.

    Parameters
    ----------
    latency_cycles : (lo, hi)
        Each accepted read burst waits a random number of cycles in ``[lo, hi]`` before its
        first beat (bursts are served in order, one at a time, as cocotbext-axi does).
    pause : float
        Probability of a pause cycle on every channel (AR/AW/W acceptance, R/B delivery).
    bad : list of (lo, hi)
        Byte ranges answered with SLVERR.
    monitor : bool
        Record bursts and outstanding reads (costs simulation speed).
    """

    __test__ = False  # not a pytest class

    def __init__(self, dut, *, clock, reset, size: int, prefix: str = "m_axi_", seed: int = 0,
                 latency_cycles=(0, 0), pause: float = 0.0, bad=(), monitor: bool = True):
        super().__init__(size)
        self.rng = random.Random(seed)
        self.clock = clock
        self.bad = list(bad)
        bus = AxiBus.from_prefix(dut, prefix)
        self.read_if = _Read(bus.read, clock, reset, True, mem=self.mem)
        self.write_if = _Write(bus.write, clock, reset, True, mem=self.mem)
        self.read_if.owner = self.write_if.owner = self
        self.bus = bus
        self.ar_log, self.aw_log = [], []      # (addr, beats) of every burst, in order
        self.max_reads_outstanding = 0
        self.latency_cycles = latency_cycles
        recv = self.read_if.ar_channel.recv

        async def delayed_recv():
            ar = await recv()
            lo, hi = self.latency_cycles
            if hi:
                await ClockCycles(clock, self.rng.randint(lo, hi))
            return ar
        self.read_if.ar_channel.recv = delayed_recv
        if pause:
            w, r = self.write_if, self.read_if
            for ch in (w.aw_channel, w.w_channel, w.b_channel, r.ar_channel, r.r_channel):
                ch.set_pause_generator(random_pauses(self.rng, pause))
        if monitor:   # a Python coroutine every cycle: off for long runs
            cocotb.start_soon(self._monitor(dut, prefix))

    async def _monitor(self, dut, prefix):
        sig = lambda n: getattr(dut, f"{prefix}_{n}")  # noqa: E731
        outstanding = 0
        while True:
            await RisingEdge(self.clock)
            await ReadOnly()
            if sig("arvalid").value == 1 and sig("arready").value == 1:
                self.ar_log.append((int(sig("araddr").value), int(sig("arlen").value) + 1))
                outstanding += 1
            if sig("awvalid").value == 1 and sig("awready").value == 1:
                self.aw_log.append((int(sig("awaddr").value), int(sig("awlen").value) + 1))
            if sig("rvalid").value == 1 and sig("rready").value == 1 and sig("rlast").value == 1:
                outstanding -= 1
            self.max_reads_outstanding = max(self.max_reads_outstanding, outstanding)
