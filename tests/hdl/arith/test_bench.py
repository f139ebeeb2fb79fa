"""The arithmetic benchmark: netlist parsing and depth on hand-made netlists, and one real
Yosys run (N=9, bit-parallel LUT and DSP) through the command-line entry point."""
import json

import pytest

from msdf_unet.golden.arith import baselines as g
from msdf_unet.hdl.arith import bench


def _cell(kind, ins, outs, params=None):
    conns = {f"I{k}": [b] for k, b in enumerate(ins)}
    conns.update({f"O{k}": [b] for k, b in enumerate(outs)})
    dirs = {p: ("output" if p.startswith("O") else "input") for p in conns}
    return {"type": kind, "connections": conns, "port_directions": dirs,
            "parameters": params or {}}


def test_logic_depth_counts_luts_between_registers():
    # FF(1) -> LUT -> CARRY4 -> CARRY4 -> LUT -> LUT -> FF ; FF(1) -> LUT -> DSP(MREG) -> LUT -> FF
    cells = {
        "ff0": _cell("FDRE", [100], [1]),
        "l1": _cell("LUT4", [1], [2]),
        "c1": _cell("CARRY4", [2], [3]),
        "c2": _cell("CARRY4", [3], [4]),
        "l2": _cell("LUT6", [4], [5]),
        "l3": _cell("LUT2", [5, 1], [6]),
        "ff1": _cell("FDRE", [6], [7]),
        "l4": _cell("LUT3", [1], [8]),
        "dsp": _cell("DSP48E1", [8], [9], {"MREG": "1", "AREG": "0"}),
        "l5": _cell("LUT1", [9], [10]),
        "ff2": _cell("FDSE", [10], [11]),
    }
    netlist = {"modules": {"top": {"cells": cells}}}
    assert bench.logic_depth(netlist, "top") == {"lut_levels": 3, "carry4_levels": 2}


def _chain(kinds, first_bit=1, dsp_params=None):
    """FF -> cells of ``kinds`` in a row -> FF (a DSP48E1 gets ``dsp_params``)."""
    cells = {"ff_in": _cell("FDRE", [first_bit - 1], [first_bit])}
    bit = first_bit
    for k, kind in enumerate(kinds):
        params = dsp_params if kind == "DSP48E1" else None
        cells[f"c{k}"] = _cell(kind, [bit], [bit + 1], params)
        bit += 1
    cells["ff_out"] = _cell("FDRE", [bit], [bit + 1])
    return {"modules": {"top": {"cells": cells}}}


@pytest.mark.parametrize("params", [{"MREG": "1", "AREG": "0"}, {"PREG": "1"}, {"AREG": "1"},
                                    {"MREG": "0"}, {}])
def test_logic_depth_of_a_dsp_path(params):
    # the only path: FF -> 3 LUTs -> DSP48E1 -> 1 LUT -> FF, so the two cases differ
    before, after = ["LUT4", "LUT2", "LUT6"], ["LUT1"]
    netlist = _chain(before + ["DSP48E1"] + after, dsp_params=params)
    registered = any(params.get(p) == "1" for p in ("AREG", "BREG", "MREG", "PREG"))
    # a DSP with an internal register ends one path and starts the next
    expected = max(len(before), len(after)) if registered else len(before) + len(after)
    assert bench.logic_depth(netlist, "top") == {"lut_levels": expected, "carry4_levels": 0}


def test_parse_cell_counts():
    counts = bench.parse_cell_counts({"LUT2": 3, "LUT6": 4, "FDRE": 5, "FDSE": 1, "CARRY4": 2,
                                      "DSP48E1": 7, "SRL16E": 2, "MUXF7": 1, "BUFG": 1})
    assert counts == {"lut": 7, "srl": 2, "lutram": 0, "ff": 6, "carry4": 2, "muxf": 1, "dsp48e1": 7,
                      "bram": 0}
    assert bench.parse_cell_counts({"RAM32M": 3, "LUT1": 1})["lutram"] == 12


def test_timing_from_golden_models():
    assert bench.variant_timing("bitserial", 9) == {"cycles_per_dot": 8, "latency_cycles": 9}
    assert bench.variant_timing("bitparallel-dsp", 9)["cycles_per_dot"] == 1
    k = g.cascaded_cycles(144)
    assert bench.variant_timing("cascaded", 144) == {"cycles_per_dot": k, "latency_cycles": k + 1}


def test_bad_config():
    with pytest.raises(ValueError):
        bench.BenchConfig(variants=("booth",))
    with pytest.raises(ValueError):
        bench.BenchConfig(n_lanes=(0,))


