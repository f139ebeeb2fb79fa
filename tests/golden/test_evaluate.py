"""Accuracy evaluation: metrics, the per-policy table, plots and single-file segmentation."""
import json

import numpy as np
import pytest

from msdf_unet.golden import evaluate, hwexact, program as pg, quant
from msdf_unet.golden.bench import random_model
from msdf_unet.golden.data import load_dataset
from msdf_unet.golden.train import dice_per_class
from msdf_unet.golden.unet import UNetConfig


def test_dice_iou_exact():
    pred = np.array([[0, 1, 1, 2], [0, 0, 1, 1]])
    gt = np.array([[0, 1, 2, 2], [0, 1, 1, 0]])
    d, i = evaluate.dice_iou(pred, gt, 4)
    # class 0: P={0,4,5} G={0,4,7} -> inter 2; class 1: P={1,2,6,7} G={1,5,6} -> 2;
    # class 2: P={3} G={2,3} -> 1; class 3 absent from both -> 1.0
    assert d.tolist() == [2 * 2 / 6, 2 * 2 / 7, 2 * 1 / 3, 1.0]
    assert i.tolist() == [2 / 4, 2 / 5, 1 / 2, 1.0]
    with pytest.raises(ValueError, match="sizes differ"):
        evaluate.dice_iou(pred, gt[:1], 4)


def test_dice_matches_training_metric():
    rng = np.random.default_rng(0)
    pred, gt = rng.integers(0, 3, (4, 16, 16)), rng.integers(0, 3, (4, 16, 16))
    assert np.allclose(evaluate.dice_iou(pred, gt, 3)[0], dice_per_class(pred, gt, 3))


@pytest.fixture(scope="module")
def synth_eval(tmp_path_factory):
    cfg = UNetConfig(in_channels=1, out_channels=3, depth=2, base_width=4, input_size=(16, 16))
    model = random_model(cfg, seed=2)
    data = load_dataset("synthetic", "test", n=4, size=16)
    calib = load_dataset("synthetic", "train", n=4, size=16).images
    out = tmp_path_factory.mktemp("eval")
    tmax = evaluate.digit_budget_range(evaluate.build_program("synthetic", model, calib))[1]
    res = evaluate.evaluate_task("synthetic", digits=(5, tmax), model=model, data=data,
                                 calib_images=calib, out=out, progress=False)
    return res, out, model, data, calib, tmax


def test_evaluate_task_rows(synth_eval):
    res, out, model, data, calib, tmax = synth_eval
    rows = {r["policy"]: r for r in res["rows"]}
    assert list(rows) == ["float", "int8", "msdf-full", "end", "p=5", f"p={tmax}"]
    assert res["end_identical_to_int8"] and res["msdf_full_identical_to_int8"]
    assert rows["msdf-full"]["dice"] == rows["int8"]["dice"]
    assert rows["end"]["dice"] == rows["int8"]["dice"]
    assert rows[f"p={tmax}"]["dice"] == rows["int8"]["dice"]     # tmax >= T of every layer
    assert 0 < rows["end"]["cycles"]["saved_pct"] < 100
    assert rows["p=5"]["cycles"]["saved_pct"] > rows["end"]["cycles"]["saved_pct"]
    # the INT8 row is the Dice of hwexact.predict on the saved program
    prog = pg.load_program(out / "synthetic.msdfp")
    pred, _ = hwexact.predict(prog, data.images, "full")
    assert rows["int8"]["dice"] == evaluate.dice_iou(pred, data.labels, 3)[0].tolist()
    assert (out / "synthetic_overlays.png").stat().st_size > 0
    table = evaluate.format_table(res)
    assert "p=5" in table and "mean fg Dice" in table
    md = evaluate.format_markdown(res)
    assert md.count("\n| p=") == 2 and "| total |" in md
    json.dumps(res)


