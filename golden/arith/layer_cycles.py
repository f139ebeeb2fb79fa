"""Cycles per dot product of every arithmetic variant on real U-Net layer data.

The shipped programs (``golden/weights``: MRI and nuclei ``edge`` models, quantized with
their training images as :func:`msdf_unet.golden.evaluate.build_program` does) run on
test images through the hardware-exact model (:func:`msdf_unet.golden.hwexact.run`);
every conv layer's real input activations give the per-plane lane sums ``P_t`` of every
output (:func:`msdf_unet.golden.hwexact.plane_sums_conv`, bias lanes included). Each
variant's golden cycle model then gives the cycles every output occupies its unit,
vectorized (no RTL): policy ``RELU_END`` on ReLU layers, ``FULL`` otherwise; a unit is
sized to the layer (``L`` = fan-in + bias lanes), back to back, ``o.ready`` high.

* ``bitserial``: ``B``; ``bitparallel-*``: 1; ``cascaded``: ``B + 11 + 3 ceil(log2 L)``
  (no early stop);
* ``mma``: its ``digits_used`` (``T``, or the index of the first, negative, nonzero digit
  + 1) plus the one bubble after an early stop before the last digit
  (:class:`~msdf_unet.golden.arith.mma.MMACycleModel`);
* ``msdf-v2`` / ``msdf-v2-flat``: ``cycles`` of
  :func:`msdf_unet.golden.arith.msdf2.evaluate_planes` with the channel's exact ``wpos`` (sum of its positive weights, bias lanes included).

Every variant's values are checked to be identical (FULL/RELU_END of the exact sum).
"""
from __future__ import annotations

import numpy as np

from . import baselines, mma, msdf2
from .mma_operands import weight_bounds

__all__ = ["VARIANT_KINDS", "layer_records", "effective_cycles"]

#: the variants this module knows (bench variant name -> cycle rule)
VARIANT_KINDS = ("bitserial", "bitserial-mux", "bitparallel-lut", "bitparallel-dsp", "cascaded", "mma", "mma-g4",
                 "msdf-v2", "msdf-v2-flat")


def layer_records(tasks=("mri", "nuclei"), n_images: int = 4, progress: bool = False) -> list[dict]:
    """Per conv layer of each task's program: cycles per output of every variant.

    Returns records ``{task, layer, lanes, relu, outputs, cycles: {variant: total}}``.
    """
    import torch  # noqa: F401  (hwexact needs it)

    from .. import evaluate, hwexact, quant
    from ..data import load_dataset

    out = []
    for task in tasks:
        prog = evaluate.build_program(task)
        imgs = load_dataset(task, "test").images[:n_images]
        x = quant.quantize_input(prog, imgs)
        run = hwexact.run(prog, x, "full", keep=True)
        B = prog.act_bits
        for layer in prog.layers:
            if layer.op != "conv":
                continue
            xin = run.tensors[layer.inputs[0]].float()
            P = hwexact.plane_sums_conv(prog, layer, xin).astype(np.int64)   # (B, N, Co, H, W)
            L = hwexact.layer_lanes(layer)
            w = prog.arrays[layer.array("weight")].astype(np.int64)
            bw = prog.arrays[layer.array("bias_w")].astype(np.int64)
            wpos = weight_bounds(np.concatenate([w.reshape(w.shape[0], -1), bw], axis=1))[0]
            wpos = wpos[None, :, None, None]
            pol = mma.Policy.RELU_END if layer.relu else mma.Policy.FULL
            S = np.zeros(P.shape[1:], np.int64)
            for t in range(B):
                S = 2 * S + P[t]
            want = np.maximum(S, 0) if layer.relu else S
            n = S.size
            cyc = {"bitserial": B * n, "bitserial-mux": B * n, "bitparallel-lut": n, "bitparallel-dsp": n,
                   "cascaded": baselines.cascaded_cycles(L, act_bits=B) * n}
            r = mma.evaluate_planes(P, L, pol)
            assert np.array_equal(r.values, want)
            T = mma.stream_digits(L, B)
            bubble = (r.terminated == 1) & (r.digits_used < T)
            cyc["mma"] = cyc["mma-g4"] = int(r.digits_used.sum() + bubble.sum())
            for name, pipelined in (("msdf-v2", True), ("msdf-v2-flat", False)):
                v = msdf2.evaluate_planes(P, wpos, L, pol, pipelined=pipelined)
                assert np.array_equal(v.values, want), (task, layer.name, name)
                cyc[name] = int(v.cycles.sum())
            rec = {"task": task, "layer": layer.name, "lanes": L, "relu": bool(layer.relu),
                   "outputs": int(n), "negative_pct": round(100.0 * float((S < 0).mean()), 1),
                   "cycles": {k: int(v) for k, v in cyc.items()}}
            if progress:
                print(task, layer.name, L, {k: round(v / n, 3) for k, v in cyc.items()})
            out.append(rec)
    return out


def effective_cycles(records: list[dict]) -> dict:
    """Average cycles per output of every variant over all records (and per task)."""
    res = {}
    for scope in sorted({r["task"] for r in records}) + ["all"]:
        sel = [r for r in records if scope == "all" or r["task"] == scope]
        n = sum(r["outputs"] for r in sel)
        res[scope] = {v: sum(r["cycles"][v] for r in sel) / n for v in VARIANT_KINDS}
        res[scope]["outputs"] = n
    return res
