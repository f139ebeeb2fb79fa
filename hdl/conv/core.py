"""One conv core: its control, PE, requantizer and buffers (a composite)."""
from __future__ import annotations

from amaranth import Module
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import In, Out

from ..bus.axi_master import transfer_port
from .conv_control import ConvControl, ConvGeometry
from .pe import PlanePE
from .pe_dsp import BytePE
from .requant import Requantizer
from .sequencer import job_layout

__all__ = ["ConvCore"]


class ConvCore(wiring.Component):
    """Conv core ``core`` of ``cores`` (it computes every output channel of its band of
    every conv command's output rows, :class:`ConvControl`), with its own line buffer, window banks, weight
    rows, parameter table, output rows, :class:`PlanePE` and :class:`Requantizer`.

    Members: ``mem`` (memory client), ``job``, ``start``, ``done``, ``outputs``,
    ``terminated``, ``progress`` (as :class:`ConvControl`).
    """

    def __init__(self, geometry: ConvGeometry, *, core: int = 0, cores: int = 1):
        self.geometry, self.core, self.cores = geometry, core, cores
        super().__init__({
            "mem": Out(transfer_port()),
            "job": In(job_layout()), "start": In(1), "done": Out(1),
            "outputs": Out(32), "terminated": Out(32), "progress": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.geometry
        m.submodules.ctrl = conv = ConvControl(g, core=self.core, cores=self.cores)
        if g.bit_parallel:
            pe = BytePE(lanes=g.lanes + g.bias_lanes, tag_bits=conv.pe_tag_bits)
        else:
            pe = PlanePE(lanes=g.lanes + g.bias_lanes, tag_bits=conv.pe_tag_bits,
                         late_lanes=g.bias_lanes)
        m.submodules.pe = pe
        m.submodules.rq = rq = Requantizer()
        m.submodules.lb0 = lb0 = memory.Memory(shape=64, depth=g.line_bank_words, init=[])
        m.submodules.lb1 = lb1 = memory.Memory(shape=64, depth=g.line_bank_words, init=[])
        m.submodules.win = win = memory.Memory(shape=g.win_bits, depth=conv.win_depth, init=[])
        m.submodules.wgt = wgt = memory.Memory(shape=8 * g.lanes, depth=g.weight_rows, init=[])
        m.submodules.par = par = memory.Memory(shape=conv.par_shape, depth=g.param_depth, init=[])
        m.submodules.ob = ob = memory.Memory(shape=64, depth=g.out_words, init=[])
        wiring.connect(m, conv.mem, wiring.flipped(self.mem))
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
        wiring.connect(m, conv.pe_i, pe.i)
        wiring.connect(m, pe.o, conv.pe_o)
        wiring.connect(m, conv.rq_i, rq.i)
        wiring.connect(m, rq.o, conv.rq_o)
        # single wires (asynchronous read ports and pulses have no interface object)
        par_feed, par_coll = par.read_port(domain="comb"), par.read_port(domain="comb")
        m.d.comb += [
            par_feed.addr.eq(conv.par_feed_addr), conv.par_feed_data.eq(par_feed.data),
            par_coll.addr.eq(conv.par_coll_addr), conv.par_coll_data.eq(par_coll.data),
            pe.cfg.eq(conv.pe_cfg), conv.pe_stop.eq(pe.stop), conv.pe_stop_seq.eq(pe.stop_seq),
            conv.pe_stop_slots.eq(pe.stop_slots),
            conv.job.eq(self.job), conv.start.eq(self.start), self.done.eq(conv.done),
            self.outputs.eq(conv.outputs), self.terminated.eq(conv.terminated),
            self.progress.eq(conv.progress),
        ]
        return m