def test_bench_n9_bitparallel(tmp_path, capsys):
    out = tmp_path / "bench.json"
    assert bench.main(["--n", "9", "--variants", "bitparallel-lut", "bitparallel-dsp",
                       "--jobs", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    recs = {r["variant"]: r for r in report["results"]}
    assert set(recs) == {"bitparallel-lut", "bitparallel-dsp"}
    lut, dsp = recs["bitparallel-lut"], recs["bitparallel-dsp"]
    assert lut["dsp48e1"] == 0 and lut["lut"] > 9 * 8          # shift-add multipliers in LUTs
    assert dsp["dsp48e1"] >= 9                                  # one DSP48E1 per lane
    assert 0 < dsp["lut"] < lut["lut"]
    for r in (lut, dsp):
        assert r["ff"] > 0 and r["lut_levels"] >= 1 and r["cycles_per_dot"] == 1
        assert r["dots_per_cycle_per_klut"] == pytest.approx(1000 / (r["lut"] + r["srl"] + r["lutram"]), rel=1e-3)
    assert "bitparallel-dsp" in capsys.readouterr().out


def test_msdf2_timing_and_effective_fields():
    from msdf_unet.golden.arith import msdf2
    B = 8  # one activation plane per cycle: a FULL dot product is B cycles, whatever N is
    assert bench.variant_timing("msdf-v2", 144) == {
        "cycles_per_dot": B, "latency_cycles": msdf2.latency_cycles(B, pipelined=True)}
    assert bench.variant_timing("msdf-v2-flat", 9)["latency_cycles"] == \
        msdf2.latency_cycles(B, pipelined=False)
    real = {"effective": {"all": {"msdf-v2": 7.5}, "mri": {"msdf-v2": 7.0}}}
    rec = {"variant": "msdf-v2", "n_lanes": 9, "lut": 100, "srl": 0, "lutram": 0, "cycles_per_dot": 8}
    bench._efficiency(rec, real)
    assert rec["n"] == 9 and rec["cycles_per_dot_effective"] == 7.5
    assert rec["cycles_per_dot_effective_mri"] == 7.0
    assert rec["dots_per_cycle_per_klut"] == pytest.approx(1000 / 800)
    assert rec["dots_per_cycle_per_klut_effective"] == pytest.approx(1000 / 750)


def test_msdf2_lite_follows_the_flat_or_pipelined_cycle_model():
    """msdf-v2-lite is cycle for cycle MSDF2CycleModel(pipelined=lite_pipelined(N)): flat at
    N = 9 (msdf-v2-flat's timing and real-data cycles), pipelined at N = 144 (msdf-v2's)."""
    from msdf_unet.golden.arith import msdf2
    from msdf_unet.hdl.arith.msdf2_lite import MSDF2LiteDotProduct, lite_pipelined
    assert not lite_pipelined(9) and lite_pipelined(144)
    assert not bench.msdf2_pipelined("msdf-v2-lite", 9) and bench.msdf2_pipelined("msdf-v2-lite", 144)
    assert bench.msdf2_pipelined("msdf-v2", 9) and not bench.msdf2_pipelined("msdf-v2-flat", 144)
    for n, pipelined in ((9, False), (144, True)):
        assert bench.variant_timing("msdf-v2-lite", n) == {
            "cycles_per_dot": 8, "latency_cycles": msdf2.latency_cycles(8, pipelined=pipelined)}
        assert MSDF2LiteDotProduct.default_pipelined(n) is pipelined
    assert bench.real_cycles_key("msdf-v2-lite", 9) == "msdf-v2-flat"
    assert bench.real_cycles_key("msdf-v2-lite", 144) == "msdf-v2"
    assert bench.real_cycles_key("bitserial", 9) == "bitserial"
    real = {"effective": {"all": {"msdf-v2-flat": 7.0, "msdf-v2": 7.5},
                          "mri": {"msdf-v2-flat": 6.5, "msdf-v2": 7.25}}}
    rec = {"variant": "msdf-v2-lite", "n_lanes": 9, "lut": 200, "srl": 0, "lutram": 0,
           "cycles_per_dot": 8}
    bench._efficiency(rec, real)
    assert rec["cycles_per_dot_effective"] == 7.0 and rec["cycles_per_dot_effective_mri"] == 6.5
    assert rec["dots_per_cycle_per_klut_effective"] == pytest.approx(1000 / 1400)
    rec = dict(rec, n_lanes=144)
    bench._efficiency(rec, real)
    assert rec["cycles_per_dot_effective"] == 7.5 and rec["cycles_per_dot_effective_mri"] == 7.25


@pytest.mark.slow
def test_real_cycles_one_image(tmp_path):
    real = bench.real_cycles(1, cache=tmp_path / "real.json")
    eff = real["effective"]["all"]
    assert eff["bitserial"] == 8 and eff["bitparallel-lut"] == 1
    assert eff["msdf-v2-flat"] <= eff["msdf-v2"] < 8 < eff["mma"]
    assert bench.real_cycles(1, cache=tmp_path / "real.json") == json.loads((tmp_path / "real.json").read_text())
