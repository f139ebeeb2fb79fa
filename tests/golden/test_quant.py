"""INT8 post-training quantization as the hardware runs it."""
from fractions import Fraction

import numpy as np
import pytest
import torch

from msdf_unet.golden import quant
from msdf_unet.golden.arith import mma
from msdf_unet.golden.bench import random_model
from msdf_unet.golden.data import load_dataset
from msdf_unet.golden.unet import UNetConfig

CFG = UNetConfig(in_channels=1, out_channels=3, depth=3, base_width=4, input_size=(16, 16))


@pytest.fixture(scope="module")
def model():
    return random_model(CFG, seed=3)


@pytest.fixture(scope="module")
def data():
    return load_dataset("synthetic", "train", n=8, size=16)


@pytest.fixture(scope="module")
def prog(model, data):
    return quant.quantize_model(model, data.images)


def test_bn_folding_matches_model(model, data):
    x = torch.from_numpy(data.images)
    steps = quant.fold_network(model, (16, 16), binary_sign_head=False)
    with torch.no_grad():
        ref = model(x).double()
    got = quant.run_float_steps(steps, x)
    assert torch.allclose(got, ref, rtol=0, atol=1e-5 * float(ref.abs().max()))


def test_binary_head_is_logit_difference(data):
    cfg = UNetConfig(in_channels=1, out_channels=2, depth=2, base_width=4, input_size=(16, 16))
    m = random_model(cfg, seed=5)
    x = torch.from_numpy(data.images)
    steps = quant.fold_network(m, (16, 16))
    assert steps[-1].weight.shape[0] == 1
    with torch.no_grad():
        logits = m(x)
    diff = quant.run_float_steps(steps, x)[:, 0]
    assert torch.allclose(diff.float(), logits[:, 1] - logits[:, 0], atol=1e-5)
    assert torch.equal((diff > 0).long(), logits.argmax(1))


def test_weights_per_channel_symmetric(prog, model):
    steps = quant.fold_network(model, (16, 16))
    for layer, s in zip(prog.layers, steps):
        if layer.op != "conv":
            continue
        w = prog.arrays[layer.array("weight")].astype(np.int64)
        sw = prog.arrays[layer.array("w_scale")].astype(np.float64)
        assert w.min() >= -127 and w.max() <= 127
        if layer.head:
            assert np.all(sw == sw[0]), "head uses one weight scale"
            assert np.abs(w).max() == 127
        else:
            assert np.all(np.abs(w).reshape(len(w), -1).max(1) == 127)
        # codes are the rounded real weights
        err = np.abs(w - s.weight / sw[:, None, None, None])
        assert err.max() <= 0.5 + 1e-6


def test_bias_in_accumulator_units_and_folded(prog, model):
    steps = quant.fold_network(model, (16, 16))
    for layer, s in zip(prog.layers, steps):
        if layer.op != "conv":
            continue
        b = prog.arrays[layer.array("bias")].astype(np.int64)
        sw = prog.arrays[layer.array("w_scale")].astype(np.float64)
        sx = prog.tensors[layer.inputs[0]].scale
        assert np.abs(b - s.bias / (sx * sw)).max() <= 0.5 + 1e-6
        bw = prog.arrays[layer.array("bias_w")].astype(np.int64)
        bx = prog.arrays[layer.array("bias_x")].astype(np.int64)
        assert np.array_equal((bw * bx).sum(1), b)
        assert bw.min(initial=0) >= -127 and bx.min(initial=0) >= -128 and bx.max(initial=0) <= 127
        # exactly what H1's fold_bias produces, and no lane more than needed
        for c in range(len(b)):
            ws, xs = mma.fold_bias(int(b[c]), layer.bias_lanes)
            assert list(bw[c]) == ws and list(bx[c]) == xs
        with pytest.raises(ValueError):
            for c in range(len(b)):
                mma.fold_bias(int(b[c]), layer.bias_lanes - 1)


def test_tied_scales(prog):
    for layer in prog.layers:
        if layer.op in ("maxpool", "upsample", "concat"):
            scales = {prog.tensors[t].scale for t in (*layer.inputs, layer.output)}
            assert len(scales) == 1, layer.name


@pytest.mark.parametrize("method", ["max", "percentile"])
def test_calibration_ranges(model, data, method):
    steps = quant.fold_network(model, (16, 16))
    cfg = quant.QuantConfig(calibration=method, percentile=99.0)
    r = quant.calibrate(steps, data.images, cfg)
    env = quant.run_float_steps(steps, torch.from_numpy(data.images), keep=True)
    for name, t in env.items():
        a = t.abs().flatten().numpy()
        if method == "max":
            assert r[name] == pytest.approx(a.max(), rel=1e-6)
        else:
            assert np.mean(a <= r[name]) == pytest.approx(0.99, abs=0.02)


def test_requant_params_accuracy():
    rng = np.random.default_rng(0)
    ratio = np.exp(rng.uniform(np.log(1e-6), np.log(100.0), 2000))
    for bits in (8, 15, 24):
        m, s = quant.requant_params(ratio, bits)
        assert np.all(m < 2 ** bits) and np.all(m >= 2 ** (bits - 1))
        assert np.all((s >= 1) & (s <= 62))
        rel = np.abs(m / np.exp2(s) - ratio) / ratio
        assert rel.max() <= 2.0 ** -(bits - 1)
    with pytest.raises(ValueError):
        quant.requant_params(np.array([0.0]))