def test_plot_dice_vs_digits(synth_eval, tmp_path):
    res = synth_eval[0]
    path = evaluate.plot_dice_vs_digits([res], tmp_path / "d.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _synth_program():
    cfg = UNetConfig(in_channels=1, out_channels=3, depth=2, base_width=4, input_size=(16, 16))
    return quant.quantize_model(random_model(cfg, seed=2),
                                load_dataset("synthetic", "train", n=4, size=16).images)


def test_segment_png_and_nifti(tmp_path):
    import matplotlib.image as mpimg
    import nibabel
    prog = _synth_program()
    img = load_dataset("synthetic", "test", n=1, size=32).images[0, 0]
    png = tmp_path / "slice.png"
    mpimg.imsave(png, img[:30, :27], cmap="gray")                # odd size: padded, cropped back
    r = evaluate.segment_file(png, "synthetic", tmp_path / "o", program=prog)
    lab = np.load(r["npy"])
    assert lab.shape == (30, 27) and lab.min() >= 0 and lab.max() <= 2
    vol = np.stack([img * 100, img * 50, img * 10], axis=2)
    nii = tmp_path / "vol.nii.gz"
    nibabel.save(nibabel.Nifti1Image(vol.astype(np.float32), np.eye(4)), nii)
    r2 = evaluate.segment_file(nii, "synthetic", tmp_path / "o", program=prog, slice_index=1)
    # the slice is rescaled by its own 99.5th percentile, so the result is that of the image
    x = np.clip(vol[:, :, 1] / np.percentile(vol[:, :, 1][vol[:, :, 1] > 0], 99.5), 0, 1)
    want, _ = hwexact.predict(prog, x[None, None].astype(np.float32))
    assert np.array_equal(np.load(r2["npy"]), want[0])


@pytest.mark.parametrize("kind", ["garbage_png", "missing", "txt", "4d_nifti", "1d_nifti", "slice"])
def test_bad_input_files(tmp_path, kind):
    import nibabel
    prog = _synth_program()
    if kind == "garbage_png":
        path = tmp_path / "bad.png"
        path.write_bytes(b"not a png at all")
        match = "cannot read image"
    elif kind == "missing":
        path, match = tmp_path / "none.png", "no such file"
    elif kind == "txt":
        path = tmp_path / "img.txt"
        path.write_text("1 2 3")
        match = "unsupported file type"
    elif kind == "4d_nifti":
        path = tmp_path / "v.nii"
        nibabel.save(nibabel.Nifti1Image(np.ones((8, 8, 2, 2), np.float32), np.eye(4)), path)
        match = "expected 2-D"
    elif kind == "1d_nifti":
        path = tmp_path / "v.nii"
        nibabel.save(nibabel.Nifti1Image(np.ones((8, 1, 1), np.float32), np.eye(4)), path)
        match = "expected 2-D"
    else:
        path = tmp_path / "v.nii"
        nibabel.save(nibabel.Nifti1Image(np.ones((8, 8, 3), np.float32), np.eye(4)), path)
        match = "slice 5 outside"
    with pytest.raises(ValueError, match=match):
        evaluate.segment_file(path, "synthetic", tmp_path / "o", program=prog, slice_index=5)


def test_cli_bad_input_exit_code(tmp_path, capsys):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG broken")
    assert evaluate.cli(["--input", str(bad), "--out", str(tmp_path)]) == 2
    assert "cannot read image" in capsys.readouterr().err


def test_cli_refuses_an_oversized_image_from_its_header(tmp_path, capsys):
    import struct
    import zlib

    from msdf_unet.host.api import MAX_IMAGE_SIDE
    side = 10 * MAX_IMAGE_SIDE
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    png = tmp_path / "huge.png"  # header only: decoding it would take ~10 GB, checking it 24 bytes
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr
                    + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))
    assert evaluate.cli(["--input", str(png), "--out", str(tmp_path / "o")]) == 2
    assert f"image {side}x{side} exceeds the limit of {MAX_IMAGE_SIDE}" in capsys.readouterr().err


def test_cli_rejects_bad_digits(capsys):
    with pytest.raises(SystemExit):
        evaluate.cli(["--digits", "four"])


def test_shipped_mri_model_few_slices(tmp_path):
    """The shipped MRI model on three test slices: INT8 within 0.02 Dice of float, END
    identical, truncation to 16 digits close to INT8."""
    from msdf_unet.golden.train import load_pretrained
    model, _ = load_pretrained("mri")
    data = load_dataset("mri", "test")
    calib = load_dataset("mri", "train").images[::4]
    res = evaluate.evaluate_task("mri", digits=(16,), n=3, model=model, data=data,
                                 calib_images=calib, progress=False)
    rows = {r["policy"]: r for r in res["rows"]}
    assert res["end_identical_to_int8"]
    assert abs(rows["int8"]["mean_fg_dice"] - rows["float"]["mean_fg_dice"]) < 0.02
    assert abs(rows["p=16"]["mean_fg_dice"] - rows["int8"]["mean_fg_dice"]) < 0.02
    assert rows["end"]["cycles"]["saved_pct"] > 5
    assert res["dequantized_check"]["layer_max_code_diff"] <= 1


