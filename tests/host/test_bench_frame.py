"""host/bench_frame.py: MACs and shapes per layer agree with the U-Net graph; JSON keys."""
import json

from msdf_unet.golden.train import PRETRAINED_TASKS, WEIGHTS_DIR
from msdf_unet.golden.unet import PRESETS, layer_walk, mac_count
from msdf_unet.host import bench_frame, cli

KEYS = ("variant", "preset", "frame_cycles", "frame_ms_at_100mhz", "gops", "lut", "bram36",
        "dsp", "fits", "end_saved_pct")


def test_paper_frame(tmp_path):
    out = tmp_path / "f.json"
    assert cli.main(["bench", "frame", "--preset", "paper", "--variant", "mma", "bitserial",
                     "--json", str(out)]) == 0
    rep = json.loads(out.read_text())
    assert [r["variant"] for r in rep["results"]] == ["mma", "bitserial"]
    cfg = PRESETS["paper"]
    shipped = (WEIGHTS_DIR / PRETRAINED_TASKS["mri4"] / "weights.npz").is_file()
    for r in rep["results"]:
        assert all(k in r for k in KEYS)
        # the shipped paper-preset MRI program when present (issue 7), else random weights
        assert r["weights"] == ("trained (mri4)" if shipped else "random")
        assert (r["end_digits_saved_pct"] is not None) == shipped
        assert r["macs"] == mac_count(cfg)
        walk = [s for s in layer_walk(cfg) if s.op != "concat"]
        assert [row["layer"] for row in r["layers"]] == [s.name for s in walk]
        assert [row["macs"] for row in r["layers"]] == [s.macs for s in walk]
        assert [row["out_hw"] for row in r["layers"]] == [list(s.out_hw) for s in walk]


def test_registered():
    assert cli.BENCHES["frame"] == bench_frame.__name__
