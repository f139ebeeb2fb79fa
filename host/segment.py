"""``msdf-unet segment INPUT... --model NAME_OR_PATH --backend B --out DIR``.

For each input (PNG, NIfTI ``.nii``/``.nii.gz`` or a ``.npy`` array) writes into ``DIR``:

- ``<stem>.labels.nii.gz`` (NIfTI input, also a 2-D one: the input's shape, affine and
  header, uint8 labels) or ``<stem>.labels.png`` (other 2-D input: 8-bit label values);
- ``<stem>.overlay.png``: the network's input with the labels in colour (a few slices of a
  volume);
- ``<stem>.summary.json``: ``backend``, ``model``, ``input``, ``shape``, ``labels_sha256``
  (SHA-256 of the labels as C-order uint8 bytes), ``class_voxels``, ``seconds`` (backend
  wall time), ``slices``, ``warnings``, and for backends with cycles ``cycles``,
  ``cycle_model`` and ``frame_ms_at_100mhz``;

and ``DIR/summary.json`` with the list of this invocation's summaries. ``<stem>`` is the
file name without ``.png`` / ``.nii`` / ``.nii.gz`` / ``.npy`` (``a.v1.png`` -> ``a.v1``);
when ``DIR`` already holds outputs of a *different* input with the same stem, ``-2``,
``-3``, ... is appended, so names never collide. Every file is written under a temporary
name and renamed: an interrupted run leaves no partial file.

Exit status: 0 done, 1 the run failed (board timeout or fault, a write error such as a full
disk; one line, no traceback), 2 bad input or settings (an overlay or program built for
another engine included), 3 backend not available in this build or on this machine.
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from ..fileio import prepare_out_dir
from .api import BACKENDS, MODELS, InputError, Segmentation, load_model, segment
from .runtime import AcceleratorError, BackendUnavailable, ConfigMismatch, atomic_write_bytes

__all__ = ["cli", "write_outputs", "output_stem", "labels_sha256"]

_EXTS = (".nii.gz", ".nii", ".png", ".npy")


def labels_sha256(labels: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(labels, dtype=np.uint8).tobytes()).hexdigest()


def output_stem(source: str, out: Path) -> str:
    """The output stem of ``source`` in ``out`` (unique among different inputs)."""
    name = Path(source).name
    base = next((name[:-len(e)] for e in _EXTS if name.lower().endswith(e)), name)
    base = base or "input"
    stem, k = base, 1
    while True:
        summary = out / f"{stem}.summary.json"
        if not summary.is_file():
            return stem
        try:
            if json.loads(summary.read_text()).get("input") == str(source):
                return stem
        except (OSError, ValueError):
            pass
        k += 1
        stem = f"{base}-{k}"


def _label_colors(k: int) -> np.ndarray:
    base = np.array([(0, 0, 0), (255, 140, 25), (25, 150, 255), (50, 220, 50), (230, 230, 40)], np.float32)
    return base[np.arange(k) % len(base)]


def overlay_rgb(images: np.ndarray, labels: np.ndarray, class_count: int, n_show: int = 6) -> np.ndarray:
    """RGB uint8 montage of up to ``n_show`` slices (the ones with most foreground)."""
    fg = (labels > 0).reshape(len(labels), -1).sum(1)
    order = np.sort(np.argsort(-fg, kind="stable")[:min(n_show, len(labels))])
    colors = _label_colors(class_count)
    tiles = []
    for i in order:
        g = np.clip(images[i], 0, 1)[..., None] * 255.0
        rgb = np.repeat(g, 3, axis=2)
        lab = labels[i]
        c = colors[lab]
        alpha = np.where(lab > 0, 0.5, 0.0)[..., None]
        tiles.append((rgb * (1 - alpha) + c * alpha).astype(np.uint8))
    return np.concatenate(tiles, axis=1)


def _png_bytes(a: np.ndarray) -> bytes:
    from PIL import Image
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, format="PNG")
    return buf.getvalue()


def write_outputs(seg: Segmentation, out: Path | str) -> dict:
    """Write labels, overlay and the summary of ``seg`` into ``out``; returns the summary."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stem = output_stem(seg.source, out)
    lab8 = seg.labels.astype(np.uint8)
    if seg.file_type == "nifti" or seg.kind == "volume":
        import nibabel
        if seg.header is not None and lab8.size == int(np.prod(seg.header.get_data_shape())):
            lab8 = lab8.reshape(seg.header.get_data_shape())  # e.g. a 2-D slice stored as H x W x 1
        affine = seg.affine if seg.affine is not None else np.eye(4)
        header = seg.header.copy() if seg.header is not None else None
        img = nibabel.Nifti1Image(lab8, affine, header)
        img.set_data_dtype(np.uint8)
        img.header.set_slope_inter(1, 0)
        labels_path = atomic_write_bytes(out / f"{stem}.labels.nii.gz", gzip.compress(img.to_bytes(), 6))
    else:
        labels_path = atomic_write_bytes(out / f"{stem}.labels.png", _png_bytes(lab8))
    rgb = overlay_rgb(seg.model_images[seg.slices], seg.model_labels[seg.slices], len(seg.class_names))
    overlay_path = atomic_write_bytes(out / f"{stem}.overlay.png", _png_bytes(rgb))
    summary = {
        "backend": seg.backend, "model": seg.model, "input": str(seg.source),
        "shape": list(seg.labels.shape), "classes": list(seg.class_names),
        "labels_sha256": labels_sha256(seg.labels), "class_voxels": seg.class_voxels,
        "seconds": round(seg.seconds, 4), "slices": int(seg.frames),
        "labels": str(labels_path), "overlay": str(overlay_path), "warnings": list(seg.warnings),
    }
    if seg.cycles is not None:
        summary.update(cycles=int(seg.cycles), cycle_model=seg.cycle_model,
                       frame_ms_at_100mhz=round(seg.frame_ms_at_100mhz, 4))
    atomic_write_bytes(out / f"{stem}.summary.json", (json.dumps(summary, indent=1) + "\n").encode())
    return summary


