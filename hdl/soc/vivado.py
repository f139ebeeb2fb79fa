"""The Vivado build tree for the PYNQ-Z2, and running Vivado when it is installed.

Flow (why a block design): ``pynq.Overlay`` needs the ``.bit`` *and* the ``.hwh`` hardware
handoff, and Vivado writes a ``.hwh`` only for IP-integrator block designs. So the tree
holds a Tcl script that builds a block design around the Amaranth-generated accelerator:

- ``processing_system7`` configured for the PYNQ-Z2 (the board preset when the PYNQ-Z2 board
  files are installed, otherwise the explicit DDR3/MIO settings of that board written
  here), with ``M_AXI_GP0`` for control, ``FCLK_CLK0`` at ``clk_mhz`` (which must be a
  frequency the PS7 produces exactly from its 1000 MHz IO PLL: :func:`ps7_fclk_mhz`; the
  script checks the PS7's *actual* frequency, so the ``FREQ_HZ`` the wrapper declares is
  the clock the PL gets) and ``IRQ_F2P``;
- ``S_AXI_HP0`` (64 bit) for the top's AXI4 master (``mem_master``: the wrapper interface
  :data:`~.generate.MEM_BUS` of the convolution engine, the default top): connected through
  an interconnect and given the whole DDR (``HP0_DDR_LOWOCM``). The dot-product top
  (``top="dot"``) has no master, so HP0 stays disabled for it (an enabled HP0 without a
  master fails ``validate_bd_design``);
- the accelerator as a module reference (``msdf_accel``, the wrapper of
  :mod:`.generate`; PYNQ sees the VLNV :data:`ACCEL_VLNV`), its AXI4-Lite slave on
  ``M_AXI_GP0`` through an AXI interconnect, its interrupt through ``xlconcat`` ->
  ``axi_intc`` -> ``IRQ_F2P`` (the topology ``pynq.Interrupt`` discovers), reset from a
  ``proc_sys_reset``;
- synthesis, implementation, bitstream; the build fails unless timing is met (worst setup,
  hold and pulse-width slack all >= 0); ``out/`` is the PYNQ overlay folder:
  ``msdf_accel.bit``, ``msdf_accel.hwh``, ``msdf_accel.xsa``, ``regmap.json``,
  ``config.json``, ``engine_config.json`` (engine top), the compiled programs given to
  :func:`write_tree` and a ``README.md``.

The script uses Tcl 8.5 commands only (Vivado up to 2020.x embeds Tcl 8.5):
:data:`TCL86_ONLY` lists what it must not use; the tests scan for them.
"""
from __future__ import annotations

import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .config import PS7_IO_PLL_MHZ, AccelConfig, ps7_fclk_mhz
from .generate import CORE_NAME, WRAPPER_NAME, Generated, generate
from .platform import PYNQZ2Platform

__all__ = ["VivadoTree", "VivadoNotFound", "write_tree", "run_vivado", "build_tcl", "ps7_fclk_mhz",
           "BD_NAME", "PROJECT", "PS7_PYNQ_Z2", "PS7_IO_PLL_MHZ", "ACCEL_VLNV", "ACCEL_CELL",
           "TCL86_ONLY"]

BD_NAME = "msdf_bd"
PROJECT = "msdf_unet"
#: Name of the accelerator's cell in the block design: ``Overlay(...).msdf_accel_0``.
ACCEL_CELL = f"{WRAPPER_NAME}_0"
#: VLNV Vivado gives a module reference; the PYNQ driver binds to it (host/pynq_ip.py).
ACCEL_VLNV = f"xilinx.com:module_ref:{WRAPPER_NAME}:1.0"
#: Tcl commands (and subcommands) that Tcl 8.5 lacks.
TCL86_ONLY = ("lmap", "try", "throw", "tailcall", "coroutine", "yield", "yieldto", "dict map",
              "string cat", "file tempfile", "info coroutine", "oo::class", "zlib", "lsort -stride",
              "chan pipe", "finally")
