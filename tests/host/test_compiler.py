"""host/compiler.py: layout, determinism, limits, files, tensor I/O."""
import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest

from msdf_unet.golden.conv.programs import random_program
from msdf_unet.host import compiler as C
from msdf_unet.spec import engine as E


@pytest.fixture(scope="module")
def prog():
    return random_program(3, depth=3, base_width=3, hw=(20, 12))


def test_deterministic(prog):
    a = C.image_to_bytes(C.compile_program(prog, policy="end"))
    b = C.image_to_bytes(C.compile_program(random_program(3, depth=3, base_width=3, hw=(20, 12)), policy="end"))
    assert a == b
    assert a != C.image_to_bytes(C.compile_program(prog, policy="full"))


def test_board_side_imports_only_numpy():
    src = Path(C.__file__).read_text()
    mods = {n.module or "" for n in ast.walk(ast.parse(src)) if isinstance(n, ast.ImportFrom)}
    mods |= {a.name for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Import) for a in n.names}
    assert not {m for m in mods if m.split(".")[0] in ("torch", "amaranth", "cocotb")}
    assert not any(m.endswith("hwexact") or m.endswith("quant") for m in mods)


def _live(prog):
    """Step range [first write, last read] of every tensor (concat views share their root)."""
    first, last = {prog.input: -1}, {}
    for i, l in enumerate(prog.layers):
        first.setdefault(l.output, i)
        for t in l.inputs:
            last[t] = max(last.get(t, -1), i)
    last[prog.output] = len(prog.layers)
    return first, last


@pytest.mark.parametrize("reuse", [True, False])
def test_layout_rules(prog, reuse):
    img = C.compile_program(prog, reuse_memory=reuse)
    first, last = _live(prog)
    for l in prog.layers:
        if l.op == "concat":   # inputs at adjacent channel ranges of the output, no command
            out = img.tensors[l.output]
            off = out.offset
            for t in l.inputs:
                assert img.tensors[t].offset == off
                off += img.tensors[t].nbytes
            assert off == out.offset + out.nbytes
    concat_ins = {t for l in prog.layers if l.op == "concat" for t in l.inputs + [l.output]}
    names = list(img.tensors)
    for t in img.tensors.values():
        assert t.offset % E.FMAP_ALIGN == 0 and t.row_stride % E.ROW_ALIGN == 0
        assert t.offset >= img.regions["arena"][0] and t.offset + t.nbytes <= img.mem_size
    # tensors alive at the same time never overlap (except a concat and its parts)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            if a in concat_ins and b in concat_ins:
                continue
            ta, tb = img.tensors[a], img.tensors[b]
            both = not (last.get(a, first[a]) < first[b] or last.get(b, first[b]) < first[a])
            if both or not reuse:
                assert ta.offset + ta.nbytes <= tb.offset or tb.offset + tb.nbytes <= ta.offset, (a, b)
    assert [c.layer for c in img.commands] == [l.name for l in prog.layers if l.op != "concat"] + ["END"]


def test_reuse_saves_memory(prog):
    assert C.compile_program(prog).mem_size < C.compile_program(prog, reuse_memory=False).mem_size


def test_param_block_matches_program(prog):
    img = C.compile_program(prog)
    for c in img.commands:
        if c.op != E.Op.CONV:
            continue
        f = c.fields
        lay, rec = E.channel_record_layout(f["cin"], f["kernel"], f["bias_lanes"])
        w = prog.arrays[f"{c.layer}.weight"]
        for o in (0, f["cout"] - 1):
            base = f["param_offset"] + o * rec
            off, _, n = lay["weight"]
            got = np.frombuffer(img.memory, np.int8, n, base + off)
            assert np.array_equal(got, w[o].reshape(-1))
            off, _, n = lay["bias_x"]
            assert np.array_equal(np.frombuffer(img.memory, np.int8, n, base + off),
                                  prog.arrays[f"{c.layer}.bias_x"][o])
            wpos = int(np.frombuffer(img.memory, "<i4", 1, base + lay["wpos"][0])[0])
            allw = np.concatenate([w[o].reshape(-1), prog.arrays[f"{c.layer}.bias_w"][o]]).astype(int)
            assert wpos == allw.clip(0).sum()
            if not f["head"]:
                m = int(np.frombuffer(img.memory, "<i4", 1, base + lay["mult"][0])[0])
                assert m == prog.arrays[f"{c.layer}.mult"][o]


def test_policy_fields(prog):
    for pol, want in [("full", E.Policy.FULL), ("end", E.Policy.RELU_END), ("truncate:5", E.Policy.TRUNCATE)]:
        img = C.compile_program(prog, policy=pol)
        assert img.commands[0].fields["policy"] == want
        assert img.commands[0].fields["digits"] == (5 if want == E.Policy.TRUNCATE else 0)
    binary = random_program(1, out_channels=1)
    head = [c for c in C.compile_program(binary, policy="end").commands if c.layer == "head"][0]
    assert head.fields["policy"] == E.Policy.SIGN_ONLY
    with pytest.raises(ValueError, match="unknown policy"):
        C.compile_program(prog, policy="fast")


