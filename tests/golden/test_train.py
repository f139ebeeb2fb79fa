"""Tests of training, saving/loading and the shipped pretrained models."""
import json

import numpy as np
import pytest
import torch

from msdf_unet.golden.data import load_dataset
from msdf_unet.golden.train import (
    PRETRAINED_TASKS, WEIGHTS_DIR, TrainArgs, cli, dice_per_class, evaluate, load_model,
    load_pretrained, train)
from msdf_unet.golden.unet import PRESETS

TINY = TrainArgs(dataset="synthetic", epochs=1, seed=5, threads=1, batch_size=4, max_steps=2)


def test_dice_per_class_matches_set_counts():
    rng = np.random.default_rng(0)
    pred = rng.integers(0, 3, size=(4, 8, 8))
    target = rng.integers(0, 3, size=(4, 8, 8))
    target[target == 2] = 1  # class 2 absent from the target, present in pred
    pred[0, 0, 0] = 3        # class 3 in pred only once
    d = dice_per_class(pred, target, 5)
    for c in range(4):
        p = {i for i, v in enumerate(pred.ravel()) if v == c}
        t = {i for i, v in enumerate(target.ravel()) if v == c}
        assert d[c] == pytest.approx(2 * len(p & t) / (len(p) + len(t)))
    assert d[2] == 0.0 and d[3] == 0.0
    assert d[4] == 1.0  # absent from both


@pytest.mark.parametrize("threads", [1, 2])
def test_tiny_training_is_deterministic(threads):
    args = TrainArgs(**{**TINY.__dict__, "threads": threads})
    a = train(args, progress=False)
    b = train(args, progress=False)
    assert len(a.losses) == 2 and np.all(np.isfinite(a.losses))
    assert a.losses == b.losses
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    c = train(TrainArgs(**{**args.__dict__, "seed": 6}), progress=False)
    assert c.losses != a.losses


def test_save_load_round_trip(tmp_path):
    res = train(TINY, progress=False, out=tmp_path)
    assert {p.name for p in tmp_path.iterdir()} == {"weights.npz", "config.json", "train_log.json"}
    model, cfg = load_model(tmp_path)
    assert cfg == res.config
    x = torch.from_numpy(load_dataset("synthetic", "val", n=3).images)
    res.model.eval()
    with torch.no_grad():
        assert torch.equal(model(x), res.model(x))
    log = json.loads((tmp_path / "train_log.json").read_text())
    assert log["summary"]["steps"] == 2 and log["config"] == cfg.to_dict()


def test_float16_weights_round_trip(tmp_path):
    res = train(TrainArgs(**{**TINY.__dict__, "weights_dtype": "float16"}), progress=False,
                out=tmp_path)
    with np.load(tmp_path / "weights.npz") as z:
        kinds = {k: z[k].dtype for k in z.files}
    assert kinds["head.weight"] == np.float16 and kinds["head.bias"] == np.float32
    assert kinds["down.0.bn1.running_var"] == np.float32
    model, _ = load_model(tmp_path)
    x = torch.from_numpy(load_dataset("synthetic", "val", n=3).images)
    with torch.no_grad():  # the returned model is rounded exactly like the stored one
        assert torch.equal(model(x), res.model.eval()(x))
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(ValueError, match="weights_dtype must be one of"):
        TrainArgs(dataset="synthetic", weights_dtype="int8")


def test_cli_writes_outputs(tmp_path, capsys):
    rc = cli(["--dataset", "synthetic", "--epochs", "1", "--max-steps", "1", "--threads", "1",
              "--quiet", "--out", str(tmp_path / "run")])
    assert rc == 0
    assert (tmp_path / "run" / "weights.npz").is_file()
    assert "val Dice" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli(["--dataset", "brats", "--out", str(tmp_path)])


def test_training_learns_synthetic():
    res = train(TrainArgs(dataset="synthetic", epochs=6, seed=0, threads=1, batch_size=8,
                          lr=1e-2), progress=False)
    dice = evaluate(res.model, load_dataset("synthetic", "test"))
    assert dice.min() > 0.6, dice


