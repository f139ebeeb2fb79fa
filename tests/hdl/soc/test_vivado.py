"""The Vivado build tree: sources, part, top, clock and a Tcl script that runs end to end.

Vivado is not needed: the script runs in a plain Tcl interpreter where every Vivado
command is a stub that records its call (and, for the queries the script checks, answers
like Vivado would). So a typo, a missing source or a broken check fails here, not on the
build machine.
"""
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from msdf_unet.hdl.bus.regmap import RegisterMap
from msdf_unet.hdl.conv.regs import engine_map
from msdf_unet.hdl.soc.config import AccelConfig
from msdf_unet.hdl.soc.generate import CORE_NAME, MEM_BUS, WRAPPER_NAME
from msdf_unet.hdl.soc.vivado import (ACCEL_CELL, BD_NAME, PROJECT, PS7_IO_PLL_MHZ, TCL86_ONLY,
                                      VivadoNotFound, build_tcl, ps7_fclk_mhz, run_vivado, write_tree)
from msdf_unet.spec.engine import ArrayConfig, EngineConfig

CONFIG = AccelConfig(clk_mhz=100.0)
#: a small engine (1 core of 6 lanes): the tree's structure does not depend on its size
SMALL = EngineConfig(arrays=(ArrayConfig("mma", 1, 6),))

STUBS = r"""
set ::calls {}
proc unknown {args} { lappend ::calls $args; return "" }
proc dump_calls {} {
    foreach c $::calls { puts [join $c "\x1f"] }
}
proc get_board_parts {args} { lappend ::calls [list get_board_parts {*}$args]; return $::board }
proc get_clocks {args} { return clk_fpga_0 }
proc get_runs {name} { return $name }
proc get_bd_pins {args} { return [lindex $args end] }
proc get_bd_intf_pins {args} { return [lindex $args end] }
proc get_timing_paths {args} { if {[lsearch $args -hold] >= 0} { return hold } { return setup } }
proc get_property {name obj} {
    switch -- $name {
        PROGRESS  { return "100%" }
        PERIOD    { return $::period }
        SLACK     { if {$obj eq "hold"} { return $::hold } { return $::slack } }
        STATS.TPWS { return $::tpws }
        CONFIG.PCW_ACT_FPGA0_PERIPHERAL_FREQMHZ { return $::act_mhz }
        DIRECTORY { return $::impl_dir }
        default   { return "" }
    }
}
# Vivado <= 2020 embeds Tcl 8.5: what it lacks fails here too
foreach cmd {lmap try throw tailcall coroutine yield} {
    proc $cmd {args} [list error "$cmd is a Tcl 8.6-only command"]
}
"""


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    return write_tree(CONFIG, tmp_path_factory.mktemp("vivado") / "tree", engine_config=SMALL)


def run_tcl(tree, tmp_path, *, board="", period=10.0, slack=0.25, hold=0.05, tpws=1.0, act_mhz=100.0):
    root = tmp_path / "tree"
    shutil.copytree(tree.root, root)
    impl = root / "project" / f"{PROJECT}.runs" / "impl_1"
    impl.mkdir(parents=True)
    (impl / f"{BD_NAME}_wrapper.bit").write_bytes(b"bit")
    hwh = root / "project" / f"{PROJECT}.gen" / "sources_1" / "bd" / BD_NAME / "hw_handoff"
    hwh.mkdir(parents=True)
    (hwh / f"{BD_NAME}.hwh").write_text("<hwh/>")
    out = tclsh(f"set ::board {{{board}}}; set ::period {period}; set ::slack {slack}; "
                f"set ::hold {hold}; set ::tpws {tpws}; set ::act_mhz {act_mhz}; "
                f"set ::impl_dir {{{impl}}}\nsource {{{root / 'build.tcl'}}}\ndump_calls\n")
    return root, [tuple(line.split("\x1f")) for line in out.splitlines() if line]


class TclError(Exception):
    pass


