"""Hardware-exact model of the quantized U-Net: what the accelerator computes, bit for bit.

:func:`run` executes a :class:`~msdf_unet.golden.program.Program` layer by layer in its
order on INT8 codes, vectorized over the batch with PyTorch:

* conv: the exact integer dot products ``S = sum x*w + bias`` (see :func:`conv_exact`),
  then the policy's value, requantization (``mult``/``shift``, round half up),
  saturation (ReLU = lower clamp at 0);
* max-pool 2x2 and x2 nearest upsampling on codes; concatenation (shared scale);
* the head keeps its INT32 accumulators; the class map is their argmax, or for a
  one-channel (binary) head the sign (``acc > 0`` is class 1).

MSDF policies (:class:`RunPolicy`, per run):

``full``      plain integer results (``Policy.FULL``); ``T`` digit cycles per output.
              ``msdf-full`` computes them through the digit recurrence (a check).
``end``       ``Policy.RELU_END`` on every ReLU conv: output identical to ``full``;
              negative outputs stop at their first (negative) nonzero digit. A binary
              head uses ``Policy.SIGN_ONLY`` (same decision), a multi-class head ``FULL``.
``truncate``  ``Policy.TRUNCATE`` with ``p`` digits on every conv (head included): the
              layer continues with the prefix value ``Z_p`` as the hardware emits it
              (this changes outputs); ``p`` is clamped to the layer's ``T``.

Digit cycles need the per-bit-plane lane sums ``P_k = conv(d_k(x), w) + bias lanes'
planes`` (``B`` = 8 convs per layer, batched along the batch dim, all-zero planes such as
the sign plane of ReLU outputs skipped); they are only computed when the policy needs
them, and fed to :func:`msdf_unet.golden.arith.mma.evaluate_planes`, the vectorized
recurrence of the MMA golden model (``T = 8 + F`` digits, ``F`` from the lanes
``L = Cin*k*k + bias_lanes``).

Exactness: convolutions run as ``torch.nn.functional.conv2d`` on integer-valued float
tensors. float64 is exact while every partial sum stays below ``2**53``; the default
float32 backend (about 10x faster on CPU) splits the input channels into chunks whose
worst-case partial sum ``max|x| * sum|w|`` stays below ``2**24``, so every partial sum in
any order is an exactly representable integer, and adds the chunks in float64. Both
bounds are asserted. (CPU convolutions here are direct/GEMM, not Winograd or FFT; the
tests compare both backends with a pure-int64 numpy reference, worst-case operands
included.)
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from .arith import mma
from .program import Layer, Program
from .quant import ACT_MAX, ACT_MIN, quantize_input, requantize

__all__ = ["RunPolicy", "LayerCycles", "HwResult", "conv_exact", "plane_sums_conv",
           "layer_lanes", "layer_digits", "run", "predict", "run_dequantized",
           "cycle_summary", "compare_with_dequantized"]

_EXACT_F32 = 2 ** 24
_EXACT_F64 = 2 ** 53


@dataclass(frozen=True)
class RunPolicy:
    """MSDF policy of one run of the network.

    Parameters
    ----------
    mode : {"full", "end", "truncate"}
    digits : int, optional
        Digit budget ``p`` (>= 1) for ``"truncate"``.
    sign_head : bool, optional
        Use ``SIGN_ONLY`` on a one-channel head in ``"end"`` mode (default True).
    count_cycles : bool
        Report digit cycles also for ``"full"`` (``T`` per output, no planes needed).
    digit_serial : bool
        ``"full"`` only: compute every dot product through the plane sums and the MMA
        recurrence (``Policy.FULL``) instead of the exact conv (same results; a check).
    """

    mode: str = "full"
    digits: int | None = None
    sign_head: bool = True
    count_cycles: bool = False
    digit_serial: bool = False

    def __post_init__(self):
        if self.mode not in ("full", "end", "truncate"):
            raise ValueError(f"mode must be 'full', 'end' or 'truncate', not {self.mode!r}")
        if self.mode == "truncate":
            if isinstance(self.digits, bool) or not isinstance(self.digits, int) or self.digits < 1:
                raise ValueError(f"truncate needs an integer digit budget >= 1, not {self.digits!r}")

    @classmethod
    def parse(cls, text: str) -> "RunPolicy":
        """``"full"``, ``"msdf-full"`` (digit-serial full), ``"end"`` or
        ``"truncate:<p>"`` / ``"p<p>"``."""
        t = text.strip().lower()
        if t in ("full", "end"):
            return cls(t)
        if t == "msdf-full":
            return cls("full", digit_serial=True)
        for pre in ("truncate:", "trunc:", "p"):
            if t.startswith(pre) and t[len(pre):].isdigit():
                return cls("truncate", int(t[len(pre):]))
        raise ValueError(f"unknown policy {text!r}; use full, msdf-full, end or truncate:<p>")

    @property
    def label(self) -> str:
        if self.mode == "full" and self.digit_serial:
            return "msdf-full"
        return f"truncate:{self.digits}" if self.mode == "truncate" else self.mode


@dataclass
class LayerCycles:
    """Digit cycles of one conv layer over the batch: ``outputs`` dot products of ``T``
    digits each; ``used`` is the sum of ``digits_used`` under the run's policy."""

    name: str
    policy: str
    lanes: int
    T: int
    outputs: int
    used: int
    terminated: int

    @property
    def full(self) -> int:
        return self.outputs * self.T

    @property
    def saved_pct(self) -> float:
        return 100.0 * (1 - self.used / self.full) if self.full else 0.0


