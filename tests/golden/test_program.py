"""The accelerator program file: round trip and every kind of corruption."""
import copy
import hashlib
import json
import os
import re
import struct

import numpy as np
import pytest

from msdf_unet.golden import program as pg
from msdf_unet.golden import quant
from msdf_unet.golden.bench import random_model
from msdf_unet.golden.data import load_dataset
from msdf_unet.golden.unet import UNetConfig


@pytest.fixture(scope="module")
def prog():
    model = random_model(UNetConfig(in_channels=1, out_channels=3, depth=2, base_width=4,
                                    input_size=(16, 16)), seed=1)
    data = load_dataset("synthetic", "train", n=4, size=16)
    return quant.quantize_model(model, data.images)


PRE = struct.Struct("<8sII32s")   # magic, version, header length, SHA-256 of the rest


def _split(raw: bytes):
    magic, version, hlen, _ = PRE.unpack_from(raw)
    header = json.loads(raw[PRE.size:PRE.size + hlen])
    pstart = PRE.size + hlen + (-(PRE.size + hlen)) % pg.ALIGN
    return magic, version, header, raw[pstart:]


def _join(magic, version, header, payload, *, raw_header: bytes | None = None):
    """A file with a correct checksum around ``header`` (so the header checks are reached)."""
    h = json.dumps(header).encode() if raw_header is None else raw_header
    body = h + b"\0" * ((-(PRE.size + len(h))) % pg.ALIGN) + payload
    return PRE.pack(magic, version, len(h), hashlib.sha256(body).digest()) + body


def test_round_trip(prog, tmp_path):
    path = pg.save_program(tmp_path / "net.msdfp", prog)
    back = pg.load_program(path)
    assert back.layers == prog.layers
    assert back.tensors == prog.tensors
    assert back.meta == json.loads(json.dumps(prog.meta))
    assert set(back.arrays) == set(prog.arrays)
    for k, a in prog.arrays.items():
        assert back.arrays[k].dtype == a.dtype and np.array_equal(back.arrays[k], a), k
    raw = path.read_bytes()
    magic, version, header, payload = _split(raw)
    assert magic == pg.MAGIC and version == pg.FORMAT_VERSION
    assert PRE.unpack_from(raw)[3] == hashlib.sha256(raw[PRE.size:]).digest()
    for spec in header["arrays"].values():
        assert spec["offset"] % pg.ALIGN == 0
    assert pg.program_to_bytes(back) == raw          # deterministic serialisation


def test_header_documents_layers(prog):
    _, _, header, _ = _split(pg.program_to_bytes(prog))
    convs = [l for l in header["layers"] if l["op"] == "conv"]
    assert convs[-1]["head"] and not convs[-1]["relu"]
    for l in convs:
        w = header["arrays"][f"{l['name']}.weight"]["shape"]
        assert l["n_lanes"] == w[1] * w[2] * w[3]
        assert header["arrays"][f"{l['name']}.bias_w"]["shape"] == [w[0], l["bias_lanes"]]
        assert header["tensors"][l["output"]]["shape"][0] == w[0]


def _expect(raw, match):
    with pytest.raises(pg.ProgramError, match=match):
        pg.program_from_bytes(raw)


def test_bad_magic(prog):
    raw = pg.program_to_bytes(prog)
    _expect(b"NOTMSDF!" + raw[8:], "bad magic")


def test_unknown_version(prog):
    magic, _, header, payload = _split(pg.program_to_bytes(prog))
    _expect(_join(magic, pg.FORMAT_VERSION + 1, header, payload),
            f"unknown format version {pg.FORMAT_VERSION + 1}")


