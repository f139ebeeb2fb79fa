"""The accelerator program file: round trip and every kind of corruption."""
import copy
import hashlib
import json
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


def _split(raw: bytes):
    magic, version, hlen = struct.unpack_from("<8sII", raw)
    header = json.loads(raw[16:16 + hlen])
    pstart = 16 + hlen + (-(16 + hlen)) % pg.ALIGN
    return magic, version, header, raw[pstart:]


def _join(magic, version, header, payload):
    h = json.dumps(header).encode()
    head = struct.pack("<8sII", magic, version, len(h)) + h
    return head + b"\0" * ((-len(head)) % pg.ALIGN) + payload


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
    assert header["payload_sha256"] == hashlib.sha256(payload).hexdigest()
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
    _expect(_join(magic, pg.FORMAT_VERSION + 1, header, payload), "unknown format version 2")


@pytest.mark.parametrize("cut", ["preamble", "header", "payload"])
def test_truncated(prog, cut):
    raw = pg.program_to_bytes(prog)
    hlen = struct.unpack_from("<I", raw, 12)[0]
    n = {"preamble": 10, "header": 16 + hlen // 2, "payload": len(raw) - 5}[cut]
    _expect(raw[:n], "truncated")


def test_trailing_bytes(prog):
    _expect(pg.program_to_bytes(prog) + b"\0", "trailing bytes")


def test_checksum_mismatch(prog):
    raw = bytearray(pg.program_to_bytes(prog))
    raw[-100] ^= 0x01
    _expect(bytes(raw), "checksum mismatch")


def test_header_not_json(prog):
    raw = bytearray(pg.program_to_bytes(prog))
    raw[16] = ord("#")
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