def tclsh(script: str) -> str:
    """Run ``script`` after the stubs in a plain ``tclsh``; TclError with its message."""
    exe = shutil.which("tclsh")
    assert exe, "tclsh is missing: `make setup` installs it (apt package tcl)"
    with tempfile.NamedTemporaryFile("w", suffix=".tcl", delete=False) as f:
        f.write(STUBS + script)  # a script file: tclsh stops at the first error (stdin would not)
    proc = subprocess.run([exe, f.name], capture_output=True, text=True)
    Path(f.name).unlink()
    if proc.returncode != 0:
        raise TclError(proc.stderr)
    return proc.stdout


def test_tree_holds_every_source_and_the_exports(tree):
    assert {p.name for p in tree.sources} == {f"{CORE_NAME}.v", f"{WRAPPER_NAME}.v"}
    for p in tree.sources:
        assert p.is_file() and p.stat().st_size > 0
    core = (tree.root / "src" / f"{CORE_NAME}.v").read_text()
    wrapper = (tree.root / "src" / f"{WRAPPER_NAME}.v").read_text()
    assert re.search(rf"^module {CORE_NAME}\(", core, re.M)
    assert re.search(rf"^module {WRAPPER_NAME} \(", wrapper, re.M)
    assert f"{CORE_NAME} core (" in wrapper
    assert "FREQ_HZ 100000000" in wrapper and "PROTOCOL AXI4LITE" in wrapper and "PROTOCOL AXI4," in wrapper
    assert AccelConfig.from_json((tree.root / "config.json").read_text()) == CONFIG
    assert RegisterMap.from_json((tree.root / "regmap.json").read_text()) == engine_map()
    assert EngineConfig.from_json((tree.root / "programs" / "engine_config.json").read_text()) == SMALL
    tcl = tree.tcl.read_text()
    assert f'Master "/{ACCEL_CELL}/{MEM_BUS}" Slave "/processing_system7_0/S_AXI_HP0"' in tcl
    assert "CONFIG.PCW_USE_S_AXI_HP0 {1}" in tcl and "HP0_DDR_LOWOCM" in tcl
    assert "set part xc7z020clg400-1" in tcl
    for p in tree.sources:
        assert str(p.relative_to(tree.root)) in tcl


def test_tcl_runs_end_to_end_and_copies_the_overlay(tree, tmp_path):
    root, calls = run_tcl(tree, tmp_path)
    names = [c[0] for c in calls]
    create = calls[names.index("create_project")]
    assert create[-2:] == ("-part", "xc7z020clg400-1")
    ps7_cfg = " ".join(" ".join(c) for c in calls if c[0] == "set_property")
    assert "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {100}" in ps7_cfg or \
        "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ 100" in ps7_cfg
    assert "CONFIG.PCW_USE_M_AXI_GP0" in ps7_cfg
    assert "CONFIG.PCW_UIPARAM_DDR_PARTNO" in ps7_cfg  # no board files: explicit PS7 settings
    cells = [c for c in calls if c[0] == "create_bd_cell"]
    assert any(c[1:4] == ("-type", "module", "-reference") and c[4] == WRAPPER_NAME for c in cells)
    runs = [c for c in calls if c[0] == "launch_runs"]
    assert [c[1] for c in runs] == ["synth_1", "impl_1"]
    assert runs[1][2:4] == ("-to_step", "write_bitstream")
    out = root / "out"
    assert {p.name for p in out.iterdir()} == {f"{WRAPPER_NAME}.bit", f"{WRAPPER_NAME}.hwh",
                                              "regmap.json", "config.json", "README.md",
                                              "engine_config.json"}
    auto = [" ".join(c) for c in calls if c[0] == "apply_bd_automation"]
    assert any(f"/{ACCEL_CELL}/{MEM_BUS}" in a and "S_AXI_HP0" in a for a in auto)
    assert ("get_bd_addr_spaces", f"{ACCEL_CELL}/{MEM_BUS}") in calls     # DDR mapped for the master
    assert any(c[0] == "assign_bd_address" and "-target_address_space" in c for c in calls)
    assert any(c[0] == "write_hw_platform" and c[-1].endswith(f"{WRAPPER_NAME}.xsa") for c in calls)
    assert ACCEL_CELL in (out / "README.md").read_text()
    assert json.loads((out / "config.json").read_text())["clk_mhz"] == 100.0