@pytest.mark.parametrize("relu", [False, True])
def test_requantize_is_round_half_up_and_saturates(relu):
    rng = np.random.default_rng(1)
    acc = rng.integers(-2 ** 26, 2 ** 26, (3, 4, 5, 5))
    acc[0, 0, 0, :3] = [2 ** 20, -2 ** 20, 0]
    mult = rng.integers(2 ** 14, 2 ** 15, 4).astype(np.int32)
    shift = rng.integers(12, 30, 4).astype(np.int32)
    got = quant.requantize(torch.from_numpy(acc), torch.from_numpy(mult), torch.from_numpy(shift), relu)
    lo = 0 if relu else -128
    for idx in np.ndindex(acc.shape):
        c = idx[1]
        exact = Fraction(int(acc[idx]) * int(mult[c]), 2 ** int(shift[c]))
        want = min(max(int(np.floor(exact + Fraction(1, 2))), lo), 127)   # half up
        assert int(got[idx]) == want, (idx, acc[idx])


def test_quantize_input_rounding(prog):
    s = prog.tensors["input"].scale
    x = np.array([0.5 * s, 1.5 * s, -0.5 * s, 1000 * s, -1000 * s, 0.49 * s]).reshape(1, 1, 2, 3)
    q = quant.quantize_input(prog, x).flatten().tolist()
    assert q == [1, 2, 0, 127, -128, 0]


def test_config_validation():
    with pytest.raises(ValueError, match="calibration"):
        quant.QuantConfig(calibration="mean")
    with pytest.raises(ValueError, match="mult_bits"):
        quant.QuantConfig(mult_bits=40)


def test_calibration_rejects_bad_images(model):
    steps = quant.fold_network(model, (16, 16))
    with pytest.raises(ValueError, match="N, C, H, W"):
        quant.calibrate(steps, np.zeros((16, 16)))


def test_fixed_bias_lanes_saturate(model, data):
    free = quant.quantize_model(model, data.images)
    need = max(l.bias_lanes for l in free.conv_layers())
    assert need >= 2
    fixed = quant.quantize_model(model, data.images, quant.QuantConfig(bias_lanes=need - 1))
    lim = mma.bias_range(need - 1)[0]
    n_sat = 0
    for a, b in zip(free.conv_layers(), fixed.conv_layers()):
        assert b.bias_lanes == need - 1
        bf = free.arrays[a.array("bias")].astype(np.int64)
        assert np.array_equal(fixed.arrays[b.array("bias")], np.clip(bf, -lim, lim))
        n_sat += int(np.sum(np.abs(bf) > lim))
    assert n_sat == sum(fixed.meta["bias_saturated"].values()) > 0
    wide = quant.quantize_model(model, data.images, quant.QuantConfig(bias_lanes=need + 2))
    assert all(l.bias_lanes == need + 2 for l in wide.conv_layers())
    assert wide.meta["bias_saturated"] == {}
    for a, b in zip(free.conv_layers(), wide.conv_layers()):
        assert np.array_equal(free.arrays[a.array("bias")], wide.arrays[b.array("bias")])


@pytest.mark.parametrize("act_bits", [2, 3, 4, 6, 8, 12, 16])
@pytest.mark.parametrize("signed", [True, False])
def test_fold_bias_lanes_any_act_bits(act_bits, signed):
    """Exact for every activation width (it assumed |x| >= 127 and raised for act_bits < 8):
    per channel the lanes are those of mma.fold_bias, the sum is the bias, every weight
    and activation is legal, and the lane count is the fewest that fold every channel."""
    from msdf_unet.golden.arith import mma
    lo, hi = mma.act_range(act_bits, signed)
    rng = np.random.default_rng(act_bits)
    bias = np.concatenate([[5000, -5000, 0, 1, -1, 127, -16256, 16257],
                           rng.integers(-40_000, 40_000, 24)]).astype(np.int64)
    bw, bx = quant.fold_bias_lanes(bias, act_bits=act_bits, signed=signed)
    assert np.array_equal((bw.astype(np.int64) * bx).sum(axis=1), bias)
    assert np.abs(bw).max() <= mma.MAX_WEIGHT and bx.min() >= lo and bx.max() <= hi
    nb = bw.shape[1]
    for c, b in enumerate(bias.tolist()):
        ws, xs = mma.fold_bias(b, nb, act_bits, signed_acts=signed)
        assert (bw[c].tolist(), bx[c].tolist()) == (ws, xs)
    with pytest.raises(ValueError):
        mma.fold_bias(int(bias[np.argmax(np.count_nonzero(bw, axis=1))]), nb - 1, act_bits,
                      signed_acts=signed)


def test_fold_bias_lanes_issue_example():
    from msdf_unet.golden.arith import mma
    bw, bx = quant.fold_bias_lanes(np.array([5000]), act_bits=4)
    assert (bw.astype(np.int64) * bx).sum() == 5000
    assert bw.shape[1] == sum(1 for w in mma.fold_bias(5000, 6, 4)[0] if w)
