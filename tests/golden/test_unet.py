"""Tests of the float U-Net: presets, shapes, layer walk, MAC and parameter counts."""
import dataclasses

import pytest
import torch
from torch import nn

from msdf_unet.golden.unet import (
    PRESETS, UNet, UNetConfig, layer_walk, mac_count, param_count, run_layers)


def _randomise_bn(model: nn.Module, seed: int = 0) -> None:
    """Give every BatchNorm non-trivial statistics so eval mode is not an identity."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            n = m.num_features
            m.running_mean.copy_(torch.randn(n, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(n, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(n, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(n, generator=g) * 0.1)


def _hook_macs(model: nn.Module, x: torch.Tensor) -> int:
    """MACs counted from the actual conv calls: output elements x (Cin/groups) x Kh x Kw."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        kh, kw = mod.kernel_size
        total += out.numel() // out.shape[0] * (mod.in_channels // mod.groups) * kh * kw

    hs = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        model(x)
    for h in hs:
        h.remove()
    return total


@pytest.mark.parametrize("preset", ["edge", "paper"])
def test_preset_forward_shape_and_macs(preset):
    cfg = UNetConfig.preset(preset)
    torch.manual_seed(0)
    model = UNet(cfg).eval()
    x = torch.rand(1, cfg.in_channels, *cfg.input_size)
    with torch.no_grad():
        y = model(x)
    assert y.shape == (1, cfg.out_channels, *cfg.input_size)
    assert mac_count(cfg) == _hook_macs(model, x)


def test_preset_shapes_and_budget():
    edge, paper = PRESETS["edge"], PRESETS["paper"]
    assert (edge.in_channels, edge.out_channels, edge.depth, edge.widths) == (1, 3, 3, (8, 16, 32))
    assert (paper.in_channels, paper.input_size, paper.widths) == (4, (192, 192), (16, 32, 64, 128, 256))
    # One edge slice must stay well under a second at ~50 GOPS (2 ops per MAC).
    assert 2 * mac_count(edge) / 50e9 < 0.01
    # The plain U-Net of the paper's shape is within 10 % of their residual U-Net.
    assert abs(mac_count(paper) / 2.16e9 - 1) < 0.1


@pytest.mark.parametrize("cfg", [
    PRESETS["edge"],
    UNetConfig(in_channels=2, out_channels=2, depth=4, base_width=4, input_size=(32, 48)),
    UNetConfig(depth=1, base_width=4, input_size=(8, 8)),
])
def test_param_count_formula(cfg):
    w = cfg.widths
    expected = 0
    cin = cfg.in_channels
    for i in range(cfg.depth):  # conv1 + conv2 (weights + bias) + two BN (gamma, beta)
        expected += 9 * cin * w[i] + w[i] + 9 * w[i] * w[i] + w[i] + 4 * w[i]
        cin = w[i]
    for i in range(cfg.depth - 1):
        expected += 9 * (w[i] + w[i + 1]) * w[i] + w[i] + 9 * w[i] * w[i] + w[i] + 4 * w[i]
    expected += w[0] * cfg.out_channels + cfg.out_channels
    assert param_count(cfg) == expected


@pytest.mark.parametrize("cfg", [
    PRESETS["edge"],
    UNetConfig(in_channels=2, out_channels=4, depth=4, base_width=4, input_size=(16, 24)),
])
def test_layer_walk_reproduces_forward(cfg):
    torch.manual_seed(1)
    model = UNet(cfg)
    _randomise_bn(model)
    model.eval()
    x = torch.randn(2, cfg.in_channels, *cfg.input_size)
    with torch.no_grad():
        ref = model(x)
        env = run_layers(model, x)
    steps = model.layers()
    assert torch.equal(env[steps[-1].output], ref)
    # every tensor has the shape the walk announces
    for s in steps:
        assert tuple(env[s.output].shape) == (2, s.out_channels, *s.out_hw), s.name


def test_layer_walk_structure():
    cfg = PRESETS["edge"]
    model = UNet(cfg)
    steps = model.layers()
    convs = {n for n, m in model.named_modules() if isinstance(m, nn.Conv2d)}
    walk_convs = [s for s in steps if s.op.startswith("conv")]
    assert {s.name for s in walk_convs} == convs
    for s in walk_convs:
        assert s.conv is model.get_submodule(s.name)
        assert (s.bn is None) == (s.op == "conv1x1")
        assert s.relu == (s.op == "conv3x3")
    # inputs are produced before they are read
    seen = {"input"}
    for s in steps:
        assert set(s.inputs) <= seen, s.name
        seen.add(s.output)
    assert [s.op for s in steps].count("maxpool2") == cfg.depth - 1
    assert [s.op for s in steps].count("upsample2") == cfg.depth - 1
    assert steps[-1].op == "conv1x1"
    # without a model, the walk carries no modules but the same geometry
    bare = layer_walk(cfg)
    assert [dataclasses.replace(s, conv=None, bn=None) for s in steps] == bare


def test_config_json_round_trip_and_validation():
    for cfg in PRESETS.values():
        assert UNetConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="depth"):
        UNetConfig(depth=0)
    with pytest.raises(ValueError, match="divisible"):
        UNetConfig(depth=3, input_size=(90, 96))
    with pytest.raises(TypeError, match="base_width"):
        UNetConfig(base_width=8.0)
    with pytest.raises(ValueError, match="unknown"):
        UNetConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown UNetConfig keys"):
        UNetConfig.from_dict({"widthz": 3})


def test_forward_rejects_bad_input():
    model = UNet(PRESETS["edge"])
    with pytest.raises(ValueError, match="divisible"):
        model(torch.zeros(1, 1, 30, 32))
    with pytest.raises(ValueError, match="expected input"):
        model(torch.zeros(1, 2, 32, 32))
