"""The build commands of the CLI: `verilog` writes the top, the wrapper, the register map
and every arithmetic unit; `bitstream` without Vivado writes the tree and says so."""
import json
import re

from msdf_unet.hdl.bus.regmap import RegisterMap
from msdf_unet.hdl.soc.config import VARIANTS
from msdf_unet.hdl.soc.regs import accelerator_map
from msdf_unet.host.cli import main


SMALL = {"arrays": [{"variant": "mma", "kpbs": 1, "lanes": 6}]}


def _small(tmp_path):
    p = tmp_path / "small_engine.json"
    from msdf_unet.spec.engine import EngineConfig
    p.write_text(EngineConfig.from_dict(SMALL).to_json())
    return p


def test_verilog_default_top_is_the_engine(tmp_path):
    from msdf_unet.hdl.conv.regs import engine_map
    from msdf_unet.spec.engine import EngineConfig
    out = tmp_path / "v"
    assert main(["verilog", "--engine-config", str(_small(tmp_path)), "--out", str(out)]) == 0
    assert RegisterMap.from_json((out / "regmap.json").read_text()) == engine_map()
    assert EngineConfig.from_json((out / "engine_config.json").read_text()) == EngineConfig.from_dict(SMALL)
    assert "m_axi_awaddr" in (out / "msdf_accel.v").read_text() and not (out / "units").exists()


def test_engine_config_with_the_dot_top_is_refused(tmp_path, capsys):
    assert main(["verilog", "--top", "dot", "--engine-config", str(_small(tmp_path)),
                 "--out", str(tmp_path / "v")]) == 2
    assert "--engine-config applies to --top engine" in capsys.readouterr().err


def test_verilog_writes_top_units_and_map(tmp_path, capsys):
    assert main(["verilog", "--top", "dot", "--out", str(tmp_path)]) == 0
    assert RegisterMap.from_json((tmp_path / "regmap.json").read_text()) == accelerator_map(n_lanes=11)
    assert re.search(r"^module msdf_accel_core\(", (tmp_path / "msdf_accel_core.v").read_text(), re.M)
    for v in VARIANTS:
        name = f"dot_{v.replace('-', '_')}"
        assert re.search(rf"^module {name}\(", (tmp_path / "units" / f"{name}.v").read_text(), re.M)
    assert json.loads((tmp_path / "config.json").read_text())["variant"] == "mma"


def test_bitstream_without_vivado_explains(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert main(["bitstream", "--top", "dot", "--out", str(tmp_path / "viv")]) == 3
    err = capsys.readouterr().err
    assert "Vivado is not on PATH" in err and str(tmp_path / "viv") in err
    assert (tmp_path / "viv" / "build.tcl").is_file()


def test_bad_config_is_named(tmp_path, capsys):
    assert main(["verilog", "--top", "dot", "--config", str(_write(tmp_path, {"variant": "fast"})),
                 "--out", str(tmp_path)]) == 2
    assert "variant must be one of" in capsys.readouterr().err
    assert main(["verilog", "--top", "dot", "--config", str(_write(tmp_path, {"lanes": 3})),
                 "--out", str(tmp_path)]) == 2
    assert "unknown AccelConfig keys ['lanes']" in capsys.readouterr().err


def _write(tmp_path, d):
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(d))
    return p


# ----------------------------------------------------------------- --out checks (issue 10)

import pytest  # noqa: E402

from msdf_unet.fileio import MARKER  # noqa: E402


@pytest.mark.parametrize("command", [
    ["verilog"], ["bitstream"], ["synth-report"], ["demo", "--no-rtl"],
    ["train", "--dataset", "synthetic", "--epochs", "1"], ["eval", "--task", "mri"],
])
def test_out_below_a_file_is_one_line_and_status_2(tmp_path, capsys, command):
    (tmp_path / "file").write_text("not a folder")
    bad = tmp_path / "file" / ("r.json" if command[0] == "synth-report" else "out")
    assert main([*command, "--out", str(bad)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith(f"msdf-unet {command[0]}: error:") and str(tmp_path / "file") in err
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("command", ["verilog", "bitstream"])
def test_foreign_folder_is_refused_unless_forced(tmp_path, capsys, monkeypatch, command):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")                   # no Vivado
    for name in ("thesis.tex", "data.csv", "notes.txt"):
        (tmp_path / name).write_text("precious")
    dot = ["--top", "dot"]                                          # fast: the folder rules only
    assert main([command, *dot, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "data.csv, notes.txt, thesis.tex" in err and "--force" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv", "notes.txt", "thesis.tex"]
    assert main([command, *dot, "--out", str(tmp_path), "--force"]) in (0, 3)
    assert (tmp_path / MARKER).is_file() and (tmp_path / "thesis.tex").read_text() == "precious"
    assert main([command, *dot, "--out", str(tmp_path)]) in (0, 3)        # our own output now


def test_verilog_reuses_its_own_output_from_before_markers(tmp_path):
    assert main(["verilog", "--top", "dot", "--out", str(tmp_path)]) == 0
    (tmp_path / MARKER).unlink()
    assert main(["verilog", "--top", "dot", "--out", str(tmp_path)]) == 0


def test_synth_report_workdir_below_a_file(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    assert main(["synth-report", "--out", str(tmp_path / "r.json"),
                 "--workdir", str(tmp_path / "file" / "w")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("msdf-unet synth-report: error: --workdir")


def test_bench_help_is_the_bench_s_own(capsys):
    import pytest
    with pytest.raises(SystemExit) as e:
        main(["bench", "frame", "-h"])
    assert e.value.code == 0
    assert "--preset" in capsys.readouterr().out
