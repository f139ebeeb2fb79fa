"""Yosys utilization report: parsing, percentages, the fit check, and `synth-report` itself."""
import json
from pathlib import Path

import pytest

from msdf_unet.hdl.soc.synth import XC7Z020, Utilization
from msdf_unet.host.cli import main


def test_counts_and_percentages_from_cells():
    u = Utilization.from_cells("t", {"LUT1": 1, "LUT6": 9, "RAM32M": 2, "SRLC32E": 1,
                                     "FDRE": 50, "FDSE": 2, "CARRY4": 3, "DSP48E1": 11,
                                     "RAMB36E1": 2, "RAMB18E1": 3, "$scopeinfo": 4})
    assert (u.LUT, u.LUT_as_memory, u.FF, u.CARRY4, u.DSP48E1, u.BRAM36) == (19, 9, 52, 3, 11, 3.5)
    assert u.percent["DSP48E1"] == round(100 * 11 / 220, 2)
    assert u.fits() and "$scopeinfo" not in u.cells


def test_too_big_does_not_fit():
    u = Utilization.from_cells("t", {"DSP48E1": XC7Z020["DSP48E1"] + 1})
    assert not u.fits() and u.to_dict()["fits"] is False


def test_synth_report_of_the_skeleton(tmp_path, capsys):
    out = tmp_path / "utilization.json"
    args = ["synth-report", "--top", "dot", "--out", str(out), "--workdir", str(tmp_path / "w")]
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report["cached"] is False and report["top"] == "dot" and report["fits_budget"] is True
    # a second run of the same Verilog is the cached report
    assert main(args) == 0
    again = json.loads(out.read_text())
    assert again["cached"] is True and "cached" in capsys.readouterr().out
    assert {k: v for k, v in again.items() if k != "cached"} == {k: v for k, v in report.items() if k != "cached"}
    for k in ("LUT", "FF", "CARRY4", "DSP48E1", "BRAM36"):
        assert k in report and k in report["percent_of_xc7z020"]
    assert report["fits"] is True
    # the lane registers alone need 2 * n_lanes * 8 flip-flops; the whole top needs more
    assert report["FF"] > 2 * 11 * 8 and report["LUT"] > 0
    assert report["config"]["variant"] == "mma"
    path = report["timing_estimate"]["domains"]["clk"]
    for k in ("logic_levels", "critical_path_ns", "fmax_mhz_estimate", "meets_100mhz_estimate",
              "lut", "carry4", "carry4_bits", "muxf7", "muxf8", "dsp48e1", "bram", "nets", "max_fanout"):
        assert k in path
    # issue 7: the default configuration must estimate <= 8 ns
    assert path["critical_path_ns"] <= 8.0 and path["meets_100mhz_estimate"] is True


_FAKE_YOSYS = """#!/bin/sh
# stands for a first Yosys run that compiles the cache: records when it runs
echo "start $(date +%s.%N)" >> "$LOG"
sleep 0.5
echo "end $(date +%s.%N)" >> "$LOG"
"""


