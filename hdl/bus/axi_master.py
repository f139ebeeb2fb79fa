"""AXI4 memory master of the convolution engine: transfers in, legal bursts out.

One read port and one write port, each taking *transfers* (a start address and a number of
64-bit beats) and cutting them into INCR bursts of at most 16 beats that never cross a
4 KiB boundary (:func:`~msdf_unet.hdl.bus.axi4.burst_split`, the rule of the Zynq
S_AXI_HP ports). Several read bursts are outstanding at once so the memory latency is
paid once per transfer, not once per burst.
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from .axi4 import AXI4Signature, BOUNDARY_BYTES, BURST_INCR, MAX_BURST_BEATS, RESP_OKAY

__all__ = ["AXI4Master", "transfer_port", "transfer_layout", "read_beat_layout", "write_beat_layout",
           "TRANSFER_BEATS_BITS"]

#: a transfer moves at most 2**16 - 1 beats (512 KiB)
TRANSFER_BEATS_BITS = 16


def transfer_layout(addr_width: int = 32) -> data.StructLayout:
    """A transfer request: ``addr`` (byte address, a multiple of the beat size) and
    ``beats`` (>= 1)."""
    return data.StructLayout({"addr": unsigned(addr_width), "beats": unsigned(TRANSFER_BEATS_BITS)})


def read_beat_layout(data_width: int = 64) -> data.StructLayout:
    """One beat of read data: ``data``, ``resp`` (the beat's RRESP) and ``last`` (the
    final beat of its transfer)."""
    return data.StructLayout({"data": unsigned(data_width), "resp": unsigned(2), "last": unsigned(1)})


def write_beat_layout(data_width: int = 64) -> data.StructLayout:
    """One beat of write data: ``data`` and its byte enables ``strb``."""
    return data.StructLayout({"data": unsigned(data_width), "strb": unsigned(data_width // 8)})


def transfer_port(addr_width: int = 32, data_width: int = 64) -> wiring.Signature:
    """The transfer ports of a memory client, seen from the client: ``rd_cmd``, ``rd_data``,
    ``wr_cmd``, ``wr_data`` (what :class:`AXI4Master` takes) and ``rd_idle``/``wr_idle``."""
    return wiring.Signature({
        "rd_cmd": Out(stream.Signature(transfer_layout(addr_width))),
        "rd_data": In(stream.Signature(read_beat_layout(data_width))),
        "wr_cmd": Out(stream.Signature(transfer_layout(addr_width))),
        "wr_data": Out(stream.Signature(write_beat_layout(data_width))),
        "rd_idle": In(1), "wr_idle": In(1),
    })


class _BurstCutter:
    """The next burst of a transfer in progress: ``min(16, beats left, beats to 4 KiB)``,
    and ``next_addr``, the address after it when the transfer goes on: the next 4 KiB page
    when the page ends within 16 beats, else ``addr + 16`` beats.

    Timing: no adder before a comparison. Whether the page ends within 16 beats is a test
    of the address bits (``in_page > page_beats - 16``); the beats to its end are then
    ``16 - in_page % 16``; ``next_addr`` is computed beside ``beats``, not from it.
    """

    def __init__(self, m, addr, left, beat_bytes):
        beat_shift = beat_bytes.bit_length() - 1
        page_bits = BOUNDARY_BYTES.bit_length() - 1
        page_beats = BOUNDARY_BYTES // beat_bytes
        mb_bits = MAX_BURST_BEATS.bit_length() - 1
        assert MAX_BURST_BEATS == 1 << mb_bits and page_beats % MAX_BURST_BEATS == 0
        self.beats = Signal(range(MAX_BURST_BEATS + 1))
        self.next_addr = Signal(len(addr))
        in_page = addr[beat_shift:page_bits]
        near_end = Signal()             # the page ends within MAX_BURST_BEATS beats
        to_end = Signal(range(MAX_BURST_BEATS + 1))   # its beats to the end, if near_end
        m.d.comb += [
            near_end.eq(in_page > page_beats - MAX_BURST_BEATS),
            to_end.eq(MAX_BURST_BEATS - in_page[:mb_bits]),
            self.next_addr.eq(Mux(near_end, ((addr >> page_bits) + 1) << page_bits,
                                  addr + (MAX_BURST_BEATS << beat_shift))),
        ]
        with m.If(near_end):
            with m.If((left >> mb_bits == 0) & (left[:mb_bits] <= to_end)):
                m.d.comb += self.beats.eq(left)
            with m.Else():
                m.d.comb += self.beats.eq(to_end)
        with m.Elif(left <= MAX_BURST_BEATS):
            m.d.comb += self.beats.eq(left)
        with m.Else():
            m.d.comb += self.beats.eq(MAX_BURST_BEATS)


class AXI4Master(wiring.Component):
    """AXI4 master with a read port and a write port, INCR bursts only, ID 0.

    Parameters (keyword-only)
    -------------------------
    addr_width, data_width, id_width : the bus (defaults: 32, 64, 6 as S_AXI_HP0)
    max_reads : int >= 1
        Read bursts outstanding at most (address issued, last beat not yet received).
    max_writes : int >= 1
        Write bursts whose response has not arrived, at most.

    Members
    -------
    m_axi : ``Out(AXI4Signature)``
    port : ``In(transfer_port)`` -- the client side, members:

    rd_cmd : ``In(stream(transfer_layout))`` -- one read transfer; accepted when the
        previous transfer's bursts have all been issued (its data may still be arriving).
    rd_data : ``Out(stream(read_beat_layout))`` -- the beats of the read transfers in
        order; ``last`` marks each transfer's final beat. ``ready`` low stalls R (RREADY).
    wr_cmd : ``In(stream(transfer_layout))`` -- one write transfer.
    wr_data : ``In(stream(write_beat_layout))`` -- exactly ``beats`` beats per write
        transfer, in order.
    rd_idle, wr_idle : ``Out(1)`` -- no transfer in progress and nothing outstanding on
        the bus (for writes: every B response received, so the data is in memory).
    rd_resp, wr_resp : ``Out(2)`` -- sticky: the first non-OKAY RRESP / BRESP seen
        (SLVERR 2, DECERR 3), 0 while all were OKAY; cleared by ``clear``.
    clear : ``In(1)``

    Timing
    ------
    AR/AW are registered: a burst is presented the cycle after its transfer is accepted,
    then one burst per cycle while the slave takes them and the outstanding limit allows.
    R beats pass straight through (``rready = rd_data.ready``); W beats likewise
    (``wvalid = wr_data.valid`` once the burst's address is issued or queued). BREADY is 1.

    Bad input
    ---------
    ``beats = 0`` transfers are accepted and do nothing (no burst, no data; the engine's
    command decoder refuses zero sizes before they get here). Address bits below the beat
    size are ignored (sent as 0), so an unaligned ``addr`` reads the aligned beat.
    """

    def __init__(self, *, addr_width: int = 32, data_width: int = 64, id_width: int = 6,
                 max_reads: int = 4, max_writes: int = 4):
        for name, v in (("max_reads", max_reads), ("max_writes", max_writes)):
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 64:
                raise ValueError(f"{name} must be an integer in [1, 64], not {v!r}")
        self.bus = AXI4Signature(addr_width=addr_width, data_width=data_width, id_width=id_width)
        self.addr_width, self.data_width = addr_width, data_width
        self.beat_bytes = data_width // 8
        self.max_reads, self.max_writes = max_reads, max_writes
        super().__init__({
            "m_axi": Out(self.bus),
            "port": In(transfer_port(addr_width, data_width)),
            "rd_resp": Out(2), "wr_resp": Out(2),
            "clear": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        bus = self.m_axi
        port = self.port
        size = self.beat_bytes.bit_length() - 1
        m.d.comb += [
            bus.arsize.eq(size), bus.awsize.eq(size),
            bus.arburst.eq(BURST_INCR), bus.awburst.eq(BURST_INCR),
            # normal non-cacheable bufferable (what Xilinx DMAs use on HP ports)
            bus.arcache.eq(0b0011), bus.awcache.eq(0b0011),
            bus.arid.eq(0), bus.awid.eq(0), bus.arprot.eq(0), bus.awprot.eq(0),
            bus.bready.eq(1),
        ]

        # ---------------- read: cut transfers into bursts, track them in a FIFO ------------
        r_addr = Signal(self.addr_width)
        r_left = Signal(TRANSFER_BEATS_BITS)
        r_busy = Signal()
        rcut = _BurstCutter(m, r_addr, r_left, self.beat_bytes)
        # one entry per issued burst: 1 when it is its transfer's final burst
        m.submodules.r_bursts = r_bursts = fifo.SyncFIFO(width=1, depth=self.max_reads)
        r_issue = Signal()
        m.d.comb += [
            port.rd_cmd.ready.eq(~r_busy),
            r_issue.eq(r_busy & (~bus.arvalid | bus.arready) & r_bursts.w_rdy),
            r_bursts.w_en.eq(r_issue),
            r_bursts.w_data.eq(r_left == rcut.beats),
        ]
        _address_channel(m, port.rd_cmd, r_issue, r_addr, r_left, r_busy, rcut,
                         bus.arvalid, bus.arready, bus.araddr, bus.arlen, size)
        r_beat = Signal()
        m.d.comb += [
            port.rd_data.valid.eq(bus.rvalid),
            port.rd_data.payload.data.eq(bus.rdata),
            port.rd_data.payload.resp.eq(bus.rresp),
            port.rd_data.payload.last.eq(bus.rlast & r_bursts.r_data),
            bus.rready.eq(port.rd_data.ready),
            r_beat.eq(bus.rvalid & bus.rready),
            r_bursts.r_en.eq(r_beat & bus.rlast),
            port.rd_idle.eq(~r_busy & (r_bursts.level == 0)),
        ]

        # ---------------- write: bursts on AW, their lengths queued for W --------------------
        w_addr = Signal(self.addr_width)
        w_left = Signal(TRANSFER_BEATS_BITS)
        w_busy = Signal()
        wcut = _BurstCutter(m, w_addr, w_left, self.beat_bytes)
        # W side: lengths of bursts whose address was issued but whose data is not all sent
        m.submodules.w_bursts = w_bursts = fifo.SyncFIFO(
            width=len(wcut.beats), depth=self.max_writes)
        pending_b = Signal(range(self.max_writes + 1))   # bursts issued, B not yet received
        w_issue = Signal()
        m.d.comb += [
            port.wr_cmd.ready.eq(~w_busy),
            w_issue.eq(w_busy & (~bus.awvalid | bus.awready) & w_bursts.w_rdy &
                       (pending_b < self.max_writes)),
            w_bursts.w_en.eq(w_issue),
            w_bursts.w_data.eq(wcut.beats),
        ]
        _address_channel(m, port.wr_cmd, w_issue, w_addr, w_left, w_busy, wcut,
                         bus.awvalid, bus.awready, bus.awaddr, bus.awlen, size)
        w_count = Signal(range(MAX_BURST_BEATS))
        w_beat = Signal()
        m.d.comb += [
            bus.wvalid.eq(port.wr_data.valid & w_bursts.r_rdy),
            bus.wdata.eq(port.wr_data.payload.data),
            bus.wstrb.eq(port.wr_data.payload.strb),
            bus.wlast.eq(w_count == w_bursts.r_data - 1),
            port.wr_data.ready.eq(bus.wready & w_bursts.r_rdy),
            w_beat.eq(bus.wvalid & bus.wready),
            w_bursts.r_en.eq(w_beat & bus.wlast),
        ]
        with m.If(w_beat):
            m.d.sync += w_count.eq(Mux(bus.wlast, 0, w_count + 1))
        b_beat = Signal()
        m.d.comb += b_beat.eq(bus.bvalid & bus.bready)
        m.d.sync += pending_b.eq(pending_b + w_issue - b_beat)
        m.d.comb += port.wr_idle.eq(~w_busy & (pending_b == 0))

        # ---------------- sticky error responses ---------------------------------------------
        with m.If(self.clear):
            m.d.sync += [self.rd_resp.eq(RESP_OKAY), self.wr_resp.eq(RESP_OKAY)]
        with m.Else():
            with m.If(r_beat & (bus.rresp[1]) & (self.rd_resp == RESP_OKAY)):
                m.d.sync += self.rd_resp.eq(bus.rresp)
            with m.If(b_beat & (bus.bresp[1]) & (self.wr_resp == RESP_OKAY)):
                m.d.sync += self.wr_resp.eq(bus.bresp)
        return m


def _address_channel(m, cmd, issue, addr, left, busy, cut, axvalid, axready, axaddr, axlen, size):
    """One direction's address channel (AR or AW): a transfer accepted on ``cmd`` loads
    ``addr``/``left``/``busy``; each ``issue`` puts its next burst (``cut.beats`` beats, the
    4 KiB and 16-beat rule) on the channel and advances past it."""
    with m.If(axvalid & axready):
        m.d.sync += axvalid.eq(0)
    with m.If(cmd.valid & cmd.ready):
        m.d.sync += [
            addr.eq(cmd.payload.addr),
            left.eq(cmd.payload.beats),
            busy.eq(cmd.payload.beats != 0),
        ]
    with m.Elif(issue):
        m.d.sync += [
            axvalid.eq(1),
            axaddr.eq((addr >> size) << size),
            axlen.eq(cut.beats - 1),
            addr.eq(cut.next_addr),      # used only while the transfer goes on
            left.eq(left - cut.beats),
            busy.eq(left != cut.beats),
        ]