@dataclass
class HwResult:
    """Outcome of :func:`run`.

    ``output``: head values int64 [N, K, H, W] (INT32 accumulators for ``full``/``end``
    multi-class; signs for a sign-only head; ``Z_p`` when truncated). ``pred``: class map
    int64 [N, H, W]. ``cycles``: per-conv-layer :class:`LayerCycles` (empty when the run
    did not count them). ``tensors``: every INT8 tensor (codes) when ``keep``.
    """

    output: torch.Tensor
    pred: torch.Tensor
    cycles: list[LayerCycles] = field(default_factory=list)
    tensors: dict[str, torch.Tensor] | None = None


def layer_lanes(layer: Layer) -> int:
    """Lanes ``L`` of the MMA unit computing one output of ``layer`` (bias lanes included)."""
    return layer.n_lanes + layer.bias_lanes


def layer_digits(layer: Layer, act_bits: int = 8) -> int:
    """Digits ``T = B + F`` of one transaction of ``layer``."""
    return mma.stream_digits(layer_lanes(layer), act_bits)


def _chunks(w: np.ndarray, xmax: int, limit: int) -> list[tuple[int, int]]:
    """Split input channels so that ``xmax * sum_c max_o sum_k |w[o,c]|`` < limit per chunk."""
    col = np.abs(w.astype(np.int64)).sum(axis=(2, 3)).max(axis=0) * max(xmax, 1)
    out, start, acc = [], 0, 0
    for c, v in enumerate(col.tolist()):
        if v >= limit:
            raise AssertionError(f"one input channel bound {v} exceeds {limit}")
        if acc + v >= limit:
            out.append((start, c))
            start, acc = c, 0
        acc += v
    out.append((start, len(col)))
    return out


