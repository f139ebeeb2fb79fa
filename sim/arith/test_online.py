"""pytest entry: the online operators' and OTF converter's Verilog under Verilator (and
Icarus) against the golden models (cocotb testbench :mod:`msdf_unet.sim.arith.tb_online`)."""
import pytest
from amaranth import Module
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from msdf_unet.hdl.arith.online import OnlineAdder, OnlineMultiplierSP, OnlineMultiplierSS
from msdf_unet.hdl.arith.otf import OnTheFlyConverter
from msdf_unet.hdl.verilog import write_verilog
from msdf_unet.sim.toolchain import SIM_BUILD_ROOT, require_simulator, run_cocotb

PARAMS = {"OTF_WIDTH": 10, "SP_Y_BITS": 8, "SS_DIGITS": 6}


class OnlineUnitsTop(wiring.Component):
    """One Verilog top with every unit side by side; each unit's ports appear under its
    prefix (``add__x_valid``, ``otf__q``, ...), so one simulator build tests all of them."""

    def __init__(self, *, otf_width, sp_y_bits, ss_digits):
        self.units = {"add": OnlineAdder(), "otf": OnTheFlyConverter(width=otf_width),
                      "msp": OnlineMultiplierSP(y_bits=sp_y_bits),
                      "mss": OnlineMultiplierSS(digits=ss_digits)}
        super().__init__({name: Out(unit.signature) for name, unit in self.units.items()})

    def elaborate(self, platform):
        m = Module()
        for name, unit in self.units.items():
            m.submodules[name] = unit
            outer = getattr(self, name)
            for key, member in unit.signature.members.items():
                inner_sig, outer_sig = getattr(unit, key), getattr(outer, key)
                if member.flow == wiring.In:
                    m.d.comb += inner_sig.eq(outer_sig)
                else:
                    m.d.comb += outer_sig.eq(inner_sig)
        return m


def _verilog(simulator):
    top = OnlineUnitsTop(otf_width=PARAMS["OTF_WIDTH"], sp_y_bits=PARAMS["SP_Y_BITS"],
                         ss_digits=PARAMS["SS_DIGITS"])
    # one file per simulator: parallel pytest workers never write the same file
    return write_verilog(top, name="online_units",
                      path=SIM_BUILD_ROOT / "src" / f"online_units-{simulator}.v")


CASES = [
    pytest.param("verilator", None, id="verilator-all"),
    pytest.param("icarus", "online_adder_vs_golden", id="icarus-adder"),
]


@pytest.mark.parametrize("simulator,testcase", CASES)
def test_online_units(simulator, testcase):
    require_simulator(simulator)
    run_cocotb(simulator=simulator, verilog_sources=[_verilog(simulator)], toplevel="online_units",
               test_module="msdf_unet.sim.arith.tb_online", build_name="online-units",
               parameters_env={**{k: str(v) for k, v in PARAMS.items()}, "SEED": "3", "N_OPS": "60"},
               testcase=testcase)
