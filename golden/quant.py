"""Post-training INT8 quantization of the float U-Net, exactly as the accelerator runs it.

:func:`quantize_model` turns a trained :class:`msdf_unet.golden.unet.UNet` into a
:class:`msdf_unet.golden.program.Program`. The choices (all fixed by this module, recorded
in the program's ``meta``):

BatchNorm
    Folded into the preceding conv: ``W' = W * g``, ``b' = (b - mean) * g + beta`` with
    ``g = gamma / sqrt(var + eps)`` (inference statistics).
Weights
    Symmetric, **per output channel**: ``s_w[o] = max|W'[o]| / 127``, codes
    ``round(W'/s_w)`` in [-127, 127] (never -128, the MMA weight range). The head uses
    **one scale for the whole layer**, so its INT32 accumulators of different classes are
    on the same scale and the class decision is an argmax over raw accumulators.
Binary head
    A two-class head is rewritten before quantization as one channel with the logit
    difference ``W[1] - W[0]``, ``b[1] - b[0]``: ``argmax == 1`` iff that difference is
    > 0, so the decision is the **sign** of one INT32 accumulator (what the MSDF
    sign-only policy computes). Ties (difference exactly 0) go to class 0, as argmax does.
Activations
    **Signed** INT8 codes (two's complement, [-128, 127], zero point 0), the DEX mode of
    the MMA unit, for every tensor including the input (one hardware mode, and the input
    may be signed after normalisation). ReLU outputs then use codes [0, 127] only: one
    bit of resolution is given up for a single arithmetic mode. Scale of a tensor:
    ``s = r / 127`` with ``r`` its calibrated range: the max of ``|a|`` (``"max"``) or
    its ``percentile`` (default 99.99 %) over the calibration images; values beyond
    saturate.
Tied scales
    Max-pool and nearest upsampling do not change the scale (they run on codes), and the
    inputs of a skip concatenation must share a scale so the concatenation is plain
    memory placement with **no requant step**. The quantizer therefore groups tensors
    linked by pool / upsample / concat (union-find) and gives each group one scale, the
    max of its members' ranges.
Bias
    ``round(b' / (s_x * s_w[o]))`` in accumulator units (INT32), folded offline into
    ``bias_lanes`` pseudo-products ``bias_w * bias_x`` (legal weight x legal activation,
    see :func:`fold_bias_lanes`) that the MMA unit streams as ordinary lanes.
Requantization
    ``y = sat(floor((acc * mult + 2**(shift-1)) / 2**shift))``: an integer multiply by a
    ``mult_bits``-bit (default 15, so it fits a DSP48 port) per-channel multiplier and an
    arithmetic right shift, rounding **half up**; saturation to [0, 127] after a ReLU
    (the ReLU is the lower clamp), else [-128, 127]. ``mult / 2**shift`` approximates
    ``s_x * s_w[o] / s_y`` to a relative error below ``2**-(mult_bits-1)``.
Head
    No requantization: the program's output is the INT32 accumulator (argmax over
    classes, or the sign for a binary head).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .arith import mma
from .program import Layer, Program, TensorInfo

__all__ = [
    "QuantConfig", "FloatStep", "fold_network", "run_float_steps", "calibrate",
    "quantize_model", "quantize_steps", "quantize_input", "requantize",
    "requant_params", "fold_bias_lanes", "dequantized_steps",
]

ACT_MIN, ACT_MAX = -128, 127
W_MAX = 127


@dataclass(frozen=True)
class QuantConfig:
    """Quantizer settings (serialised into the program's ``meta``).

    Parameters
    ----------
    calibration : {"percentile", "max"}
        How a tensor's range is taken from the calibration images.
    percentile : float
        Percentile of ``|a|`` for ``"percentile"`` (in (0, 100]).
    mult_bits : int
        Bits of the unsigned requant multiplier (2..31).
    binary_sign_head : bool
        Rewrite a two-class head as one logit-difference channel (sign decision).
    max_samples : int
        Values per tensor kept (uniform random subsample, seeded) for the percentile.
    bias_lanes : int, optional
        Give every conv exactly this many bias lanes (e.g. ``AccelConfig.bias_lanes``);
        a bias beyond what that many lanes fold for sure (``mma.bias_range``) saturates
        there (counted in ``meta["bias_saturated"]``). Default: each layer gets the fewest
        lanes that fold its biases exactly.
    """

    calibration: str = "percentile"
    percentile: float = 99.99
    mult_bits: int = 15
    binary_sign_head: bool = True
    max_samples: int = 2_000_000
    bias_lanes: int | None = None

    def __post_init__(self):
        if self.calibration not in ("percentile", "max"):
            raise ValueError(f"calibration must be 'percentile' or 'max', not {self.calibration!r}")
        if not (0 < self.percentile <= 100):
            raise ValueError(f"percentile must lie in (0, 100], not {self.percentile!r}")
        if not (isinstance(self.mult_bits, int) and 2 <= self.mult_bits <= 31):
            raise ValueError(f"mult_bits must be an int in [2, 31], not {self.mult_bits!r}")
        if self.bias_lanes is not None and not (isinstance(self.bias_lanes, int) and self.bias_lanes >= 0):
            raise ValueError(f"bias_lanes must be None or an int >= 0, not {self.bias_lanes!r}")


@dataclass
class FloatStep:
    """One step of the float network with BatchNorm folded (float64 numpy weights).

    ``op`` is ``conv`` / ``maxpool`` / ``upsample`` / ``concat`` (program op names).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    relu: bool = False
    head: bool = False
    kernel: int = 0


_OPMAP = {"conv3x3": "conv", "conv1x1": "conv", "maxpool2": "maxpool",
          "upsample2": "upsample", "concat": "concat"}


def fold_network(model, input_hw=None, *, binary_sign_head: bool = True) -> list[FloatStep]:
    """The model's layer walk as :class:`FloatStep` with BatchNorm folded into the convs.

    A two-class head becomes a one-channel logit-difference head when
    ``binary_sign_head`` (see the module docstring).
    """
    steps = []
    for s in model.layers(input_hw):
        op = _OPMAP.get(s.op)
        if op is None:
            raise ValueError(f"layer {s.name!r}: op {s.op!r} is not supported by the quantizer")
        fs = FloatStep(name=s.name, op=op, inputs=tuple(s.inputs), output=s.output)
        if op == "conv":
            conv = s.conv
            if conv.stride != (1, 1) or conv.dilation != (1, 1) or conv.groups != 1:
                raise ValueError(f"layer {s.name!r}: only stride 1, dilation 1, groups 1 convs")
            w = conv.weight.detach().double().numpy().copy()
            b = (conv.bias.detach().double().numpy().copy() if conv.bias is not None
                 else np.zeros(w.shape[0]))
            if s.bn is not None:
                bn = s.bn
                g = bn.weight.detach().double().numpy() / np.sqrt(
                    bn.running_var.detach().double().numpy() + bn.eps)
                w = w * g[:, None, None, None]
                b = (b - bn.running_mean.detach().double().numpy()) * g + bn.bias.detach().double().numpy()
            fs.weight, fs.bias, fs.relu, fs.kernel = w, b, bool(s.relu), int(s.kernel)
            fs.head = s.op == "conv1x1"
            if fs.head and binary_sign_head and w.shape[0] == 2:
                fs.weight, fs.bias = w[1:2] - w[0:1], b[1:2] - b[0:1]
        steps.append(fs)
    if not steps or not steps[-1].head:
        raise ValueError("the layer walk must end with the conv1x1 head")
    return steps


def run_float_steps(steps: list[FloatStep], x: torch.Tensor, *, keep: bool = False,
                    dtype: torch.dtype = torch.float64):
    """Run folded float steps on ``x`` (in ``dtype``). Returns the output tensor, or the
    dict of every named tensor when ``keep``."""
    env = {"input": x.to(dtype)}
    for s in steps:
        a = [env[n] for n in s.inputs]
        if s.op == "conv":
            y = F.conv2d(a[0], torch.from_numpy(s.weight).to(dtype),
                         torch.from_numpy(s.bias).to(dtype), padding=s.kernel // 2)
            if s.relu:
                y = F.relu(y)
        elif s.op == "maxpool":
            y = F.max_pool2d(a[0], 2)
        elif s.op == "upsample":
            y = F.interpolate(a[0], scale_factor=2, mode="nearest")
        else:
            y = torch.cat(a, dim=1)
        env[s.output] = y
    return env if keep else env[steps[-1].output]


def calibrate(steps: list[FloatStep], images, config: QuantConfig = QuantConfig(),
              batch_size: int = 16) -> dict[str, float]:
    """Range ``r`` of every tensor (input and every step output) over ``images``
    ([N, C, H, W] float) per ``config.calibration``."""
    images = torch.as_tensor(np.asarray(images), dtype=torch.float32)
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(f"calibration images must be a non-empty [N, C, H, W] array, "
                         f"got shape {tuple(images.shape)}")
    gen = np.random.default_rng(0)
    maxes: dict[str, float] = {}
    samples: dict[str, list[np.ndarray]] = {}
    n_batches = math.ceil(len(images) / batch_size)
    per_batch = max(1, config.max_samples // n_batches)
    with torch.no_grad():
        for i in range(0, len(images), batch_size):
            env = run_float_steps(steps, images[i:i + batch_size], keep=True, dtype=torch.float32)
            for name, t in env.items():
                a = t.abs().flatten().double().numpy()
                maxes[name] = max(maxes.get(name, 0.0), float(a.max(initial=0.0)))
                if config.calibration == "percentile":
                    if a.size > per_batch:
                        a = a[gen.integers(0, a.size, per_batch)]
                    samples.setdefault(name, []).append(a)
    if config.calibration == "max":
        return maxes
    return {n: float(np.percentile(np.concatenate(v), config.percentile)) for n, v in samples.items()}


def _scale_groups(steps: list[FloatStep]) -> dict[str, str]:
    """Union-find over tensors that must share a scale (pool/upsample in-out, concat)."""
    parent: dict[str, str] = {}

    def find(a):
        parent.setdefault(a, a)
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    def union(a, b):
        parent[find(a)] = find(b)

    find("input")
    for s in steps:
        find(s.output)
        if s.op in ("maxpool", "upsample", "concat"):
            for t in s.inputs:
                union(t, s.output)
    return {t: find(t) for t in parent}


def requant_params(ratio: np.ndarray, mult_bits: int = 15) -> tuple[np.ndarray, np.ndarray]:
    """Integer ``mult`` (in [2**(mult_bits-1), 2**mult_bits) unless the ratio is tiny) and
    ``shift`` (in [1, 62]) with ``mult / 2**shift ~= ratio`` (relative error <
    ``2**-(mult_bits-1)``)."""
    ratio = np.asarray(ratio, dtype=np.float64)
    if np.any(~np.isfinite(ratio)) or np.any(ratio <= 0):
        raise ValueError(f"requant ratios must be positive and finite, got {ratio}")
    e = np.floor(np.log2(ratio)).astype(np.int64)
    shift = (mult_bits - 1) - e
    if np.any(shift < 1):
        raise ValueError(f"requant ratio {ratio.max()} too large for a right shift >= 1")
    shift = np.minimum(shift, 62)
    mult = np.round(ratio * np.exp2(shift)).astype(np.int64)
    over = mult >= 2 ** mult_bits
    mult[over] //= 2          # round(ratio * 2**shift) hit 2**mult_bits exactly
    shift[over] -= 1
    return mult.astype(np.int32), shift.astype(np.int32)


def requantize(acc: torch.Tensor, mult: torch.Tensor, shift: torch.Tensor, relu: bool) -> torch.Tensor:
    """``sat(floor((acc * mult + 2**(shift-1)) / 2**shift))`` on int64 tensors; ``acc``
    is [N, C, H, W], ``mult``/``shift`` per channel [C]."""
    m = mult.to(torch.int64).view(1, -1, 1, 1)
    s = shift.to(torch.int64).view(1, -1, 1, 1)
    y = (acc * m + (torch.ones_like(s) << (s - 1))) >> s
    return y.clamp(0 if relu else ACT_MIN, ACT_MAX)


def fold_bias_lanes(bias: np.ndarray, act_bits: int = 8, signed: bool = True,
                    n_lanes: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Fold integer biases into pseudo-products with :func:`msdf_unet.golden.arith.mma.fold_bias`
    (the greedy DEX folding the RTL follows): ``(bias_w, bias_x)`` [C, NB] with
    ``sum(bias_w * bias_x, axis=1) == bias`` exactly. ``NB`` is ``n_lanes`` or the fewest
    lanes that fold every channel (ValueError when ``n_lanes`` is too small).
    ``bias_w`` is int8; ``bias_x`` is int8 for signed 8-bit (or narrower) activations,
    else the smallest of int16 / int32 that holds every legal activation of the mode."""
    bias = np.asarray(bias, dtype=np.int64).reshape(-1)
    # Greedy folding uses |b| // M1 whole terms of M1 = 127 * max|x| plus at most two more,
    # so that many lanes always suffice; max|x| comes from the activation range of the
    # mode (the old bound assumed |x| >= 127 and failed for act_bits < 8).
    lo, hi = mma.act_range(act_bits, signed)
    m1 = mma.MAX_WEIGHT * max(-lo, hi)
    need = 0
    for b in bias.tolist():
        ws, _ = mma.fold_bias(int(b), 2 + abs(int(b)) // m1, act_bits, signed_acts=signed)
        need = max(need, sum(1 for w in ws if w != 0))
    nb = need if n_lanes is None else n_lanes
    if nb < need:
        raise ValueError(f"the biases need {need} bias lanes, only n_lanes={n_lanes} given")
    xdt = next(dt for dt in (np.int8, np.int16, np.int32)
               if np.iinfo(dt).min <= lo and hi <= np.iinfo(dt).max)
    bw = np.zeros((len(bias), nb), np.int8)
    bx = np.zeros((len(bias), nb), xdt)
    for c, b in enumerate(bias.tolist()):
        ws, xs = mma.fold_bias(int(b), nb, act_bits, signed_acts=signed)
        bw[c], bx[c] = ws, xs
    if not np.array_equal((bw.astype(np.int64) * bx).sum(axis=1), bias):
        raise AssertionError("bias folding is not exact")  # pragma: no cover
    return bw, bx


def quantize_steps(steps: list[FloatStep], calib_images, config: QuantConfig = QuantConfig(),
                   *, in_channels: int | None = None, meta: dict | None = None) -> Program:
    """Quantize folded float steps into a :class:`Program` (see the module docstring)."""
    images = np.asarray(calib_images)
    ranges = calibrate(steps, images, config)
    groups = _scale_groups(steps)
    group_range: dict[str, float] = {}
    for t, g in groups.items():
        group_range[g] = max(group_range.get(g, 0.0), ranges[t])
    scale = {t: (group_range[g] / 127.0 if group_range[g] > 0 else 1.0) for t, g in groups.items()}

    # nominal shapes at the calibration image size
    _, c0, h, w = images.shape
    with torch.no_grad():
        env = run_float_steps(steps, torch.zeros(1, c0, h, w, dtype=torch.float64), keep=True)
    tensors = {t: TensorInfo(shape=tuple(int(s) for s in env[t].shape[1:]), scale=float(scale[t]))
               for t in env}
    layers, arrays = [], {}
    saturated: dict[str, int] = {}
    for s in steps:
        layer = Layer(name=s.name, op=s.op, inputs=list(s.inputs), output=s.output)
        if s.op == "conv":
            sx = scale[s.inputs[0]]
            wt = s.weight
            if s.head:
                sw = np.full(wt.shape[0], np.abs(wt).max() / W_MAX)
            else:
                sw = np.abs(wt).reshape(wt.shape[0], -1).max(axis=1) / W_MAX
            sw = np.where(sw > 0, sw, 1.0).astype(np.float32).astype(np.float64)
            wq = np.clip(np.round(wt / sw[:, None, None, None]), -W_MAX, W_MAX).astype(np.int8)
            bq = np.round(s.bias / (sx * sw)).astype(np.int64)
            if np.abs(bq).max(initial=0) >= 2 ** 31:
                raise ValueError(f"layer {s.name!r}: bias {np.abs(bq).max()} does not fit INT32")
            if config.bias_lanes is not None:
                lim = mma.bias_range(config.bias_lanes)[0]
                sat = int(np.sum(np.abs(bq) > lim))
                if sat:
                    saturated[s.name] = sat
                bq = np.clip(bq, -lim, lim)
            bw, bx = fold_bias_lanes(bq, n_lanes=config.bias_lanes)
            layer.kernel, layer.padding = s.kernel, s.kernel // 2
            layer.relu, layer.head = s.relu, s.head
            layer.n_lanes = int(wq.shape[1] * s.kernel * s.kernel)
            layer.bias_lanes = int(bw.shape[1])
            arrays[layer.array("weight")] = wq
            arrays[layer.array("bias")] = bq.astype(np.int32)
            arrays[layer.array("bias_w")] = bw
            arrays[layer.array("bias_x")] = bx
            arrays[layer.array("w_scale")] = sw.astype(np.float32)
            if not s.head:
                mult, shift = requant_params(sx * sw / scale[s.output], config.mult_bits)
                arrays[layer.array("mult")] = mult
                arrays[layer.array("shift")] = shift
        layers.append(layer)
    head = steps[-1]
    m = dict(meta or {})
    m.update({"quant": asdict(config), "head_decision": "sign" if head.weight.shape[0] == 1 else "argmax",
              "weights": "per-output-channel symmetric INT8 [-127,127], head per-layer",
              "activations": "signed INT8, zero point 0", "rounding": "half up",
              "calibration_images": int(len(images)), "bias_saturated": saturated})
    program = Program(layers=layers, tensors=tensors, arrays=arrays, input="input",
                      output=head.output, act_bits=8, act_signed=True, meta=m)
    program.validate()
    return program


def quantize_model(model, calib_images, config: QuantConfig = QuantConfig(), *,
                   meta: dict | None = None) -> Program:
    """Quantize a trained ``UNet`` (eval-mode statistics) with ``calib_images``
    ([N, C, H, W] float, e.g. training images) into a :class:`Program`."""
    images = np.asarray(calib_images)
    if images.ndim != 4:
        raise ValueError(f"calibration images must be [N, C, H, W], got shape {images.shape}")
    steps = fold_network(model, tuple(images.shape[2:]), binary_sign_head=config.binary_sign_head)
    m = {"unet_config": model.config.to_dict(), "float_classes": int(model.config.out_channels)}
    m.update(meta or {})
    return quantize_steps(steps, images, config, meta=m)


def quantize_input(program: Program, images) -> torch.Tensor:
    """Float images [N, C, H, W] -> int64 INT8 codes of the program's input tensor
    (round half up, saturate to [-128, 127])."""
    x = torch.as_tensor(np.asarray(images), dtype=torch.float64)
    s = program.tensors[program.input].scale
    return torch.floor(x / s + 0.5).clamp(ACT_MIN, ACT_MAX).to(torch.int64)


def dequantized_steps(program: Program) -> list[FloatStep]:
    """The program as float steps with dequantized weights ``w*s_w`` and biases
    ``b*s_x*s_w`` (for the float run of the dequantized network)."""
    steps = []
    for l in program.layers:
        fs = FloatStep(name=l.name, op=l.op, inputs=tuple(l.inputs), output=l.output,
                       relu=l.relu, head=l.head, kernel=l.kernel)
        if l.op == "conv":
            sw = program.arrays[l.array("w_scale")].astype(np.float64)
            sx = program.tensors[l.inputs[0]].scale
            fs.weight = program.arrays[l.array("weight")].astype(np.float64) * sw[:, None, None, None]
            fs.bias = program.arrays[l.array("bias")].astype(np.float64) * sx * sw
        steps.append(fs)
    return steps
