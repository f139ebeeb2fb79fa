"""Yosys utilization report: parsing, percentages, the fit check, and `synth-report` itself."""
import json

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


def test_synth_report_of_the_skeleton(tmp_path):
    out = tmp_path / "utilization.json"
    assert main(["synth-report", "--out", str(out), "--workdir", str(tmp_path / "w")]) == 0
    report = json.loads(out.read_text())
    for k in ("LUT", "FF", "CARRY4", "DSP48E1", "BRAM36"):
        assert k in report and k in report["percent_of_xc7z020"]
    assert report["fits"] is True
    # the lane registers alone need 2 * n_lanes * 8 flip-flops; the whole top needs more
    assert report["FF"] > 2 * 11 * 8 and report["LUT"] > 0
    assert report["config"]["variant"] == "mma"