def test_first_yosys_runs_are_serialised(tmp_path):
    """Two processes warming Yosys at once never overlap (an empty YoWASP cache compiled by
    two processes at once gave SIGBUS); each warms once."""
    import os
    import subprocess
    import sys
    fake = tmp_path / "fake-yosys"
    fake.write_text(_FAKE_YOSYS)
    fake.chmod(0o755)
    log = tmp_path / "runs.log"
    env = dict(os.environ, LOG=str(log), YOWASP_CACHE_DIR=str(tmp_path / "cache"))
    code = ("from msdf_unet.hdl.soc.synth import warm_yosys; import sys; "
            "warm_yosys(sys.argv[1]); warm_yosys(sys.argv[1])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(fake)], env=env) for _ in range(2)]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    events = [line.split() for line in log.read_text().splitlines()]
    assert [e[0] for e in events] == ["start", "end", "start", "end"]  # serial, once each
    assert float(events[2][1]) >= float(events[1][1])


def test_warm_yosys_reports_a_broken_yosys(tmp_path, monkeypatch):
    import pytest

    from msdf_unet.hdl.soc.synth import warm_yosys
    bad = tmp_path / "bad-yosys"
    bad.write_text("#!/bin/sh\necho boom >&2\nexit 3\n")
    bad.chmod(0o755)
    monkeypatch.setenv("YOWASP_CACHE_DIR", str(tmp_path / "cache"))
    with pytest.raises(RuntimeError, match="exit 3.*boom"):
        warm_yosys(str(bad))


# --- timing estimate ------------------------------------------------------------------------

def _cell(kind, ins, outs, params=None):
    """A mapped cell: ``ins``/``outs`` are {port: bit}."""
    conns = {p: [b] for p, b in {**ins, **outs}.items()}
    dirs = {p: ("output" if p in outs else "input") for p in conns}
    return {"type": kind, "connections": conns, "port_directions": dirs,
            "parameters": params or {}}


def _ff(d, q, clk=1000):
    return _cell("FDRE", {"C": clk, "D": d}, {"Q": q})


def test_timing_estimate_of_a_hand_made_path():
    """FF -> LUT6 -> LUT6 -(S)-> CARRY4 -(CI)-> CARRY4 -> FF, and a shorter FF -> LUT -> FF;
    LUT -> MUXF7 -> MUXF8 -> FF in a second clock domain."""
    from msdf_unet.hdl.soc.synth import XC7_DELAYS_NS as D
    from msdf_unet.hdl.soc.synth import timing_estimate
    cells = {
        "r0": _ff(100, 1), "l1": _cell("LUT6", {"I0": 1}, {"O": 2}),
        "l2": _cell("LUT6", {"I0": 2}, {"O": 3}),
        "c1": _cell("CARRY4", {"S": 3, "CI": 50}, {"CO": 4}),
        "c2": _cell("CARRY4", {"CI": 4}, {"O": 5}), "r1": _ff(5, 6),
        "l3": _cell("LUT2", {"I0": 1}, {"O": 7}), "r2": _ff(7, 8),
        "r3": _ff(200, 20, clk=2000), "l4": _cell("LUT6", {"I0": 20}, {"O": 21}),
        "m7": _cell("MUXF7", {"I0": 21}, {"O": 22}), "m8": _cell("MUXF8", {"I0": 22}, {"O": 23}),
        "r4": _ff(23, 24, clk=2000),
    }
    netnames = {"clk": {"bits": [1000]}, "aux_clk": {"bits": [2000]}, "acc": {"bits": [6]}}
    est = timing_estimate({"modules": {"top": {"cells": cells, "netnames": netnames}}}, "top")
    # nets with general routing: FF->LUT, LUT->LUT, CARRY4->FF (LUT->S and CO->CI are dedicated)
    want = (D["ff_clk_to_q"] + 3 * D["route"] + 2 * D["lut"] + D["carry4_entry"]
            + D["carry4_chain"] + D["ff_setup"])
    p = est["domains"]["clk"]
    assert p["critical_path_ns"] == round(want, 3) and p["fmax_mhz_estimate"] == round(1000 / want, 1)
    assert (p["logic_levels"], p["carry4"], p["carry4_bits"], p["muxf7"], p["nets"]) == (2, 2, 8, 0, 3)
    assert p["end"] == "acc" and p["meets_100mhz_estimate"] is (want <= 8.0)
    assert p["max_fanout"] == 2          # r0's output feeds l1 and l3
    short = D["ff_clk_to_q"] + 2 * D["route"] + D["lut"] + D["ff_setup"]   # r0 -> l3 -> r2
    assert [q["critical_path_ns"] for q in p["next_worst"]] == [round(short, 3)]
    q = est["domains"]["aux_clk"]   # FF -> LUT (routed), LUT -> F7 -> F8 (dedicated), F8 -> FF
    want_mux = D["ff_clk_to_q"] + 2 * D["route"] + D["lut"] + D["muxf7"] + D["muxf8"] + D["ff_setup"]
    assert q["critical_path_ns"] == round(want_mux, 3) and (q["muxf7"], q["muxf8"]) == (1, 1)
    assert (est["lut_levels"], est["carry4_levels"]) == (2, 2)


def test_timing_estimate_ends_at_a_registered_dsp():
    from msdf_unet.hdl.soc.synth import XC7_DELAYS_NS as D
    from msdf_unet.hdl.soc.synth import timing_estimate
    cells = {"r0": _ff(100, 1), "l1": _cell("LUT3", {"I0": 1}, {"O": 2}),
             "dsp": _cell("DSP48E1", {"CLK": 1000, "A": 2}, {"P": 3}, {"MREG": "1"}),
             "r1": _ff(3, 4)}
    est = timing_estimate({"modules": {"top": {"cells": cells, "netnames": {"clk": {"bits": [1000]}}}}},
                          "top")
    into_dsp = D["ff_clk_to_q"] + 2 * D["route"] + D["lut"] + D["dsp_setup_mreg"]
    out_of_dsp = D["dsp_clk_to_out"] + D["dsp_comb"] + D["route"] + D["ff_setup"]  # no PREG
    p = est["domains"]["clk"]
    assert p["critical_path_ns"] == round(max(into_dsp, out_of_dsp), 3) and p["dsp48e1"] == 1


def test_timing_estimate_of_a_synthesised_adder(tmp_path):
    """A registered 8-bit adder: Yosys maps it to one LUT2 per bit feeding two chained
    CARRY4; the worst path is a -> LUT2 -> CARRY4 -> CARRY4 -> sum[7]."""
    from amaranth import Module, Signal

    from msdf_unet.hdl.soc.synth import XC7_DELAYS_NS as D
    from msdf_unet.hdl.soc.synth import synthesize, timing_estimate
    from msdf_unet.hdl.verilog import write_verilog
    from amaranth.lib import wiring
    from amaranth.lib.wiring import In, Out

    class Adder(wiring.Component):
        a: In(8)
        b: In(8)
        s: Out(8)

        def elaborate(self, platform):
            m = Module()
            ra, rb, rs = Signal(8), Signal(8), Signal(8)
            m.d.sync += [ra.eq(self.a), rb.eq(self.b), rs.eq(ra + rb), self.s.eq(rs)]
            return m

    src = write_verilog(Adder(), name="adder", path=tmp_path / "adder.v")
    synthesize([src], top="adder", workdir=tmp_path)
    est = timing_estimate(json.loads((tmp_path / "netlist.json").read_text()), "adder")
    p = est["domains"]["clk"]
    want = (D["ff_clk_to_q"] + D["route"] + D["lut"] + D["carry4_entry"] + D["carry4_chain"]
            + D["route"] + D["ff_setup"])
    assert (p["logic_levels"], p["carry4"], p["nets"]) == (1, 2, 2)
    assert p["critical_path_ns"] == round(want, 3) and p["meets_100mhz_estimate"]


def test_timing_estimate_through_an_unregistered_dsp_input():
    """AREG only: B -> P is combinational (multiplier), so the path runs through the DSP."""
    from msdf_unet.hdl.soc.synth import XC7_DELAYS_NS as D
    from msdf_unet.hdl.soc.synth import timing_estimate
    cells = {"r0": _ff(100, 1), "l1": _cell("LUT3", {"I0": 1}, {"O": 2}),
             "dsp": _cell("DSP48E1", {"CLK": 1000, "A": 1, "B": 2}, {"P": 3}, {"AREG": "1"}),
             "r1": _ff(3, 4)}
    est = timing_estimate({"modules": {"top": {"cells": cells, "netnames": {"clk": {"bits": [1000]}}}}},
                          "top")
    want = (D["ff_clk_to_q"] + 3 * D["route"] + D["lut"] + D["dsp_comb"] + D["ff_setup"])
    p = est["domains"]["clk"]
    assert p["critical_path_ns"] == round(want, 3) and (p["dsp48e1"], p["lut"], p["nets"]) == (1, 1, 3)


def _fake_engine_synth(calls):
    """Stands for hdl/conv/synth.py's route: writes what Yosys would (Verilog, netlist)."""
    from msdf_unet.hdl.conv.engine import ConvEngine
    from msdf_unet.hdl.verilog import write_verilog

    def synthesize_engine(config, workdir, *, top):
        calls.append((config, top))
        write_verilog(ConvEngine(config), name=top, path=Path(workdir) / f"{top}.v")
        (Path(workdir) / "netlist.json").write_text(json.dumps({"modules": {top: {"cells": {}, "netnames": {}}}}))
        return Utilization.from_cells(top, {"LUT6": 46000, "FDRE": 100, "DSP48E1": 30, "RAMB36E1": 120})
    return synthesize_engine


def test_engine_report_goes_through_the_conv_route_once_and_is_cached(tmp_path, monkeypatch, capsys):
    """The engine top is synthesised by hdl/conv/synth.py (one route) on the core Verilog
    generate() wrote; the report checks the issue's budget and is cached by the Verilog's hash."""
    from msdf_unet.hdl.conv import synth as conv_synth
    from msdf_unet.hdl.soc.generate import CORE_NAME
    from msdf_unet.hdl.soc.report import FIT_BUDGET
    from msdf_unet.spec.engine import ArrayConfig, EngineConfig
    calls = []
    monkeypatch.setattr(conv_synth, "synthesize_engine", _fake_engine_synth(calls))
    cfg = EngineConfig(arrays=(ArrayConfig("mma", 1, 6),))
    (tmp_path / "e.json").write_text(cfg.to_json())
    out = tmp_path / "u.json"
    args = ["synth-report", "--engine-config", str(tmp_path / "e.json"), "--out", str(out),
            "--workdir", str(tmp_path / "w")]
    assert main(args) == 1                      # 46000 LUT > 85 % of 53200: over the budget
    report = json.loads(out.read_text())
    assert calls == [(cfg, CORE_NAME)] and report["top"] == "engine"
    assert EngineConfig.from_dict(report["config"]) == cfg      # bench frame finds it by config
    assert report["budget"]["LUT"] == {"used": 46000, "limit": FIT_BUDGET["LUT"] * XC7Z020["LUT"], "ok": False}
    assert report["budget"]["BRAM36"]["ok"] is True and report["fits_budget"] is False
    assert report["fits"] is True                                # it fits the device, not the budget
    text = capsys.readouterr()
    assert "fits the budget (LUT <= 85%, BRAM36 <= 90%, DSP48E1 <= 220): NO" in text.out
    assert "LUT" in text.err
    assert main(args) == 1 and len(calls) == 1                   # cached: no second synthesis
    assert json.loads(out.read_text())["cached"] is True
    assert main([*args, "--no-cache"]) == 1 and len(calls) == 2


@pytest.mark.slow
def test_engine_report_of_a_small_engine_for_real(tmp_path):
    """The real large-stack Yosys route on a 1-core, 6-lane engine (several minutes)."""
    from msdf_unet.spec.engine import ArrayConfig, EngineConfig
    cfg = EngineConfig(arrays=(ArrayConfig("mma", 1, 6),))
    (tmp_path / "e.json").write_text(cfg.to_json())
    out = tmp_path / "u.json"
    main(["synth-report", "--engine-config", str(tmp_path / "e.json"), "--out", str(out),
          "--workdir", str(tmp_path / "w")])
    report = json.loads(out.read_text())
    assert report["BRAM36"] > 0 and report["LUT"] > 1000 and report["timing_estimate"]["domains"]
