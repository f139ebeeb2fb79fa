"""golden/conv/model.py: the engine's functional model is bit-exact with hwexact on every
layer, for every policy; malformed commands stop it with the contract's error codes."""
import numpy as np
import pytest
import torch

from msdf_unet.golden import hwexact
from msdf_unet.golden.conv.model import read_fmap, run_image
from msdf_unet.golden.conv.programs import random_program
from msdf_unet.host.compiler import compile_program, read_tensor, write_input
from msdf_unet.sim.conv.image import check_against_hwexact
from msdf_unet.spec import engine as E

POLICIES = ["full", "end", "truncate:5", "truncate:12"]


def _check(program, x, policy, config=E.EngineConfig(), input_hw=None):
    """Compile, run the model, compare every tensor and the labels with hwexact."""
    img = compile_program(program, config, policy=policy, reuse_memory=False, input_hw=input_hw)
    write_input(img, x)
    res = run_image(img.memory, config, img.cmd_offset)
    assert not res.error, res.reason
    assert res.index == len(img.commands) - 1
    ref = check_against_hwexact(img, program, x, policy)
    # status records: outputs, terminations and digits as hwexact counts them
    convs = [c for c in img.commands if c.op == E.Op.CONV]
    by_name = {c.name: c for c in ref.cycles}
    for cmd, st in zip(img.commands, res.statuses):
        assert st["done"] == 1 and st["error"] == 0 and st["op"] == cmd.op
        if cmd.op == E.Op.CONV and cmd.layer in by_name:
            assert st["terminated"] == by_name[cmd.layer].terminated
            assert st["digits_used"] == 0  # reserved: 0 on every backend (the RTL's value)
            assert st["outputs"] == by_name[cmd.layer].outputs
    assert len(res.statuses) == len(img.commands)
    assert img.statuses() == res.statuses
    return img, res, convs


