"""host/bench_frame.py: MACs and shapes per layer agree with the U-Net graph; cycles are the
engine cycle model's (a direct image_cycles call); JSON keys."""
import dataclasses
import json

import pytest

from msdf_unet.golden.conv import cycles as C
from msdf_unet.golden.train import PRETRAINED_TASKS, WEIGHTS_DIR
from msdf_unet.golden.unet import PRESETS, layer_walk, mac_count
from msdf_unet.host import bench_frame, cli
from msdf_unet.host.compiler import compile_program, write_input
from msdf_unet.host.engine_model import FIT_CONFIG
from msdf_unet.spec import engine as E

KEYS = ("variant", "preset", "frame_cycles", "frame_ms_at_100mhz", "gops", "lut", "bram36",
        "dsp", "fits", "end_saved_pct")
HW = (32, 32)  # a crop of the paper preset's 192x192 slice keeps the test short


def _direct(program, codes, policy, memory=C.PYNQ_Z2):
    img = compile_program(program, FIT_CONFIG, policy=policy, input_hw=HW)
    write_input(img, codes)
    return C.image_cycles(img.memory, FIT_CONFIG, img.cmd_offset, memory)


def test_paper_frame(tmp_path):
    out = tmp_path / "f.json"
    assert cli.main(["bench", "frame", "--preset", "paper", "--variant", "mma",
                     "--input-hw", *map(str, HW), "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert [r["variant"] for r in rep["results"]] == ["mma"]
    cfg = dataclasses.replace(PRESETS["paper"], input_size=HW)
    shipped = (WEIGHTS_DIR / PRETRAINED_TASKS["mri4"] / "weights.npz").is_file()
    program = bench_frame._program("paper")
    codes = bench_frame.input_slice(program, "paper", HW)
    assert codes.shape == (4, *HW)
    end, full = _direct(program, codes, "end"), _direct(program, codes, "full")
    t_end, t_full = sum(c.cycles for c in end), sum(c.cycles for c in full)
    assert t_full >= t_end > 0
    for r in rep["results"]:
        assert all(k in r for k in KEYS)
        # the shipped paper-preset MRI program when present (issue 7), else random weights
        assert r["weights"] == ("trained (mri4)" if shipped else "random")
        # the network as shipped: every bias lane its quantization needs, none clipped
        assert r["bias_lanes_max"] == max(l.bias_lanes for l in program.conv_layers())
        assert program.meta.get("bias_saturated", {}) == {}
        assert (r["end_digits_saved_pct"] is not None) == shipped
        assert r["macs"] == mac_count(cfg)
        walk = [s for s in layer_walk(cfg) if s.op != "concat"]
        assert [row["layer"] for row in r["layers"]] == [s.name for s in walk]
        assert [row["macs"] for row in r["layers"]] == [s.macs for s in walk]
        assert [row["out_hw"] for row in r["layers"]] == [list(s.out_hw) for s in walk]
        # cycles: the cycle model on the compiled image with the real slice in it
        assert r["engine_config"] == dataclasses.replace(
            FIT_CONFIG, arrays=(E.ArrayConfig(r["variant"], 3, 72),)).to_dict()
        assert r["frame_cycles"] == t_end and r["frame_cycles_full"] == t_full
        assert r["frame_ms_at_100mhz"] == round(t_end / 1e5, 4)
        assert abs(r["gops"] - 2 * r["macs"] / (t_end / 1e8) / 1e9) < 1e-3
        assert abs(r["end_saved_pct"] - 100 * (1 - t_end / t_full)) < 1e-3
        by_end = {c.index: c.cycles for c in end}
        by_full = {c.index: c.cycles for c in full}
        for row in r["layers"]:
            assert row["cycles"] == by_end[row["index"]]
            assert row["end_cycles_saved"] == by_full[row["index"]] - by_end[row["index"]] >= 0
            assert abs(row["mac_per_cycle"] - row["macs"] / row["cycles"]) < 1e-3
        # no Yosys report for this configuration in the test's tree: null, with the reason
        assert "resources_note" in r


def test_bit_parallel_variant_frame(tmp_path):
    """``--variant bitparallel-dsp``: its own fit configuration (spec.engine.FIT_CONFIGS),
    the cycle model of that engine, no early termination (END = FULL)."""
    out = tmp_path / "f.json"
    assert cli.main(["bench", "frame", "--preset", "edge", "--variant", "mma", "bitparallel-dsp",
                     "--input-hw", "16", "16", "--no-end", "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    mma, dsp = rep["results"]
    cfg = E.FIT_CONFIGS["bitparallel-dsp"]
    assert (mma["variant"], dsp["variant"]) == ("mma", "bitparallel-dsp")
    assert mma["engine_config"] == FIT_CONFIG.to_dict() and dsp["engine_config"] == cfg.to_dict()
    program = bench_frame._program("edge")
    codes = bench_frame.input_slice(program, "edge", (16, 16))
    img = compile_program(program, cfg, policy="end", input_hw=(16, 16))
    write_input(img, codes)
    want = sum(c.cycles for c in C.image_cycles(img.memory, cfg, img.cmd_offset, C.PYNQ_Z2))
    assert dsp["frame_cycles"] == dsp["frame_cycles_full"] == want
    assert dsp["end_saved_pct"] == 0.0 and mma["end_saved_pct"] > 0


def test_testbench_memory_is_faster(tmp_path):
    program = bench_frame._program("paper")
    codes = bench_frame.input_slice(program, "paper", HW)
    rep = bench_frame.frame_report("paper", end_digits=False, input_hw=HW, memory="testbench")
    want = sum(c.cycles for c in _direct(program, codes, "end", C.TESTBENCH))
    assert rep["results"][0]["frame_cycles"] == want


def test_resources_read_from_a_report_of_the_same_config(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_frame, "REPORTS", tmp_path)
    res, why = bench_frame.resources(FIT_CONFIG)
    assert res is None and "--synth" in why
    d = tmp_path / "x"
    d.mkdir()
    u = {"LUT": 30000, "FF": 9000, "BRAM36": 80.0, "DSP48E1": 40, "fits": True,
         "config": FIT_CONFIG.to_dict()}
    (d / "utilization.json").write_text(json.dumps(u))
    res, why = bench_frame.resources(FIT_CONFIG)
    assert res == {"lut": 30000, "ff": 9000, "bram36": 80.0, "dsp": 40, "fits": True}
    assert str(d) in why
    assert bench_frame.resources(E.EngineConfig())[0] is None


def test_an_engine_with_too_few_bias_lanes_is_refused(tmp_path, capsys):
    """The paper network needs more than 8 bias lanes in some layers: an engine with 8 is
    refused by the compiler (layer and limit named), never given clipped biases."""
    program = bench_frame._program("paper")
    need = max(l.bias_lanes for l in program.conv_layers())
    if need <= 8:
        pytest.skip("the paper network needs no more than 8 bias lanes")
    cfg = tmp_path / "c.json"
    cfg.write_text(dataclasses.replace(FIT_CONFIG, max_bias_lanes=8).to_json())
    assert cli.main(["bench", "frame", "--preset", "paper", "--config", str(cfg), "--no-end",
                     "--input-hw", *map(str, HW), "--json", str(tmp_path / "f.json")]) == 2
    err = capsys.readouterr().err
    assert "bias lanes" in err and "max_bias_lanes=8" in err and not (tmp_path / "f.json").exists()


def test_registered():
    assert cli.BENCHES["frame"] == bench_frame.__name__


def test_unbuilt_variant_is_refused(capsys):
    """A PE variant the engine RTL does not build is refused, never reported with the MMA
    engine's cycles under its name."""
    with pytest.raises(SystemExit):
        cli.main(["bench", "frame", "--preset", "edge", "--variant", "bitserial"])
    assert "invalid choice: 'bitserial'" in capsys.readouterr().err
