"""Seeded, deterministic CPU training of the float U-Net, and the shipped pretrained weights.

``msdf-unet train`` calls :func:`cli`. A run writes three files into ``--out``:

* ``weights.npz`` — the ``state_dict`` (float32 conv/BN tensors, BN running statistics)
  of the epoch with the best mean validation Dice (``--weights-dtype float16``: the conv
  kernels rounded to and stored as float16, and the summary computed with them);
* ``config.json`` — the :class:`~msdf_unet.golden.unet.UNetConfig`;
* ``train_log.json`` — the arguments, per-epoch loss and validation Dice per class,
  and a summary (wall time, best epoch, val and test Dice per class).

Dice is the hard Dice of the argmax prediction per class, pooled over all pixels of a
split (``2 |P & T| / (|P| + |T|)``, 1.0 when a class is absent from both).
The loss is cross-entropy plus ``1 - mean soft Dice`` over all classes.

Settings are checked before anything runs (finite positive ``--lr``, ``--threads`` in
1..:data:`MAX_THREADS`, ``--size`` a multiple of the U-Net's ``2**(depth-1)``, ...; exit
status 2 with the reason), and a loss that becomes NaN or infinite stops the run with
:class:`TrainingDiverged` (exit status 1) before anything is written.

Determinism: ``torch.manual_seed(seed)``, ``torch.use_deterministic_algorithms(True)``,
a fixed thread count, and a seeded generator for shuffling and flips, so the same
command on the same machine and thread count reproduces the same weights.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..fileio import OutputError, prepare_out_dir, write_text, write_with
from .data import DATASETS, SegmentationData, load_dataset
from .unet import PRESETS, UNet, UNetConfig, mac_count, param_count

__all__ = [
    "MAX_THREADS",
    "TrainArgs",
    "TrainResult",
    "TrainingDiverged",
    "WEIGHTS_DIR",
    "WEIGHTS_DTYPES",
    "PRETRAINED_TASKS",
    "cli",
    "dice_per_class",
    "evaluate",
    "load_model",
    "load_pretrained",
    "predict",
    "round_conv_weights",
    "save_model",
    "train",
]

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
#: Most intra-op threads a run may ask for: four per CPU (more only oversubscribes the
#: cores, and a huge count makes the thread pool itself fail).
MAX_THREADS = 4 * (os.cpu_count() or 1)
#: Largest seed (torch and NumPy both take 63-bit non-negative seeds).
MAX_SEED = 2 ** 63 - 1


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; nothing is saved."""
#: Shipped models: task name -> folder under ``golden/weights``.
PRETRAINED_TASKS = {"mri": "mri_edge", "nuclei": "nuclei_edge", "mri4": "mri_paper"}
#: How ``weights.npz`` may store the conv kernels (4-D tensors); the rest stays float32.
WEIGHTS_DTYPES = ("float32", "float16")


@dataclass(frozen=True)
class TrainArgs:
    """Training settings (serialised into ``train_log.json``)."""

    dataset: str = "mri"
    preset: str = "edge"
    epochs: int = 40
    seed: int = 0
    threads: int = 2
    batch_size: int = 8
    lr: float = 3e-3
    weight_decay: float = 1e-4
    size: int | None = None
    max_steps: int | None = None  # stop after this many optimiser steps (tests)
    weights_dtype: str = "float32"  # "float16": conv kernels rounded to and stored as fp16

    def __post_init__(self) -> None:
        if self.weights_dtype not in WEIGHTS_DTYPES:
            raise ValueError(f"weights_dtype must be one of {WEIGHTS_DTYPES}, not {self.weights_dtype!r}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}, choose from {DATASETS}")
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}, choose from {sorted(PRESETS)}")
        limits = {"epochs": (1, 100_000), "threads": (1, MAX_THREADS), "batch_size": (1, 65_536),
                  "seed": (0, MAX_SEED), "size": (1, 8192), "max_steps": (1, 10 ** 9)}
        for name, (lo, hi) in limits.items():
            v = getattr(self, name)
            if v is None and name in ("size", "max_steps"):
                continue
            if isinstance(v, bool) or not isinstance(v, int):
                raise TypeError(f"{name} must be an integer, not {v!r}")
            if not lo <= v <= hi:
                extra = " (4 per CPU of this machine)" if name == "threads" else ""
                raise ValueError(f"{name} must be in [{lo}, {hi}]{extra}, not {v!r}")
        for name, lo, strict in (("lr", 0.0, True), ("weight_decay", 0.0, False)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)):
                raise TypeError(f"{name} must be a number, not {v!r}")
            if not math.isfinite(v) or v < lo or (strict and v == lo):
                raise ValueError(f"{name} must be a finite number {'>' if strict else '>='} {lo:g}, "
                                 f"not {v!r}")
        step = 2 ** (PRESETS[self.preset].depth - 1)
        if self.size is not None and self.size % step:
            raise ValueError(f"size {self.size} does not suit the {self.preset!r} U-Net: it must be "
                             f"a multiple of 2**(depth-1) = {step}")