def conv_exact(x: torch.Tensor, w: np.ndarray, padding: int, backend: str = "float32") -> torch.Tensor:
    """Exact integer convolution (no bias): ``x`` integer codes [N, Cin, H, W] (any int or
    integer-valued float dtype), ``w`` integer [Cout, Cin, k, k]; returns int64.

    ``backend`` ``"float32"`` (chunked, see the module docstring), ``"float64"`` or
    ``"int64"`` (a pure-integer unfold + matmul; slow, for checking).
    """
    xi = x.to(torch.int64)
    xmax = int(xi.abs().max()) if xi.numel() else 0
    wt = np.asarray(w)
    bound = xmax * int(np.abs(wt.astype(np.int64)).sum(axis=(1, 2, 3)).max(initial=0))
    if backend == "float64":
        assert bound < _EXACT_F64, f"conv partial sums up to {bound} are not exact in float64"
        return F.conv2d(xi.double(), torch.from_numpy(wt.astype(np.float64)), padding=padding).to(torch.int64)
    if backend == "int64":
        n, _, h, wd = xi.shape
        cols = F.unfold(xi.double(), wt.shape[2], padding=padding)  # exact: values are codes
        cols = cols.to(torch.int64)                                    # [N, Cin*k*k, H*W]
        wm = torch.from_numpy(wt.astype(np.int64).reshape(wt.shape[0], -1))
        return torch.einsum("ok,nkp->nop", wm, cols).reshape(n, wt.shape[0], h, wd)
    if backend != "float32":
        raise ValueError(f"backend must be 'float32', 'float64' or 'int64', not {backend!r}")
    xf = xi.float()
    wf = torch.from_numpy(wt.astype(np.float32))
    parts = _chunks(wt, xmax, _EXACT_F32)
    if len(parts) == 1:
        return F.conv2d(xf, wf, padding=padding).to(torch.int64)
    acc = None
    for a, b in parts:
        y = F.conv2d(xf[:, a:b], wf[:, a:b], padding=padding).double()
        acc = y if acc is None else acc + y
    assert bound < _EXACT_F64
    return acc.to(torch.int64)


def plane_sums_conv(program: Program, layer: Layer, x: torch.Tensor) -> np.ndarray:
    """Per-plane lane sums ``P_k`` of every output of a conv layer: int32 [B, N, Cout, H, W].

    ``P_k = conv2d(d_k(x), w) + sum_j d_k(bias_x_j) * bias_w_j`` with ``d_k`` the MSB-first
    digits of the codes (``d_0 = -bit_7`` in signed mode); zero padding streams zero
    activations, i.e. zero digits. Planes that are zero everywhere (e.g. the sign plane
    of ReLU outputs) skip their conv.
    """
    B = program.act_bits
    w = program.arrays[layer.array("weight")]
    L = layer_lanes(layer)
    assert L * mma.MAX_WEIGHT < _EXACT_F32, "plane sums would not be exact in float32"
    u = (x.to(torch.int64) & ((1 << B) - 1)).to(torch.int16 if B > 7 else torch.uint8)
    bits = int(np.bitwise_or.reduce(u.numpy().ravel(), initial=0))
    live = [k for k in range(B) if (bits >> (B - 1 - k)) & 1]
    n, cout = x.shape[0], w.shape[0]
    P = np.zeros((B, n, cout, *x.shape[2:]), dtype=np.int32)
    if live:
        d = torch.empty((len(live) * n, *x.shape[1:]), dtype=torch.float32)
        for i, k in enumerate(live):
            plane = d[i * n:(i + 1) * n]
            plane.copy_((u >> (B - 1 - k)) & 1)
            if k == 0 and program.act_signed:
                plane.neg_()
        y = F.conv2d(d, torch.from_numpy(w.astype(np.float32)), padding=layer.padding)
        P[live] = y.reshape(len(live), n, cout, *y.shape[2:]).numpy()
    bw = program.arrays[layer.array("bias_w")].astype(np.int64)           # [Cout, NB]
    if bw.shape[1]:
        bd = mma.plane_digits(program.arrays[layer.array("bias_x")], B, program.act_signed)
        bplanes = (bd.astype(np.int64) * bw[None]).sum(axis=-1).astype(np.int32)  # [B, Cout]
        P += bplanes[:, None, :, None, None]
    return P


def _layer_policy(layer: Layer, policy: RunPolicy, T: int, cout: int):
    """(mma.Policy, digits) of a conv layer under the run policy."""
    if policy.mode == "full":
        return mma.Policy.FULL, None
    if policy.mode == "truncate":
        return mma.Policy.TRUNCATE, min(policy.digits, T)
    if layer.relu:
        return mma.Policy.RELU_END, None
    if layer.head and policy.sign_head and cout == 1:
        return mma.Policy.SIGN_ONLY, None
    return mma.Policy.FULL, None


