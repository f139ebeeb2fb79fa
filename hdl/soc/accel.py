"""The accelerator top: an AXI4-Lite control slave in front of one dot-product unit.

This is the project's vertical skeleton. The register map (:mod:`.regs`) is generated into
the AXI4-Lite register file; :class:`DotProductControl` turns a ``START`` write into one
transaction of the arithmetic unit and latches its result into ``RESULT``/``STATUS``.
"""
from __future__ import annotations

from amaranth import Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from ...spec.arith import stream_digits
from ..arith.iface import dot_product_io
from ..arith.variants import make_dot_product, variant
from ..bus.axi_lite import AXI4LiteRegisters, AXI4LiteSignature, registers_signature
from .config import AccelConfig
from .regs import ID_MAGIC, accelerator_map

__all__ = ["DotProductControl", "DotProductAccelerator"]


class DotProductControl(wiring.Component):
    """Sequences one dot product per ``START`` write.

    Members
    -------
    regs : ``In(registers_signature(map))``, connected to :class:`AXI4LiteRegisters`
    unit_i, unit_o : the dot-product unit's streams (this side is the source of ``i``)
    irq : ``Out(1)``, high while ``STATUS.done`` and ``CTRL.irq_en``

    Behaviour
    ---------
    On ``START.go`` while idle: the lanes and ``CTRL`` are latched, ``busy`` rises, ``done``,
    ``terminated`` and ``overrun`` clear, ``CYCLES`` restarts from 0, and the transaction is
    offered to the unit until it is accepted. When the unit's result arrives (``o.ready`` is
    always 1), ``RESULT``, ``DIGITS`` and ``STATUS.terminated`` take it, ``busy`` falls and
    ``done`` rises. ``CYCLES`` counts the clock cycles from the ``START`` write's effect to
    the result (both included). ``START`` while busy sets ``overrun`` and changes nothing else.
    """

    def __init__(self, config: AccelConfig):
        self.config = config
        self.regmap = accelerator_map(n_lanes=config.n_lanes, act_bits=config.act_bits,
                                      signed_acts=config.signed_acts)
        i, o = dot_product_io(n_lanes=config.n_lanes, act_bits=config.act_bits,
                              signed_acts=config.signed_acts)
        super().__init__({
            "regs": In(registers_signature(self.regmap)),
            "unit_i": Out(i),
            "unit_o": In(o),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        regs, cfg = self.regs, self.config
        busy, done = Signal(), Signal()
        terminated, overrun = Signal(), Signal()

        m.d.comb += [
            regs.ID.magic.eq(ID_MAGIC),
            regs.MAP_DIGEST.digest.eq(self.regmap.digest32),
            regs.CONFIG.n_lanes.eq(cfg.n_lanes),
            regs.CONFIG.bias_lanes.eq(cfg.bias_lanes),
            regs.CONFIG.act_bits.eq(cfg.act_bits),
            regs.CONFIG.signed_acts.eq(int(cfg.signed_acts)),
            regs.CONFIG.digits_total.eq(self.digits_total),
            regs.STATUS.busy.eq(busy),
            regs.STATUS.done.eq(done),
            regs.STATUS.terminated.eq(terminated),
            regs.STATUS.overrun.eq(overrun),
            self.irq.eq(done & regs.CTRL.irq_en),
            self.unit_o.ready.eq(1),
        ]

        with m.If(busy):
            m.d.sync += regs.CYCLES.count.eq(regs.CYCLES.count + 1)
        with m.If(self.unit_i.valid & self.unit_i.ready):
            m.d.sync += self.unit_i.valid.eq(0)

        with m.If(regs.START_stb & regs.START.go):
            with m.If(busy):
                m.d.sync += overrun.eq(1)
            with m.Else():
                m.d.sync += [busy.eq(1), done.eq(0), terminated.eq(0), overrun.eq(0),
                             regs.CYCLES.count.eq(1), self.unit_i.valid.eq(1),
                             self.unit_i.payload.policy.eq(regs.CTRL.policy),
                             self.unit_i.payload.digits.eq(regs.CTRL.digits)]
                for lane in range(cfg.n_lanes):
                    m.d.sync += [self.unit_i.payload.x[lane].eq(regs.X[lane].value),
                                 self.unit_i.payload.w[lane].eq(regs.W[lane].value)]

        with m.If(self.unit_o.valid & busy):
            m.d.sync += [busy.eq(0), done.eq(1),
                         terminated.eq(self.unit_o.payload.terminated),
                         regs.RESULT.value.eq(self.unit_o.payload.value),
                         regs.DIGITS.used.eq(self.unit_o.payload.digits_used)]
        return m

    @property
    def digits_total(self) -> int:
        """Digits ``T = B + F`` of a full-precision MSDF result (see spec/arith.py)."""
        return stream_digits(self.config.n_lanes, self.config.act_bits)


class DotProductAccelerator(wiring.Component):
    """AXI4-Lite slave + control + one dot-product unit of the configured variant.

    Members
    -------
    s_axil : ``In(AXI4LiteSignature)`` — control bus (PS ``M_AXI_GP0`` on the Zynq);
        register map: :func:`msdf_unet.hdl.soc.regs.accelerator_map`.
    irq : ``Out(1)`` — level interrupt while a result is ready (when ``CTRL.irq_en``).

    The clock is the ``sync`` domain (FCLK_CLK0, ``config.clk_mhz``); reset is synchronous,
    active high (the Vivado wrapper inverts the PS's active-low reset).
    """

    def __init__(self, config: AccelConfig = AccelConfig()):
        if not isinstance(config, AccelConfig):
            raise TypeError(f"config must be an AccelConfig, not {config!r}")
        if not variant(config.variant).accel:
            raise ValueError(
                f"variant {config.variant!r} cannot sit behind the dot-product accelerator: its "
                "transactions need inputs the register map does not hold (msdf-v2: the bound "
                "wpos); benchmark it as a unit (`msdf-unet bench arith`) instead")
        self.config = config
        self.regmap = accelerator_map(n_lanes=config.n_lanes, act_bits=config.act_bits,
                                      signed_acts=config.signed_acts)
        super().__init__({
            "s_axil": In(AXI4LiteSignature(addr_width=self.regmap.addr_width)),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = regs = AXI4LiteRegisters(self.regmap)
        m.submodules.control = control = DotProductControl(self.config)
        m.submodules.unit = unit = make_dot_product(self.config)
        wiring.connect(m, wiring.flipped(self.s_axil), regs.s_axil)
        wiring.connect(m, regs.regs, control.regs)
        wiring.connect(m, control.unit_i, unit.i)
        wiring.connect(m, unit.o, control.unit_o)
        m.d.comb += self.irq.eq(control.irq)
        return m
