"""Segmentation accuracy of the float, INT8 and MSDF-policy networks (``msdf-unet eval``).

For each task (``mri``: gray/white matter on MNI152 slices; ``nuclei``: StarDist nuclei
tiles; ``mri4``: the paper-preset model, 4 T1 channels, bg/GM/WM/CSF at 192 x 192, only
when named) the shipped pretrained float model (:func:`msdf_unet.golden.train.load_pretrained`)
is quantized with calibration on the training split (:func:`msdf_unet.golden.quant.quantize_model`),
and the test split is segmented by:

* ``float``      the float32 PyTorch model (argmax of the logits);
* ``int8``       the hardware-exact model, ``full`` policy (exact INT32 dot products);
* ``msdf-full``  the same through the bit-plane sums and the MMA digit recurrence, all
                 ``T`` digits: must equal ``int8`` (checked);
* ``end``        MSDF early negative detection on ReLU layers (+ sign-only binary head):
                 must give the same labels as ``int8`` (checked), fewer digit cycles;
* ``p=<n>``      MSDF truncated to ``n`` digits on every conv layer (``n`` = 4..16 by
                 default), outputs change.

Metrics per class, pooled over all pixels of the split: Dice ``2|P&G|/(|P|+|G|)`` and
IoU ``|P&G|/|P|G|`` (1.0 for a class absent from both prediction and ground truth, the
convention of :func:`msdf_unet.golden.train.dice_per_class`). Digit cycles: the sum over
all conv outputs of the digits each transaction occupied, against ``T`` per output for
``full``.

Writes under ``--out`` (default ``build/eval``): ``results.json``, ``tables.md``, ``<task>.msdfp`` (the
accelerator program), ``dice_vs_digits.png`` and ``<task>_overlays.png``. With
``--input FILE`` (PNG, or NIfTI ``.nii``/``.nii.gz``) it instead segments that image with
the task's hardware-exact model and writes ``<stem>_seg.png`` (overlay) and
``<stem>_seg.npy`` (labels).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from ..fileio import OutputError, prepare_out_dir, write_text, write_with
from . import hwexact, quant
from .program import Program, save_program

__all__ = ["dice_iou", "evaluate_task", "EXTRA_TASKS", "digit_budget_range", "check_digit_budgets", "format_table", "format_markdown", "plot_dice_vs_digits",
           "load_image", "segment_file", "cli", "TASKS"]

TASKS = ("mri", "nuclei")
#: Tasks evaluated only when named: ``mri4`` is the paper-preset model (4 x 192 x 192,
#: 2 GMAC per image, minutes per policy on a CPU), not part of ``--task all``.
EXTRA_TASKS = ("mri4",)
DEFAULT_DIGITS = tuple(range(4, 17))


def dice_iou(pred, target, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class Dice and IoU pooled over all pixels (1.0 for a class absent from both)."""
    pred = np.asarray(pred).reshape(-1)
    target = np.asarray(target).reshape(-1)
    if pred.shape != target.shape:
        raise ValueError(f"pred and target sizes differ: {pred.size} vs {target.size}")
    dice, iou = np.ones(num_classes), np.ones(num_classes)
    for c in range(num_classes):
        p, t = pred == c, target == c
        inter, ps, ts = int(np.sum(p & t)), int(p.sum()), int(t.sum())
        if ps + ts:
            dice[c] = 2.0 * inter / (ps + ts)
            iou[c] = inter / (ps + ts - inter)
    return dice, iou


def _row(name, pred, labels, k, cycles=None):
    d, i = dice_iou(pred, labels, k)
    row = {"policy": name, "dice": d.tolist(), "iou": i.tolist(),
           "mean_fg_dice": float(d[1:].mean()), "mean_fg_iou": float(i[1:].mean())}
    if cycles:
        s = hwexact.cycle_summary(cycles)
        row["cycles"] = {"full": s["full_cycles"], "used": s["used_cycles"],
                         "saved_pct": s["saved_pct"], "layers": s["layers"]}
    return row


def build_program(task: str, model=None, calib_images=None, config=quant.QuantConfig()) -> Program:
    """Quantize the shipped model of ``task`` with its training images."""
    from .data import load_dataset
    from .train import load_pretrained
    if model is None:
        model, _ = load_pretrained(task)
    if calib_images is None:
        calib_images = load_dataset(task, "train").images
    return quant.quantize_model(model, calib_images, config, meta={"task": task})