@pytest.fixture(scope="module")
def shipped():
    from msdf_unet.golden.data import load_dataset
    from msdf_unet.golden.evaluate import build_program
    from msdf_unet.golden.quant import quantize_input
    out = {}
    for task in ("mri", "nuclei"):
        p = build_program(task)
        imgs = load_dataset(task, "test").images
        out[task] = (p, quantize_input(p, imgs[len(imgs) // 2:len(imgs) // 2 + 1])[0].numpy())
    return out


@pytest.mark.parametrize("policy", POLICIES)
@pytest.mark.parametrize("task", ["mri", "nuclei"])
def test_shipped_programs(shipped, task, policy):
    p, x = shipped[task]
    img, res, _ = _check(p, x, policy)
    head = [c for c in img.commands if c.layer == "head"][0]
    if policy == "end" and task == "nuclei":
        assert head.fields["policy"] == E.Policy.SIGN_ONLY
    if policy == "end":   # END really stops outputs early on trained weights
        assert sum(s["terminated"] for s in res.statuses) > 0


@pytest.mark.parametrize("seed, kw, hw", [
    (0, dict(depth=2, base_width=3), (14, 10)),           # bottom 7x5: odd sizes
    (1, dict(depth=3, base_width=5, out_channels=1), (12, 20)),   # binary head, 5/10/20 channels
    (2, dict(depth=2, base_width=11, in_channels=3), (6, 18)),    # fan-in 33*9 wider than the array
])
@pytest.mark.parametrize("policy", POLICIES)
def test_random_programs(seed, kw, hw, policy):
    p = random_program(seed, hw=hw, **kw)
    cfg = E.EngineConfig(arrays=(E.ArrayConfig("mma", kpbs=4, lanes=15),), weight_buffer_bytes=1024)
    x = np.random.default_rng(seed).integers(-128, 128, (p.tensors["input"].shape[0], *hw))
    _check(p, x, policy, cfg)


def test_reused_memory_gives_the_same_head(shipped):
    p, x = shipped["mri"]
    img = compile_program(p, policy="end")
    write_input(img, x)
    assert not run_image(img.memory, img.config).error
    ref = hwexact.run(p, torch.as_tensor(x)[None], "end")
    assert np.array_equal(read_tensor(img, p.output), ref.output[0].numpy())


def test_other_input_size():
    p = random_program(4, depth=2, hw=(8, 8))
    x = np.random.default_rng(4).integers(-128, 128, (1, 6, 14))
    img = compile_program(p, policy="end", input_hw=(6, 14))
    write_input(img, x)
    assert not run_image(img.memory, img.config).error
    ref = hwexact.run(p, torch.as_tensor(x)[None], "end")
    assert np.array_equal(read_tensor(img, p.output), ref.output[0].numpy())


# ------------------------------------------------------------------------- errors

@pytest.fixture
def small():
    p = random_program(5, depth=2, hw=(6, 6))
    img = compile_program(p, policy="end", reuse_memory=False)
    write_input(img, np.random.default_rng(5).integers(-128, 128, (1, 6, 6)))
    return img


def _patch(img, index, **fields):
    c = img.commands[index]
    d = {k: v for k, v in c.fields.items() if k != "reserved"}
    d.update(fields)
    words = E._pack(E._DESC_BY_NAME, E.DESCRIPTOR_WORDS, d, "descriptor")   # no op check
    img.memory[c.offset:c.offset + E.DESCRIPTOR_BYTES] = words


@pytest.mark.parametrize("index, fields, code", [
    (1, dict(op=0), E.ErrorCode.UNKNOWN_OP),
    (1, dict(op=77), E.ErrorCode.UNKNOWN_OP),
    (0, dict(kernel=2), E.ErrorCode.BAD_FIELD),
    (2, dict(kernel=3), E.ErrorCode.BAD_FIELD),           # 2 is the maxpool
    (0, dict(cin=0), E.ErrorCode.ZERO_SIZE),
    (0, dict(cout_tile=0), E.ErrorCode.ZERO_SIZE),
    (0, dict(width=2000), E.ErrorCode.SIZE_LIMIT),
    (0, dict(bias_lanes=9), E.ErrorCode.SIZE_LIMIT),
    (0, dict(cout_tile=4000, cout=4000), E.ErrorCode.SIZE_LIMIT),
    (1, dict(in_offset=0x44), E.ErrorCode.MISALIGNED),
    (1, dict(param_offset=0x48), E.ErrorCode.MISALIGNED),
    (1, dict(status_offset=0x10), E.ErrorCode.MISALIGNED),
    (1, dict(out_offset=0xFFFFFF00), E.ErrorCode.OUT_OF_IMAGE),
])
def test_malformed_command_stops(small, index, fields, code):
    before = bytes(small.memory)
    _patch(small, index, **fields)
    d = E.decode_descriptor(small.command_bytes(index))
    assert E.check_descriptor(d, small.config, small.mem_size)[0] == code
    res = run_image(small.memory, small.config)
    assert res.error and res.code == code and res.index == index, res
    assert len(res.statuses) == index          # no status for the failing command
    st = small.statuses()
    assert all(s["done"] for s in st[:index]) and not any(s["done"] for s in st[index:])
    # the failing command and those after it wrote nothing (no memory reuse here)
    for c in small.commands[index:-1]:
        t = small.tensors[c.layer]
        assert small.memory[t.offset:t.offset + t.nbytes] == before[t.offset:t.offset + t.nbytes]
        assert not any(small.memory[t.offset:t.offset + t.nbytes])


def test_fetch_errors(small):
    res = run_image(small.memory, small.config, cmd_offset=8)
    assert (res.code, res.index) == (E.ErrorCode.MISALIGNED, 0)
    res = run_image(small.memory, small.config, mem_size=100)
    assert (res.code, res.index) == (E.ErrorCode.OUT_OF_IMAGE, 0)     # the conv's tensors
    res = run_image(small.memory, small.config, mem_size=small.commands[1].offset + 32)
    assert (res.code, res.index) == (E.ErrorCode.OUT_OF_IMAGE, 0)
    # a list without END runs into the zero descriptors after it: UNKNOWN_OP, never a hang
    mem = bytearray(small.memory)
    end = small.commands[-1]
    mem[end.offset:end.offset + 64] = bytes(64)
    res = run_image(mem, small.config)
    assert (res.code, res.index) == (E.ErrorCode.UNKNOWN_OP, end.index)


def test_bad_arguments(small):
    with pytest.raises(TypeError, match="bytearray"):
        run_image(bytes(small.memory), small.config)
    with pytest.raises(ValueError, match="mem_size"):
        run_image(small.memory, small.config, mem_size=small.mem_size + 1)


def test_read_fmap_strides():
    mem = bytearray(256)
    x = np.arange(2 * 3 * 5, dtype=np.int8).reshape(2, 3, 5)
    from msdf_unet.golden.conv.model import write_fmap
    write_fmap(mem, 64, x)
    assert mem[64 + 8 * 3] == x[1, 0, 0] and mem[64 + 5] == 0      # row stride 8, padding 0
    assert np.array_equal(read_fmap(mem, 64, 2, 3, 5), x)