def test_tensor_io_round_trip(prog):
    img = C.compile_program(prog)
    t = img.tensors[img.input]
    x = np.random.default_rng(0).integers(-128, 128, (t.channels, t.height, t.width))
    C.write_input(img, x)
    assert np.array_equal(C.read_tensor(img, img.input), x)
    raw = np.frombuffer(img.memory, np.int8, t.nbytes, t.offset).reshape(t.channels, t.height, -1)
    assert not raw[:, :, t.width:].any()
    with pytest.raises(ValueError, match="shape"):
        C.write_input(img, x[:, :-1])
    with pytest.raises(ValueError, match=r"\[-128, 127\]"):
        C.write_input(img, x + 200)
    with pytest.raises(KeyError, match="no tensor"):
        C.read_tensor(img, "nope")


def test_save_load(prog, tmp_path):
    img = C.compile_program(prog, policy="end")
    path = C.save_image(tmp_path / "a.msdfi", img)
    back = C.load_image(path, expect_config=img.config)
    assert C.image_to_bytes(back) == C.image_to_bytes(img)
    assert back.tensors == img.tensors and back.commands == img.commands
    raw = bytearray(path.read_bytes())
    raw[200] ^= 1
    (tmp_path / "b.msdfi").write_bytes(raw)
    with pytest.raises(C.ImageFormatError, match="SHA-256"):
        C.load_image(tmp_path / "b.msdfi")
    with pytest.raises(C.ImageFormatError, match="recompile"):
        C.load_image(path, expect_config=E.EngineConfig(line_buffer_bytes=4096))
    (tmp_path / "c.msdfi").write_bytes(b"XXXXXXXX" + bytes(100))
    with pytest.raises(C.ImageFormatError, match="bad magic"):
        C.load_image(tmp_path / "c.msdfi")


@pytest.mark.parametrize("kw, match", [
    (dict(max_channels=10), r"'down.2.conv1'.*output channels 12 exceed.*max_channels=10"),
    (dict(max_width=10), r"'down.0.conv1'.*width 12 exceed.*max_width=10"),
    (dict(max_height=16), r"height 20 exceed.*max_height=16"),
    (dict(max_fan_in=100), r"fan-in.*max_fan_in=100"),
    (dict(line_buffer_bytes=512), r"line buffer.*line_buffer_bytes=512"),
    (dict(weight_buffer_bytes=128), r"'down.2.conv2'.*weight buffer.*weight_buffer_bytes=128"),
    (dict(addr_bits=12), r"address limit.*addr_bits=12"),
])
def test_limits(prog, kw, match):
    with pytest.raises(C.CompileError, match=match):
        C.compile_program(prog, E.EngineConfig(**kw))


def test_bias_lane_limit():
    p = random_program(0, bias_lanes=7)
    with pytest.raises(C.CompileError, match="bias lanes 7 exceed.*max_bias_lanes=6"):
        C.compile_program(p, E.EngineConfig(max_bias_lanes=6))
    C.compile_program(p, E.EngineConfig(max_bias_lanes=7))


def test_weight_tiles(prog):
    cfg = E.EngineConfig(weight_buffer_bytes=1024)
    for c in C.compile_program(prog, cfg).commands:
        if c.op == E.Op.CONV:
            rec = E.channel_record_bytes(c.fields["cin"], c.fields["kernel"], c.fields["bias_lanes"])
            assert 1 <= c.fields["cout_tile"] <= c.fields["cout"]
            assert c.fields["cout_tile"] * rec <= 1024 < (c.fields["cout_tile"] + 1) * rec or \
                c.fields["cout_tile"] == c.fields["cout"]


def test_input_hw(prog):
    img = C.compile_program(prog, input_hw=(12, 28))
    assert (img.tensors[img.input].height, img.tensors[img.input].width) == (12, 28)
    assert img.tensors["down.2.conv1"].height == 3
    with pytest.raises(ValueError, match="divisible by 4"):
        C.compile_program(prog, input_hw=(10, 12))


def test_cli(prog, tmp_path, capsys):
    from msdf_unet.golden.program import save_program
    save_program(tmp_path / "p.msdfp", prog)
    assert C.main([str(tmp_path / "p.msdfp"), "--policy", "end", "--show", "--out", str(tmp_path / "p.msdfi")]) == 0
    assert "up.0.concat" in capsys.readouterr().out
    assert C.load_image(tmp_path / "p.msdfi").policy == "end"


def test_imports_without_torch():
    import subprocess
    import sys
    code = ("import sys; sys.modules['torch'] = None; sys.modules['amaranth'] = None\n"
            "import msdf_unet.host.compiler, msdf_unet.hdl.conv.regs, msdf_unet.spec.engine")
    subprocess.run([sys.executable, "-c", code], check=True)