@dataclass
class TrainResult:
    model: UNet
    config: UNetConfig
    losses: list[float] = field(default_factory=list)  # one per optimiser step
    log: dict = field(default_factory=dict)


def dice_per_class(pred: np.ndarray | torch.Tensor, target: np.ndarray | torch.Tensor,
                   num_classes: int) -> np.ndarray:
    """Hard Dice per class pooled over all pixels; 1.0 for a class absent from both."""
    pred = torch.as_tensor(pred).reshape(-1)
    target = torch.as_tensor(target).reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target sizes differ: {pred.numel()} vs {target.numel()}")
    out = np.empty(num_classes)
    for c in range(num_classes):
        p, t = pred == c, target == c
        denom = int(p.sum()) + int(t.sum())
        out[c] = 1.0 if denom == 0 else 2.0 * int((p & t).sum()) / denom
    return out


@torch.no_grad()
def predict(model: UNet, images: np.ndarray | torch.Tensor, batch_size: int = 16) -> np.ndarray:
    """Argmax labels int64 ``[N, H, W]`` of ``model`` (in eval mode) on ``images``."""
    model.eval()
    x = torch.as_tensor(images, dtype=torch.float32)
    out = [model(x[i:i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy().astype(np.int64)


def evaluate(model: UNet, data: SegmentationData, batch_size: int = 16) -> np.ndarray:
    """Dice per class of ``model`` on a split."""
    return dice_per_class(predict(model, data.images, batch_size), data.labels, data.num_classes)


def _loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    ce = F.cross_entropy(logits, target)
    prob = logits.softmax(1)
    onehot = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(prob.dtype)
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    dice = (2 * inter + 1.0) / (denom + 1.0)
    return ce + (1.0 - dice.mean())


def _augment(x: torch.Tensor, y: torch.Tensor, dataset: str, gen: torch.Generator
             ) -> tuple[torch.Tensor, torch.Tensor]:
    # Left-right flips for the (symmetric) MNI template; all 8 dihedral views elsewhere.
    flips = torch.rand(3, generator=gen)
    if flips[0] < 0.5:
        x, y = x.flip(-1), y.flip(-1)
    if dataset not in ("mri", "mri4"):
        if flips[1] < 0.5:
            x, y = x.flip(-2), y.flip(-2)
        if flips[2] < 0.5:
            x, y = x.transpose(-1, -2), y.transpose(-1, -2)
    return x.contiguous(), y.contiguous()


def _setup_determinism(seed: int, threads: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(threads)


def train(args: TrainArgs, *, progress: bool = True, out: str | Path | None = None
          ) -> TrainResult:
    """Train a U-Net and return the model with the best mean validation Dice.

    Parameters
    ----------
    args : TrainArgs
    progress : bool
        Show a tqdm bar and print the validation Dice per class after each epoch.
    out : path, optional
        Folder to write ``weights.npz``, ``config.json`` and ``train_log.json``.

    The global torch settings changed for determinism (deterministic algorithms,
    thread count) are restored on return.
    """
    saved = (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads())
    try:
        return _train(args, progress=progress, out=out)
    finally:
        torch.use_deterministic_algorithms(saved[0])
        torch.set_num_threads(saved[1])


def _train(args: TrainArgs, *, progress: bool, out: str | Path | None) -> TrainResult:
    from tqdm import tqdm

    _setup_determinism(args.seed, args.threads)
    tr = load_dataset(args.dataset, "train", size=args.size, seed=args.seed)
    va = load_dataset(args.dataset, "val", size=args.size, seed=args.seed)
    te = load_dataset(args.dataset, "test", size=args.size, seed=args.seed)
    size = tuple(tr.images.shape[2:])
    config = dataclasses.replace(
        PRESETS[args.preset], in_channels=tr.images.shape[1], out_channels=tr.num_classes,
        input_size=size, name=args.preset)
    model = UNet(config)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(tr) // args.batch_size)
    total = steps_per_epoch * args.epochs
    if args.max_steps is not None:
        total = min(total, args.max_steps)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=max(total, 1),
                                                pct_start=0.15)
    gen = torch.Generator().manual_seed(args.seed)
    x_all = torch.from_numpy(tr.images)
    y_all = torch.from_numpy(tr.labels)

    result = TrainResult(model=model, config=config)
    epochs_log = []
    best = (-1.0, None, -1)
    t0 = time.perf_counter()
    bar = tqdm(total=total, disable=not progress, desc=f"train {args.dataset}", unit="step",
               file=sys.stderr)
    step = 0
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(tr), generator=gen)
        ep_loss = []
        for b in range(steps_per_epoch):
            if step >= total:
                break
            idx = perm[b * args.batch_size:(b + 1) * args.batch_size]
            x, y = _augment(x_all[idx], y_all[idx], args.dataset, gen)
            loss = _loss(model(x), y)
            if not torch.isfinite(loss.detach()):
                bar.close()
                raise TrainingDiverged(
                    f"the loss became {float(loss.detach())} at step {step + 1} (epoch {epoch + 1}); "
                    f"training stopped and nothing was saved. Try a smaller --lr (now {args.lr:g})")
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            lval = float(loss.detach())
            result.losses.append(lval)
            ep_loss.append(lval)
            step += 1
            bar.update(1)
            bar.set_postfix(epoch=epoch + 1, loss=f"{lval:.4f}")
        if not ep_loss:
            break
        val = evaluate(model, va)
        epochs_log.append({"epoch": epoch + 1, "loss": float(np.mean(ep_loss)),
                           "val_dice": dict(zip(tr.class_names, val.round(4).tolist())),
                           "seconds": round(time.perf_counter() - t0, 2)})
        if progress:
            tqdm.write("epoch {:3d} loss {:.4f} val Dice {}".format(
                epoch + 1, np.mean(ep_loss),
                " ".join(f"{n}={d:.3f}" for n, d in zip(tr.class_names, val))), file=sys.stderr)
        if val.mean() > best[0]:
            best = (float(val.mean()), {k: v.clone() for k, v in model.state_dict().items()},
                    epoch + 1)
    bar.close()
    seconds = time.perf_counter() - t0
    if best[1] is not None:
        model.load_state_dict(best[1])
    if args.weights_dtype == "float16":  # the summary below describes the stored weights
        round_conv_weights(model)
    model.eval()
    val, test = evaluate(model, va), evaluate(model, te)
    names = tr.class_names
    result.log = {
        "args": dataclasses.asdict(args),
        "config": config.to_dict(),
        "data": {"train": len(tr), "val": len(va), "test": len(te), "size": list(size),
                 "class_names": list(names)},
        "epochs": epochs_log,
        "summary": {
            "train_seconds": round(seconds, 1),
            "threads": args.threads,
            "steps": step,
            "best_epoch": best[2],
            "val_dice": dict(zip(names, val.round(4).tolist())),
            "test_dice": dict(zip(names, test.round(4).tolist())),
            "params": param_count(config),
            "macs_per_image": mac_count(config),
            "torch": torch.__version__,
        },
    }
    if out is not None:
        save_model(model, out, log=result.log, weights_dtype=args.weights_dtype)
    return result


def round_conv_weights(model: UNet) -> UNet:
    """Round the conv kernels (4-D tensors) of ``model`` to float16 precision, in place
    (they stay float32 tensors), so the model equals what a float16 ``weights.npz`` holds."""
    with torch.no_grad():
        for t in model.state_dict().values():
            if t.dim() == 4 and t.is_floating_point():
                t.copy_(t.half().float())
    return model


def save_model(model: UNet, out: str | Path, log: dict | None = None,
               weights_dtype: str = "float32") -> Path:
    """Write ``weights.npz``, ``config.json`` (and ``train_log.json``) into ``out``.

    ``weights_dtype="float16"`` stores the conv kernels as float16 (half the file; call
    :func:`round_conv_weights` first to evaluate exactly what is stored);
    :func:`load_model` reads either.
    """
    if weights_dtype not in WEIGHTS_DTYPES:
        raise ValueError(f"weights_dtype must be one of {WEIGHTS_DTYPES}, not {weights_dtype!r}")
    out = prepare_out_dir(out)
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    if weights_dtype == "float16":
        state = {k: v.astype(np.float16) if v.ndim == 4 and v.dtype == np.float32 else v
                 for k, v in state.items()}
    write_with(out / "weights.npz", lambda p: np.savez(p, **state))
    write_text(out / "config.json", model.config.to_json() + "\n")
    if log is not None:
        write_text(out / "train_log.json", json.dumps(log, indent=2) + "\n")
    return out


def load_model(folder: str | Path) -> tuple[UNet, UNetConfig]:
    """Load a model written by :func:`save_model`, in eval mode."""
    folder = Path(folder)
    if not (folder / "weights.npz").is_file() or not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder} has no weights.npz / config.json")
    config = UNetConfig.from_json((folder / "config.json").read_text())
    model = UNet(config)
    with np.load(folder / "weights.npz") as z:
        state = {k: torch.from_numpy(z[k].astype(np.float32) if z[k].dtype == np.float16
                                     else z[k].copy()) for k in z.files}
    model.load_state_dict(state, strict=True)
    return model.eval(), config


def load_pretrained(task: str = "mri") -> tuple[UNet, UNetConfig]:
    """The shipped model for ``task``, in eval mode: the ``edge`` preset for ``"mri"`` and
    ``"nuclei"``, the ``paper`` preset for ``"mri4"`` (:data:`PRETRAINED_TASKS`)."""
    if task not in PRETRAINED_TASKS:
        raise ValueError(f"unknown task {task!r}, choose from {sorted(PRETRAINED_TASKS)}")
    return load_model(WEIGHTS_DIR / PRETRAINED_TASKS[task])


def cli(argv: list[str] | None = None) -> int:
    """``msdf-unet train``: train a U-Net on CPU and save it. Returns the exit code."""
    p = argparse.ArgumentParser(
        prog="msdf-unet train",
        description="Train the float U-Net on CPU (seeded, deterministic); writes weights.npz, "
                    "config.json and train_log.json into --out.")
    p.add_argument("--dataset", choices=DATASETS, default="mri")
    p.add_argument("--preset", choices=sorted(PRESETS), default="edge")
    p.add_argument("--epochs", type=int, default=TrainArgs.epochs)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2,
                   help=f"torch threads, 1..{MAX_THREADS} (4 per CPU)")
    p.add_argument("--batch-size", type=int, default=TrainArgs.batch_size)
    p.add_argument("--lr", type=float, default=TrainArgs.lr)
    p.add_argument("--size", type=int, default=None, help="image side (see load_dataset)")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--weights-dtype", choices=WEIGHTS_DTYPES, default="float32",
                   help="float16: conv kernels rounded to and stored as fp16 (half the file)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    ns = p.parse_args(argv)
    try:
        args = TrainArgs(dataset=ns.dataset, preset=ns.preset, epochs=ns.epochs, seed=ns.seed,
                         threads=ns.threads, batch_size=ns.batch_size, lr=ns.lr, size=ns.size,
                         max_steps=ns.max_steps, weights_dtype=ns.weights_dtype)
    except (TypeError, ValueError) as e:
        print(f"msdf-unet train: error: {e}", file=sys.stderr)
        return 2
    try:  # checked before training, created only when there is something to write
        prepare_out_dir(ns.out, create=False)
    except OutputError as e:
        print(f"msdf-unet train: error: {e}", file=sys.stderr)
        return 2
    try:
        res = train(args, progress=not ns.quiet, out=ns.out)
    except TrainingDiverged as e:
        print(f"msdf-unet train: error: {e}", file=sys.stderr)
        return 1
    s = res.log["summary"]
    print(f"trained {args.dataset} {args.preset} in {s['train_seconds']} s "
          f"(best epoch {s['best_epoch']}), saved to {ns.out}")
    print("val Dice  " + " ".join(f"{k}={v:.4f}" for k, v in s["val_dice"].items()))
    print("test Dice " + " ".join(f"{k}={v:.4f}" for k, v in s["test_dice"].items()))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(cli(sys.argv[1:]))
