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