def test_board_preset_is_used_when_board_files_exist(tree, tmp_path):
    _, calls = run_tcl(tree, tmp_path, board="tul.com.tw:pynq-z2:part0:1.0")
    assert any(c[0] == "set_property" and c[1] == "board_part" for c in calls)
    assert not any("PCW_UIPARAM_DDR_PARTNO" in " ".join(c) for c in calls)


def test_wrong_clock_or_failed_timing_stops_the_build(tree, tmp_path):
    with pytest.raises(TclError, match="period 8.0 ns, expected 10.000 ns"):
        run_tcl(tree, tmp_path / "a", period=8.0)
    with pytest.raises(TclError, match="timing not met at 100 MHz: worst setup"):
        run_tcl(tree, tmp_path / "b", slack=-0.3)
    with pytest.raises(TclError, match="timing not met at 100 MHz: worst hold"):
        run_tcl(tree, tmp_path / "c", hold=-0.01)
    with pytest.raises(TclError, match="timing not met at 100 MHz: worst pulse-width"):
        run_tcl(tree, tmp_path / "d", tpws=-0.2)
    with pytest.raises(TclError, match="FCLK_CLK0 is 95.2381 MHz, expected 100 MHz"):
        run_tcl(tree, tmp_path / "e", act_mhz=95.2381)


def test_missing_source_is_named(tree, tmp_path):
    root = tmp_path / "t"
    shutil.copytree(tree.root, root)
    (root / "src" / f"{CORE_NAME}.v").unlink()
    with pytest.raises(TclError, match=f"missing source src/{CORE_NAME}.v"):
        tclsh(f"source {{{root / 'build.tcl'}}}\n")