#: PS7 settings of the PYNQ-Z2 (DDR3 MT41K256M16 RE-125 x16, 50 MHz PS clock, UART0 on
#: MIO 14..15, Ethernet on MIO 16..27, USB0, SD0, QSPI), used when no board files exist.
PS7_PYNQ_Z2 = {
    "PCW_PRESET_BANK0_VOLTAGE": "LVCMOS 3.3V",
    "PCW_PRESET_BANK1_VOLTAGE": "LVCMOS 1.8V",
    "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "50",
    "PCW_APU_PERIPHERAL_FREQMHZ": "650",
    "PCW_UIPARAM_DDR_PARTNO": "MT41K256M16 RE-125",
    "PCW_UIPARAM_DDR_BUS_WIDTH": "16 Bit",
    "PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL": "1",
    "PCW_UIPARAM_DDR_TRAIN_READ_GATE": "1",
    "PCW_UIPARAM_DDR_TRAIN_DATA_EYE": "1",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0": "0.040",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_1": "0.058",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2": "-0.009",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3": "-0.033",
    "PCW_UIPARAM_DDR_BOARD_DELAY0": "0.223",
    "PCW_UIPARAM_DDR_BOARD_DELAY1": "0.212",
    "PCW_UIPARAM_DDR_BOARD_DELAY2": "0.085",
    "PCW_UIPARAM_DDR_BOARD_DELAY3": "0.092",
    "PCW_QSPI_PERIPHERAL_ENABLE": "1",
    "PCW_QSPI_GRP_SINGLE_SS_ENABLE": "1",
    "PCW_ENET0_PERIPHERAL_ENABLE": "1",
    "PCW_ENET0_ENET0_IO": "MIO 16 .. 27",
    "PCW_ENET0_GRP_MDIO_ENABLE": "1",
    "PCW_ENET0_GRP_MDIO_IO": "MIO 52 .. 53",
    "PCW_SD0_PERIPHERAL_ENABLE": "1",
    "PCW_SD0_GRP_CD_ENABLE": "1",
    "PCW_SD0_GRP_CD_IO": "MIO 47",
    "PCW_UART0_PERIPHERAL_ENABLE": "1",
    "PCW_UART0_UART0_IO": "MIO 14 .. 15",
    "PCW_USB0_PERIPHERAL_ENABLE": "1",
    "PCW_USB0_RESET_ENABLE": "1",
    "PCW_USB0_RESET_IO": "MIO 46",
}


def _check_fclk(clk_mhz: float) -> None:
    actual = ps7_fclk_mhz(clk_mhz)
    if abs(actual - clk_mhz) > 1e-6:
        near = sorted({PS7_IO_PLL_MHZ / n for n in range(1, 64 * 64)
                       if abs(PS7_IO_PLL_MHZ / n - clk_mhz) < 0.2 * clk_mhz}, key=lambda f: abs(f - clk_mhz))[:2]
        raise ValueError(
            f"clk_mhz {clk_mhz:g} is not a frequency the PS7 makes from its {PS7_IO_PLL_MHZ:g} MHz IO PLL "
            f"(it would give {actual:.4f} MHz and the wrapper's FREQ_HZ would be wrong); use e.g. "
            + " or ".join(f"{f:.6g}" for f in sorted(near)))


class VivadoNotFound(RuntimeError):
    """``vivado`` is not on PATH; the tree was written and can be built elsewhere."""


@dataclass(frozen=True)
class VivadoTree:
    root: Path
    tcl: Path
    sources: tuple[Path, ...]
    out_dir: Path
    top: str = "engine"

    @property
    def command(self) -> list[str]:
        return ["vivado", "-mode", "batch", "-nojournal", "-log", "vivado.log",
                "-source", self.tcl.name]


