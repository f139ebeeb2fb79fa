"""AXI4-Lite: the bus signature and a register-file slave generated from a register map.

Port names follow the AXI4-Lite specification (``awaddr``, ``wstrb``, ...); a component
member ``s_axil`` of this signature flattens to ``s_axil__awaddr`` etc. in Verilog, which
cocotbext-axi binds with ``AxiLiteBus.from_prefix(dut, "s_axil_")``.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from .regmap import Register, RegisterMap

__all__ = ["AXI4LiteSignature", "AXI4LiteRegisters", "registers_signature", "RESP_OKAY", "RESP_SLVERR", "field_layout"]

RESP_OKAY = 0b00
RESP_SLVERR = 0b10


class AXI4LiteSignature(wiring.Signature):
    """AXI4-Lite, seen from the master (flip it for a slave).

    Parameters
    ----------
    addr_width : int
        Byte address bits.
    data_width : int
        32 or 64.
    """

    def __init__(self, *, addr_width: int, data_width: int = 32):
        if not isinstance(addr_width, int) or not 2 <= addr_width <= 32:
            raise ValueError(f"addr_width must be an integer in [2, 32], not {addr_width!r}")
        if data_width not in (32, 64):
            raise ValueError(f"data_width must be 32 or 64, not {data_width!r}")
        self.addr_width = addr_width
        self.data_width = data_width
        super().__init__({
            "awaddr": Out(addr_width), "awprot": Out(3), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wvalid": Out(1),
            "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_width), "arprot": Out(3), "arvalid": Out(1), "arready": In(1),
            "rdata": In(data_width), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


def field_layout(reg: Register) -> data.FlexibleLayout:
    """The 32-bit word of ``reg`` as a layout whose members are its fields."""
    return data.FlexibleLayout(32, {
        f.name: data.Field(signed(f.width) if f.signed else unsigned(f.width), f.offset)
        for f in reg.fields})


def registers_signature(regmap: RegisterMap) -> wiring.Signature:
    """The register-side ports of :class:`AXI4LiteRegisters`, seen from the register file.

    Per register, a view of its fields (an array of views when ``count > 1``):
    ``rw`` registers ``Out`` (the stored value, reset 0); ``r`` registers ``In`` (the value
    the hardware presents); ``w`` registers ``Out`` (the value written, valid in the cycle
    ``<name>_stb`` is 1, a one-cycle pulse per write).
    """
    members = {}
    for reg in regmap.registers:
        layout = field_layout(reg)
        if reg.count > 1:
            if reg.access == "w":
                raise ValueError(f"register {reg.name!r}: write-strobe registers cannot be arrays")
            layout = data.ArrayLayout(layout, reg.count)
        members[reg.name] = (In if reg.access == "r" else Out)(layout)
        if reg.access == "w":
            members[f"{reg.name}_stb"] = Out(1)
    return wiring.Signature(members)


class AXI4LiteRegisters(wiring.Component):
    """AXI4-Lite slave holding the registers of a :class:`RegisterMap`.

    Members
    -------
    s_axil : ``In(AXI4LiteSignature)``
        The bus (slave side).
    regs : ``Out(registers_signature(regmap))``
        One member per register (see :func:`registers_signature`); the logic that uses the
        registers connects to it with ``In(registers_signature(regmap))``.

    Timing and rules
    ----------------
    - A write is accepted when ``awvalid`` and ``wvalid`` are both high and no write
      response is pending (``awready`` = ``wready`` in that cycle); storage updates and
      ``_stb`` pulses in the next cycle; ``bvalid`` rises one cycle after acceptance and
      holds until ``bready``. ``wstrb`` selects the bytes of ``rw`` registers.
    - A read is accepted when ``arvalid`` is high and no read data is pending; ``rdata``
      and ``rvalid`` follow one cycle later and hold until ``rready``.
    - Bad accesses get ``SLVERR`` and change nothing: an address beyond the map, an address
      not aligned to 4 bytes, a write to an ``r`` register. Reading a ``w`` register
      returns 0 with ``OKAY``.
    """

    def __init__(self, regmap: RegisterMap):
        if not isinstance(regmap, RegisterMap):
            raise TypeError(f"regmap must be a RegisterMap, not {regmap!r}")
        self.regmap = regmap
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=regmap.addr_width)),
            "regs": Out(registers_signature(regmap)),
        })

    def _word(self, reg: Register, index: int):
        port = getattr(self.regs, reg.name)
        return (port[index] if reg.count > 1 else port).as_value()

    def elaborate(self, platform):
        m = Module()
        bus = self.s_axil

        # --- write channel -------------------------------------------------------------
        write_ok = Signal()
        accept_w = Signal()
        m.d.comb += accept_w.eq(bus.awvalid & bus.wvalid & ~bus.bvalid)
        m.d.comb += [bus.awready.eq(accept_w), bus.wready.eq(accept_w)]
        wstrb_mask = Cat(*(b.replicate(8) for b in bus.wstrb))

        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        with m.If(accept_w):
            m.d.sync += bus.bvalid.eq(1)

        for reg in self.regmap.registers:
            if reg.access == "w":
                m.d.sync += getattr(self.regs, f"{reg.name}_stb").eq(0)

        with m.If(accept_w):
            with m.Switch(bus.awaddr):
                for addr, reg, index in self.regmap.words():
                    with m.Case(addr):
                        if reg.access == "rw":
                            word = self._word(reg, index)
                            m.d.sync += word.eq((word & ~wstrb_mask) | (bus.wdata & wstrb_mask))
                            m.d.comb += write_ok.eq(1)
                        elif reg.access == "w":
                            m.d.sync += [self._word(reg, index).eq(bus.wdata),
                                         getattr(self.regs, f"{reg.name}_stb").eq(1)]
                            m.d.comb += write_ok.eq(1)
            m.d.sync += bus.bresp.eq(Mux(write_ok, RESP_OKAY, RESP_SLVERR))

        # --- read channel --------------------------------------------------------------
        accept_r = Signal()
        m.d.comb += [accept_r.eq(bus.arvalid & ~bus.rvalid), bus.arready.eq(accept_r)]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(accept_r):
            m.d.sync += [bus.rvalid.eq(1), bus.rdata.eq(0), bus.rresp.eq(RESP_SLVERR)]
            with m.Switch(bus.araddr):
                for addr, reg, index in self.regmap.words():
                    with m.Case(addr):
                        value = Const(0, 32) if reg.access == "w" else self._word(reg, index)
                        m.d.sync += [bus.rdata.eq(value), bus.rresp.eq(RESP_OKAY)]
        return m
