"""Float reference U-Net (PyTorch) and its layer walk for the quantizer and the hardware.

The network is the plain U-Net the accelerator runs, with only operations that are
simple on the PL:

* every level holds two ``conv3x3`` (zero padding 1, with bias) each followed by
  BatchNorm and ReLU (BatchNorm folds into the conv weights and bias at quantization);
* going down: 2x2 max-pool, stride 2;
* going up: x2 **nearest-neighbour** upsampling, then the upsampled tensor is
  **concatenated directly** with the skip tensor of the same level (channel order
  ``[skip, upsampled]``), with no extra "up-conv": upsampling is pure address
  arithmetic in hardware (each input pixel is read twice per row, each row twice) and
  the first conv3x3 of the decoder block does the channel mixing;
* a ``conv1x1`` head (with bias, no BatchNorm, no ReLU) gives the class logits.

``depth`` counts resolution levels including the bottleneck, so ``depth`` levels use
``depth - 1`` max-pools and level ``i`` has ``base_width * 2**i`` channels. The input
height and width must be divisible by ``2**(depth - 1)``.

Public API
----------
``UNetConfig``
    Typed, JSON-serialisable configuration; ``UNetConfig.preset("edge" | "paper")``.
``UNet(config)``
    The ``nn.Module``. Modules are named ``down.<i>`` (encoder level ``i``, the last
    one is the bottleneck), ``up.<i>`` (decoder level ``i``) and ``head``; each level
    block has ``conv1, bn1, conv2, bn2``.
``UNet.layers(input_hw)`` / ``layer_walk(config, input_hw)``
    The graph in execution order as a list of :class:`LayerSpec` (op, named input and
    output tensors, shapes, MACs, the conv/bn modules). Executing it with
    :func:`run_layers` reproduces ``UNet.forward`` (tested), so a quantizer or the
    hardware-exact model can follow it step by step.
``mac_count(config, input_hw)``
    Multiply-accumulates per image (convolutions only; pooling, upsampling, ReLU and
    the BatchNorm folded into the conv are free).
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, Iterable

import torch
from torch import nn
import torch.nn.functional as F

__all__ = [
    "UNetConfig",
    "PRESETS",
    "LayerSpec",
    "UNet",
    "ConvBlock",
    "layer_walk",
    "mac_count",
    "param_count",
    "run_layers",
]


@dataclass(frozen=True)
class UNetConfig:
    """Architecture of the U-Net.

    Parameters
    ----------
    in_channels : int
        Input image channels (1 for MRI T1 / nuclei, 4 for BraTS modalities).
    out_channels : int
        Number of classes (logits of the ``conv1x1`` head).
    depth : int
        Resolution levels including the bottleneck (``depth - 1`` max-pools), >= 1.
    base_width : int
        Channels of level 0; level ``i`` has ``base_width * 2**i`` channels.
    input_size : tuple of int
        Nominal ``(height, width)`` of one input image, used for MAC reports; both
        must be divisible by ``2**(depth - 1)``.
    bn_eps : float
        BatchNorm epsilon.
    name : str
        Free label (the preset name).
    """

    in_channels: int = 1
    out_channels: int = 3
    depth: int = 3
    base_width: int = 8
    input_size: tuple[int, int] = (96, 96)
    bn_eps: float = 1e-5
    name: str = "custom"

    def __post_init__(self) -> None:
        for field in ("in_channels", "out_channels", "depth", "base_width"):
            value = getattr(self, field)
            if not isinstance(value, int) or isinstance(value, bool):
                raise TypeError(f"UNetConfig.{field} must be an int, not {value!r}")
            if value < 1:
                raise ValueError(f"UNetConfig.{field} must be >= 1, not {value!r}")
        size = tuple(self.input_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"UNetConfig.input_size must be two positive ints, not {self.input_size!r}")
        object.__setattr__(self, "input_size", size)
        step = 2 ** (self.depth - 1)
        if size[0] % step or size[1] % step:
            raise ValueError(
                f"UNetConfig.input_size {size!r} must be divisible by 2**(depth-1) = {step}")
        if not (isinstance(self.bn_eps, float) and self.bn_eps > 0):
            raise ValueError(f"UNetConfig.bn_eps must be a positive float, not {self.bn_eps!r}")

    @property
    def widths(self) -> tuple[int, ...]:
        """Channels of each level, ``base_width * 2**i`` for ``i < depth``."""
        return tuple(self.base_width * 2 ** i for i in range(self.depth))

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["input_size"] = list(self.input_size)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "UNetConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown UNetConfig keys {sorted(unknown)!r}")
        d = dict(d)
        if "input_size" in d:
            d["input_size"] = tuple(d["input_size"])
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "UNetConfig":
        return cls.from_dict(json.loads(text))

    @classmethod
    def preset(cls, name: str) -> "UNetConfig":
        """Return a named preset, see :data:`PRESETS`."""
        try:
            return PRESETS[name]
        except KeyError:
            raise ValueError(f"unknown U-Net preset {name!r}, choose from {sorted(PRESETS)}") from None


#: ``edge``: one MRI T1 slice (1 x 96 x 96, 2 mm) -> background / GM / WM; widths 8-16-32.
#: ``paper``: the DEX paper's BraTS shape (4 x 192 x 192, widths 16-32-64-128-256), 4 classes.
PRESETS: dict[str, UNetConfig] = {
    "edge": UNetConfig(in_channels=1, out_channels=3, depth=3, base_width=8,
                       input_size=(96, 96), name="edge"),
    "paper": UNetConfig(in_channels=4, out_channels=4, depth=5, base_width=16,
                        input_size=(192, 192), name="paper"),
}


@dataclass(frozen=True)
class LayerSpec:
    """One step of the U-Net graph in execution order.

    Attributes
    ----------
    name : str
        Module path for convs (``down.0.conv1``, ``up.1.conv2``, ``head``), else a
        label (``down.1.pool``, ``up.0.upsample``, ``up.0.concat``).
    op : str
        ``"conv3x3"`` (conv + BatchNorm + ReLU), ``"conv1x1"`` (head: conv only),
        ``"maxpool2"``, ``"upsample2"`` (nearest) or ``"concat"`` (channel concat in
        the order of ``inputs``).
    inputs : tuple of str
        Names of the tensors read; ``"input"`` is the network input.
    output : str
        Name of the tensor written (equal to ``name``); the last step's output is the
        logits.
    in_channels, out_channels : int
        Channels read (summed over inputs for concat) and written.
    in_hw, out_hw : tuple of int
        Spatial size read and written.
    kernel : int
        Conv kernel size (3 or 1), 2 for pool/upsample, 0 for concat.
    macs : int
        Multiply-accumulates of the step (0 for non-conv ops).
    relu : bool
        Whether a ReLU follows (after the BatchNorm).
    conv, bn : nn.Module or None
        The modules holding the parameters (``bn`` is None for the head).
    """

    name: str
    op: str
    inputs: tuple[str, ...]
    output: str
    in_channels: int
    out_channels: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: int
    macs: int
    relu: bool = False
    conv: nn.Conv2d | None = dataclasses.field(default=None, compare=False, repr=False)
    bn: nn.BatchNorm2d | None = dataclasses.field(default=None, compare=False, repr=False)


class ConvBlock(nn.Module):
    """Two ``conv3x3 (pad 1, bias) -> BatchNorm -> ReLU`` stages."""

    def __init__(self, in_channels: int, out_channels: int, bn_eps: float = 1e-5):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(out_channels, eps=bn_eps)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=True)
        self.bn2 = nn.BatchNorm2d(out_channels, eps=bn_eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x)))


class UNet(nn.Module):
    """Plain U-Net with nearest upsampling and direct skip concatenation.

    Parameters
    ----------
    config : UNetConfig
        The architecture.

    Notes
    -----
    ``forward(x)`` takes float ``[N, in_channels, H, W]`` with ``H`` and ``W``
    divisible by ``2**(depth-1)`` (``ValueError`` otherwise) and returns logits
    ``[N, out_channels, H, W]``. The spatial size may differ from
    ``config.input_size`` (which only sets the nominal size for MAC reports).
    """

    def __init__(self, config: UNetConfig):
        super().__init__()
        if not isinstance(config, UNetConfig):
            raise TypeError(f"config must be a UNetConfig, not {config!r}")
        self.config = config
        w = config.widths
        self.down = nn.ModuleList()
        cin = config.in_channels
        for i in range(config.depth):
            self.down.append(ConvBlock(cin, w[i], config.bn_eps))
            cin = w[i]
        # up[i] runs at level i and reads concat(skip of level i, upsampled level i+1).
        self.up = nn.ModuleList(
            ConvBlock(w[i] + w[i + 1], w[i], config.bn_eps) for i in range(config.depth - 1))
        self.head = nn.Conv2d(w[0], config.out_channels, 1, bias=True)

    def _check_input(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(
                f"expected input [N, {self.config.in_channels}, H, W], got {tuple(x.shape)}")
        step = 2 ** (self.config.depth - 1)
        if x.shape[2] % step or x.shape[3] % step:
            raise ValueError(f"input H, W {tuple(x.shape[2:])} must be divisible by {step}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check_input(x)
        skips = []
        for i, block in enumerate(self.down):
            if i > 0:
                x = F.max_pool2d(x, 2)
            x = block(x)
            skips.append(x)
        for i in reversed(range(self.config.depth - 1)):
            x = F.interpolate(x, scale_factor=2, mode="nearest")
            x = self.up[i](torch.cat([skips[i], x], dim=1))
        return self.head(x)

    def layers(self, input_hw: tuple[int, int] | None = None) -> list[LayerSpec]:
        """The graph in execution order with this model's modules attached."""
        return layer_walk(self.config, input_hw, model=self)