def cli(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="msdf-unet segment",
                                 description="Segment PNG images or NIfTI volumes with a shipped or "
                                             "compiled model (see docs/runtime.md).")
    ap.add_argument("inputs", nargs="+", metavar="INPUT", help="PNG, NIfTI (.nii/.nii.gz) or .npy files")
    ap.add_argument("--model", default="mri_edge",
                    help=f"shipped model ({', '.join(MODELS)}), a .msdfp program or a weights folder")
    ap.add_argument("--backend", choices=BACKENDS, default="int8")
    ap.add_argument("--out", type=Path, default=Path("build/segment"), help="output folder")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--slices", default=None,
                    help="only these network slices of a volume, e.g. 90:94 or 60,90 (others: label 0)")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    slices = None
    if args.slices:
        try:
            if ":" in args.slices:
                a, b = args.slices.split(":")
                slices = list(range(int(a), int(b)))
            else:
                slices = [int(t) for t in args.slices.split(",")]
        except ValueError:
            ap.error(f"--slices must look like 90:94 or 60,90, not {args.slices!r}")
    summaries = []
    try:
        prepare_out_dir(args.out)  # a bad --out is one line and status 2, before any work
        model = load_model(args.model)
        for src in args.inputs:
            t0 = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # printed below from .warnings
                seg = segment(src, model, args.backend, batch_size=args.batch_size,
                              progress=not args.no_progress, slices=slices)
            summary = write_outputs(seg, args.out)
            summary["total_seconds"] = round(time.perf_counter() - t0, 3)
            summaries.append(summary)
            for w in seg.warnings:
                print(f"warning: {w}", file=sys.stderr)
            cyc = (f", {summary['cycles']} cycles ({summary['frame_ms_at_100mhz']:.3f} ms/slice at 100 MHz)"
                   if "cycles" in summary else "")
            print(f"{src}: {args.backend} {summary['seconds']:.2f} s{cyc}; "
                  + ", ".join(f"{k} {v}" for k, v in summary["class_voxels"].items())
                  + f"\n  wrote {summary['labels']}, {summary['overlay']}")
    except (InputError, ValueError, FileNotFoundError) as e:
        print(f"msdf-unet segment: error: {e}", file=sys.stderr)
        return 2
    except BackendUnavailable as e:
        print(f"msdf-unet segment: {e}", file=sys.stderr)
        return 3
    except ConfigMismatch as e:  # an overlay or program for another engine: refused, as bad settings
        print(f"msdf-unet segment: error: {e}", file=sys.stderr)
        return 2
    except (AcceleratorError, OSError) as e:  # board timeout or fault, disk full: one line, no traceback
        print(f"msdf-unet segment: failed: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    atomic_write_bytes(args.out / "summary.json",
                       (json.dumps({"results": summaries}, indent=1) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(cli())