def _tcl_dict(settings: dict[str, str]) -> str:
    return " \\\n    ".join(f"CONFIG.{k} {{{v}}}" for k, v in settings.items())


def _hp0_tcl(mem_master: str | None) -> str:
    if mem_master is None:
        return ("# S_AXI_HP0 stays disabled: this accelerator top has no AXI4 master "
                "(write_tree(mem_master=...) enables it)\n")
    cell = ACCEL_CELL
    return f"""\
# The accelerator's AXI4 master -> interconnect -> S_AXI_HP0 (64 bit), all of DDR addressable
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \\
    -config {{Master "/{cell}/{mem_master}" Slave "/processing_system7_0/S_AXI_HP0" Clk "Auto"}} \\
    [get_bd_intf_pins processing_system7_0/S_AXI_HP0]
assign_bd_address -target_address_space [get_bd_addr_spaces {cell}/{mem_master}] \\
    [get_bd_addr_segs processing_system7_0/S_AXI_HP0/HP0_DDR_LOWOCM] -force
"""


def build_tcl(config: AccelConfig, *, part: str, sources: Sequence[str],
              mem_master: str | None = None, programs: Sequence[str] = ()) -> str:
    """The Tcl script of the tree (paths relative to the tree's root).

    ``mem_master``: name of the top's AXI4 master interface for ``S_AXI_HP0`` (None: the top
    has none, HP0 stays disabled). ``programs``: files (relative to the root) copied into
    the overlay folder.
    """
    _check_fclk(config.clk_mhz)
    period_ns = 1000.0 / config.clk_mhz
    ps7_fabric = {
        "PCW_USE_M_AXI_GP0": "1",
        "PCW_FPGA0_PERIPHERAL_FREQMHZ": f"{config.clk_mhz:g}",
        "PCW_EN_CLK0_PORT": "1",
        "PCW_EN_RST0_PORT": "1",
        "PCW_USE_FABRIC_INTERRUPT": "1",
        "PCW_IRQ_F2P_INTR": "1",
    }
    if mem_master is not None:
        ps7_fabric.update({"PCW_USE_S_AXI_HP0": "1", "PCW_S_AXI_HP0_DATA_WIDTH": "64"})
    src_list = " ".join(sources)
    prog_list = " ".join(programs)
    cell = ACCEL_CELL
    return f"""\
# Generated by msdf-unet (hdl/soc/vivado.py); run: vivado -mode batch -source build.tcl
# Builds the PYNQ-Z2 overlay: PS7 + the Amaranth accelerator on M_AXI_GP0 (Tcl 8.5 only).
set root [file normalize [file dirname [info script]]]
set part {part}
set clk_mhz {config.clk_mhz:g}
set clk_period_ns {period_ns:.3f}
set sources [list {src_list}]
set programs [list {prog_list}]

foreach src [concat $sources $programs] {{
    if {{![file exists [file join $root $src]]}} {{ error "missing source $src in $root" }}
}}

create_project -force {PROJECT} [file join $root project] -part $part
set board [lindex [get_board_parts -quiet -latest_file_version *pynq-z2*] 0]
if {{$board ne ""}} {{ set_property board_part $board [current_project] }}
set src_paths [list]
foreach s $sources {{ lappend src_paths [file join $root $s] }}
add_files -norecurse $src_paths
set_property top {WRAPPER_NAME} [get_filesets sources_1]
update_compile_order -fileset sources_1

create_bd_design {BD_NAME}
set ps7 [create_bd_cell -type ip -vlnv xilinx.com:ip:processing_system7 processing_system7_0]
if {{$board ne ""}} {{
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \\
        -config {{make_external "FIXED_IO, DDR" apply_board_preset "1"}} $ps7
}} else {{
    apply_bd_automation -rule xilinx.com:bd_rule:processing_system7 \\
        -config {{make_external "FIXED_IO, DDR" apply_board_preset "0"}} $ps7
    set_property -dict [list \\
    {_tcl_dict(PS7_PYNQ_Z2)}] $ps7
}}
set_property -dict [list \\
    {_tcl_dict(ps7_fabric)}] $ps7
# The wrapper declares FREQ_HZ {config.clk_mhz * 1e6:.0f}: the PS7 must produce exactly that clock
set act_mhz [get_property CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ $ps7]
if {{$act_mhz eq "" || abs($act_mhz - $clk_mhz) > 0.001}} {{
    error "FCLK_CLK0 is $act_mhz MHz, expected $clk_mhz MHz (the wrapper's FREQ_HZ)"
}}

set accel [create_bd_cell -type module -reference {WRAPPER_NAME} {cell}]
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \\
    -config {{Master "/processing_system7_0/M_AXI_GP0" Clk "Auto"}} \\
    [get_bd_intf_pins {cell}/s_axi_ctrl]
{_hp0_tcl(mem_master)}
# Interrupt: accelerator -> xlconcat -> axi_intc -> IRQ_F2P (what pynq.Interrupt discovers)
set concat [create_bd_cell -type ip -vlnv xilinx.com:ip:xlconcat xlconcat_0]
set_property -dict [list CONFIG.NUM_PORTS {{1}}] $concat
set intc [create_bd_cell -type ip -vlnv xilinx.com:ip:axi_intc axi_intc_0]
set_property -dict [list CONFIG.C_IRQ_CONNECTION {{1}} CONFIG.C_IRQ_IS_LEVEL {{1}}] $intc
apply_bd_automation -rule xilinx.com:bd_rule:axi4 \\
    -config {{Master "/processing_system7_0/M_AXI_GP0" Clk "Auto"}} \\
    [get_bd_intf_pins axi_intc_0/s_axi]
connect_bd_net [get_bd_pins {cell}/irq] [get_bd_pins xlconcat_0/In0]
connect_bd_net [get_bd_pins xlconcat_0/dout] [get_bd_pins axi_intc_0/intr]
connect_bd_net [get_bd_pins axi_intc_0/irq] [get_bd_pins processing_system7_0/IRQ_F2P]
assign_bd_address
validate_bd_design
save_bd_design

set bd_file [get_files {BD_NAME}.bd]
generate_target all $bd_file
make_wrapper -files $bd_file -top -import
set_property top {BD_NAME}_wrapper [get_filesets sources_1]
update_compile_order -fileset sources_1

launch_runs synth_1 -jobs 2
wait_on_run synth_1
if {{[get_property PROGRESS [get_runs synth_1]] ne "100%"}} {{ error "synthesis failed" }}
open_run synth_1
set fclk [get_clocks -quiet clk_fpga_0]
if {{$fclk eq ""}} {{ error "no PL clock clk_fpga_0: FCLK_CLK0 is not constrained" }}
if {{abs([get_property PERIOD $fclk] - $clk_period_ns) > 0.001}} {{
    error "clk_fpga_0 period [get_property PERIOD $fclk] ns, expected $clk_period_ns ns"
}}
close_design

launch_runs impl_1 -to_step write_bitstream -jobs 2
wait_on_run impl_1
if {{[get_property PROGRESS [get_runs impl_1]] ne "100%"}} {{ error "implementation failed" }}
open_run impl_1
file mkdir [file join $root reports]
report_utilization -file [file join $root reports utilization.rpt]
report_timing_summary -file [file join $root reports timing.rpt]
# every constraint met: worst setup, hold and pulse-width slack
set wns [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -setup]]
set whs [get_property SLACK [get_timing_paths -max_paths 1 -nworst 1 -hold]]
set wpws [get_property STATS.TPWS [get_runs impl_1]]
foreach {{what slack}} [list setup $wns hold $whs pulse-width $wpws] {{
    if {{$slack eq "" || $slack < 0}} {{
        error "timing not met at {config.clk_mhz:g} MHz: worst $what slack '$slack' ns"
    }}
}}

set out [file join $root out]
file mkdir $out
set impl_dir [get_property DIRECTORY [get_runs impl_1]]
file copy -force [file join $impl_dir {BD_NAME}_wrapper.bit] [file join $out {WRAPPER_NAME}.bit]
set hwh [lindex [glob -nocomplain \\
    [file join $root project {PROJECT}.gen sources_1 bd {BD_NAME} hw_handoff {BD_NAME}.hwh] \\
    [file join $root project {PROJECT}.srcs sources_1 bd {BD_NAME} hw_handoff {BD_NAME}.hwh]] 0]
if {{$hwh eq ""}} {{ error "no hardware handoff (.hwh) was written" }}
file copy -force $hwh [file join $out {WRAPPER_NAME}.hwh]
write_hw_platform -fixed -include_bit -force -file [file join $out {WRAPPER_NAME}.xsa]
file copy -force [file join $root regmap.json] [file join $out regmap.json]
file copy -force [file join $root config.json] [file join $out config.json]
file copy -force [file join $root overlay_README.md] [file join $out README.md]
foreach prog $programs {{ file copy -force [file join $root $prog] [file join $out [file tail $prog]] }}
puts "msdf-unet: overlay written to $out"
"""