def digit_budget_range(program: Program) -> tuple[int, int]:
    """Inclusive range of meaningful truncation budgets ``p`` for ``program``: 1 up to the
    largest ``T = B + F`` of its conv layers (a layer with ``T <= p`` runs in full)."""
    return 1, max(hwexact.layer_digits(l, program.act_bits) for l in program.conv_layers())


def check_digit_budgets(program: Program, digits, *, task: str = "the") -> None:
    """ValueError naming the budgets outside :func:`digit_budget_range` and the range."""
    lo, hi = digit_budget_range(program)
    bad = [p for p in digits if not lo <= p <= hi]
    if bad:
        ts = sorted({hwexact.layer_digits(l, program.act_bits) for l in program.conv_layers()})
        raise ValueError(
            f"digit budget{'s' if len(bad) > 1 else ''} {', '.join(map(str, bad))} out of range: "
            f"the {task} program's conv layers have T = {ts[0]}..{ts[-1]} digits per output, "
            f"so budgets must lie in {lo}..{hi}")


def evaluate_task(task: str, *, digits=DEFAULT_DIGITS, n: int | None = None, batch_size: int = 16,
                  progress: bool = True, model=None, data=None, calib_images=None,
                  out: Path | None = None, quant_config: quant.QuantConfig = quant.QuantConfig()) -> dict:
    """Evaluate one task; returns a JSON-able dict (rows per policy, program facts).

    ``model``/``data``/``calib_images`` default to the shipped model, the test split and
    the training images (tests pass small ones). ``n`` limits the test images.
    """
    from .data import load_dataset
    from .train import load_pretrained, predict
    from tqdm import tqdm

    if model is None:
        model, _ = load_pretrained(task)
    if data is None:
        data = load_dataset(task, "test")
    images, labels = data.images, data.labels
    if n is not None:
        images, labels = images[:n], labels[:n]
    k = data.num_classes
    t0 = time.perf_counter()
    program = build_program(task, model, calib_images, quant_config)
    check_digit_budgets(program, digits, task=task)
    if out is not None:
        save_program(Path(out) / f"{task}.msdfp", program)
    policies = ["full", "msdf-full", "end"] + [f"truncate:{p}" for p in digits]
    bar = tqdm(total=1 + len(policies), desc=f"eval {task}", unit="policy", disable=not progress)
    preds = {"float": predict(model, images, batch_size)}
    rows = [_row("float", preds["float"], labels, k)]
    bar.update()
    for pol in policies:
        pr, cyc = hwexact.predict(program, images, pol, batch_size=batch_size, progress=progress)
        name = {"full": "int8", "msdf-full": "msdf-full", "end": "end"}.get(pol) or f"p={pol.split(':')[1]}"
        preds[name] = pr
        rows.append(_row(name, pr, labels, k, cyc if pol not in ("full", "msdf-full") else None))
        bar.update()
    bar.close()
    end_identical = bool(np.array_equal(preds["end"], preds["int8"]))
    msdf_identical = bool(np.array_equal(preds["msdf-full"], preds["int8"]))
    if not (end_identical and msdf_identical):  # exact by construction: anything else is a bug
        raise AssertionError(f"{task}: MSDF full / END labels differ from INT8 labels")
    cmp = hwexact.compare_with_dequantized(program, quant.quantize_input(program, images[:4]))
    res = {"task": task, "classes": list(data.class_names), "n_test": int(len(images)),
           "image_shape": list(images.shape[1:]), "rows": rows, "end_identical_to_int8": end_identical,
           "msdf_full_identical_to_int8": msdf_identical,
           "int8_vs_float_label_agreement": float(np.mean(preds["int8"] == preds["float"])),
           "dequantized_check": {"layer_max_code_diff": max(cmp["layer_max_code_diff"].values()),
                                 "end_to_end_max_logit_diff": cmp["end_to_end_max_logit_diff"],
                                 "logit_range": cmp["logit_range"]},
           "program": {"head": program.meta.get("head_decision"),
                       "bias_saturated": program.meta.get("bias_saturated", {}),
                       "layers": [{"name": l.name, "lanes": hwexact.layer_lanes(l),
                                   "bias_lanes": l.bias_lanes, "T": hwexact.layer_digits(l)}
                                  for l in program.conv_layers()]},
           "seconds": round(time.perf_counter() - t0, 1)}
    if out is not None:
        _overlays(Path(out) / f"{task}_overlays.png", images, labels, preds, data.class_names,
                  show=("float", "int8", f"p={min(digits, key=lambda p: abs(p - 8))}" if digits else "end"))
    return res