def test_shipped_paper_model_one_slice():
    """The shipped paper-preset model (task mri4, 4 x 192 x 192) on one test slice: END
    labels identical to INT8 (checked inside evaluate_task), INT8 close to float, END
    saves digit cycles."""
    from msdf_unet.golden.train import load_pretrained
    model, cfg = load_pretrained("mri4")
    assert (cfg.in_channels, cfg.out_channels, cfg.input_size) == (4, 4, (192, 192))
    data = load_dataset("mri4", "test")
    calib = load_dataset("mri4", "train").images[::8]
    res = evaluate.evaluate_task("mri4", digits=(12,), n=1, model=model, data=data,
                                 calib_images=calib, progress=False)
    rows = {r["policy"]: r for r in res["rows"]}
    assert res["end_identical_to_int8"] and res["image_shape"] == [4, 192, 192]
    assert abs(rows["int8"]["mean_fg_dice"] - rows["float"]["mean_fg_dice"]) < 0.03
    assert rows["end"]["cycles"]["saved_pct"] > 5


@pytest.mark.slow
def test_cli_full_evaluation(tmp_path):
    """`msdf-unet eval` on both shipped models: files written, MSDF full and END exact."""
    assert evaluate.cli(["--digits", "12,16", "--out", str(tmp_path), "--no-progress"]) == 0
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["results"]
    for r in res["results"]:
        assert r["end_identical_to_int8"] and r["msdf_full_identical_to_int8"]
        rows = {x["policy"]: x for x in r["rows"]}
        assert abs(rows["int8"]["mean_fg_dice"] - rows["float"]["mean_fg_dice"]) < 0.01
        pg.load_program(tmp_path / f"{r['task']}.msdfp")
        assert (tmp_path / f"{r['task']}_overlays.png").is_file()
    assert (tmp_path / "dice_vs_digits.png").is_file() and (tmp_path / "tables.md").is_file()


def test_digit_budgets_outside_T_are_refused(synth_eval, tmp_path, capsys):
    """`eval --digits 99` used to be ignored silently (every layer ran in full)."""
    _, _, model, data, calib, tmax = synth_eval
    prog = evaluate.build_program("synthetic", model, calib)
    ts = [hwexact.layer_digits(l, prog.act_bits) for l in prog.conv_layers()]
    assert evaluate.digit_budget_range(prog) == (1, max(ts))
    for bad in ((max(ts) + 1,), (0,), (5, 99)):
        with pytest.raises(ValueError, match=rf"budgets must lie in 1..{max(ts)}") as e:
            evaluate.evaluate_task("synthetic", digits=bad, model=model, data=data,
                                   calib_images=calib, out=tmp_path / "o", progress=False)
        assert f"T = {min(ts)}..{max(ts)}" in str(e.value) and str(bad[-1]) in str(e.value)
    assert not (tmp_path / "o").exists()
    img = tmp_path / "x.png"
    import matplotlib.image
    matplotlib.image.imsave(img, data.images[0, 0], cmap="gray")
    with pytest.raises(ValueError, match="out of range"):
        evaluate.segment_file(img, "synthetic", tmp_path, program=prog, policy=f"truncate:{max(ts) + 1}")


def test_cli_digits_99_exit_2(tmp_path, capsys):
    assert evaluate.cli(["--task", "mri", "--digits", "99", "--n", "1", "--no-progress",
                         "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "digit budget 99 out of range" in err and "budgets must lie in 1.." in err


def test_mri_volume_input_sees_training_slices(tmp_path):
    """``eval --input`` on the bundled MNI T1 volume segments the slice as training sees
    it (orientation, crop, intensity), not transposed: its labels equal the hardware-exact
    prediction on the test set's slice with the same z."""
    from msdf_unet.golden import hwexact
    from msdf_unet.golden.data import load_dataset, mri_volume_path

    prog = evaluate.build_program("mri")
    ds = load_dataset("mri", "test")
    z = int(ds.index[0])
    evaluate.segment_file(mri_volume_path("t1"), "mri", tmp_path / "o", program=prog, slice_index=z)
    got = np.load(tmp_path / "o" / "mni_icbm152_t1_tal_nlin_sym_09a_converted_seg.npy")
    expected, _ = hwexact.predict(prog, ds.images[:1])
    assert got.shape == expected[0].shape
    assert np.array_equal(got, expected[0])
