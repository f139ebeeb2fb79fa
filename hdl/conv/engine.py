"""The convolution engine top: AXI4-Lite control, AXI4 memory master, sequencer, one conv
core and the pool/upsample unit.

Block diagram::

    s_axil -> AXI4LiteRegisters(engine_map) <-> Sequencer --job--> ConvControl, PoolControl
                                                   |                  |        |
    m_axi <- AXI4Master <- TransferMux(sel) <------+------------------+--------+
    ConvControl <-> line buffer, window banks, weight rows, parameters, output rows (BRAM),
                    PlanePE (lanes + bias lanes), Requantizer (DSP48E1)

The units are reset by the sequencer's ``abort`` (watchdog).
"""
from __future__ import annotations

from amaranth import Module, Mux, ResetInserter
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import EngineConfig
from ..bus.axi4 import AXI4Signature
from ..bus.axi_lite import AXI4LiteRegisters, AXI4LiteSignature
from ..bus.axi_master import AXI4Master
from ..bus.transfer_mux import TransferMux
from .conv_control import ConvControl, ConvGeometry
from .pe import PlanePE
from .pool_control import PoolControl
from .regs import ADDR_WIDTH, engine_map
from .requant import Requantizer
from .sequencer import N_CLIENTS, UNIT_POOL, Sequencer

__all__ = ["ConvEngine"]


class ConvEngine(wiring.Component):
    """The engine for ``config`` (its first array's ``lanes`` are the conv core's data
    lanes; the core adds ``max_bias_lanes`` bias lanes).

    Members
    -------
    s_axil : ``In(AXI4LiteSignature)`` -- registers of :func:`~.regs.engine_map`
    m_axi : ``Out(AXI4Signature)`` -- 64-bit memory master (S_AXI_HP0)
    irq : ``Out(1)``
    """

    def __init__(self, config: EngineConfig, *, out_buffer_bytes: int = 16384, max_reads: int = 4):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self.config = config
        self.geometry = ConvGeometry(config, lanes=config.arrays[0].lanes,
                                     out_buffer_bytes=out_buffer_bytes)
        self.max_reads = max_reads
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=ADDR_WIDTH)),
            "m_axi": Out(AXI4Signature(addr_width=32, data_width=64)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        m.submodules.regs = regs = AXI4LiteRegisters(engine_map())
        m.submodules.seq = seq = Sequencer(self.config, out_buffer_words=g.out_words,
                                           weight_rows=g.weight_rows, lanes=g.lanes)
        m.submodules.master = master = AXI4Master(max_reads=self.max_reads)
        m.submodules.mux = mux = TransferMux(N_CLIENTS)
        conv = ConvControl(g)
        pool = PoolControl(max_width=self.config.max_width)
        m.submodules.conv = ResetInserter(seq.abort)(conv)
        m.submodules.pool = ResetInserter(seq.abort)(pool)
        pe = PlanePE(lanes=g.lanes + g.bias_lanes)
        rq = Requantizer()
        m.submodules.pe = ResetInserter(seq.abort)(pe)
        m.submodules.rq = ResetInserter(seq.abort)(rq)

        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        wiring.connect(m, regs.regs, seq.regs)
        wiring.connect(m, seq.mem, mux.client0)
        wiring.connect(m, conv.mem, mux.client1)
        wiring.connect(m, pool.mem, mux.client2)
        wiring.connect(m, mux.master, master.port)
        wiring.connect(m, master.m_axi, wiring.flipped(self.m_axi))

        # buffers (block RAM; the parameter table is read asynchronously: LUT RAM)
        m.submodules.lb0 = lb0 = memory.Memory(shape=64, depth=g.line_bank_words, init=[])
        m.submodules.lb1 = lb1 = memory.Memory(shape=64, depth=g.line_bank_words, init=[])
        m.submodules.win = win = memory.Memory(shape=g.lanes, depth=conv.win_depth, init=[])
        m.submodules.wgt = wgt = memory.Memory(shape=8 * g.lanes, depth=g.weight_rows, init=[])
        m.submodules.par = par = memory.Memory(shape=conv.par_shape, depth=g.param_depth, init=[])
        m.submodules.ob = ob = memory.Memory(shape=64, depth=g.out_words, init=[])
        m.submodules.row = row = memory.Memory(shape=64, depth=pool.words, init=[])
        wiring.connect(m, conv.lb0_w, lb0.write_port())
        wiring.connect(m, conv.lb0_r, lb0.read_port())
        wiring.connect(m, conv.lb1_w, lb1.write_port())
        wiring.connect(m, conv.lb1_r, lb1.read_port())
        wiring.connect(m, conv.win_w, win.write_port())
        wiring.connect(m, conv.win_r, win.read_port())
        wiring.connect(m, conv.wgt_w, wgt.write_port())
        wiring.connect(m, conv.wgt_r, wgt.read_port())
        wiring.connect(m, conv.par_w, par.write_port())
        wiring.connect(m, conv.ob_w, ob.write_port(granularity=8))
        wiring.connect(m, conv.ob_r, ob.read_port())
        wiring.connect(m, pool.row_w, row.write_port(granularity=8))
        wiring.connect(m, conv.pe_i, pe.i)
        wiring.connect(m, pe.o, conv.pe_o)
        wiring.connect(m, conv.rq_i, rq.i)
        wiring.connect(m, rq.o, conv.rq_o)

        # single wires (asynchronous read ports and control pulses have no interface object)
        par_feed, par_coll = par.read_port(domain="comb"), par.read_port(domain="comb")
        row_r = row.read_port(domain="comb")
        m.d.comb += [
            par_feed.addr.eq(conv.par_feed_addr), conv.par_feed_data.eq(par_feed.data),
            par_coll.addr.eq(conv.par_coll_addr), conv.par_coll_data.eq(par_coll.data),
            row_r.addr.eq(pool.row_addr), pool.row_data.eq(row_r.data),
            pe.cfg.eq(conv.pe_cfg), conv.pe_stop.eq(pe.stop), conv.pe_stop_seq.eq(pe.stop_seq),
            mux.sel.eq(seq.sel),
            conv.job.eq(seq.job), pool.job.eq(seq.job),
            conv.start.eq(seq.conv_start), pool.start.eq(seq.pool_start),
            seq.conv_done.eq(conv.done), seq.pool_done.eq(pool.done),
            seq.outputs.eq(Mux(seq.sel == UNIT_POOL, pool.outputs, conv.outputs)), seq.terminated.eq(conv.terminated),
            seq.rd_resp.eq(master.rd_resp), seq.wr_resp.eq(master.wr_resp),
            master.clear.eq(seq.resp_clear),
            seq.progress.eq(conv.progress | pool.progress | master.port.rd_data.valid |
                            master.port.wr_data.ready),
            self.irq.eq(seq.irq),
        ]
        return m
