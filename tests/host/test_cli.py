"""The build commands of the CLI: `verilog` writes the top, the wrapper, the register map
and every arithmetic unit; `bitstream` without Vivado writes the tree and says so."""
import json
import re

from msdf_unet.hdl.bus.regmap import RegisterMap
from msdf_unet.hdl.soc.config import VARIANTS
from msdf_unet.hdl.soc.regs import accelerator_map
from msdf_unet.host.cli import main


def test_verilog_writes_top_units_and_map(tmp_path, capsys):
    assert main(["verilog", "--out", str(tmp_path)]) == 0
    assert RegisterMap.from_json((tmp_path / "regmap.json").read_text()) == accelerator_map(n_lanes=11)
    assert re.search(r"^module msdf_accel_core\(", (tmp_path / "msdf_accel_core.v").read_text(), re.M)
    for v in VARIANTS:
        name = f"dot_{v.replace('-', '_')}"
        assert re.search(rf"^module {name}\(", (tmp_path / "units" / f"{name}.v").read_text(), re.M)
    assert json.loads((tmp_path / "config.json").read_text())["variant"] == "mma"


def test_bitstream_without_vivado_explains(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert main(["bitstream", "--out", str(tmp_path / "viv")]) == 3
    err = capsys.readouterr().err
    assert "Vivado is not on PATH" in err and str(tmp_path / "viv") in err
    assert (tmp_path / "viv" / "build.tcl").is_file()


def test_bad_config_is_named(tmp_path, capsys):
    assert main(["verilog", "--config", str(_write(tmp_path, {"variant": "fast"})),
                 "--out", str(tmp_path)]) == 2
    assert "variant must be one of" in capsys.readouterr().err
    assert main(["verilog", "--config", str(_write(tmp_path, {"lanes": 3})), "--out", str(tmp_path)]) == 2
    assert "unknown AccelConfig keys ['lanes']" in capsys.readouterr().err


def _write(tmp_path, d):
    p = tmp_path / "cfg.json"
    p.write_text(json.dumps(d))
    return p