def run(program: Program, x: torch.Tensor, policy: RunPolicy | str = RunPolicy(), *,
        keep: bool = False, backend: str = "float32") -> HwResult:
    """Run the program on INT8 input codes ``x`` [N, C, H, W] (see :func:`quantize_input`).

    Raises ValueError on a wrong input shape or codes outside [-128, 127].
    """
    if isinstance(policy, str):
        policy = RunPolicy.parse(policy)
    x = torch.as_tensor(x)
    cin = program.tensors[program.input].shape[0]
    if x.dim() != 4 or x.shape[1] != cin:
        raise ValueError(f"input codes must be [N, {cin}, H, W], got {tuple(x.shape)}")
    step = 2 ** program.depth
    if x.shape[2] % step or x.shape[3] % step:
        raise ValueError(f"input H, W {tuple(x.shape[2:])} must be divisible by {step}")
    if x.is_floating_point() and not torch.equal(x, x.round()):
        raise ValueError("input codes must be integers")
    if x.numel() and (x.min() < ACT_MIN or x.max() > ACT_MAX):
        raise ValueError(f"input codes must lie in [{ACT_MIN}, {ACT_MAX}]")
    # INT8 codes travel as float32 tensors (exact), so pooling, upsampling and
    # concatenation are single torch ops; results are int64 on the way out.
    env = {program.input: x.to(torch.float32)}
    cycles: list[LayerCycles] = []
    out = None
    for layer in program.layers:
        a = [env[t] for t in layer.inputs]
        if layer.op == "maxpool":
            y = F.max_pool2d(a[0], 2)
        elif layer.op == "upsample":
            y = F.interpolate(a[0], scale_factor=2, mode="nearest")
        elif layer.op == "concat":
            y = torch.cat(a, dim=1)
        else:
            y = _conv_layer(program, layer, a[0], policy, backend, cycles)
            if layer.head:
                out = y
        env[layer.output] = y
    if out.shape[1] == 1:
        pred = (out[:, 0] > 0).to(torch.int64)
    else:
        pred = out.argmax(dim=1)
    tensors = {k: v.to(torch.int64) for k, v in env.items()} if keep else None
    return HwResult(output=out, pred=pred, cycles=cycles, tensors=tensors)


def _conv_acc(program: Program, layer: Layer, x: torch.Tensor, backend: str) -> torch.Tensor:
    """Exact ``S = conv(x, w) + bias`` of a conv layer on float32 codes ``x``: a float32
    tensor when every partial sum (bias included) stays below 2**24, else float64 from
    float32 chunks (see :func:`conv_exact`); int64 for the checking backends."""
    w = program.arrays[layer.array("weight")]
    b = program.arrays[layer.array("bias")]
    bmax = int(np.abs(b.astype(np.int64)).max(initial=0))
    wsum = int(np.abs(w.astype(np.int64)).sum(axis=(1, 2, 3)).max(initial=0))
    bound = 128 * wsum + bmax            # |codes| <= 128: static bound, no data pass
    if bound >= 2 ** 31:
        raise OverflowError(f"layer {layer.name!r}: accumulator bound {bound} exceeds INT32")
    if backend != "float32":
        acc = conv_exact(x, w, layer.padding, backend)
        return acc + torch.from_numpy(b.astype(np.int64)).view(1, -1, 1, 1)
    wf = torch.from_numpy(w.astype(np.float32))
    if bound < _EXACT_F32:
        return F.conv2d(x, wf, torch.from_numpy(b.astype(np.float32)), padding=layer.padding)
    acc = None
    for lo, hi in _chunks(w, 128, _EXACT_F32):
        y = F.conv2d(x[:, lo:hi], wf[:, lo:hi], padding=layer.padding).double()
        acc = y if acc is None else acc.add_(y)
    return acc.add_(torch.from_numpy(b.astype(np.float64)).view(1, -1, 1, 1))


def _requant_float(acc: torch.Tensor, mult: np.ndarray, shift: np.ndarray, relu: bool) -> torch.Tensor:
    """:func:`msdf_unet.golden.quant.requantize` in float64, bit-exact: ``r = mult*2**-shift``
    is an exact float64, ``acc*r`` needs at most 31 + 15 < 53 significant bits and so do
    ``acc*r + 0.5`` and its floor, hence ``floor(acc*r + 0.5) ==
    floor((acc*mult + 2**(shift-1)) / 2**shift)``. Returns float32 codes."""
    r = torch.from_numpy(mult.astype(np.float64) * np.exp2(-shift.astype(np.float64))).view(1, -1, 1, 1)
    y = acc.double().mul_(r) if acc.dtype != torch.float64 else acc.mul(r)
    return y.add_(0.5).floor_().clamp_(0 if relu else ACT_MIN, ACT_MAX).to(torch.float32)


