"""``msdf-unet demo``: the bundled MRI slice through the whole chain.

1. The shipped ``edge`` U-Net (``golden/weights``) is quantized to an accelerator program
   with calibration on the training slices.
2. The held-out MNI152 test slices (from the ``nilearn`` wheel) are segmented by the float
   model, the INT8 hardware-exact model and the MSDF model with exact early negative
   detection (END); Dice per tissue class and the digit cycles END saves are printed, and
   an overlay picture is written to ``<out>/overlay.png``.
3. Dot products of the first conv layer at random pixels of a test slice run on the
   accelerator's RTL in Verilator, through the same host driver that runs on the board,
   and must equal the exact integer convolution and the golden MMA model, digit count
   included.
4. The whole network runs on the convolution engine's RTL (``hdl/conv``, Verilator; the
   program compiled to a command list and memory image, the image in an AXI RAM model,
   the board's engine driver over AXI4-Lite) on a crop of the same slice: every label must
   equal the hardware-exact model's; the RTL's cycle count is printed beside the engine
   cycle model's prediction.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from ..fileio import write_text, write_with

__all__ = ["run_demo"]


def _overlay_png(path: Path, image, label, preds: dict, class_names) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap

    cmap = ListedColormap([(0, 0, 0, 0), (0.95, 0.55, 0.1, 0.55), (0.1, 0.6, 1.0, 0.55)][:len(class_names)])
    panels = [("ground truth", label)] + list(preds.items())
    fig, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6))
    for ax, (title, lab) in zip(axes, panels):
        ax.imshow(image, cmap="gray")
        ax.imshow(lab, cmap=cmap, vmin=0, vmax=len(class_names) - 1, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.axis("off")
    fig.suptitle("MNI152 T1 test slice: " + ", ".join(
        f"{n} ({c})" for n, c in zip(class_names[1:], ["orange", "blue"])), fontsize=10)
    fig.tight_layout()
    try:
        write_with(path, lambda p: fig.savefig(p, dpi=110))
    finally:
        plt.close(fig)


def run_demo(out: Path | str = "build/demo", *, rtl: bool = True, n_rtl: int = 48,
             seed: int = 0) -> int:
    from ..golden import hwexact
    from ..golden.data import load_dataset
    from ..golden.evaluate import build_program, dice_iou
    from ..golden.program import save_program
    from ..golden.train import load_pretrained, predict

    from ..fileio import prepare_out_dir
    out = prepare_out_dir(out)
    t0 = time.perf_counter()
    print("[1/4] quantizing the shipped edge U-Net (MRI grey/white matter) ...", flush=True)
    model, _ = load_pretrained("mri")
    program = build_program("mri", model)
    save_program(out / "mri.msdfp", program)
    test = load_dataset("mri", "test")
    k = test.num_classes

    print(f"[2/4] segmenting {len(test)} held-out slices: float, INT8, MSDF-END ...", flush=True)
    preds = {"float": predict(model, test.images)}
    preds["INT8 (hw-exact)"], _ = hwexact.predict(program, test.images, "full")
    preds["MSDF END"], cycles = hwexact.predict(program, test.images, "end", progress=True)
    if not np.array_equal(preds["MSDF END"], preds["INT8 (hw-exact)"]):
        raise AssertionError("END changed the segmentation: exact early termination is broken")
    summary = hwexact.cycle_summary(cycles)
    print(f"      {'model':<18}" + "".join(f"{'Dice ' + n:>20}" for n in test.class_names[1:]))
    dice_rows = {}
    for name, pr in preds.items():
        dice, _ = dice_iou(pr, test.labels, k)
        dice_rows[name] = dice.tolist()
        print(f"      {name:<18}" + "".join(f"{d:>20.4f}" for d in dice[1:]))
    print(f"      END: identical labels, {summary['used_cycles']:,} of {summary['full_cycles']:,} digit cycles "
          f"({summary['saved_pct']:.2f}% saved)")
    mid = len(test) // 2
    show = {n: p[mid] for n, p in preds.items()}
    _overlay_png(out / "overlay.png", test.images[mid, 0], test.labels[mid], show, test.class_names)
    print(f"      overlay: {out / 'overlay.png'}")

    report = {"dice": dice_rows, "classes": list(test.class_names), "n_test": len(test),
              "end_cycles": {k2: summary[k2] for k2 in ("used_cycles", "full_cycles", "saved_pct")}}
    if rtl:
        report["rtl"] = _rtl_check(program, test.images[mid:mid + 1], n_rtl, seed)
        report["engine"] = _engine_check(program, test.images[mid:mid + 1])
    write_text(out / "demo.json", json.dumps(report, indent=2))
    print(f"done in {time.perf_counter() - t0:.1f} s; summary in {out / 'demo.json'}")
    return 1 if rtl and (report["rtl"]["mismatches"] or report["engine"]["mismatches"]) else 0


#: side of the centre crop the demo runs through the engine RTL (a whole 96x96 slice is
#: about 8 M cycles, ~15 minutes of simulation; 32x32 keeps the demo around a minute)
ENGINE_CROP = 32


def _engine_check(program, image) -> dict:
    """The whole program on the engine RTL on a centre crop of ``image``: labels vs hwexact."""
    from ..golden import hwexact
    from ..golden.conv.cycles import TESTBENCH, image_cycles
    from ..sim.runtime.runner import RTL_CONFIG, run_on_rtl  # lazy: host/ holds no sim code
    from .compiler import compile_program, write_input
    from .engine_driver import input_codes, labels_from_head

    h, w = image.shape[2:]
    y0, x0 = (h - ENGINE_CROP) // 2, (w - ENGINE_CROP) // 2
    crop = np.ascontiguousarray(image[:, :, y0:y0 + ENGINE_CROP, x0:x0 + ENGINE_CROP])
    print(f"[4/4] the whole U-Net on the convolution engine's RTL (Verilator, {RTL_CONFIG.total_kpbs} "
          f"core x {RTL_CONFIG.arrays[0].lanes} lanes, END) on a {ENGINE_CROP}x{ENGINE_CROP} crop "
          "of the slice ...", flush=True)
    want, _ = hwexact.predict(program, crop, "end")
    codes = input_codes(crop, program.tensors[program.input].scale)
    img = compile_program(program, RTL_CONFIG, policy="end", input_hw=(ENGINE_CROP, ENGINE_CROP))
    t0 = time.perf_counter()
    heads, cycles = run_on_rtl(img, codes)
    secs = time.perf_counter() - t0
    got = np.stack([labels_from_head(hd) for hd in heads])
    write_input(img, codes[0])
    predicted = sum(c.cycles for c in image_cycles(img.memory, RTL_CONFIG, img.cmd_offset, TESTBENCH))
    bad = int((got != want).sum())
    print(f"      labels RTL == hw-exact: {got.size - bad}/{got.size} pixels; {len(img.commands)} commands; "
          f"{int(cycles[0]):,} cycles on the RTL, {predicted:,} predicted by the cycle model "
          f"({secs:.1f} s of simulation)")
    return {"crop": ENGINE_CROP, "pixels": int(got.size), "mismatches": bad, "rtl_cycles": int(cycles[0]),
            "model_cycles": int(predicted), "commands": len(img.commands)}


def _rtl_check(program, image, n: int, seed: int) -> dict:
    """First conv layer, ``n`` random (pixel, channel) outputs: RTL == exact conv == golden."""
    import torch

    from ..golden import hwexact
    from ..golden.arith import mma
    from ..golden.quant import quantize_input
    from ..hdl.soc.config import AccelConfig
    from ..sim.soc.batch import run_on_rtl  # the demo's RTL part (lazy: host/ holds no sim code)

    layer = program.conv_layers()[0]
    w = program.arrays[layer.array("weight")].astype(np.int64)
    bias = program.arrays[layer.array("bias")].astype(np.int64)
    x = quantize_input(program, image)                       # [1, Cin, H, W] INT8 codes
    acc = hwexact.conv_exact(x, w, layer.padding) + torch.from_numpy(bias).view(1, -1, 1, 1)
    pad = layer.padding
    xp = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    cout, cin, kh, kw = w.shape
    config = AccelConfig(data_lanes=cin * kh * kw, bias_lanes=max(layer.bias_lanes, 1))
    rng = np.random.default_rng(seed)
    cases, expected = [], []
    H, W = x.shape[2:]
    for j in range(n):
        o, yy, xx = int(rng.integers(cout)), int(rng.integers(H)), int(rng.integers(W))
        window = xp[0, :, yy:yy + kh, xx:xx + kw].reshape(-1).tolist()
        policy = "relu_end" if j % 2 else "full"
        cases.append({"x": window, "w": w[o].reshape(-1).tolist(), "bias": int(bias[o]),
                      "policy": policy})
        bw, bx = mma.fold_bias(int(bias[o]), config.bias_lanes, signed_acts=True)
        gold = mma.transaction(window + bx, w[o].reshape(-1).tolist() + bw, policy.upper())
        expected.append((int(acc[0, o, yy, xx]), gold))
    print(f"[3/4] {n} dot products of layer {layer.name!r} ({config.data_lanes} lanes + "
          f"{config.bias_lanes} bias lanes) on the RTL in Verilator via the host driver ...",
          flush=True)
    t0 = time.perf_counter()
    got = run_on_rtl(config, cases)
    secs = time.perf_counter() - t0
    bad = []
    for case, (exact, gold), r in zip(cases, expected, got):
        want = exact if case["policy"] == "full" or exact >= 0 else 0
        if (r.value, r.digits_used, r.terminated) != (want, gold.digits_used, bool(gold.terminated)) \
                or gold.value != want:
            bad.append((case, exact, gold.value, r))
    cyc = [r.cycles for r in got]
    print(f"      RTL == exact conv == golden MMA: {n - len(bad)}/{n}; "
          f"digits per full result {mma.stream_digits(config.n_lanes)}, "
          f"END stopped {sum(r.terminated for r in got)} of {n // 2} ReLU outputs early; "
          f"{min(cyc)}..{max(cyc)} cycles per dot product ({secs:.1f} s of simulation)")
    if bad:
        print(f"      MISMATCH: {len(bad)} RTL results differ from the golden model, "
              f"first: {bad[0]}")
    return {"dot_products": n, "mismatches": len(bad), "cycles_min": min(cyc), "cycles_max": max(cyc),
            "terminated": int(sum(r.terminated for r in got)), "sim_seconds": round(secs, 1)}
