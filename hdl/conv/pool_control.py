"""2x2 max-pool and x2 nearest upsampling on INT8 feature maps in memory, row by row."""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import Op
from ..bus.axi_master import transfer_port
from .sequencer import job_layout

__all__ = ["PoolControl"]


class PoolControl(wiring.Component):
    """MAXPOOL (2x2, stride 2) and UPSAMPLE (x2 nearest) on ``cin`` channels.

    MAXPOOL, per channel and output row ``yo``: input row ``2yo`` is read into the row
    memory; input row ``2yo+1`` streams past it: each beat is maxed bytewise with the
    stored word, then pairs of bytes give 4 output bytes, written back into the row memory
    at half the index (byte-enabled, never over a word still to be read); one write
    transfer sends the output row. UPSAMPLE, per channel and input row ``y``: the row is
    read once and written twice (rows ``2y``, ``2y+1``), every byte doubled. Row padding
    bytes are written as 0.

    Members: ``job``/``start``/``done``/``outputs``/``progress`` as the conv control;
    ``mem`` (memory client); ``row_w`` (write port, 64-bit, byte enables) and
    ``row_addr``/``row_data`` (an asynchronous read) of a ``max_width / 4``-word row
    memory.
    """

    def __init__(self, *, max_width: int):
        self.words = -(-2 * max_width // 8)
        aw = max(1, (self.words - 1).bit_length())
        super().__init__({
            "job": In(job_layout()), "start": In(1), "done": Out(1),
            "outputs": Out(32), "progress": Out(1),
            "mem": Out(transfer_port()),
            "row_w": In(memory.WritePort.Signature(addr_width=aw, shape=64, granularity=8)),
            "row_addr": Out(aw), "row_data": In(64),
        })

    def elaborate(self, platform):
        m = Module()
        job = Signal(job_layout())
        cmd = job.cmd
        rd, rdd, wr, wrd = self.mem.rd_cmd, self.mem.rd_data, self.mem.wr_cmd, self.mem.wr_data
        pool = Signal()
        C, H, W = Signal(16), Signal(16), Signal(16)
        rs_in, rw_in = Signal(17), Signal(14)
        rs_out, rw_out = Signal(18), Signal(15)
        rw_out_m1 = Signal(15)
        wbytes_out = Signal(18)
        plane_in, plane_out = Signal(32), Signal(32)
        rows_out = Signal(17)
        c, r = Signal(16), Signal(17)      # channel, output row (pool) / input row (upsample)
        dup = Signal()                     # upsample: second copy of the row
        in_row = Signal(32)                # address of the row being read
        out_row = Signal(32)
        ch_in, ch_out = Signal(32), Signal(32)
        i = Signal(15)                     # beat index
        outputs = Signal(32)
        m.d.comb += self.outputs.eq(outputs)

        a = self.row_data
        b = rdd.payload.data
        # two pipeline steps: the bytewise max of rows 2yo and 2yo+1 is registered (v) with
        # the write position; the pair max is written back the cycle after (never to a word
        # still to be read: (i-1)//2 < i), the last one in the first cycle of WR
        v = [Signal(signed(8), name=f"v{j}") for j in range(8)]
        pv, p_addr, p_hi = Signal(), Signal(len(self.row_w.addr)), Signal()
        m.d.sync += pv.eq(0)
        for j in range(8):
            x, y_ = a[8 * j:8 * j + 8].as_signed(), b[8 * j:8 * j + 8].as_signed()
            m.d.sync += v[j].eq(Mux(x > y_, x, y_))
        h = [Mux(v[2 * j] > v[2 * j + 1], v[2 * j], v[2 * j + 1])[:8] for j in range(4)]
        pooled = Cat(*h)

        # plane strides: one DSP48E1 each, registered twice (MREG, PREG), computed every cycle
        # (valid from the first ROW state on; read when the first channel is done)
        pi_m, po_m = Signal.like(plane_in), Signal.like(plane_out)
        m.d.sync += [pi_m.eq(H * rs_in), plane_in.eq(pi_m),
                     po_m.eq(Mux(pool, H >> 1, H << 1) * rs_out), plane_out.eq(po_m)]

        # transfer requests, registered (short arbiter paths): set on entering RD_A/RD_B/WR,
        # cleared by the handshake
        rd_v, wr_v, rd_addr = Signal(), Signal(), Signal(32)
        m.d.comb += [rd.valid.eq(rd_v), rd.payload.addr.eq(rd_addr), rd.payload.beats.eq(rw_in),
                     wr.valid.eq(wr_v), wr.payload.addr.eq(out_row), wr.payload.beats.eq(rw_out)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += self.done.eq(0)
                with m.If(self.start):
                    m.d.sync += [job.eq(self.job), outputs.eq(0)]
                    m.next = "INIT1"
            with m.State("INIT1"):
                m.d.sync += [pool.eq(cmd.op == Op.MAXPOOL), C.eq(cmd.cin), H.eq(cmd.height), W.eq(cmd.width),
                             rs_in.eq(((cmd.width + 7) >> 3) << 3), rw_in.eq((cmd.width + 7) >> 3),
                             wbytes_out.eq(Mux(cmd.op == Op.MAXPOOL, cmd.width >> 1, cmd.width << 1)),
                             rows_out.eq(Mux(cmd.op == Op.MAXPOOL, cmd.height >> 1, cmd.height)),
                             c.eq(0), r.eq(0), dup.eq(0),
                             ch_in.eq(job.in_addr), ch_out.eq(job.out_addr)]
                m.next = "INIT2"
            with m.State("INIT2"):
                m.d.sync += [rs_out.eq(((wbytes_out + 7) >> 3) << 3), rw_out.eq((wbytes_out + 7) >> 3)]
                m.next = "INIT3"
            with m.State("INIT3"):
                m.d.sync += [in_row.eq(ch_in), out_row.eq(ch_out), rw_out_m1.eq(rw_out - 1)]
                m.next = "ROW"
            with m.State("ROW"):
                with m.If(c == C):
                    m.next = "FINISH"
                with m.Elif(r == rows_out):
                    m.d.sync += [c.eq(c + 1), r.eq(0), ch_in.eq(ch_in + plane_in), ch_out.eq(ch_out + plane_out),
                                 in_row.eq(ch_in + plane_in), out_row.eq(ch_out + plane_out)]
                with m.Else():
                    m.d.sync += [rd_v.eq(1), rd_addr.eq(in_row)]
                    m.next = "RD_A"
            with m.State("RD_A"):
                with m.If(rd.ready):
                    m.d.sync += [i.eq(0), rd_v.eq(0)]
                    m.next = "RD_A_DATA"
            with m.State("RD_A_DATA"):
                m.d.comb += [rdd.ready.eq(1), self.row_w.addr.eq(i), self.row_w.data.eq(b)]
                with m.If(rdd.valid):
                    m.d.comb += self.row_w.en.eq(0xFF)
                    m.d.sync += i.eq(i + 1)
                    with m.If(rdd.payload.last):
                        with m.If(pool):
                            m.d.sync += [rd_v.eq(1), rd_addr.eq(in_row + rs_in)]
                            m.next = "RD_B"
                        with m.Else():
                            m.d.sync += [dup.eq(0), wr_v.eq(1)]
                            m.next = "WR"
            with m.State("RD_B"):
                with m.If(rd.ready):
                    m.d.sync += [i.eq(0), rd_v.eq(0)]
                    m.next = "RD_B_DATA"
            with m.State("RD_B_DATA"):
                m.d.comb += [rdd.ready.eq(1), self.row_addr.eq(i)]
                with m.If(rdd.valid):
                    m.d.sync += [i.eq(i + 1), pv.eq(1), p_addr.eq(i >> 1), p_hi.eq(i[0])]
                    with m.If(rdd.payload.last):
                        m.d.sync += wr_v.eq(1)
                        m.next = "WR"
            with m.State("WR"):
                with m.If(wr.ready):
                    m.d.sync += [i.eq(0), wr_v.eq(0)]
                    m.next = "WR_DATA"
            with m.State("WR_DATA"):
                word = Signal(64)
                half = Mux(i[0], self.row_data[32:], self.row_data[:32])
                m.d.comb += [self.row_addr.eq(Mux(pool, i, i >> 1)),
                             word.eq(Mux(pool, self.row_data,
                                         Cat(*[half[8 * (j // 2):8 * (j // 2) + 8] for j in range(8)]))),
                             wrd.valid.eq(1), wrd.payload.strb.eq(0xFF)]
                # row padding bytes are written as 0 (spec.engine)
                last_bytes = wbytes_out[:3]
                keep = Signal(8)
                with m.If((i == rw_out_m1) & (last_bytes != 0)):
                    m.d.comb += keep.eq((Const(1, 9) << last_bytes) - 1)
                with m.Else():
                    m.d.comb += keep.eq(0xFF)
                m.d.comb += wrd.payload.data.eq(word & Cat(*[b.replicate(8) for b in keep]))
                with m.If(wrd.ready):
                    m.d.sync += i.eq(i + 1)
                    with m.If(i == rw_out_m1):
                        m.d.sync += [outputs.eq(outputs + wbytes_out), out_row.eq(out_row + rs_out)]
                        with m.If(~pool & ~dup):
                            m.d.sync += [dup.eq(1), wr_v.eq(1)]
                            m.next = "WR"
                        with m.Else():
                            m.d.sync += [r.eq(r + 1), in_row.eq(in_row + Mux(pool, rs_in << 1, rs_in))]
                            m.next = "ROW"
            with m.State("FINISH"):
                with m.If(self.mem.wr_idle & self.mem.rd_idle):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"
        with m.If(pv):
            m.d.comb += [self.row_w.addr.eq(p_addr), self.row_w.data.eq(Cat(pooled, pooled)),
                         self.row_w.en.eq(Mux(p_hi, 0xF0, 0x0F))]
        m.d.comb += self.progress.eq((rdd.valid & rdd.ready) | (wrd.valid & wrd.ready))
        return m
