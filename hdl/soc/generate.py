"""Verilog of the board top, its Vivado wrapper, and the exported register map.

``make verilog`` calls :func:`generate`; the Vivado tree (:mod:`.vivado`), the Yosys report
(``make synth-report``) and the cocotb testbenches all use its output.

The board top (:data:`TOPS`):

- ``engine`` (default): the convolution engine
  :class:`~msdf_unet.hdl.conv.engine.ConvEngine` for an
  :class:`~msdf_unet.spec.engine.EngineConfig` (default
  :data:`~msdf_unet.spec.engine.BOARD_CONFIG`): AXI4-Lite slave ``s_axil``, 64-bit AXI4
  master ``m_axi`` (``S_AXI_HP0``), ``irq``;
- ``dot``: the dot-product skeleton :class:`~.accel.DotProductAccelerator` (AXI4-Lite
  slave and ``irq``), kept as an explicit alternative (its cocotb benches use it).

The Amaranth top :data:`CORE_NAME` has ports ``clk``, ``rst`` (synchronous, active high)
and the flattened members of its signature (``s_axil__awaddr``, ``m_axi__araddr``, ...).
The wrapper :data:`WRAPPER_NAME` renames them to Xilinx conventions (``aclk``, ``aresetn``
active low, ``s_axi_ctrl_*``, ``m_axi_*``) with ``X_INTERFACE_INFO`` /
``X_INTERFACE_PARAMETER`` attributes derived from the signature, so Vivado's IP integrator
infers one AXI4-Lite slave, one AXI4 master, their clock and reset, and a level interrupt.
``FREQ_HZ`` is the clock the PS7 actually produces for ``clk_mhz`` (:func:`~.config.ps7_fclk_mhz`).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from amaranth.hdl import Shape
from amaranth.lib.wiring import Flow

from ...fileio import write_text
from ...spec.engine import BOARD_CONFIG, EngineConfig
from ..verilog import write_verilog
from .config import AccelConfig, ps7_fclk_mhz

__all__ = ["CORE_NAME", "WRAPPER_NAME", "TOPS", "CTRL_BUS", "MEM_BUS", "Generated", "BusPorts",
           "generate", "make_top", "wrapper_verilog", "bus_ports"]

CORE_NAME = "msdf_accel_core"
WRAPPER_NAME = "msdf_accel"
#: Board tops :func:`generate` builds; the first is the default.
TOPS = ("engine", "dot")
#: Wrapper interface names: the AXI4-Lite control slave (on M_AXI_GP0) and the AXI4 memory
#: master (to S_AXI_HP0); the Tcl names the cell's pins by them.
CTRL_BUS = "s_axi_ctrl"
MEM_BUS = "m_axi"
#: Amaranth members of the tops behind those interfaces.
_CTRL_MEMBER, _MEM_MEMBER = "s_axil", "m_axi"
_VLNV_AXIMM = "xilinx.com:interface:aximm:1.0"


@dataclass(frozen=True)
class Generated:
    core: Path        #: Amaranth Verilog of the top
    wrapper: Path     #: Vivado-facing wrapper
    regmap: Path      #: register map JSON (host driver, testbenches, next to the bitstream)
    config: Path      #: AccelConfig JSON (clock; the dot top's lanes and variant)
    top: str = "dot"  #: one of :data:`TOPS`
    engine_config: Path | None = None   #: EngineConfig JSON (engine top only)
    mem_master: str | None = None       #: the wrapper's AXI4 master interface (engine top)

    @property
    def sources(self) -> list[Path]:
        return [self.core, self.wrapper]


@dataclass(frozen=True)
class BusPorts:
    """One bus of the wrapper: its interface name, the Amaranth member, and per signal
    (``name``, direction ``input``/``output``, width) in signature order."""

    bus: str
    member: str
    ports: tuple[tuple[str, str, int], ...]


def bus_ports(component, member: str, bus: str) -> BusPorts:
    """The ports of ``component``'s interface member ``member`` as module ports (the
    member's signature as the component sees it: an ``Out`` signal is an output)."""
    m = component.signature.members[member]
    ports = []
    for name, sub in m.signature.members.items():      # flipped for an In member
        direction = "output" if sub.flow == Flow.Out else "input"
        ports.append((name, direction, Shape.cast(sub.shape).width))
    return BusPorts(bus, member, tuple(ports))


def _bus_verilog(b: BusPorts, parameter: str) -> tuple[list[str], list[str]]:
    decls, conns = [], []
    for i, (name, direction, width) in enumerate(b.ports):
        rng = f"[{width - 1}:0] " if width > 1 else ""
        attrs = f'  (* X_INTERFACE_INFO = "{_VLNV_AXIMM} {b.bus} {name.upper()}" *)\n'
        if i == 0:
            attrs += f'  (* X_INTERFACE_PARAMETER = "{parameter}" *)\n'
        decls.append(f"{attrs}  {direction} wire {rng}{b.bus}_{name}")
        conns.append(f"    .{b.member}__{name}({b.bus}_{name})")
    return decls, conns


