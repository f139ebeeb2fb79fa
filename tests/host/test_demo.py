"""The demo end to end (README command 1 runs it): float / INT8 / END on the MRI test
slices, overlay picture, first-layer dot products on the RTL through the host driver, and
the whole network on the convolution engine's RTL on a crop."""
import json

from msdf_unet.host.demo import run_demo


def test_demo_runs_the_whole_chain(tmp_path):
    status = run_demo(tmp_path, rtl=True, n_rtl=8)
    report = json.loads((tmp_path / "demo.json").read_text())
    assert report["rtl"]["dot_products"] == 8
    assert report["rtl"]["mismatches"] == 0 and status == 0
    assert 0 < report["end_cycles"]["saved_pct"] < 100
    # the shipped model segments grey and white matter well (a broken chain does not)
    assert min(report["dice"]["MSDF END"][1:]) > 0.8
    assert (tmp_path / "overlay.png").stat().st_size > 10_000
    assert (tmp_path / "mri.msdfp").is_file()
    engine = report["engine"]
    assert engine["pixels"] == engine["crop"] ** 2 and engine["mismatches"] == 0
    # the engine's cycle model predicts the RTL within its documented 2%
    assert abs(engine["rtl_cycles"] - engine["model_cycles"]) <= 0.02 * engine["rtl_cycles"]
