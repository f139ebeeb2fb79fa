"""Several clients of one :class:`~msdf_unet.hdl.bus.axi_master.AXI4Master`, one at a time."""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .axi_master import transfer_port

__all__ = ["TransferMux"]


class TransferMux(wiring.Component):
    """Connects client ``sel`` to the master; the others see no data, ``ready`` low and
    ``idle`` high. Switch ``sel`` only while the master is idle (the sequencer does).

    Members
    -------
    clients : ``In(transfer_port)`` x ``n``  (``client0`` .. ``client{n-1}``)
    master : ``Out(transfer_port)`` -- to the AXI4 master
    sel : ``In(range(n))``
    """

    def __init__(self, n: int, *, addr_width: int = 32, data_width: int = 64):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, not {n!r}")
        self.n = n
        port = transfer_port(addr_width, data_width)
        members = {f"client{j}": In(port) for j in range(n)}
        members.update({"master": Out(port), "sel": In(range(n))})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        mst = self.master
        for j in range(self.n):
            c = getattr(self, f"client{j}")
            m.d.comb += [c.rd_idle.eq(1), c.wr_idle.eq(1)]
            with m.If(self.sel == j):
                m.d.comb += [
                    mst.rd_cmd.valid.eq(c.rd_cmd.valid), mst.rd_cmd.payload.eq(c.rd_cmd.payload),
                    c.rd_cmd.ready.eq(mst.rd_cmd.ready),
                    c.rd_data.valid.eq(mst.rd_data.valid), c.rd_data.payload.eq(mst.rd_data.payload),
                    mst.rd_data.ready.eq(c.rd_data.ready),
                    mst.wr_cmd.valid.eq(c.wr_cmd.valid), mst.wr_cmd.payload.eq(c.wr_cmd.payload),
                    c.wr_cmd.ready.eq(mst.wr_cmd.ready),
                    mst.wr_data.valid.eq(c.wr_data.valid), mst.wr_data.payload.eq(c.wr_data.payload),
                    c.wr_data.ready.eq(mst.wr_data.ready),
                    c.rd_idle.eq(mst.rd_idle), c.wr_idle.eq(mst.wr_idle),
                ]
        return m