_CHUNK = 1 << 14   # outputs per evaluate_planes call: keeps its temporaries in cache (2x faster)


def _evaluate_chunked(P: np.ndarray, L: int, pol, p):
    """:func:`mma.evaluate_planes` over the flattened batch in chunks:
    (values shaped like ``P[0]``, total digits_used, total terminated)."""
    B = P.shape[0]
    flat = P.reshape(B, -1)
    values = np.empty(flat.shape[1], np.int64)
    used = term = 0
    for i in range(0, flat.shape[1], _CHUNK):
        r = mma.evaluate_planes(flat[:, i:i + _CHUNK], L, pol, p)
        values[i:i + _CHUNK] = r.values
        used += int(r.digits_used.sum())
        term += int(r.terminated.sum())
    return values.reshape(P.shape[1:]), used, term


def _conv_layer(program, layer, x, policy, backend, cycles):
    T = layer_digits(layer, program.act_bits)
    L = layer_lanes(layer)
    cout = program.arrays[layer.array("weight")].shape[0]
    pol, p = _layer_policy(layer, policy, T, cout)
    n_out = x.shape[0] * cout * x.shape[2] * x.shape[3]
    if pol is mma.Policy.FULL and not policy.digit_serial:
        acc = _conv_acc(program, layer, x, backend)
        if policy.count_cycles or policy.mode != "full":
            cycles.append(LayerCycles(layer.name, pol.name, L, T, n_out, n_out * T, 0))
    else:
        P = plane_sums_conv(program, layer, x)
        values, used, term = _evaluate_chunked(P, L, pol, p)
        acc = torch.from_numpy(values)
        cycles.append(LayerCycles(layer.name, pol.name if p is None else f"{pol.name}:{p}", L, T,
                                  n_out, used, term))
    if layer.head:
        return acc.to(torch.int64)
    wide = int(program.arrays[layer.array("mult")].max(initial=0)).bit_length() + 31 > 53
    if acc.dtype == torch.int64 or wide:   # checking backends, digit-serial path, huge mult
        acc = acc.to(torch.int64)
        return requantize(acc, torch.from_numpy(program.arrays[layer.array("mult")]),
                          torch.from_numpy(program.arrays[layer.array("shift")]), layer.relu).float()
    return _requant_float(acc, program.arrays[layer.array("mult")],
                          program.arrays[layer.array("shift")], layer.relu)


def predict(program: Program, images, policy: RunPolicy | str = RunPolicy(), *,
            batch_size: int = 8, backend: str = "float32", progress: bool = False):
    """Quantize float ``images`` [N, C, H, W] and run them in batches.

    Returns ``(pred [N, H, W] int64 numpy, cycles)`` with ``cycles`` the per-layer
    :class:`LayerCycles` summed over the batches.
    """
    images = np.asarray(images)
    preds, total = [], {}
    rng = range(0, len(images), batch_size)
    if progress:
        from tqdm import tqdm
        rng = tqdm(rng, desc=f"hw-exact {policy if isinstance(policy, str) else policy.label}",
                   leave=False, unit="batch")
    for i in rng:
        r = run(program, quantize_input(program, images[i:i + batch_size]), policy, backend=backend)
        preds.append(r.pred.numpy())
        for c in r.cycles:
            if c.name in total:
                t = total[c.name]
                t.outputs += c.outputs
                t.used += c.used
                t.terminated += c.terminated
            else:
                total[c.name] = LayerCycles(**c.__dict__)
    return np.concatenate(preds), list(total.values())


def cycle_summary(cycles: list[LayerCycles]) -> dict:
    """Totals: ``full`` and ``used`` digit cycles, ``saved_pct`` and per-layer rows."""
    full = sum(c.full for c in cycles)
    used = sum(c.used for c in cycles)
    return {"full_cycles": full, "used_cycles": used,
            "saved_pct": 100.0 * (1 - used / full) if full else 0.0,
            "layers": [{"name": c.name, "policy": c.policy, "lanes": c.lanes, "T": c.T,
                        "outputs": c.outputs, "full_cycles": c.full, "used_cycles": c.used,
                        "terminated": c.terminated, "saved_pct": round(c.saved_pct, 3)}
                       for c in cycles]}


