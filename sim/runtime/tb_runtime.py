"""cocotb module: compiled-image runs on the engine RTL through the board driver.

Used by :func:`msdf_unet.sim.runtime.runner.run_on_rtl`. The image comes from the file in
``MSDF_RT_IMAGE`` (``host/compiler.py: save_image``), the INT8 input codes ``[N, C, H, W]``
from ``MSDF_RT_CODES`` (``.npy``); for each input the same
:class:`~msdf_unet.host.engine_driver.EngineDriver` that runs on the board writes the
image into the AXI RAM (the DDR of the simulation), programs the registers through
cocotbext-axi's AXI-Lite master, starts the engine and waits for its interrupt; the head
outputs and ``CYCLES`` go to ``MSDF_RT_OUT`` (``.npz``). Nothing is checked here.
"""
import os

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.task import bridge, resume
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from msdf_unet.host.compiler import load_image, read_tensor, write_input
from msdf_unet.host.engine_driver import EngineDriver
from msdf_unet.host.mmio import CocotbMMIO
from msdf_unet.sim.bus.axi_mem import TestMemory


class RamMemory:
    """EngineDriver's memory interface over cocotbext-axi's RAM (physical base 0)."""

    base = 0

    def __init__(self, ram):
        self.ram = ram
        self.nbytes = ram.size

    def write(self, offset, data):
        self.ram.write(offset, bytes(data))

    def read(self, offset, n):
        return bytes(self.ram.read(offset, n))

    def to_device(self):
        pass

    def from_device(self):
        pass


@cocotb.test()
async def run_images(dut):
    image = load_image(os.environ["MSDF_RT_IMAGE"])
    codes = np.load(os.environ["MSDF_RT_CODES"])
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil_"), dut.clk, dut.rst)
    size = 1 << max(16, (image.mem_size - 1).bit_length())
    ram = TestMemory(dut, clock=dut.clk, reset=dut.rst, size=size, monitor=False)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 4)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    async def until_irq():
        while dut.irq.value != 1:
            await ClockCycles(dut.clk, 64)

    def wait(done, timeout_s):  # advance the simulation in big steps, not one read at a time
        resume(until_irq)()

    def run():
        driver = EngineDriver(CocotbMMIO(axil), RamMemory(ram), wait=wait)
        heads, cycles = [], []
        for c in codes:
            write_input(image, c)
            r = driver.run(image, timeout_s=1e6, irq=True)
            heads.append(read_tensor(image, image.output))
            cycles.append(r.cycles)
        return np.stack(heads), np.asarray(cycles, np.int64)

    heads, cycles = await bridge(run)()
    np.savez(os.environ["MSDF_RT_OUT"], heads=heads, cycles=cycles)
