"""The convolution engine top: AXI4-Lite control, AXI4 memory master, sequencer, the conv
cores and the pool/upsample unit.

Block diagram::

    s_axil -> AXI4LiteRegisters(engine_map) <-> Sequencer --job--> ConvCore x N, PoolControl
                                                   |                  |            |
    m_axi <- AXI4Master <- TransferArbiter(2 + N) <+------------------+------------+

Each :class:`~.core.ConvCore` has its own buffers, PE and requantizer and computes every
output channel of its band of output rows of every conv command (contiguous bands of
``ceil(H / N)`` rows), independently of the others (an output that stops early frees its
own core only). The units are reset by the
sequencer's ``abort`` (watchdog).
"""
from __future__ import annotations

from amaranth import Cat, Module, Mux, ResetInserter
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import EngineConfig
from ..bus.axi4 import AXI4Signature
from ..bus.axi_lite import AXI4LiteRegisters, AXI4LiteSignature
from ..bus.axi_master import AXI4Master
from ..bus.transfer_arbiter import TransferArbiter
from .conv_control import ConvGeometry
from .core import ConvCore
from .join import CoreJoin
from .pool_control import PoolControl
from .regs import ADDR_WIDTH, engine_map
from .sequencer import UNIT_POOL, Sequencer

__all__ = ["ConvEngine"]


class ConvEngine(wiring.Component):
    """The engine for ``config``: ``arrays[0].kpbs`` conv cores of ``arrays[0].lanes``
    data lanes each (+ ``max_bias_lanes`` bias lanes per PE).

    Members
    -------
    s_axil : ``In(AXI4LiteSignature)`` -- registers of :func:`~.regs.engine_map`
    m_axi : ``Out(AXI4Signature)`` -- 64-bit memory master (S_AXI_HP0)
    irq : ``Out(1)``
    """

    def __init__(self, config: EngineConfig, *, max_reads: int = 4):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self.config = config
        self.cores = config.arrays[0].kpbs
        self.geometry = ConvGeometry(config)
        self.max_reads = max_reads
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=ADDR_WIDTH)),
            "m_axi": Out(AXI4Signature(addr_width=32, data_width=64)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g, N = self.geometry, self.cores
        m.submodules.regs = regs = AXI4LiteRegisters(engine_map())
        m.submodules.seq = seq = Sequencer(self.config, out_buffer_words=g.out_words,
                                           weight_rows=g.weight_rows, lanes=g.lanes)
        m.submodules.master = master = AXI4Master(max_reads=self.max_reads)
        m.submodules.arb = arb = TransferArbiter(2 + N)
        m.submodules.join = join = CoreJoin(N)
        pool = PoolControl(max_width=self.config.max_width)
        m.submodules.pool = ResetInserter(seq.abort)(pool)
        cores = []
        for j in range(N):
            core = ConvCore(g, core=j, cores=N)
            m.submodules[f"core{j}"] = ResetInserter(seq.abort)(core)
            cores.append(core)

        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        wiring.connect(m, regs.regs, seq.regs)
        wiring.connect(m, seq.mem, arb.client0)
        wiring.connect(m, pool.mem, arb.client1)
        for j, core in enumerate(cores):
            wiring.connect(m, core.mem, getattr(arb, f"client{2 + j}"))
        wiring.connect(m, arb.master, master.port)
        wiring.connect(m, master.m_axi, wiring.flipped(self.m_axi))

        m.submodules.row = row = memory.Memory(shape=64, depth=pool.words, init=[])
        wiring.connect(m, pool.row_w, row.write_port(granularity=8))

        # single wires (asynchronous read ports and control pulses have no interface object)
        row_r = row.read_port(domain="comb")
        m.d.comb += [
            row_r.addr.eq(pool.row_addr), pool.row_data.eq(row_r.data),
            pool.job.eq(seq.job), pool.start.eq(seq.pool_start), seq.pool_done.eq(pool.done),
            join.start.eq(seq.conv_start), seq.conv_done.eq(join.all_done),
            seq.outputs.eq(Mux(seq.sel == UNIT_POOL, pool.outputs, join.outputs)),
            seq.terminated.eq(join.terminated),
            seq.rd_resp.eq(master.rd_resp), seq.wr_resp.eq(master.wr_resp),
            master.clear.eq(seq.resp_clear),
            seq.progress.eq(pool.progress | master.port.rd_data.valid | master.port.wr_data.ready |
                            Cat(*[c.progress for c in cores]).any()),
            self.irq.eq(seq.irq),
        ]
        for j, core in enumerate(cores):
            m.d.comb += [core.job.eq(seq.job), core.start.eq(seq.conv_start),
                         join.done[j].eq(core.done),
                         join.core_outputs[j].eq(core.outputs),
                         join.core_terminated[j].eq(core.terminated)]
        return m