@pytest.mark.parametrize("task", sorted(PRETRAINED_TASKS))
def test_pretrained_test_dice(task):
    folder = WEIGHTS_DIR / PRETRAINED_TASKS[task]
    model, cfg = load_pretrained(task)
    preset = PRESETS["paper" if task == "mri4" else "edge"]
    assert (cfg.depth, cfg.widths, cfg.in_channels) == (preset.depth, preset.widths, preset.in_channels)
    assert (folder / "weights.npz").stat().st_size < (4_500_000 if task == "mri4" else 400_000)
    data = load_dataset(task, "test", size=cfg.input_size[0])
    assert cfg.out_channels == data.num_classes
    dice = evaluate(model, data)
    # every tissue / foreground class, and the background, is segmented well
    assert dice.min() > 0.5, dict(zip(data.class_names, dice))
    # the summary shipped with the weights reports what the weights do
    log = json.loads((folder / "train_log.json").read_text())
    np.testing.assert_allclose(list(log["summary"]["test_dice"].values()), dice, atol=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize("task", sorted(PRETRAINED_TASKS))
def test_retraining_reproduces_shipped_model(task):
    """Re-run the logged training command; Dice must match the shipped summary."""
    folder = WEIGHTS_DIR / PRETRAINED_TASKS[task]
    log = json.loads((folder / "train_log.json").read_text())
    res = train(TrainArgs(**log["args"]), progress=False)
    data = load_dataset(task, "test", size=res.config.input_size[0])
    np.testing.assert_allclose(evaluate(res.model, data),
                               list(log["summary"]["test_dice"].values()), atol=0.02)


def test_pretrained_unknown_task():
    with pytest.raises(ValueError, match="unknown task"):
        load_pretrained("brats")


# ----------------------------------------------------------- settings checks (issue 10)

from msdf_unet.golden import train as train_mod  # noqa: E402


@pytest.mark.parametrize("flags, says", [
    (["--lr", "inf"], "lr must be a finite number > 0, not inf"),
    (["--lr", "nan"], "lr must be a finite number > 0, not nan"),
    (["--lr", "-1"], "lr must be a finite number > 0, not -1.0"),
    (["--lr", "0"], "lr must be a finite number > 0"),
    (["--size", "0"], "size must be in [1, 8192], not 0"),
    (["--size", "30"], "size 30 does not suit the 'edge' U-Net: it must be a multiple of"),
    (["--threads", "100000"], f"threads must be in [1, {train_mod.MAX_THREADS}]"),
    (["--threads", "0"], "threads must be in [1,"),
    (["--epochs", "0"], "epochs must be in [1,"),
    (["--batch-size", "-3"], "batch_size must be in [1,"),
    (["--seed", "-1"], "seed must be in [0,"),
    (["--max-steps", "0"], "max_steps must be in [1,"),
])
def test_bad_settings_exit_2_and_write_nothing(tmp_path, capsys, flags, says):
    out = tmp_path / "run"
    assert cli(["--dataset", "synthetic", *flags, "--quiet", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("msdf-unet train: error:") and says in err, err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_settings_types_are_checked():
    with pytest.raises(TypeError, match="lr must be a number"):
        TrainArgs(dataset="synthetic", lr="0.1")
    with pytest.raises(TypeError, match="epochs must be an integer"):
        TrainArgs(dataset="synthetic", epochs=2.0)
    with pytest.raises(TypeError, match="threads must be an integer"):
        TrainArgs(dataset="synthetic", threads=True)


def test_non_finite_loss_stops_training(tmp_path, capsys, monkeypatch):
    real = train_mod._loss
    calls = []

    def explodes_on_step_2(logits, target):
        calls.append(1)
        loss = real(logits, target)
        return loss * float("nan") if len(calls) == 2 else loss
    monkeypatch.setattr(train_mod, "_loss", explodes_on_step_2)
    out = tmp_path / "run"
    with pytest.raises(train_mod.TrainingDiverged, match="loss became nan at step 2"):
        train(TINY, progress=False, out=out)
    calls.clear()
    rc = cli(["--dataset", "synthetic", "--epochs", "1", "--max-steps", "2", "--threads", "1",
              "--batch-size", "4", "--quiet", "--out", str(out)])
    assert rc == 1 and "loss became nan at step 2" in capsys.readouterr().err
    assert not out.exists()