def _overlay_readme(config: AccelConfig, programs: Sequence[str], gen: Generated) -> str:
    kinds = {".msdfp": "quantized program (`msdf_unet.load_model(path)`)",
             ".msdfi": "the program compiled for this engine (`host/compiler.py`; the pynq "
                       "backend uses it instead of compiling on the board)"}
    progs = "".join(f"- `{Path(p).name}`: {kinds.get(Path(p).suffix, 'file given to the build')}\n"
                    for p in programs) or "- (no compiled program was given to this build)\n"
    if gen.top == "engine":
        top = ("the convolution engine (`hdl/conv/engine.py`); `engine_config.json` is its "
               "EngineConfig (the runtime refuses a program compiled for another one)")
        use = f"""```python
import msdf_unet
model = msdf_unet.load_model("/home/xilinx/msdf_accel/mri_edge.msdfp")
seg = msdf_unet.segment(image_or_volume, model, backend="pynq",
                        overlay="/home/xilinx/msdf_accel/{WRAPPER_NAME}.bit")
```
or by hand: `ol.{ACCEL_CELL}.engine_driver(nbytes)` (`msdf_unet.host.engine_driver.EngineDriver`)."""
    else:
        top = "the dot-product skeleton (`hdl/soc/accel.py`)"
        use = f"`ol.{ACCEL_CELL}.dot_driver()` (`msdf_unet.host.driver.DotProductDriver`)."
    ecfg = "- `engine_config.json`: the engine's EngineConfig\n" if gen.top == "engine" else ""
    return f"""# msdf-unet overlay for the PYNQ-Z2

Top of the PL: {top}.
Copy this folder to the board (e.g. `/home/xilinx/msdf_accel/`) and load it with

```python
from pynq import Overlay
import msdf_unet.host.pynq_ip          # registers the driver for {ACCEL_VLNV}
ol = Overlay("/home/xilinx/msdf_accel/{WRAPPER_NAME}.bit")
accel = ol.{ACCEL_CELL}                # msdf_unet.host.pynq_ip.MsdfAccelIP
```

{use}

- `{WRAPPER_NAME}.bit`, `{WRAPPER_NAME}.hwh`: bitstream and hardware handoff (pynq.Overlay)
- `{WRAPPER_NAME}.xsa`: hardware platform (Vitis / PetaLinux)
- `regmap.json`: the register map (the driver checks its digest against the hardware's)
- `config.json`: build settings (FCLK0 {config.clk_mhz:g} MHz)
{ecfg}{progs}
Control on M_AXI_GP0; interrupt through xlconcat -> axi_intc -> IRQ_F2P;
S_AXI_HP0: {"64-bit, master " + gen.mem_master if gen.mem_master else "not used by this top"}.
"""


