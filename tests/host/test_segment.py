"""``msdf-unet segment``: outputs, names, summary, exit statuses, atomic writes."""
import json
import os

import numpy as np
import pytest

from msdf_unet.golden.data import load_dataset, mri_volume_path
from msdf_unet.host import runtime
from msdf_unet.host.cli import main
from msdf_unet.host.segment import labels_sha256

import nibabel  # noqa: E402 - the io extra, installed by make setup
import PIL.Image as PIL  # noqa: E402,N814
REQUIRED = {"backend", "input", "shape", "labels_sha256", "class_voxels", "seconds"}


pytestmark = pytest.mark.usefixtures("private_model_cache")


@pytest.fixture(scope="module")
def slice_pngs(tmp_path_factory):
    d = tmp_path_factory.mktemp("png")
    imgs = load_dataset("mri", "test").images[[3, 9], 0]
    paths = []
    for name, img in zip(("a.v1.png", "a.v2.png"), imgs):
        PIL.fromarray((img * 255).round().astype(np.uint8)).save(d / name)
        paths.append(d / name)
    return paths


def test_pngs_give_labels_overlay_and_summary_without_name_collisions(slice_pngs, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["segment", *map(str, slice_pngs), "--backend", "int8", "--out", str(out),
                 "--no-progress"]) == 0
    names = sorted(p.name for p in out.iterdir())
    assert names == sorted(["a.v1.labels.png", "a.v1.overlay.png", "a.v1.summary.json",
                            "a.v2.labels.png", "a.v2.overlay.png", "a.v2.summary.json", "summary.json"])
    s = json.loads((out / "a.v1.summary.json").read_text())
    assert REQUIRED <= set(s) and s["backend"] == "int8" and s["shape"] == [96, 96]
    labels = np.asarray(PIL.open(out / "a.v1.labels.png"))
    assert labels_sha256(labels) == s["labels_sha256"]
    assert s["class_voxels"] == {n: int((labels == c).sum()) for c, n in enumerate(s["classes"])}
    assert len(json.loads((out / "summary.json").read_text())["results"]) == 2
    # another input with the same stem does not overwrite; the same input does
    other = tmp_path / "a.v1.png"
    other.write_bytes(slice_pngs[1].read_bytes())
    assert main(["segment", str(other), "--out", str(out), "--no-progress"]) == 0
    assert (out / "a.v1-2.summary.json").is_file()
    assert main(["segment", str(slice_pngs[0]), "--out", str(out), "--no-progress"]) == 0
    assert not (out / "a.v1-3.summary.json").exists()


def test_png_labels_identical_for_int8_and_msdf(slice_pngs, tmp_path):
    sums = {}
    for b in ("int8", "msdf"):
        assert main(["segment", str(slice_pngs[0]), "--backend", b, "--out", str(tmp_path / b),
                     "--no-progress"]) == 0
        sums[b] = json.loads((tmp_path / b / "a.v1.summary.json").read_text())
    assert sums["int8"]["labels_sha256"] == sums["msdf"]["labels_sha256"]
    assert sums["msdf"]["cycles"] > 0 and sums["msdf"]["frame_ms_at_100mhz"] > 0
    assert "cycles" not in sums["int8"]


def test_nifti_volume_keeps_shape_and_affine(tmp_path):
    src = mri_volume_path("t1")
    out = tmp_path / "out"
    assert main(["segment", str(src), "--backend", "int8", "--slices", "92:94", "--out", str(out),
                 "--no-progress"]) == 0
    stem = src.name[:-len(".nii.gz")]
    lab = nibabel.load(str(out / f"{stem}.labels.nii.gz"))
    ref = nibabel.load(str(src))
    assert lab.shape == ref.shape and np.allclose(lab.affine, ref.affine)
    data = np.asarray(lab.dataobj)
    s = json.loads((out / f"{stem}.summary.json").read_text())
    assert s["labels_sha256"] == labels_sha256(data) and s["slices"] == 2
    assert (out / f"{stem}.overlay.png").is_file()


