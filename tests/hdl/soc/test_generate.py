"""The Vivado wrapper of the board top: every port of the engine's ``s_axil`` / ``m_axi``
carries an interface attribute (ports derived from the Amaranth signature), the bus
parameters agree with the signature and the PS7 clock, and the wrapper elaborates with the
core."""
import re
import shutil
import subprocess

import pytest
from amaranth.hdl import Shape
from amaranth.lib.wiring import Flow

from msdf_unet.hdl.conv.engine import ConvEngine
from msdf_unet.hdl.conv.regs import engine_map
from msdf_unet.hdl.bus.axi4 import MAX_BURST_BEATS
from msdf_unet.hdl.bus.regmap import RegisterMap
from msdf_unet.hdl.soc.config import AccelConfig, ps7_fclk_mhz
from msdf_unet.hdl.soc.generate import (CORE_NAME, CTRL_BUS, MEM_BUS, TOPS, WRAPPER_NAME, generate,
                                        make_top)
from msdf_unet.spec.engine import BOARD_CONFIG, ArrayConfig, EngineConfig

SMALL = EngineConfig(arrays=(ArrayConfig("mma", 1, 6),))
#: a clock the PS7 makes that is not a round number: FREQ_HZ must follow it exactly
CLK_MHZ = 1000.0 / 7


@pytest.fixture(scope="module")
def gen(tmp_path_factory):
    return generate(AccelConfig(clk_mhz=CLK_MHZ), tmp_path_factory.mktemp("gen"), engine_config=SMALL)


def _engine(config=SMALL):
    e = ConvEngine(config)
    e._MustUse__silence = True          # only its signature is read, it is not elaborated
    return e


def _expected_ports(member):
    """(name, direction, width) of every signal of the engine's ``member``, from its signature."""
    sig = _engine().signature.members[member]
    out = []
    for name, m in sig.signature.members.items():
        # the member's signature seen from the engine: Out = the engine drives it
        out.append((name, "output" if m.flow == Flow.Out else "input", Shape.cast(m.shape).width))
    return sig, out


@pytest.mark.parametrize("member,bus", [("s_axil", CTRL_BUS), ("m_axi", MEM_BUS)])
def test_every_bus_port_has_its_interface_attribute(gen, member, bus):
    text = gen.wrapper.read_text()
    sig, ports = _expected_ports(member)
    assert len(ports) > 10
    for name, direction, width in ports:
        rng = rf"\[{width - 1}:0\] " if width > 1 else ""
        decl = (rf'\(\* X_INTERFACE_INFO = "xilinx.com:interface:aximm:1.0 {bus} {name.upper()}" \*\)\n'
                rf'(?:  \(\* X_INTERFACE_PARAMETER = "[^"]*" \*\)\n)?'
                rf"  {direction} wire {rng}{bus}_{name}\b")
        assert re.search(decl, text), (bus, name, direction, width)
        assert f".{member}__{name}({bus}_{name})" in text
    declared = re.findall(rf"aximm:1.0 {bus} (\w+)\"", text)
    assert sorted(declared) == sorted(n.upper() for n, _, _ in ports)      # nothing else
    # the master is an AXI4 master, the slave an AXI4-Lite slave (Vivado infers the mode
    # from the directions: the engine drives the master's AWADDR and receives the slave's)
    assert ("awaddr", "output" if member == "m_axi" else "input") in [(n, d) for n, d, _ in ports]


def test_bus_parameters_follow_the_signature_and_the_ps7_clock(gen):
    text = gen.wrapper.read_text()
    freq = int(round(ps7_fclk_mhz(CLK_MHZ) * 1e6))
    assert freq == 142857143
    params = {port: p for p, port in re.findall(
        r'X_INTERFACE_PARAMETER = "([^"]*)" \*\)\n  \w+ wire (?:\[\d+:0\] )?(\w+)', text)}
    engine = _engine()
    m = engine.signature.members["m_axi"].signature
    mem = params[f"{MEM_BUS}_awid"]
    for item in ("PROTOCOL AXI4,", f"DATA_WIDTH {m.data_width},", f"ADDR_WIDTH {m.addr_width},",
                 f"ID_WIDTH {m.id_width},", f"MAX_BURST_LENGTH {MAX_BURST_BEATS},",
                 f"NUM_READ_OUTSTANDING {engine.max_reads},", f"FREQ_HZ {freq}"):
        assert item in mem, item
    ctrl = params[f"{CTRL_BUS}_awaddr"]
    assert ctrl == f"PROTOCOL AXI4LITE, DATA_WIDTH 32, ADDR_WIDTH {engine.s_axil.signature.addr_width}, FREQ_HZ {freq}"
    assert params["aclk"] == (f"ASSOCIATED_BUSIF {CTRL_BUS}:{MEM_BUS}, ASSOCIATED_RESET aresetn, "
                              f"FREQ_HZ {freq}")
    assert params["aresetn"] == "POLARITY ACTIVE_LOW" and ".rst(~aresetn)" in text
    assert params["irq"] == "SENSITIVITY LEVEL_HIGH"
    assert 'xilinx.com:signal:interrupt:1.0 irq INTERRUPT' in text


def test_exports_are_the_engine_s(gen):
    assert RegisterMap.from_json(gen.regmap.read_text()) == engine_map()
    assert EngineConfig.from_json(gen.engine_config.read_text()) == SMALL
    assert gen.top == TOPS[0] == "engine" and gen.mem_master == MEM_BUS
    assert re.search(rf"^module {CORE_NAME}\(", gen.core.read_text(), re.M)


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="needs Icarus Verilog")
def test_wrapper_elaborates_with_the_core(gen, tmp_path):
    proc = subprocess.run(["iverilog", "-g2005", "-s", WRAPPER_NAME, "-o", str(tmp_path / "a.out"),
                           str(gen.core), str(gen.wrapper)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_default_engine_is_the_board_config():
    top = make_top()
    top._MustUse__silence = True
    assert top.config is BOARD_CONFIG
    with pytest.raises(ValueError, match="top must be one of"):
        make_top("dsp")