def layer_walk(config: UNetConfig, input_hw: tuple[int, int] | None = None,
               model: UNet | None = None) -> list[LayerSpec]:
    """Return the U-Net graph as :class:`LayerSpec` steps in execution order.

    Parameters
    ----------
    config : UNetConfig
    input_hw : (int, int), optional
        Spatial input size; defaults to ``config.input_size``.
    model : UNet, optional
        If given, each conv step carries its ``conv`` and ``bn`` modules.
    """
    h, w = tuple(input_hw) if input_hw is not None else config.input_size
    step = 2 ** (config.depth - 1)
    if h % step or w % step:
        raise ValueError(f"input_hw {(h, w)!r} must be divisible by {step}")
    widths = config.widths
    steps: list[LayerSpec] = []

    def mod(path: str) -> nn.Module | None:
        return model.get_submodule(path) if model is not None else None

    def conv(name: str, src: str, cin: int, cout: int, hw: tuple[int, int]) -> str:
        steps.append(LayerSpec(
            name=name, op="conv3x3", inputs=(src,), output=name, in_channels=cin,
            out_channels=cout, in_hw=hw, out_hw=hw, kernel=3,
            macs=9 * cin * cout * hw[0] * hw[1], relu=True,
            conv=mod(name), bn=mod(name.replace("conv", "bn"))))
        return name

    src, cin, hw = "input", config.in_channels, (h, w)
    skips: list[str] = []
    for i in range(config.depth):
        if i > 0:
            out_hw = (hw[0] // 2, hw[1] // 2)
            name = f"down.{i}.pool"
            steps.append(LayerSpec(name, "maxpool2", (src,), name, cin, cin, hw, out_hw, 2, 0))
            src, hw = name, out_hw
        src = conv(f"down.{i}.conv1", src, cin, widths[i], hw)
        src = conv(f"down.{i}.conv2", src, widths[i], widths[i], hw)
        cin = widths[i]
        skips.append(src)
    for i in reversed(range(config.depth - 1)):
        out_hw = (hw[0] * 2, hw[1] * 2)
        name = f"up.{i}.upsample"
        steps.append(LayerSpec(name, "upsample2", (src,), name, cin, cin, hw, out_hw, 2, 0))
        hw = out_hw
        cat = f"up.{i}.concat"
        ccat = widths[i] + cin
        steps.append(LayerSpec(cat, "concat", (skips[i], name), cat, ccat, ccat, hw, hw, 0, 0))
        src = conv(f"up.{i}.conv1", cat, ccat, widths[i], hw)
        src = conv(f"up.{i}.conv2", src, widths[i], widths[i], hw)
        cin = widths[i]
    steps.append(LayerSpec(
        "head", "conv1x1", (src,), "head", cin, config.out_channels, hw, hw, 1,
        cin * config.out_channels * hw[0] * hw[1], relu=False, conv=mod("head"), bn=None))
    return steps


def mac_count(config: UNetConfig, input_hw: tuple[int, int] | None = None) -> int:
    """Multiply-accumulates of one forward pass on one image (conv layers only)."""
    return sum(s.macs for s in layer_walk(config, input_hw))


def param_count(config: UNetConfig) -> int:
    """Trainable parameters (conv weights and biases, BatchNorm affine)."""
    return sum(p.numel() for p in UNet(config).parameters())


def run_layers(model: UNet, x: torch.Tensor, steps: Iterable[LayerSpec] | None = None
               ) -> dict[str, torch.Tensor]:
    """Execute the layer walk of ``model`` on ``x`` and return every named tensor.

    Uses the BatchNorm modules as they are (call ``model.eval()`` first for inference
    statistics). ``result[steps[-1].output]`` equals ``model(x)``.
    """
    model._check_input(x)
    if steps is None:
        steps = model.layers(tuple(x.shape[2:]))
    env: dict[str, torch.Tensor] = {"input": x}
    for s in steps:
        args = [env[n] for n in s.inputs]
        if s.op == "conv3x3":
            y = F.relu(s.bn(s.conv(args[0])))
        elif s.op == "conv1x1":
            y = s.conv(args[0])
        elif s.op == "maxpool2":
            y = F.max_pool2d(args[0], 2)
        elif s.op == "upsample2":
            y = F.interpolate(args[0], scale_factor=2, mode="nearest")
        elif s.op == "concat":
            y = torch.cat(args, dim=1)
        else:  # pragma: no cover - layer_walk emits only the ops above
            raise ValueError(f"unknown op {s.op!r} in step {s.name!r}")
        env[s.output] = y
    return env