def test_without_vivado_the_message_names_the_tree(tree, monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(VivadoNotFound, match=re.escape(str(tree.root))):
        run_vivado(tree)


def _bd_connections(calls):
    return [c for c in calls if c[0] in ("connect_bd_net", "connect_bd_intf_net")]


def test_interrupt_goes_through_concat_and_intc(tree, tmp_path):
    """pynq.Interrupt finds an interrupt only through axi_intc (fed by xlconcat) on IRQ_F2P."""
    _, calls = run_tcl(tree, tmp_path)
    cells = {c[-1]: c for c in calls if c[0] == "create_bd_cell"}
    assert "xilinx.com:ip:axi_intc" in cells["axi_intc_0"] and "xilinx.com:ip:xlconcat" in cells["xlconcat_0"]
    nets = [" ".join(c) for c in _bd_connections(calls)]
    assert any(f"{ACCEL_CELL}/irq" in n and "xlconcat_0/In0" in n for n in nets)
    assert any("xlconcat_0/dout" in n and "axi_intc_0/intr" in n for n in nets)
    assert any("axi_intc_0/irq" in n and "processing_system7_0/IRQ_F2P" in n for n in nets)
    assert not any(f"{ACCEL_CELL}/irq" in n and "IRQ_F2P" in n for n in nets)
    auto = [" ".join(c) for c in calls if c[0] == "apply_bd_automation"]
    assert any("axi_intc_0/s_axi" in a and "M_AXI_GP0" in a for a in auto)


def test_hp0_is_enabled_64bit_and_given_ddr_when_the_top_has_a_master(tmp_path):
    tcl = build_tcl(CONFIG, part="xc7z020clg400-1", sources=["src/a.v"], mem_master="m_axi_mem")
    assert "CONFIG.PCW_USE_S_AXI_HP0 {1}" in tcl and "CONFIG.PCW_S_AXI_HP0_DATA_WIDTH {64}" in tcl
    assert f'Master "/{ACCEL_CELL}/m_axi_mem" Slave "/processing_system7_0/S_AXI_HP0"' in tcl
    assert "HP0_DDR_LOWOCM" in tcl
    plain = build_tcl(CONFIG, part="xc7z020clg400-1", sources=["src/a.v"])
    assert "PCW_USE_S_AXI_HP0" not in plain and "HP0_DDR_LOWOCM" not in plain


def test_script_uses_no_tcl86_only_command(tree):
    words = re.findall(r"(?:^|[\[;{])\s*([A-Za-z_:]+(?: -?[a-z]+)?)", tree.tcl.read_text(), re.M)
    heads = {w for w in words} | {w.split()[0] for w in words}
    assert not heads & set(TCL86_ONLY), heads & set(TCL86_ONLY)
    for cmd in TCL86_ONLY:
        assert not re.search(rf"(^|[\[;{{]\s*){re.escape(cmd)}\b", tree.tcl.read_text(), re.M), cmd


def test_clock_must_be_one_the_ps7_makes(tmp_path):
    assert ps7_fclk_mhz(100.0) == 100.0 and ps7_fclk_mhz(150.0) == pytest.approx(PS7_IO_PLL_MHZ / 7)
    with pytest.raises(ValueError, match="clk_mhz 150 is not a frequency the PS7 makes"):
        write_tree(AccelConfig(clk_mhz=150.0), tmp_path / "t", engine_config=SMALL)


def test_programs_are_copied_into_the_overlay(tmp_path):
    prog = tmp_path / "mri_edge.msdfp"
    prog.write_bytes(b"program")
    t = write_tree(CONFIG, tmp_path / "tree", engine_config=SMALL, programs=[prog])
    root, _ = run_tcl(t, tmp_path / "run")
    assert (root / "out" / "mri_edge.msdfp").read_bytes() == b"program"
    assert EngineConfig.from_json((root / "out" / "engine_config.json").read_text()) == SMALL
    assert "mri_edge.msdfp" in (root / "out" / "README.md").read_text()
    with pytest.raises(ValueError, match="does not exist"):
        write_tree(CONFIG, tmp_path / "t2", programs=[tmp_path / "nope.msdfp"])


def test_dot_top_is_an_explicit_alternative_without_hp0(tmp_path):
    from msdf_unet.hdl.soc.regs import accelerator_map
    cfg = AccelConfig(variant="bitserial")
    t = write_tree(cfg, tmp_path / "tree", top="dot")
    assert t.top == "dot"
    assert RegisterMap.from_json((t.root / "regmap.json").read_text()) == accelerator_map(n_lanes=cfg.n_lanes)
    assert "PCW_USE_S_AXI_HP0" not in t.tcl.read_text() and not (t.root / "programs").exists()
    assert "m_axi" not in (t.root / "src" / f"{WRAPPER_NAME}.v").read_text()
    root, _ = run_tcl(t, tmp_path / "run")
    assert not (root / "out" / "engine_config.json").exists()
    with pytest.raises(ValueError, match="engine top only"):
        write_tree(cfg, tmp_path / "t2", top="dot", engine_config=SMALL)
    with pytest.raises(ValueError, match="top must be one of"):
        write_tree(cfg, tmp_path / "t3", top="dsp")


@pytest.mark.vivado
def test_real_vivado_build(tmp_path):
    """Where Vivado is installed: the tree builds into a .bit and .hwh (tens of minutes)."""
    if shutil.which("vivado") is None:
        pytest.skip("needs Vivado on PATH")
    tree = write_tree(AccelConfig(), tmp_path / "vivado")     # the board top: BOARD_CONFIG
    bit = run_vivado(tree)
    assert bit.stat().st_size > 100_000 and bit.with_suffix(".hwh").is_file()