def write_tree(config: AccelConfig = AccelConfig(), root: Path | str = "build/vivado", *,
               top: str = "engine", engine_config=None,
               programs: Sequence[Path | str] = ()) -> VivadoTree:
    """Write the complete Vivado build tree under ``root`` (sources, Tcl, README).

    ``top`` / ``engine_config``: the board top (:func:`.generate.generate`; default the
    convolution engine with :data:`~msdf_unet.spec.engine.BOARD_CONFIG`). The engine's
    AXI4 master goes to ``S_AXI_HP0`` and its ``engine_config.json`` into the overlay.
    ``programs`` (compiled ``.msdfp`` / ``.msdfi`` files) are copied into the tree and from
    there into the overlay folder. ValueError for a ``clk_mhz`` the PS7 cannot produce
    exactly or a missing program file.
    """
    _check_fclk(config.clk_mhz)
    root = Path(root)
    programs = [Path(p) for p in programs]
    for p in programs:
        if not p.is_file():
            raise ValueError(f"program {p} does not exist")
    root.mkdir(parents=True, exist_ok=True)
    gen = generate(config, root / "src", top=top, engine_config=engine_config)
    # regmap/config sit at the root so the Tcl copies them next to the bitstream
    shutil.copyfile(gen.regmap, root / "regmap.json")
    shutil.copyfile(gen.config, root / "config.json")
    prog_rel = []
    if gen.engine_config is not None:
        (root / "programs").mkdir(exist_ok=True)
        shutil.copyfile(gen.engine_config, root / "programs" / "engine_config.json")
        prog_rel.append("programs/engine_config.json")
    for p in programs:
        (root / "programs").mkdir(exist_ok=True)
        if p.resolve() != (root / "programs" / p.name).resolve():
            shutil.copyfile(p, root / "programs" / p.name)
        prog_rel.append(f"programs/{p.name}")
    sources = [str(p.relative_to(root)) for p in gen.sources]
    tcl = root / "build.tcl"
    tcl.write_text(build_tcl(config, part=PYNQZ2Platform().part, sources=sources,
                             mem_master=gen.mem_master, programs=prog_rel))
    (root / "overlay_README.md").write_text(
        _overlay_readme(config, [p for p in prog_rel if not p.endswith("engine_config.json")], gen))
    (root / "README.txt").write_text(
        f"msdf-unet Vivado build tree for the PYNQ-Z2 ({PYNQZ2Platform().part}).\n"
        f"Top of the PL: {WRAPPER_NAME} (wraps {CORE_NAME}, the {gen.top} top); block design {BD_NAME}.\n"
        f"Build:  cd {root} && vivado -mode batch -source build.tcl\n"
        f"Result: the overlay folder out/ ({WRAPPER_NAME}.bit, .hwh, .xsa, regmap.json, "
        f"config.json, README.md, programs)\n")
    return VivadoTree(root=root, tcl=tcl, sources=tuple(root / s for s in sources),
                      out_dir=root / "out", top=gen.top)


def run_vivado(tree: VivadoTree) -> Path:
    """Run Vivado on ``tree``; return the bitstream path. VivadoNotFound without Vivado."""
    exe = shutil.which("vivado")
    if exe is None:
        raise VivadoNotFound(
            f"Vivado is not on PATH. The complete build tree is in {tree.root}/ "
            f"(build.tcl, src/, regmap.json); build it where Vivado is installed with:\n"
            f"    cd {tree.root} && vivado -mode batch -source build.tcl")
    subprocess.run(tree.command, cwd=tree.root, check=True)
    bit = tree.out_dir / f"{WRAPPER_NAME}.bit"
    if not bit.is_file() or not bit.with_suffix(".hwh").is_file():
        raise RuntimeError(f"Vivado finished but {bit} or its .hwh is missing; see {tree.root}/vivado.log")
    return bit
