"""What the cocotb testbenches of the dot-product units share: clock, reset and the
packing of the ``i``/``o`` stream payloads of :mod:`msdf_unet.hdl.arith.iface`."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge

from msdf_unet.hdl.arith.iface import dot_product_io

__all__ = ["DotProductTB"]


class DotProductTB:
    """Starts a 100 MHz clock on ``dut.clk``; ``reset`` holds ``rst`` with the streams idle."""

    def __init__(self, dut, *, n_lanes: int, act_bits: int, signed_acts: bool):
        self.dut = dut
        i_sig, o_sig = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        self.i_layout = i_sig.members["payload"].shape
        self.o_layout = o_sig.members["payload"].shape
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())

    async def reset(self):
        self.dut.rst.value = 1
        self.dut.i__valid.value = 0
        self.dut.o__ready.value = 0
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await RisingEdge(self.dut.clk)

    def pack_payload(self, x, w, policy, digits: int) -> int:
        """Bits of an ``i`` payload; ``policy`` is a code or any enum member with that value
        (the RTL's ``iface.Policy`` or the golden ``mma.Policy``)."""
        code = int(getattr(policy, "value", policy))
        return self.i_layout.const({"x": [int(v) for v in x], "w": [int(v) for v in w],
                                    "policy": code, "digits": int(digits)}).as_bits()