# ------------------------------------------------------------------- float oracle

def run_dequantized(program: Program, x_codes: torch.Tensor, *, fake_quant: bool = True,
                    feed: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Float64 run of the dequantized network (weights ``w*s_w``, biases ``b*s_x*s_w``).

    Returns every tensor in real units. With ``fake_quant`` every non-head conv output is
    rounded to its INT8 grid (``s*sat(floor(y/s + 0.5))``) as the hardware does, with
    the exact float ratio instead of ``mult/2**shift``. ``feed`` (tensor name -> INT8
    codes) replaces a layer's inputs by given codes (used to compare layer by layer).
    """
    def real(name, codes):
        return codes.double() * program.tensors[name].scale

    env = {program.input: real(program.input, x_codes)}
    for l in program.layers:
        a = [real(t, feed[t]) if feed is not None and t in feed else env[t] for t in l.inputs]
        if l.op == "maxpool":
            y = F.max_pool2d(a[0], 2)
        elif l.op == "upsample":
            y = F.interpolate(a[0], scale_factor=2, mode="nearest")
        elif l.op == "concat":
            y = torch.cat(a, dim=1)
        else:
            sw = program.arrays[l.array("w_scale")].astype(np.float64)
            sx = program.tensors[l.inputs[0]].scale
            w = program.arrays[l.array("weight")].astype(np.float64) * sw[:, None, None, None]
            b = program.arrays[l.array("bias")].astype(np.float64) * sx * sw
            y = F.conv2d(a[0], torch.from_numpy(w), torch.from_numpy(b), padding=l.padding)
            if l.relu:
                y = F.relu(y)
            if fake_quant and not l.head:
                s = program.tensors[l.output].scale
                y = torch.floor(y / s + 0.5).clamp(ACT_MIN, ACT_MAX) * s
        env[l.output] = y
    return env


def compare_with_dequantized(program: Program, x_codes: torch.Tensor) -> dict:
    """Hardware-exact run vs the float run of the dequantized network.

    Returns ``layer_max_code_diff`` (each conv fed the hardware's own input codes: the
    largest difference in output codes, at most 1 from the rounding of ``mult/2**shift``),
    ``layer_diff_fraction``, ``end_to_end_max_logit_diff`` (head, real units, fake-quant
    float run fed only the input), ``head_max_acc_diff_layerwise`` (head accumulators vs
    float head on the same input, in accumulator units) and ``pred_agreement``.
    """
    hw = run(program, x_codes, keep=True)
    fed = run_dequantized(program, x_codes, feed=hw.tensors)
    diffs, fracs = {}, {}
    head_diff = 0.0
    for l in program.conv_layers():
        if l.head:
            sw = float(program.arrays[l.array("w_scale")][0])
            unit = program.tensors[l.inputs[0]].scale * sw
            head_diff = float((hw.output.double() - fed[l.output] / unit).abs().max())
            continue
        s = program.tensors[l.output].scale
        d = (hw.tensors[l.output].double() - fed[l.output] / s).abs()
        diffs[l.name] = int(d.round().max())
        fracs[l.name] = float((d.round() > 0).double().mean())
    e2e = run_dequantized(program, x_codes)
    hl = program.layers[-1]
    unit = program.tensors[hl.inputs[0]].scale * float(program.arrays[hl.array("w_scale")][0])
    logits = e2e[program.output]
    fpred = (logits[:, 0] > 0).long() if logits.shape[1] == 1 else logits.argmax(1)
    return {"layer_max_code_diff": diffs, "layer_diff_fraction": fracs,
            "head_max_acc_diff_layerwise": head_diff,
            "end_to_end_max_logit_diff": float((hw.output.double() * unit - logits).abs().max()),
            "logit_range": float(logits.abs().max()),
            "pred_agreement": float((fpred == hw.pred).double().mean())}