# ------------------------------------------------------------------------ printing / plots

def format_table(res: dict) -> str:
    cls = res["classes"]
    lines = [f"{res['task']}: {res['n_test']} test images {'x'.join(map(str, res['image_shape']))}, "
             f"classes {' / '.join(cls)}"]
    hdr = (f"{'policy':<10}" + "".join(f"{'Dice ' + c[:6]:>13}" for c in cls)
           + "".join(f"{'IoU ' + c[:6]:>12}" for c in cls) + f"{'mean fg Dice':>14}{'cycles saved':>14}")
    lines += [hdr, "-" * len(hdr)]
    for r in res["rows"]:
        saved = f"{r['cycles']['saved_pct']:13.2f}%" if "cycles" in r else f"{'':>14}"
        lines.append(f"{r['policy']:<10}" + "".join(f"{d:13.4f}" for d in r["dice"])
                     + "".join(f"{i:12.4f}" for i in r["iou"]) + f"{r['mean_fg_dice']:14.4f}" + saved)
    end = next((r for r in res["rows"] if r["policy"] == "end"), None)
    if end is not None and "cycles" in end:
        lines.append("digit cycles per conv layer, END vs FULL (T digits per output):")
        lines.append(f"  {'layer':<14}{'policy':>10}{'lanes':>7}{'T':>4}{'outputs':>11}"
                     f"{'FULL cycles':>13}{'END cycles':>13}{'saved':>8}")
        for c in end["cycles"]["layers"]:
            lines.append(f"  {c['name']:<14}{c['policy']:>10}{c['lanes']:>7}{c['T']:>4}{c['outputs']:>11}"
                         f"{c['full_cycles']:>13}{c['used_cycles']:>13}{c['saved_pct']:>7.2f}%")
        lines.append(f"  {'total':<46}{end['cycles']['full']:>13}{end['cycles']['used']:>13}"
                     f"{end['cycles']['saved_pct']:>7.2f}%")
    dq = res["dequantized_check"]
    lines.append(f"MSDF full / END labels identical to INT8: {res['msdf_full_identical_to_int8']} / "
                 f"{res['end_identical_to_int8']}; INT8 vs float label "
                 f"agreement {100 * res['int8_vs_float_label_agreement']:.2f} %; hw-exact vs dequantized "
                 f"float: max layer code diff {dq['layer_max_code_diff']}, max logit diff "
                 f"{dq['end_to_end_max_logit_diff']:.2e} (logit range {dq['logit_range']:.2f})")
    return "\n".join(lines)


