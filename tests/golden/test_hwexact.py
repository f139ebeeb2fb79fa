"""The hardware-exact network model against exact integer math and the MMA golden model."""
import numpy as np
import pytest
import torch

from msdf_unet.golden import hwexact, quant
from msdf_unet.golden.arith import mma
from msdf_unet.golden.bench import random_model
from msdf_unet.golden.data import load_dataset
from msdf_unet.golden.unet import UNetConfig


def _np_conv(x, w, pad):
    """Pure-int64 numpy reference convolution (Python-level loops over the kernel only)."""
    x = np.pad(x.astype(np.int64), ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, hp, wp = x.shape
    co, ci, k, _ = w.shape
    h, wd = hp - k + 1, wp - k + 1
    out = np.zeros((n, co, h, wd), np.int64)
    for i in range(k):
        for j in range(k):
            out += np.einsum("nchw,oc->nohw", x[:, :, i:i + h, j:j + wd], w[:, :, i, j].astype(np.int64))
    return out


@pytest.mark.parametrize("backend", ["float32", "float64", "int64"])
@pytest.mark.parametrize("case", ["random", "worst", "wide"])
def test_conv_exact(backend, case):
    rng = np.random.default_rng(hash(case) % 2 ** 32)
    if case == "random":
        x = rng.integers(-128, 128, (2, 5, 7, 9))
        w = rng.integers(-127, 128, (6, 5, 3, 3))
    elif case == "worst":      # every partial sum as large as possible
        x = np.full((1, 40, 6, 6), -128)
        w = np.full((3, 40, 3, 3), -127)
        w[1] = 127
    else:                      # many channels: float32 backend must split them
        x = rng.integers(-128, -100, (1, 400, 5, 5))
        w = rng.integers(-127, -100, (4, 400, 3, 3))
        w[1] = -w[1]
    k = w.shape[2]
    got = hwexact.conv_exact(torch.from_numpy(x), w.astype(np.int8), k // 2, backend)
    assert got.dtype == torch.int64
    assert np.array_equal(got.numpy(), _np_conv(x, w, k // 2))
    if case == "wide":
        assert np.abs(got.numpy()).max() > 2 ** 24       # beyond float32's exact range


CFG = UNetConfig(in_channels=1, out_channels=3, depth=3, base_width=4, input_size=(16, 16))
BIN = UNetConfig(in_channels=1, out_channels=2, depth=2, base_width=4, input_size=(16, 16))


def _program(cfg, seed):
    data = load_dataset("synthetic", "train", n=8, size=16, seed=seed)
    return quant.quantize_model(random_model(cfg, seed), data.images), data


@pytest.fixture(scope="module")
def net():
    prog, data = _program(CFG, 3)
    x = quant.quantize_input(prog, load_dataset("synthetic", "test", n=3, size=16).images)
    return prog, x, hwexact.run(prog, x, "full", keep=True)


@pytest.fixture(scope="module")
def binnet():
    prog, data = _program(BIN, 4)
    x = quant.quantize_input(prog, load_dataset("synthetic", "test", n=3, size=16).images)
    return prog, x, hwexact.run(prog, x, "full", keep=True)


def test_layer_by_layer_against_numpy(net):
    """Every layer recomputed from its inputs with numpy integer math."""
    prog, x, r = net
    env = r.tensors
    for l in prog.layers:
        a = [env[t].numpy() for t in l.inputs]
        if l.op == "maxpool":
            n, c, h, w = a[0].shape
            want = a[0].reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))
        elif l.op == "upsample":
            want = a[0].repeat(2, axis=2).repeat(2, axis=3)
        elif l.op == "concat":
            want = np.concatenate(a, axis=1)
        else:
            acc = _np_conv(a[0], prog.arrays[l.array("weight")], l.padding)
            acc += prog.arrays[l.array("bias")].astype(np.int64)[None, :, None, None]
            if l.head:
                want = acc
            else:
                m = prog.arrays[l.array("mult")].astype(np.int64)[None, :, None, None]
                s = prog.arrays[l.array("shift")].astype(np.int64)[None, :, None, None]
                want = np.clip((acc * m + (1 << (s - 1))) >> s, 0 if l.relu else -128, 127)
        assert np.array_equal(env[l.output].numpy(), want), l.name
        if l.op == "conv" and not l.head:
            assert want.min() >= 0 and want.max() <= 127
    assert np.array_equal(r.pred.numpy(), env[prog.output].numpy().argmax(1))


def test_plane_sums_rebuild_the_dot_product(net):
    prog, x, r = net
    for l in prog.conv_layers():
        xin = r.tensors[l.inputs[0]]
        P = hwexact.plane_sums_conv(prog, l, xin).astype(np.int64)
        B = prog.act_bits
        S = sum(P[k] * 2 ** (B - 1 - k) for k in range(B))
        acc = _np_conv(xin.numpy(), prog.arrays[l.array("weight")], l.padding)
        acc += prog.arrays[l.array("bias")].astype(np.int64)[None, :, None, None]
        assert np.array_equal(S, acc), l.name
        assert np.abs(P).max() <= hwexact.layer_lanes(l) * 127


def test_single_transactions_match_the_mma_golden(net):
    """A few outputs of each layer as one MMA transaction of explicit lanes (data lanes of
    the zero-padded window + folded bias lanes) through mma.evaluate."""
    prog, x, r = net
    rng = np.random.default_rng(7)
    for l in prog.conv_layers():
        xin = np.pad(r.tensors[l.inputs[0]].numpy(), ((0, 0), (0, 0), (l.padding,) * 2, (l.padding,) * 2))
        w = prog.arrays[l.array("weight")]
        P = hwexact.plane_sums_conv(prog, l, r.tensors[l.inputs[0]])
        pol = mma.Policy.RELU_END if l.relu else mma.Policy.SIGN_ONLY
        res = mma.evaluate_planes(P, hwexact.layer_lanes(l), pol)
        n, _, h, wd = r.tensors[l.inputs[0]].shape
        for _ in range(4):
            b, o, i, j = (int(rng.integers(s)) for s in (n, w.shape[0], h, wd))
            lanes_x = np.concatenate([xin[b, :, i:i + l.kernel, j:j + l.kernel].ravel(),
                                      prog.arrays[l.array("bias_x")][o]])
            lanes_w = np.concatenate([w[o].ravel(), prog.arrays[l.array("bias_w")][o]])
            one = mma.evaluate(lanes_x, lanes_w, pol)
            assert int(one.values) == int(res.values[b, o, i, j])
            assert int(one.digits_used) == int(res.digits_used[b, o, i, j])


def test_end_identical_to_full_and_saves_cycles(net):
    prog, x, full = net
    end = hwexact.run(prog, x, "end", keep=True)
    for name, t in full.tensors.items():
        assert torch.equal(end.tensors[name], t), name
    assert torch.equal(end.pred, full.pred)
    s = hwexact.cycle_summary(end.cycles)
    assert len(end.cycles) == len(prog.conv_layers())
    for c in end.cycles:
        assert c.used <= c.full
        assert c.T == mma.stream_digits(c.lanes)
    assert 0 < s["saved_pct"] < 100
    print(f"\nEND saves {s['saved_pct']:.2f} % of digit cycles on the test net")


def test_sign_head_binary(binnet):
    prog, x, full = binnet
    assert prog.tensors[prog.output].shape[0] == 1
    end = hwexact.run(prog, x, "end")
    assert torch.equal(end.pred, full.pred)
    assert torch.equal(end.output, torch.sign(full.output))
    head = end.cycles[-1]
    assert head.policy == "SIGN_ONLY" and head.used < head.full


def test_digit_serial_full_equals_full(net):
    prog, x, full = net
    ds = hwexact.run(prog, x, "msdf-full", keep=True)
    for name, t in full.tensors.items():
        assert torch.equal(ds.tensors[name], t), name
    assert all(c.used == c.full for c in ds.cycles) and len(ds.cycles) == len(prog.conv_layers())


def test_truncate_full_length_equals_full(net):
    prog, x, full = net
    T = max(hwexact.layer_digits(l) for l in prog.conv_layers())
    tr = hwexact.run(prog, x, hwexact.RunPolicy("truncate", T), keep=True)
    for name, t in full.tensors.items():
        assert torch.equal(tr.tensors[name], t), name
    assert all(c.used == c.full for c in tr.cycles)


def test_truncate_changes_outputs_within_the_bound(net):
    """First conv layer: Z_p differs from S by less than 2**(T-p), and the run continues
    with the requantized prefix values."""
    prog, x, full = net
    l = prog.conv_layers()[0]
    T = hwexact.layer_digits(l)
    P = hwexact.plane_sums_conv(prog, l, x)
    S = mma.evaluate_planes(P, hwexact.layer_lanes(l), mma.Policy.FULL).values
    for p in (4, 8, 12):
        tr = hwexact.run(prog, x, hwexact.RunPolicy("truncate", p), keep=True)
        Z = mma.evaluate_planes(P, hwexact.layer_lanes(l), mma.Policy.TRUNCATE, p).values
        assert np.abs(S - Z).max() < 2 ** (T - p)
        want = quant.requantize(torch.from_numpy(Z), torch.from_numpy(prog.arrays[l.array("mult")]),
                                torch.from_numpy(prog.arrays[l.array("shift")]), l.relu)
        assert torch.equal(tr.tensors[l.output], want)
    low = hwexact.run(prog, x, hwexact.RunPolicy("truncate", 4))
    assert not torch.equal(low.output, full.output)


def test_agrees_with_dequantized_float(net, binnet):
    for prog, x, _ in (net, binnet):
        cmp = hwexact.compare_with_dequantized(prog, x)
        print(f"\nlayer max code diff {max(cmp['layer_max_code_diff'].values())}, "
              f"head acc diff {cmp['head_max_acc_diff_layerwise']:.2e}, "
              f"end-to-end max logit diff {cmp['end_to_end_max_logit_diff']:.3e} "
              f"(logit range {cmp['logit_range']:.3f}), pred agreement {cmp['pred_agreement']:.4f}")
        assert max(cmp["layer_max_code_diff"].values()) <= 1
        assert max(cmp["layer_diff_fraction"].values()) < 0.01
        assert cmp["head_max_acc_diff_layerwise"] < 1e-6
        assert cmp["end_to_end_max_logit_diff"] < 0.05 * cmp["logit_range"]
        assert cmp["pred_agreement"] > 0.97


def test_predict_batches_and_sums_cycles(net):
    prog, _, _ = net
    images = load_dataset("synthetic", "test", n=5, size=16).images
    pred, cyc = hwexact.predict(prog, images, "end", batch_size=2)
    whole = hwexact.run(prog, quant.quantize_input(prog, images), "end")
    assert np.array_equal(pred, whole.pred.numpy())
    assert [c.used for c in cyc] == [c.used for c in whole.cycles]


def test_bad_inputs(net):
    prog, x, _ = net
    with pytest.raises(ValueError, match="N, 1, H, W"):
        hwexact.run(prog, x[:, :, :, :, None])
    with pytest.raises(ValueError, match="divisible"):
        hwexact.run(prog, x[:, :, :6, :6])
    with pytest.raises(ValueError, match="lie in"):
        hwexact.run(prog, x + 300)
    with pytest.raises(ValueError, match="policy"):
        hwexact.run(prog, x, "sometimes")
    with pytest.raises(ValueError, match="digit budget"):
        hwexact.RunPolicy("truncate", 0)


@pytest.mark.parametrize("cin", [3, 400])
def test_conv_acc_with_bias_single_and_chunked(cin):
    """The run's conv path (float32, bias inside the conv or chunked + float64) is exact."""
    from types import SimpleNamespace
    from msdf_unet.golden.program import Layer
    rng = np.random.default_rng(cin)
    w = rng.integers(100, 128, (3, cin, 3, 3)) * rng.choice([-1, 1], (3, 1, 1, 1))
    b = rng.integers(-2 ** 20, 2 ** 20, 3)
    x = rng.integers(-128, 128, (2, cin, 6, 5))
    layer = Layer(name="l", op="conv", inputs=["a"], output="o", kernel=3, padding=1)
    prog = SimpleNamespace(arrays={"l.weight": w.astype(np.int8), "l.bias": b.astype(np.int32)})
    acc = hwexact._conv_acc(prog, layer, torch.from_numpy(x).float(), "float32")
    assert acc.dtype == (torch.float32 if cin == 3 else torch.float64)
    assert np.array_equal(acc.numpy().astype(np.int64), _np_conv(x, w, 1) + b[None, :, None, None])


def test_float_requant_equals_integer_requant():
    rng = np.random.default_rng(11)
    acc = rng.integers(-2 ** 31 + 1, 2 ** 31, (2, 6, 40, 40))
    acc[0, :, 0, 0] = [0, 1, -1, 2 ** 31 - 1, -2 ** 31 + 1, 12345]
    m, s = quant.requant_params(np.exp(rng.uniform(np.log(1e-9), np.log(0.5), 6)))
    for relu in (False, True):
        want = quant.requantize(torch.from_numpy(acc), torch.from_numpy(m), torch.from_numpy(s), relu)
        for a in (torch.from_numpy(acc).double(), torch.from_numpy(acc % 2 ** 24).float()):
            w2 = want if a.dtype == torch.float64 else quant.requantize(
                torch.from_numpy(acc % 2 ** 24), torch.from_numpy(m), torch.from_numpy(s), relu)
            got = hwexact._requant_float(a, m, s, relu)
            assert torch.equal(got.to(torch.int64), w2)
    # ties: acc*m exactly k + 1/2 units rounds up
    m1, s1 = np.array([1], np.int32), np.array([1], np.int32)
    t = torch.tensor([-3.0, -1.0, 1.0, 3.0]).view(1, 1, 2, 2)
    assert hwexact._requant_float(t, m1, s1, False).flatten().tolist() == [-1, 0, 1, 2]


def test_policy_parse():
    assert hwexact.RunPolicy.parse("full") == hwexact.RunPolicy()
    assert hwexact.RunPolicy.parse("END").mode == "end"
    assert hwexact.RunPolicy.parse("truncate:9") == hwexact.RunPolicy("truncate", 9)
    assert hwexact.RunPolicy.parse("p12").digits == 12
    assert hwexact.RunPolicy.parse("msdf-full").label == "msdf-full"
    with pytest.raises(ValueError, match="mode"):
        hwexact.RunPolicy("fast")