@pytest.mark.parametrize("cut", ["preamble", "header", "payload"])
def test_truncated(prog, cut):
    raw = pg.program_to_bytes(prog)
    hlen = struct.unpack_from("<I", raw, 12)[0]
    n = {"preamble": 10, "header": PRE.size + hlen // 2, "payload": len(raw) - 5}[cut]
    _expect(raw[:n], "truncated")


def test_trailing_bytes(prog):
    _expect(pg.program_to_bytes(prog) + b"\0", "trailing bytes")


def test_checksum_mismatch(prog):
    raw = bytearray(pg.program_to_bytes(prog))
    raw[-100] ^= 0x01
    _expect(bytes(raw), "checksum mismatch")


def test_header_not_json(prog):
    raw = bytearray(pg.program_to_bytes(prog))
    raw[PRE.size] = ord("#")
    raw[16:PRE.size] = hashlib.sha256(raw[PRE.size:]).digest()
    _expect(bytes(raw), "not valid UTF-8 JSON")


def test_array_shape_inconsistent_with_nbytes(prog):
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    header["arrays"]["head.weight"]["shape"][0] += 1
    _expect(_join(magic, version, header, payload), r"array 'head.weight': header shape")


def test_array_outside_payload(prog):
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    header["arrays"]["head.bias"]["offset"] = len(payload)
    _expect(_join(magic, version, header, payload), "outside the")


def test_tensor_shape_inconsistent_with_weights(prog):
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    name = header["layers"][0]["output"]
    header["tensors"][name]["shape"][0] += 1
    _expect(_join(magic, version, header, payload), "inconsistent program")


def test_layer_reads_undefined_tensor(prog):
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    header["layers"][0]["inputs"] = ["nowhere"]
    _expect(_join(magic, version, header, payload), "'nowhere' is not produced")


def test_missing_header_key(prog):
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    del header["layers"]
    _expect(_join(magic, version, header, payload), "malformed header")


def test_save_rejects_illegal_weight(prog, tmp_path):
    bad = copy.deepcopy(prog)
    bad.arrays["head.weight"].flat[0] = -128
    with pytest.raises(pg.ProgramError, match="-128"):
        pg.save_program(tmp_path / "bad.msdfp", bad)


def test_save_rejects_wrong_bias_folding(prog):
    bad = copy.deepcopy(prog)
    layer = bad.conv_layers()[0]
    bad.arrays[layer.array("bias")][0] += 1
    with pytest.raises(pg.ProgramError, match="bias lanes do not sum"):
        bad.validate()


def test_concat_scales_must_match(prog):
    bad = copy.deepcopy(prog)
    cat = next(l for l in bad.layers if l.op == "concat")
    bad.tensors[cat.inputs[0]].scale *= 2
    with pytest.raises(pg.ProgramError, match="scale"):
        bad.validate()


def test_load_missing_file(tmp_path):
    with pytest.raises(OSError):
        pg.load_program(tmp_path / "none.msdfp")


# ------------------------------------------------------- integrity of the header (issue 10)

def test_checksum_covers_the_header(prog):
    """One changed character of the input scale must not load (it changed 51% of labels)."""
    raw = pg.program_to_bytes(prog)
    _, _, header, _ = _split(raw)
    text = json.dumps(header["tensors"][header["input"]]["scale"])
    at = raw.index(text.encode(), PRE.size)
    digit = next(i for i, ch in enumerate(text) if ch in "123456789")
    bad = bytearray(raw)
    bad[at + digit] = ord("1") if text[digit] != "1" else ord("2")
    _expect(bytes(bad), "checksum mismatch")


def test_version_1_is_refused_with_how_to_recreate(prog):
    magic, _, header, payload = _split(pg.program_to_bytes(prog))
    with pytest.raises(pg.ProgramError, match="format version 1") as e:
        pg.program_from_bytes(_join(magic, 1, header, payload))
    assert "msdf-unet eval" in str(e.value) and "quantize_model" in str(e.value)


def _mutated(prog, edit):
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    edit(header)
    return _join(magic, version, header, payload)


def _conv0(h):
    return next(l for l in h["layers"] if l["op"] == "conv")


def _set_tensor(field, value):
    def edit(h):
        h["tensors"][h["input"]][field] = value
    return edit


def _set_layer(field, value):
    def edit(h):
        _conv0(h)[field] = value
    return edit


@pytest.mark.parametrize("edit, key, shown", [
    (_set_layer("relu", "false"), "relu", "'false'"),
    (_set_layer("head", 0), "head", "0"),
    (_set_layer("kernel", 3.0), "kernel", "3.0"),
    (_set_layer("kernel", True), "kernel", "True"),
    (_set_layer("n_lanes", "9"), "n_lanes", "'9'"),
    (_set_layer("op", "deconv"), "op", "'deconv'"),
    (_set_layer("name", 7), "name", "7"),
    (_set_layer("inputs", "x"), "inputs", "'x'"),
    (_set_layer("inputs", [None]), r"inputs\[0\]", "None"),
    (_set_tensor("scale", "0.1"), "scale", "'0.1'"),
    (_set_tensor("scale", -0.5), "scale", "-0.5"),
    (_set_tensor("scale", 0), "scale", "0"),
    (_set_tensor("scale", True), "scale", "True"),
    (_set_tensor("shape", 96.9), "shape", "96.9"),
    (_set_tensor("shape", [1, 16.5, 16]), r"shape\[1\]", "16.5"),
    (_set_tensor("shape", [1, 0, 16]), r"shape\[1\]", "0"),
    (_set_tensor("shape", [1, 16]), "shape", r"\[1, 16\]"),
    (lambda h: h.update(act_bits=8.9), "act_bits", "8.9"),
    (lambda h: h.update(act_bits="8"), "act_bits", "'8'"),
    (lambda h: h.update(act_signed="false"), "act_signed", "'false'"),
    (lambda h: h.update(input=["x"]), "input", r"\['x'\]"),
    (lambda h: h.update(payload_bytes=-1), "payload_bytes", "-1"),
    (lambda h: h.update(meta=[]), "meta", r"\[\]"),
    (lambda h: h.update(layers={}), "layers", r"\{\}"),
    (lambda h: h.update(tensors=None), "tensors", "None"),
    (lambda h: h["arrays"]["head.bias"].update(offset=10 ** 30), "offset", "1000000000000000"),
    (lambda h: h["arrays"]["head.bias"].update(shape=[10 ** 30]), r"shape\[0\]", "1000000000000000"),
    (lambda h: h["arrays"]["head.bias"].update(dtype=None), "dtype", "None"),
])
def test_header_types_are_strict(prog, edit, key, shown):
    with pytest.raises(pg.ProgramError, match="malformed header") as e:
        pg.program_from_bytes(_mutated(prog, edit))
    assert re.search(key, str(e.value)) and re.search(shown, str(e.value)), str(e.value)


def test_unknown_and_duplicate_keys(prog):
    _expect(_mutated(prog, lambda h: h.update(extra=1)), "unknown keys.*extra")
    _expect(_mutated(prog, lambda h: _conv0(h).update(stride=2)), "unknown keys.*stride")
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    text = json.dumps(header)
    dup = text[:-1] + ', "act_bits": 8}'
    _expect(_join(magic, version, None, payload, raw_header=dup.encode()), "'act_bits' appears twice")


@pytest.mark.parametrize("raw_header", [
    b"[" * 100000 + b"]" * 100000,                       # RecursionError in json
    b'{"meta": ' + b"[" * 100000 + b"]" * 100000 + b"}",
    b'{"act_bits": ' + b"9" * 5000 + b"}",               # longer than int() converts
    b'{"act_bits": 1e999}',
    b"null", b"[]", b'"text"', b"3",
])
def test_hostile_headers_raise_program_error(prog, raw_header):
    magic, version, _, payload = _split(pg.program_to_bytes(prog))
    with pytest.raises(pg.ProgramError):
        pg.program_from_bytes(_join(magic, version, None, payload, raw_header=raw_header))


_ODD_VALUES = ["false", "true", 3.0, "0.1", 96.9, 8.9, -1, 0, 1, 10 ** 30, -(10 ** 30), 1e308,
               float("nan"), float("inf"), None, [], {}, [[[[]]]], True, False, "", "x" * 1000,
               [1, 2, 3], {"a": 1}, [3.5, "a"], 2 ** 63]


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def test_mutated_headers_raise_only_program_error(prog):
    """Property: replacing or deleting any value of a valid header either still loads or
    raises ProgramError -- never another exception (seeded, 400 random mutations)."""
    magic, version, header, payload = _split(pg.program_to_bytes(prog))
    paths = [p for p in _paths(header) if p]
    rng = np.random.default_rng(10)
    outcomes = {"loaded": 0, "refused": 0}
    for _ in range(400):
        h = copy.deepcopy(header)
        for _ in range(int(rng.integers(1, 3))):
            path = paths[int(rng.integers(len(paths)))]
            node = h
            try:
                for k in path[:-1]:
                    node = node[k]
                if rng.random() < 0.1 and isinstance(node, dict):
                    del node[path[-1]]
                else:
                    node[path[-1]] = copy.deepcopy(_ODD_VALUES[int(rng.integers(len(_ODD_VALUES)))])
            except (KeyError, IndexError, TypeError):
                continue                         # an earlier mutation removed the path
        raw = _join(magic, version, None, payload, raw_header=json.dumps(h).encode())
        try:
            pg.program_from_bytes(raw)
            outcomes["loaded"] += 1
        except pg.ProgramError:
            outcomes["refused"] += 1
    assert outcomes["refused"] > 300, outcomes


# ------------------------------------------------------------------- what load_program reads

def test_load_refuses_fifo(tmp_path):
    fifo = tmp_path / "pipe.msdfp"
    os.mkfifo(fifo)
    with pytest.raises(pg.ProgramError, match="not a regular file"):
        pg.load_program(fifo)          # would block forever waiting for a writer


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_load_refuses_device():
    with pytest.raises(pg.ProgramError, match="not a regular file"):
        pg.load_program("/dev/zero")   # would read gigabytes


def test_load_refuses_directory(tmp_path):
    with pytest.raises(pg.ProgramError, match="not a regular file"):
        pg.load_program(tmp_path)


def test_load_caps_the_size(prog, tmp_path, monkeypatch):
    path = pg.save_program(tmp_path / "net.msdfp", prog)
    monkeypatch.setattr(pg, "MAX_PROGRAM_BYTES", path.stat().st_size - 1)
    with pytest.raises(pg.ProgramError, match="limit"):
        pg.load_program(path)
    monkeypatch.setattr(pg, "MAX_PROGRAM_BYTES", path.stat().st_size)
    assert pg.load_program(path).layers == prog.layers


@pytest.mark.parametrize("exc", [KeyboardInterrupt, OSError])
def test_interrupted_save_keeps_the_old_program(prog, tmp_path, monkeypatch, exc):
    path = pg.save_program(tmp_path / "net.msdfp", prog)
    before = path.read_bytes()

    def interrupted(fd):
        raise exc()
    monkeypatch.setattr(os, "fsync", interrupted)     # the data is written, not yet synced
    bad = copy.deepcopy(prog)
    bad.meta = {"changed": True}
    with pytest.raises(exc):
        pg.save_program(path, bad)
    monkeypatch.undo()
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["net.msdfp"]


@pytest.mark.parametrize("field, value", [("relu", "false"), ("kernel", 3.0), ("head", 1)])
def test_save_refuses_what_load_would_refuse(prog, field, value):
    bad = copy.deepcopy(prog)
    setattr(bad.conv_layers()[0], field, value)
    with pytest.raises(pg.ProgramError, match=f"{field} must be"):
        pg.program_to_bytes(bad)
