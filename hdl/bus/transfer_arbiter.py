"""Several memory clients sharing one :class:`~msdf_unet.hdl.bus.axi_master.AXI4Master` at once."""
from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from .axi_master import TRANSFER_BEATS_BITS, transfer_port

__all__ = ["TransferArbiter"]


class TransferArbiter(wiring.Component):
    """Round-robin arbiter of ``n`` clients' transfers onto one master port.

    Reads: a client's ``rd_cmd`` is granted when the tag FIFO (``max_reads`` transfers)
    has room; its index is queued and the read data is routed to the client at the head
    of the queue until the transfer's ``last`` beat (the master returns data in order).
    Writes: one write transfer at a time; the W channel belongs to the granted client until
    its ``beats`` beats are sent. ``rd_idle`` of a client: none of its read transfers is in
    flight (granted and not yet fully received); ``wr_idle``: the master's (every write response received).

    Members: ``client0`` .. ``client{n-1}`` (``In(transfer_port)``), ``master``
    (``Out(transfer_port)``).
    """

    def __init__(self, n: int, *, max_reads: int = 8):
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive integer, not {n!r}")
        self.n, self.max_reads = n, max_reads
        members = {f"client{j}": In(transfer_port()) for j in range(n)}
        members["master"] = Out(transfer_port())
        super().__init__(members)

    @staticmethod
    def _first(m, start, valids, grant, any_):
        """``grant`` = the first index with ``valids[i]`` from ``start`` on (cyclically)."""
        n = len(valids)
        m.d.comb += any_.eq(Cat(*valids).any())
        for r in range(n):
            with m.If(start == r):
                order = [(r + i) % n for i in range(n)]
                m.d.comb += grant.eq(r)
                for j in reversed(order):   # the first in order wins (assigned last)
                    with m.If(valids[j]):
                        m.d.comb += grant.eq(j)

    def elaborate(self, platform):
        m = Module()
        n = self.n
        mst = self.master
        cl = [getattr(self, f"client{j}") for j in range(n)]
        # ---------------- reads ----------------
        m.submodules.tags = tags = fifo.SyncFIFO(width=max(1, (n - 1).bit_length()), depth=self.max_reads)
        rr = Signal(range(n))       # the client with the highest priority
        grant = Signal(range(n))    # the first requesting client from rr on (comb)
        any_req = Signal()
        pending = [Signal(range(self.max_reads + 2), name=f"pending{j}") for j in range(n)]
        self._first(m, rr, [c.rd_cmd.valid for c in cl], grant, any_req)
        for j in range(n):
            with m.If(grant == j):
                m.d.comb += [mst.rd_cmd.valid.eq(cl[j].rd_cmd.valid & tags.w_rdy),
                             mst.rd_cmd.payload.eq(cl[j].rd_cmd.payload),
                             cl[j].rd_cmd.ready.eq(mst.rd_cmd.ready & tags.w_rdy)]
        rd_hs = Signal()
        m.d.comb += [rd_hs.eq(mst.rd_cmd.valid & mst.rd_cmd.ready),
                     tags.w_en.eq(rd_hs), tags.w_data.eq(grant)]
        with m.If(rd_hs):
            m.d.sync += rr.eq(Mux(grant == n - 1, 0, grant + 1))
        head = tags.r_data
        last_beat = Signal()
        for j in range(n):
            with m.If(tags.r_rdy & (head == j)):
                m.d.comb += [cl[j].rd_data.valid.eq(mst.rd_data.valid),
                             cl[j].rd_data.payload.eq(mst.rd_data.payload),
                             mst.rd_data.ready.eq(cl[j].rd_data.ready)]
        m.d.comb += [last_beat.eq(mst.rd_data.valid & mst.rd_data.ready & mst.rd_data.payload.last),
                     tags.r_en.eq(last_beat)]
        for j in range(n):
            inc = rd_hs & (grant == j)
            dec = last_beat & (head == j)
            m.d.sync += pending[j].eq(pending[j] + inc - dec)
            m.d.comb += cl[j].rd_idle.eq(pending[j] == 0)
        # ---------------- writes ----------------
        wr_rr = Signal(range(n))
        wgrant = Signal(range(n))
        wany = Signal()
        owner = Signal(range(n))
        w_left = Signal(TRANSFER_BEATS_BITS + 1)
        w_busy = Signal()           # w_left != 0, registered
        self._first(m, wr_rr, [c.wr_cmd.valid for c in cl], wgrant, wany)
        for j in range(n):
            with m.If(wgrant == j):
                m.d.comb += [mst.wr_cmd.valid.eq(cl[j].wr_cmd.valid & ~w_busy),
                             mst.wr_cmd.payload.eq(cl[j].wr_cmd.payload),
                             cl[j].wr_cmd.ready.eq(mst.wr_cmd.ready & ~w_busy)]
            with m.If((owner == j) & w_busy):
                m.d.comb += [mst.wr_data.valid.eq(cl[j].wr_data.valid),
                             mst.wr_data.payload.eq(cl[j].wr_data.payload),
                             cl[j].wr_data.ready.eq(mst.wr_data.ready)]
            m.d.comb += cl[j].wr_idle.eq(mst.wr_idle & ~w_busy)
        wr_hs = Signal()
        m.d.comb += wr_hs.eq(mst.wr_cmd.valid & mst.wr_cmd.ready)
        with m.If(wr_hs):
            m.d.sync += [owner.eq(wgrant), w_left.eq(mst.wr_cmd.payload.beats),
                         w_busy.eq(mst.wr_cmd.payload.beats != 0),
                         wr_rr.eq(Mux(wgrant == n - 1, 0, wgrant + 1))]
        with m.Elif(mst.wr_data.valid & mst.wr_data.ready):
            m.d.sync += [w_left.eq(w_left - 1), w_busy.eq(w_left != 1)]
        return m