def wrapper_verilog(top, clk_mhz: float, *, comment: str = "") -> str:
    """The Vivado-facing wrapper module :data:`WRAPPER_NAME` around :data:`CORE_NAME` for
    the Amaranth component ``top`` (its ``s_axil`` member, its ``m_axi`` member if it has
    one, ``irq``), with the clock the PS7 makes for ``clk_mhz``."""
    freq_hz = int(round(ps7_fclk_mhz(clk_mhz) * 1e6))
    members = top.signature.members
    ctrl = bus_ports(top, _CTRL_MEMBER, CTRL_BUS)
    sig = members[_CTRL_MEMBER].signature
    decls, conns = _bus_verilog(ctrl, f"PROTOCOL AXI4LITE, DATA_WIDTH {sig.data_width}, "
                                      f"ADDR_WIDTH {sig.addr_width}, FREQ_HZ {freq_hz}")
    busif = [CTRL_BUS]
    if _MEM_MEMBER in members:
        from ..bus.axi4 import MAX_BURST_BEATS
        mem = bus_ports(top, _MEM_MEMBER, MEM_BUS)
        msig = members[_MEM_MEMBER].signature
        d, c = _bus_verilog(mem, (
            f"PROTOCOL AXI4, DATA_WIDTH {msig.data_width}, ADDR_WIDTH {msig.addr_width}, "
            f"ID_WIDTH {msig.id_width}, MAX_BURST_LENGTH {MAX_BURST_BEATS}, "
            f"NUM_READ_OUTSTANDING {getattr(top, 'max_reads', 1)}, NUM_WRITE_OUTSTANDING 1, "
            f"SUPPORTS_NARROW_BURST 0, HAS_BURST 1, HAS_CACHE 1, HAS_PROT 1, HAS_LOCK 0, "
            f"HAS_QOS 0, HAS_REGION 0, HAS_WSTRB 1, HAS_BRESP 1, HAS_RRESP 1, "
            f"READ_WRITE_MODE READ_WRITE, FREQ_HZ {freq_hz}"))
        decls += d
        conns += c
        busif.append(MEM_BUS)
    clock = (
        '  (* X_INTERFACE_INFO = "xilinx.com:signal:clock:1.0 aclk CLK" *)\n'
        f'  (* X_INTERFACE_PARAMETER = "ASSOCIATED_BUSIF {":".join(busif)}, ASSOCIATED_RESET aresetn, '
        f'FREQ_HZ {freq_hz}" *)\n  input wire aclk')
    reset = ('  (* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 aresetn RST" *)\n'
             '  (* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)\n  input wire aresetn')
    irq = ('  (* X_INTERFACE_INFO = "xilinx.com:signal:interrupt:1.0 irq INTERRUPT" *)\n'
           '  (* X_INTERFACE_PARAMETER = "SENSITIVITY LEVEL_HIGH" *)\n  output wire irq')
    body = ",\n".join([clock, reset, *decls, irq])
    conn = ",\n".join(["    .clk(aclk)", "    .rst(~aresetn)", *conns, "    .irq(irq)"])
    return (f"// Generated by msdf-unet{comment}; do not edit.\n"
            f"`timescale 1ns / 1ps\nmodule {WRAPPER_NAME} (\n{body}\n);\n"
            f"  {CORE_NAME} core (\n{conn}\n  );\nendmodule\n")


def make_top(top: str = "engine", config: AccelConfig = AccelConfig(),
             engine_config: EngineConfig | None = None):
    """The Amaranth component of board top ``top`` (:data:`TOPS`)."""
    if top not in TOPS:
        raise ValueError(f"top must be one of {TOPS}, not {top!r}")
    if top == "dot":
        if engine_config is not None:
            raise ValueError("an engine configuration applies to the engine top only, not to top 'dot'")
        from .accel import DotProductAccelerator
        return DotProductAccelerator(config)
    from ..conv.engine import ConvEngine
    return ConvEngine(BOARD_CONFIG if engine_config is None else engine_config)


def generate(config: AccelConfig = AccelConfig(), outdir: Path | str = "build/verilog", *,
             top: str = "engine", engine_config: EngineConfig | None = None) -> Generated:
    """Write the core, the wrapper, ``regmap.json``, ``config.json`` (and for the engine
    ``engine_config.json``) into ``outdir``.

    ``top``: one of :data:`TOPS`; ``engine_config``: the engine's configuration (default
    :data:`~msdf_unet.spec.engine.BOARD_CONFIG`). ``config`` gives the clock (and the dot
    top's lanes and variant)."""
    outdir = Path(outdir)
    component = make_top(top, config, engine_config)
    core = write_verilog(component, name=CORE_NAME, path=outdir / f"{CORE_NAME}.v")
    wrapper = outdir / f"{WRAPPER_NAME}.v"
    cfg = write_text(outdir / "config.json", config.to_json())
    if top == "dot":
        settings = json.dumps(json.loads(config.to_json()), sort_keys=True)
        write_text(wrapper, wrapper_verilog(component, config.clk_mhz,
                                            comment=f" from AccelConfig {settings}"))
        regmap = write_text(outdir / "regmap.json", component.regmap.to_json())
        return Generated(core=core, wrapper=wrapper, regmap=regmap, config=cfg, top=top)
    from ..conv.regs import engine_map
    ec = component.config
    write_text(wrapper, wrapper_verilog(
        component, config.clk_mhz, comment=f" (convolution engine, EngineConfig {ec.digest[:16]}, "
                                           f"FCLK0 {config.clk_mhz:g} MHz)"))
    regmap = write_text(outdir / "regmap.json", engine_map().to_json())
    ecp = write_text(outdir / "engine_config.json", ec.to_json())
    return Generated(core=core, wrapper=wrapper, regmap=regmap, config=cfg, top=top,
                     engine_config=ecp, mem_master=MEM_BUS)
