"""cocotb module that runs a batch of dot products on the RTL through the host driver.

Used by :func:`msdf_unet.sim.soc.batch.run_on_rtl`: the cases come as JSON in the file named
by ``MSDF_BATCH_IN`` (a list of ``{"x", "w", "bias", "policy", "digits"}``), the results go
as JSON to ``MSDF_BATCH_OUT``. Nothing is checked here: the caller compares.
"""
import json
import os
from dataclasses import asdict

import cocotb
from cocotb.clock import Clock
from cocotb.task import bridge
from cocotb.triggers import ClockCycles
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from msdf_unet.host.driver import DotProductDriver
from msdf_unet.host.mmio import CocotbMMIO


@cocotb.test()
async def run_batch(dut):
    cases = json.loads(open(os.environ["MSDF_BATCH_IN"]).read())
    cocotb.start_soon(Clock(dut.aclk, 10, unit="ns").start())
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axi_ctrl"), dut.aclk, dut.aresetn,
                         reset_active_level=False)
    dut.aresetn.value = 0
    await ClockCycles(dut.aclk, 4)
    dut.aresetn.value = 1
    await ClockCycles(dut.aclk, 2)

    def run():
        driver = DotProductDriver(CocotbMMIO(axil))
        return [asdict(driver.dot(c["x"], c["w"], c.get("bias", 0), policy=c.get("policy", "full"),
                                  digits=c.get("digits"), timeout_s=60)) for c in cases]

    results = await bridge(run)()
    with open(os.environ["MSDF_BATCH_OUT"], "w") as f:
        json.dump(results, f)