def format_markdown(res: dict) -> str:
    """The Dice/IoU table and the END per-layer cycle table of one task as Markdown."""
    cls = res["classes"]
    out = [f"**{res['task']}**: {res['n_test']} test images of {'x'.join(map(str, res['image_shape']))}",
           "", "| policy | " + " | ".join(f"Dice {c}" for c in cls) + " | "
           + " | ".join(f"IoU {c}" for c in cls) + " | mean fg Dice | digit cycles saved |",
           "|---" * (2 * len(cls) + 3) + "|"]
    for r in res["rows"]:
        saved = f"{r['cycles']['saved_pct']:.2f} %" if "cycles" in r else ""
        out.append(f"| {r['policy']} | " + " | ".join(f"{d:.4f}" for d in r["dice"]) + " | "
                   + " | ".join(f"{i:.4f}" for i in r["iou"]) + f" | {r['mean_fg_dice']:.4f} | {saved} |")
    end = next((r for r in res["rows"] if r["policy"] == "end"), None)
    if end is not None and "cycles" in end:
        out += ["", "| layer | policy | lanes L | T | outputs | FULL cycles | END cycles | saved |",
                "|---|---|---|---|---|---|---|---|"]
        for c in end["cycles"]["layers"]:
            out.append(f"| {c['name']} | {c['policy']} | {c['lanes']} | {c['T']} | {c['outputs']} | "
                       f"{c['full_cycles']} | {c['used_cycles']} | {c['saved_pct']:.2f} % |")
        out.append(f"| total | | | | | {end['cycles']['full']} | {end['cycles']['used']} | "
                   f"{end['cycles']['saved_pct']:.2f} % |")
    return "\n".join(out)


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def plot_dice_vs_digits(results: list[dict], path: Path) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(6, 4))
    for res in results:
        rows = {r["policy"]: r for r in res["rows"]}
        ps = sorted(int(k[2:]) for k in rows if k.startswith("p="))
        line, = ax.plot(ps, [rows[f"p={p}"]["mean_fg_dice"] for p in ps], "o-", label=f"{res['task']} MSDF truncated")
        ax.axhline(rows["int8"]["mean_fg_dice"], color=line.get_color(), ls="--", lw=1,
                   label=f"{res['task']} INT8 (= END)")
        ax.axhline(rows["float"]["mean_fg_dice"], color=line.get_color(), ls=":", lw=1,
                   label=f"{res['task']} float")
    ax.set_xlabel("digits p per output")
    ax.set_ylabel("mean foreground Dice")
    ax.set_ylim(0, 1.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    try:
        write_with(path, lambda p: fig.savefig(p, dpi=120))
    finally:
        plt.close(fig)
    return path


def _label_cmap(k: int):
    from matplotlib.colors import ListedColormap
    base = [(0, 0, 0, 0), (1.0, 0.2, 0.2, 0.55), (0.2, 0.6, 1.0, 0.55), (0.2, 1.0, 0.2, 0.55),
            (1.0, 1.0, 0.2, 0.55)]
    return ListedColormap(base[:max(k, 2)])


def _overlays(path: Path, images, labels, preds, class_names, show, n_show: int = 4):
    plt = _plt()
    idx = np.linspace(0, len(images) - 1, min(n_show, len(images))).round().astype(int)
    cols = ["image", "ground truth", *show]
    fig, axes = plt.subplots(len(idx), len(cols), figsize=(2.2 * len(cols), 2.2 * len(idx)), squeeze=False)
    cmap = _label_cmap(len(class_names))
    for r, i in enumerate(idx):
        img = images[i, 0]
        for c, what in enumerate(cols):
            ax = axes[r, c]
            ax.imshow(img, cmap="gray", vmin=0, vmax=1)
            if what != "image":
                lab = labels[i] if what == "ground truth" else preds[what][i]
                ax.imshow(lab, cmap=cmap, vmin=0, vmax=len(class_names) - 1, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(what, fontsize=9)
    fig.suptitle("classes: " + ", ".join(f"{c}" for c in class_names[1:]) + " (colours)", fontsize=8)
    fig.tight_layout()
    try:
        write_with(path, lambda p: fig.savefig(p, dpi=100))
    finally:
        plt.close(fig)
    return path


# ------------------------------------------------------------------------ single images

def load_image(path) -> np.ndarray:
    """Read a PNG (matplotlib) or NIfTI (nibabel) image as float32 [H, W] or [H, W, D].

    Raises ValueError (unreadable file, unsupported extension, wrong number of
    dimensions, empty or non-finite data, over the size limits of ``msdf-unet segment``,
    checked from the header before decoding).
    """
    path = Path(path)
    name = path.name.lower()
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    from ..host.api import check_file_size  # the size limits of `segment`, from the header
    check_file_size(path)
    try:
        if name.endswith(".png"):
            import matplotlib.image as mpimg
            a = np.asarray(mpimg.imread(str(path)), dtype=np.float32)
            if a.ndim == 3:
                if a.shape[2] not in (3, 4):
                    raise ValueError(f"{path}: PNG with {a.shape[2]} channels; expected gray, RGB or RGBA")
                a = a[..., :3].mean(axis=2)
        elif name.endswith(".nii") or name.endswith(".nii.gz"):
            import nibabel
            a = np.asarray(nibabel.load(str(path)).get_fdata(), dtype=np.float32)
            a = np.squeeze(a)
        else:
            raise ValueError(f"{path}: unsupported file type; use .png, .nii or .nii.gz")
    except ValueError:
        raise
    except Exception as e:  # unreadable / corrupt file: name it
        raise ValueError(f"{path}: cannot read image ({type(e).__name__}: {e})") from e
    if a.ndim not in (2, 3):
        raise ValueError(f"{path}: image has shape {a.shape}; expected 2-D [H, W] or a 3-D volume")
    if a.size == 0 or not np.all(np.isfinite(a)):
        raise ValueError(f"{path}: image is empty or holds non-finite values")
    return a


def segment_file(path, task: str, out: Path, *, slice_index: int | None = None,
                 policy: str = "full", program: Program | None = None, model=None,
                 quant_config: quant.QuantConfig = quant.QuantConfig()) -> dict:
    """Segment one image file with the hardware-exact model of ``task``.

    A 3-D volume contributes the axial slice ``slice_index`` of its last axis (default:
    the middle one); for the MRI task the volume first goes through training's
    preprocessing (:func:`msdf_unet.golden.data.preprocess_mri_volume`: RAS orientation,
    crop, resampling, per-volume intensity), so the slice is the one the model would see in
    training (``msdf-unet segment`` is the full path: every slice, input geometry kept).
    A 2-D image is scaled to [0, 1] by the 99.5th percentile of its nonzero
    pixels (as the MRI loader does), zero-padded so H and W divide ``2**depth``, segmented,
    and cropped back. Writes ``<stem>_seg.png`` and ``<stem>_seg.npy`` into ``out``.
    """
    a = load_image(path)
    if program is None:
        program = build_program(task, model, None, quant_config)
    preprocessed = False
    if a.ndim == 3:
        if task == "mri":
            # a volume goes through training's preprocessing (orientation, crop, resampling,
            # intensity): slices as the model saw them in training, not transposed
            import nibabel

            from .data import preprocess_mri_volume
            size = program.tensors[program.input].shape[1]
            a, _ = preprocess_mri_volume(a, nibabel.load(str(path)).affine, size=size)
            a = np.moveaxis(a, 0, 2)  # [Z, y, x] -> [y, x, Z]
            preprocessed = True
        z = a.shape[2] // 2 if slice_index is None else slice_index
        if not 0 <= z < a.shape[2]:
            raise ValueError(f"{path}: slice {z} outside the volume's {a.shape[2]} slices")
        a = a[:, :, z]
    elif slice_index is not None:
        raise ValueError(f"{path}: a 2-D image has no slices; drop --slice {slice_index}")
    run_policy = hwexact.RunPolicy.parse(policy) if isinstance(policy, str) else policy
    if run_policy.mode == "truncate":
        check_digit_budgets(program, [run_policy.digits], task=task)
    step = 2 ** program.depth
    h, w = a.shape
    if h < step or w < step:
        raise ValueError(f"{path}: image {h}x{w} is smaller than the network's {step}x{step} minimum")
    cin = program.tensors[program.input].shape[0]
    if cin != 1:
        raise ValueError(f"the {task} model needs {cin} input channels; image files give 1")
    if preprocessed:
        img = a.astype(np.float32)
    else:
        nz = a[a > 0]
        scale = float(np.percentile(nz, 99.5)) if nz.size else 1.0
        img = np.clip(a / (scale if scale > 0 else 1.0), 0.0, 1.0).astype(np.float32)
    H, W = -(-h // step) * step, -(-w // step) * step
    x = np.zeros((1, 1, H, W), np.float32)
    x[0, 0, :h, :w] = img
    pred, cyc = hwexact.predict(program, x, policy)
    pred = pred[0, :h, :w]
    out = prepare_out_dir(out)
    stem = Path(path).name.split(".")[0]
    write_with(out / f"{stem}_seg.npy", lambda p: np.save(p, pred))
    from .data import CLASS_NAMES
    names = CLASS_NAMES[task]
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(6, 3))
    for ax, what in zip(axes, ("image", "prediction")):
        ax.imshow(img, cmap="gray", vmin=0, vmax=1)
        if what == "prediction":
            ax.imshow(pred, cmap=_label_cmap(len(names)), vmin=0, vmax=len(names) - 1, interpolation="nearest")
        ax.set_title(what, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    png = out / f"{stem}_seg.png"
    try:
        write_with(png, lambda p: fig.savefig(p, dpi=100))
    finally:
        plt.close(fig)
    counts = {names[c]: int((pred == c).sum()) for c in range(len(names))}
    return {"input": str(path), "png": str(png), "npy": str(out / f"{stem}_seg.npy"), "pixels": counts}


# ------------------------------------------------------------------------ command line

def _digits(text: str) -> tuple[int, ...]:
    try:
        if "-" in text:
            a, b = text.split("-")
            ds = tuple(range(int(a), int(b) + 1))
        else:
            ds = tuple(int(t) for t in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"digits must look like 4-16 or 4,8,12, not {text!r}") from None
    if not ds or min(ds) < 1:
        raise argparse.ArgumentTypeError(f"digit budgets must be >= 1, got {text!r}")
    return ds


def cli(argv: list[str] | None = None) -> int:
    """``msdf-unet eval``: accuracy table, JSON and plots; or ``--input`` to segment a file."""
    ap = argparse.ArgumentParser(prog="msdf-unet eval", description=__doc__.split("\n\n")[0])
    ap.add_argument("--task", choices=(*TASKS, *EXTRA_TASKS, "all"), default="all",
                    help="data set / shipped model (all = mri, nuclei; mri4 = paper preset)")
    ap.add_argument("--digits", type=_digits, default=DEFAULT_DIGITS, help="truncation budgets p, 1..T of the program's layers (default 4-16)")
    ap.add_argument("--n", type=int, default=None, help="use only the first N test images")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("build/eval"), help="output folder (default build/eval)")
    ap.add_argument("--input", type=Path, help="segment this PNG / NIfTI file instead of evaluating")
    ap.add_argument("--slice", type=int, default=None, help="slice of a 3-D NIfTI volume (default middle)")
    ap.add_argument("--policy", default="full", help="policy for --input: full, end or truncate:<p>")
    ap.add_argument("--bias-lanes", type=int, default=None,
                    help="fixed bias lanes per layer (biases that do not fold saturate); default: as needed")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = ap.parse_args(argv)
    if args.n is not None and args.n < 1:
        ap.error(f"--n must be >= 1, not {args.n}")
    if args.batch_size < 1:
        ap.error(f"--batch-size must be >= 1, not {args.batch_size}")
    try:
        qcfg = quant.QuantConfig(bias_lanes=args.bias_lanes)
    except ValueError as e:
        ap.error(str(e))
    try:  # before minutes of work, not after
        prepare_out_dir(args.out, create=False)
    except OutputError as e:
        print(f"msdf-unet eval: error: {e}", file=sys.stderr)
        return 2
    if args.input is not None:
        task = "mri" if args.task == "all" else args.task
        try:
            hwexact.RunPolicy.parse(args.policy)
            r = segment_file(args.input, task, args.out, slice_index=args.slice, policy=args.policy,
                             quant_config=qcfg)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        print(f"{r['input']}: {', '.join(f'{k} {v}' for k, v in r['pixels'].items())} pixels")
        print(f"wrote {r['png']} and {r['npy']}")
        return 0
    from .train import load_pretrained
    tasks = TASKS if args.task == "all" else (args.task,)
    results, skipped = [], []
    for task in tasks:
        try:
            load_pretrained(task)
        except FileNotFoundError as e:
            skipped.append(task)
            print(f"{task}: no shipped pretrained weights ({e}); skipped", file=sys.stderr)
            continue
        try:
            res = evaluate_task(task, digits=args.digits, n=args.n, batch_size=args.batch_size,
                                progress=not args.no_progress, out=args.out, quant_config=qcfg)
        except ValueError as e:
            print(f"msdf-unet eval: error: {e}", file=sys.stderr)
            return 2
        results.append(res)
        print(format_table(res))
        print()
    if not results:
        print("error: nothing evaluated", file=sys.stderr)
        return 1
    write_text(args.out / "results.json", json.dumps({"results": results, "skipped": skipped}, indent=1))
    plot_dice_vs_digits(results, args.out / "dice_vs_digits.png")
    write_text(args.out / "tables.md", "\n\n".join(format_markdown(r) for r in results) + "\n")
    print(f"wrote {args.out / 'results.json'}, {args.out / 'dice_vs_digits.png'} and overlays")
    return 0


if __name__ == "__main__":
    sys.exit(cli())
