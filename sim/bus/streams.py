"""Drive and watch Amaranth ``lib.stream`` ports (``<name>__valid/ready/payload``) from
cocotb, packing struct payloads from their Amaranth layout (no bit offsets typed here)."""
from __future__ import annotations

import random

from cocotb.triggers import ReadOnly, RisingEdge

__all__ = ["pack", "unpack", "StreamSource", "StreamSink"]


def pack(layout, **fields) -> int:
    """The integer a ``data.StructLayout`` payload holds for ``fields`` (unsigned fields)."""
    word = 0
    names = {name for name, _ in layout}
    for name, value in fields.items():
        if name not in names:
            raise KeyError(f"layout has no field {name!r}; fields: {sorted(names)}")
        f = layout[name]
        if not 0 <= value < (1 << f.width):
            raise ValueError(f"field {name!r} holds {f.width} bits, not {value!r}")
        word |= value << f.offset
    return word


def unpack(layout, word: int) -> dict[str, int]:
    return {name: (word >> f.offset) & ((1 << f.width) - 1) for name, f in layout}


class StreamSource:
    """Sends payloads on ``dut.<name>__*`` with random idle cycles (probability ``idle``)."""

    def __init__(self, dut, name, clock, *, rng=None, idle=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clock, self.rng, self.idle = clock, rng or random.Random(0), idle
        self.valid.value = 0

    async def send(self, word: int):
        while self.idle and self.rng.random() < self.idle:
            await RisingEdge(self.clock)
        self.valid.value = 1
        self.payload.value = word
        while True:
            await ReadOnly()
            done = self.ready.value == 1
            await RisingEdge(self.clock)
            if done:
                break
        self.valid.value = 0


class StreamSink:
    """Collects payloads from ``dut.<name>__*`` with random backpressure (``stall``)."""

    def __init__(self, dut, name, clock, *, rng=None, stall=0.0):
        self.valid = getattr(dut, f"{name}__valid")
        self.ready = getattr(dut, f"{name}__ready")
        self.payload = getattr(dut, f"{name}__payload")
        self.clock, self.rng, self.stall = clock, rng or random.Random(0), stall
        self.items: list[int] = []
        self.ready.value = 0

    async def run(self):
        while True:
            self.ready.value = int(not (self.stall and self.rng.random() < self.stall))
            await ReadOnly()
            if self.valid.value == 1 and self.ready.value == 1:
                self.items.append(int(self.payload.value))
            await RisingEdge(self.clock)
