"""What the cocotb testbenches of the dot-product units share: clock, reset, the
packing of the ``i``/``o`` stream payloads of :mod:`msdf_unet.hdl.arith.iface`, and the
stream driver of :func:`msdf_unet.golden.arith.baselines.simulate`'s rule."""
import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

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

    def pack(self, t) -> int:
        """Bits of the ``i`` payload of transaction ``t`` (a subclass defines it)."""
        raise NotImplementedError

    def unpack(self, raw: int):
        """The golden result of the ``o`` payload bits ``raw`` (a subclass defines it)."""
        raise NotImplementedError

    async def run(self, txns, valid_pattern, ready_pattern):
        """Drive like ``baselines.simulate`` (``i.valid`` stays up until accepted; new offers
        follow ``valid_pattern``; ``o.ready`` follows ``ready_pattern``); return
        ``(accept cycles, [(cycle, result)])``."""
        dut = self.dut
        accepts, outputs = [], []
        nxt, offering = 0, False
        for c, (want, rdy) in enumerate(zip(valid_pattern, ready_pattern)):
            offering = nxt < len(txns) and (offering or bool(want))
            dut.i__valid.value = int(offering)
            if offering:
                dut.i__payload.value = self.pack(txns[nxt])
            dut.o__ready.value = int(rdy)
            await ReadOnly()
            if int(dut.o__valid.value) and rdy:
                outputs.append((c, self.unpack(dut.o__payload.value.to_unsigned())))
            if offering and int(dut.i__ready.value):
                accepts.append(c)
                nxt += 1
                offering = False
            await RisingEdge(dut.clk)
        return accepts, outputs