@pytest.mark.parametrize("array, match", [
    (np.full((16, 16), np.nan, np.float32), "NaN"),
    (np.zeros((4, 4, 4, 3), np.float32), "4-D"),
    (np.zeros((0, 3), np.float32), "empty"),
    (np.zeros(16, np.float32), "1 dimension;"),
    (np.zeros((16, 16), np.complex64), "dtype complex64"),
    (np.zeros((16, 16), bool), "dtype bool"),
    (np.array([[1, "a"]], object), "dtype object"),
])
def test_bad_input_exits_2(tmp_path, capsys, array, match):
    path = tmp_path / "bad.npy"
    np.save(path, array, allow_pickle=True)
    assert main(["segment", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and len(err.splitlines()) == 1, err
    assert f"error: {path}:" in err  # the message names the file, not "input array"
    assert not (tmp_path / "o" / "bad.labels.png").exists()


def test_oversized_npy_is_refused_from_its_header(tmp_path, capsys):
    from numpy.lib import format as npy
    path = tmp_path / "big.npy"
    with open(path, "wb") as f:  # a header promising 10000 x 10000 floats, and no data
        npy.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (10000, 10000)})
    assert main(["segment", str(path), "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    assert f"{path}: image 10000x10000 exceeds" in capsys.readouterr().err


def test_npy_image_is_segmented_like_its_array(tmp_path):
    from msdf_unet.host.api import segment
    img = load_dataset("mri", "test").images[3, 0]
    np.save(tmp_path / "s.npy", img)
    out = tmp_path / "o"
    assert main(["segment", str(tmp_path / "s.npy"), "--out", str(out), "--no-progress"]) == 0
    s = json.loads((out / "s.summary.json").read_text())
    assert s["input"] == str(tmp_path / "s.npy")
    assert s["labels_sha256"] == labels_sha256(segment(img, "mri_edge", "int8", progress=False).labels)


def test_unavailable_backend_exits_3(slice_pngs, tmp_path, capsys, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pynq", None)  # no board here
    assert main(["segment", str(slice_pngs[0]), "--backend", "pynq", "--out", str(tmp_path)]) == 3
    assert "PYNQ board" in capsys.readouterr().err
    monkeypatch.setattr(runtime, "RTL_MODULES", ("msdf_unet.hdl.conv.no_such_top",))
    assert main(["segment", str(slice_pngs[0]), "--backend", "rtl", "--out", str(tmp_path)]) == 3
    assert "not available in this build" in capsys.readouterr().err


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    def interrupted(fd):
        raise KeyboardInterrupt
    monkeypatch.setattr(os, "fsync", interrupted)
    with pytest.raises(KeyboardInterrupt):
        runtime.atomic_write_bytes(tmp_path / "x.png", b"data")
    assert list(tmp_path.iterdir()) == []


def test_palette_png_and_2d_nifti(tmp_path):
    img = (load_dataset("mri", "test").images[4, 0] * 255).astype(np.uint8)
    gray = tmp_path / "g.png"
    PIL.fromarray(img).save(gray)
    pal = tmp_path / "p.png"
    PIL.fromarray(img).convert("P").save(pal)
    nii = tmp_path / "s.nii.gz"
    nibabel.save(nibabel.Nifti1Image(img[:, :, None].astype(np.float32), np.eye(4)), str(nii))
    out = tmp_path / "out"
    assert main(["segment", str(gray), str(pal), str(nii), "--out", str(out), "--no-progress"]) == 0
    sums = {k: json.loads((out / f"{k}.summary.json").read_text()) for k in ("g", "p", "s")}
    assert sums["g"]["labels_sha256"] == sums["p"]["labels_sha256"]
    lab = nibabel.load(str(out / "s.labels.nii.gz"))
    assert lab.shape == (96, 96, 1)
    assert labels_sha256(np.asarray(lab.dataobj)[:, :, 0]) == sums["s"]["labels_sha256"]


@pytest.mark.parametrize("where", ["file", "below_file"])
def test_bad_out_is_one_line_and_status_2_before_any_work(slice_pngs, tmp_path, capsys, monkeypatch, where):
    from msdf_unet.host import segment as seg_cli
    (tmp_path / "file").write_text("not a folder")
    out = tmp_path / "file" if where == "file" else tmp_path / "file" / "out"

    def no_work(*a, **k):
        raise AssertionError("the model was loaded before --out was checked")
    monkeypatch.setattr(seg_cli, "load_model", no_work)
    assert main(["segment", str(slice_pngs[0]), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert err.startswith("msdf-unet segment: error: --out") and str(tmp_path / "file") in err
    assert (tmp_path / "file").read_text() == "not a folder"


@pytest.mark.parametrize("exc, status", [
    (runtime.ConfigMismatch("register map mismatch: hardware digest 0x1, this runtime 0x2"), 2),
    (runtime.AcceleratorTimeout("the engine did not finish within 30.0 s"), 1),
    (runtime.AcceleratorFault(3, "BAD_COMMAND", 4), 1),
    (OSError(28, "No space left on device"), 1),
])
def test_board_faults_and_write_errors_are_one_line(slice_pngs, tmp_path, capsys, monkeypatch, exc, status):
    from msdf_unet.host import segment as seg_cli

    def fails(*a, **k):
        raise exc
    monkeypatch.setattr(seg_cli, "segment", fails)
    assert main(["segment", str(slice_pngs[0]), "--out", str(tmp_path / "o"), "--no-progress"]) == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and str(exc) in err, err
