"""Random (untrained) programs for engine tests: U-Net graphs of any widths and sizes.

:func:`random_program` builds a valid :class:`~msdf_unet.golden.program.Program` with
the graph of :func:`msdf_unet.golden.unet.layer_walk` (so pools, upsamples, concats and
skips are exactly those of the real networks) but arbitrary channel counts, odd spatial
sizes at the bottom, random INT8 weights, random biases folded into bias lanes and
requantization scaled so that activations stay in range (a realistic mix of positive
and negative pre-activations, so END terminates about half the outputs). For trained
weights use ``golden.evaluate.build_program``.
"""
from __future__ import annotations

import numpy as np

from ..program import Layer, Program, TensorInfo
from ..quant import fold_bias_lanes, requant_params
from ..unet import UNetConfig, layer_walk

__all__ = ["random_program"]


def random_program(seed: int = 0, *, in_channels: int = 1, out_channels: int = 3,
                   depth: int = 2, base_width: int = 3, hw: tuple[int, int] = (14, 10),
                   max_bias: int = 30000, bias_lanes: int | None = None) -> Program:
    """A random quantized U-Net program.

    Parameters
    ----------
    seed : int
    in_channels, out_channels, depth, base_width : int
        As :class:`~msdf_unet.golden.unet.UNetConfig` (widths ``base_width * 2**i``).
        ``out_channels == 1`` gives a binary (sign) head.
    hw : (int, int)
        Input size, divisible by ``2**(depth-1)`` (the bottom may be odd).
    max_bias : int
        Biases are drawn in ``[-max_bias, max_bias]`` accumulator units.
    bias_lanes : int, optional
        Fixed bias lanes per layer (default: the fewest that fold the biases).
    """
    rng = np.random.default_rng(seed)
    cfg = UNetConfig(in_channels=in_channels, out_channels=out_channels, depth=depth,
                     base_width=base_width, input_size=tuple(hw), name="random")
    steps = layer_walk(cfg, tuple(hw))
    opmap = {"conv3x3": "conv", "conv1x1": "conv", "maxpool2": "maxpool",
             "upsample2": "upsample", "concat": "concat"}
    tensors = {"input": TensorInfo((in_channels, *hw), 1.0 / 127)}
    arrays, layers = {}, []
    for s in steps:
        op = opmap[s.op]
        if op == "conv":
            k, cin, cout = s.kernel, s.in_channels, s.out_channels
            head = s.op == "conv1x1"
            w = rng.integers(-127, 128, size=(cout, cin, k, k)).astype(np.int8)
            bias = rng.integers(-max_bias, max_bias + 1, size=cout).astype(np.int64)
            bw, bx = fold_bias_lanes(bias, n_lanes=bias_lanes)
            name = s.name
            arrays[f"{name}.weight"] = w
            arrays[f"{name}.bias"] = bias.astype(np.int32)
            arrays[f"{name}.bias_w"], arrays[f"{name}.bias_x"] = bw, bx
            arrays[f"{name}.w_scale"] = np.full(cout, 1e-3, np.float32)
            fan = cin * k * k
            if not head:
                # acc std ~ sqrt(fan) * 73 * 45: map about 2 sigma to the code range
                ratio = 60.0 / (np.sqrt(fan) * 73.0 * 45.0) * rng.uniform(0.7, 1.4, size=cout)
                arrays[f"{name}.mult"], arrays[f"{name}.shift"] = requant_params(ratio)
            layers.append(Layer(name, "conv", list(s.inputs), s.output, kernel=k, padding=k // 2,
                                relu=not head, head=head, n_lanes=fan, bias_lanes=bw.shape[1]))
            scale = 1.0 if head else 1.0 / 127
        else:
            layers.append(Layer(s.name, op, list(s.inputs), s.output))
            scale = tensors[s.inputs[0]].scale
        tensors[s.output] = TensorInfo((s.out_channels, *s.out_hw), scale)
    # concat inputs must share a scale: all INT8 tensors use 1/127 here
    p = Program(layers=layers, tensors=tensors, arrays=arrays, input="input",
                output=layers[-1].output, meta={"task": "random", "seed": seed})
    p.validate()
    return p
