"""The INT8 network on the CPU with numpy only: the ``int8`` backend on the board.

The PYNQ image has no torch, so ``golden/hwexact.py`` cannot run on the ARM cores. This is
the same integer arithmetic (policy ``full``) in numpy: exact convolution (float64 matrix
products: every partial sum stays far below 2**53), bias, requantization
``sat(floor((acc * mult + 2**(shift-1)) / 2**shift))`` (``golden.quant.requantize``),
ReLU, 2x2 max-pool, x2 nearest upsampling, concatenation, and the head's decision
(argmax, or ``> 0`` for a one-channel sign head). ``tests/host/test_cpu_int8.py`` checks it
against hwexact on real slices. Labels equal ``int8``/``msdf`` (END only stops digit
streams early, it does not change labels).
"""
from __future__ import annotations

import numpy as np

__all__ = ["predict_codes"]


def _conv(x: np.ndarray, w: np.ndarray, padding: int) -> np.ndarray:
    """Exact ``conv2d`` of int codes ``x`` [C, H, W] with ``w`` [Co, C, k, k] -> int64 [Co, H', W']."""
    c, h, wd = x.shape
    co, _, k, _ = w.shape
    xp = np.pad(x.astype(np.float64), ((0, 0), (padding, padding), (padding, padding)))
    ho, wo = h + 2 * padding - k + 1, wd + 2 * padding - k + 1
    cols = np.lib.stride_tricks.sliding_window_view(xp, (k, k), axis=(1, 2))  # [C, ho, wo, k, k]
    cols = cols.transpose(0, 3, 4, 1, 2).reshape(c * k * k, ho * wo)
    acc = w.reshape(co, c * k * k).astype(np.float64) @ cols
    return np.rint(acc).astype(np.int64).reshape(co, ho, wo)


def _requantize(acc: np.ndarray, mult: np.ndarray, shift: np.ndarray, relu: bool) -> np.ndarray:
    m = mult.astype(np.int64)[:, None, None]
    s = shift.astype(np.int64)[:, None, None]
    y = (acc * m + (np.int64(1) << (s - 1))) >> s
    return np.clip(y, 0 if relu else -128, 127)


def predict_codes(program, codes) -> np.ndarray:
    """Labels ``[H, W]`` of one input ``codes`` ``[C, H, W]`` (INT8 codes of the program's
    input tensor)."""
    env = {program.input: np.asarray(codes, dtype=np.int64)}
    out = None
    for layer in program.layers:
        a = [env[t] for t in layer.inputs]
        if layer.op == "maxpool":
            c, h, w = a[0].shape
            y = a[0][:, :h // 2 * 2, :w // 2 * 2].reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
        elif layer.op == "upsample":
            y = a[0].repeat(2, axis=1).repeat(2, axis=2)
        elif layer.op == "concat":
            y = np.concatenate(a, axis=0)
        else:
            w = program.arrays[layer.array("weight")]
            b = program.arrays[layer.array("bias")].astype(np.int64)
            acc = _conv(a[0], w, layer.padding) + b[:, None, None]
            if layer.head:
                y = out = acc
            else:
                y = _requantize(acc, program.arrays[layer.array("mult")],
                                program.arrays[layer.array("shift")], layer.relu)
        env[layer.output] = y
    return (out[0] > 0).astype(np.int64) if out.shape[0] == 1 else out.argmax(axis=0).astype(np.int64)
