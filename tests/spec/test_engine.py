"""Contract of the convolution engine: config JSON, descriptor/status layouts, checks."""
import json

import pytest

from msdf_unet.golden.arith import mma
from msdf_unet.spec import arith as spec_arith
from msdf_unet.spec import engine as E


def test_config_json_round_trip_and_digest():
    c = E.EngineConfig(arrays=(E.ArrayConfig("mma", 3, 36),), line_buffer_bytes=32768)
    c2 = E.EngineConfig.from_json(c.to_json())
    assert c2 == c and c2.digest == c.digest
    assert c.digest != E.EngineConfig().digest
    assert c.digest32 == int(c.digest[:8], 16)
    assert c.total_kpbs == 3 and c.total_lanes == 3 * 36
    c3 = E.EngineConfig(out_buffer_bytes=4096, param_table_depth=16)
    assert E.EngineConfig.from_json(c3.to_json()) == c3 and c3.digest != E.EngineConfig().digest


def test_config_json_without_the_new_buffers_loads_the_built_sizes():
    """A JSON written before out_buffer_bytes/param_table_depth existed describes the
    engine that was built then: a 16 KiB output-row buffer and a 64-entry parameter table."""
    d = E.EngineConfig().to_dict()
    del d["out_buffer_bytes"], d["param_table_depth"]
    c = E.EngineConfig.from_dict(d)
    assert (c.out_buffer_bytes, c.param_table_depth) == (16384, 64)
    assert c.out_buffer_words == 16384 // 8
    assert c.weight_rows == c.weight_buffer_bytes // c.arrays[0].lanes


def test_config_refuses_what_the_rtl_does_not_build():
    """Several arrays and PE variants other than the built one are refused, never built
    silently as the MMA engine; the fan-in stays within the PE's 32-bit accumulator."""
    with pytest.raises(E.EngineConfigError, match="one array"):
        E.EngineConfig(arrays=(E.ArrayConfig("mma", 8, 72), E.ArrayConfig("mma", 4, 36)))
    for v in ("msdf-v2", "bitserial", "bitparallel-lut"):
        with pytest.raises(E.EngineConfigError, match="variant"):
            E.ArrayConfig(v, 4, 36)
    assert set(E.VARIANTS) <= set(spec_arith.VARIANTS)
    assert [E.beats_per_chunk(v) for v in E.VARIANTS] == [E.ACT_BITS, 1]
    with pytest.raises(ValueError, match="variant"):
        E.beats_per_chunk("bitserial")
    # the variants' fit configurations: the MSDF one is the board's
    assert E.FIT_CONFIGS["mma"] == E.BOARD_CONFIG and set(E.FIT_CONFIGS) == set(E.VARIANTS)
    assert all(c.arrays[0].variant == v for v, c in E.FIT_CONFIGS.items())
    worst = E.MAX_FAN_IN_LIMIT * E.MAX_WEIGHT * 128  # every lane at its extreme
    assert worst < 2 ** 31 <= (E.MAX_FAN_IN_LIMIT + 1) * E.MAX_WEIGHT * 128
    E.EngineConfig(max_fan_in=E.MAX_FAN_IN_LIMIT)
    with pytest.raises(E.EngineConfigError, match="max_fan_in"):
        E.EngineConfig(max_fan_in=E.MAX_FAN_IN_LIMIT + 1)


@pytest.mark.parametrize("kw, match", [
    ({"max_bias_lanes": 4}, "max_bias_lanes"),
    ({"axi_data_bits": 32}, "axi_data_bits"),
    ({"max_burst_beats": 17}, "max_burst_beats"),
    ({"line_buffer_bytes": True}, "line_buffer_bytes"),
    ({"arrays": ()}, "arrays"),
    ({"max_channels": 70000}, "max_channels"),
    ({"out_buffer_bytes": 1001}, "out_buffer_bytes must be a multiple of 8"),
    ({"out_buffer_bytes": 32}, "out_buffer_bytes"),
    ({"param_table_depth": 0}, "param_table_depth"),
    ({"weight_buffer_bytes": 64, "arrays": (E.ArrayConfig("mma", 1, 72),)}, "holds no row"),
])
def test_config_bad_values(kw, match):
    with pytest.raises(E.EngineConfigError, match=match):
        E.EngineConfig(**kw)


@pytest.mark.parametrize("lanes", [16, 70, 1])
def test_lanes_must_be_a_multiple_of_3(lanes):
    """The window builder writes a 3x3 window row (3 bytes) into one chunk per cycle."""
    with pytest.raises(E.EngineConfigError, match=r"lanes must be .*3"):
        E.ArrayConfig("mma", 1, lanes)


def test_config_bad_json():
    with pytest.raises(E.EngineConfigError, match="unknown engine config keys"):
        E.EngineConfig.from_dict({"lanes": 3})
    with pytest.raises(E.EngineConfigError, match="variant"):
        E.EngineConfig.from_dict({"arrays": [{"variant": "fpu"}]})
    with pytest.raises(E.EngineConfigError, match="not valid JSON"):
        E.EngineConfig.from_json("{")


def _conv(**kw):
    d = dict(op=E.Op.CONV, policy=E.Policy.RELU_END, relu=1, kernel=3, padding=1, cin=5, cout=7,
             height=9, width=11, bias_lanes=5, cout_tile=7, in_offset=0x1000, out_offset=0x2000,
             param_offset=0x3000, status_offset=0x40)
    d.update(kw)
    return d


def test_descriptor_round_trip_every_field():
    for f in E.DESCRIPTOR_FIELDS:
        for v in (0, 1, f.max):
            d = _conv(**{f.name: v})
            if f.name == "op":
                d["op"] = E.Op.END
            raw = E.encode_descriptor(**d)
            assert len(raw) == E.DESCRIPTOR_BYTES
            back = E.decode_descriptor(raw)
            assert not back["reserved"]
            assert all(back[k] == int(v2) for k, v2 in d.items())


def test_descriptor_errors():
    with pytest.raises(E.DescriptorError, match="'cin' holds integers in \\[0, 65535\\]"):
        E.encode_descriptor(**_conv(cin=1 << 16))
    with pytest.raises(E.DescriptorError, match="'in_offset'"):
        E.encode_descriptor(**_conv(in_offset=-1))
    with pytest.raises(E.DescriptorError, match="unknown op 9"):
        E.encode_descriptor(op=9)
    with pytest.raises(E.DescriptorError, match="no field 'stride'"):
        E.encode_descriptor(op=E.Op.END, stride=2)
    with pytest.raises(E.DescriptorError, match="64 bytes"):
        E.decode_descriptor(b"\0" * 63)


def test_reserved_bits_detected():
    raw = bytearray(E.encode_descriptor(op=E.Op.END))
    raw[40] = 1
    assert E.decode_descriptor(raw)["reserved"]
    assert E.check_descriptor(E.decode_descriptor(raw), E.EngineConfig(), 1 << 20)[0] == E.ErrorCode.BAD_FIELD


def test_status_round_trip():
    v = {f.name: f.max for f in E.STATUS_FIELDS}
    assert E.decode_status(E.encode_status(**v)) == v
    assert len(E.encode_status()) == E.STATUS_BYTES


def test_policy_codes_match_mma():
    assert {p.name: p.value for p in E.Policy} == {p.name: p.value for p in mma.Policy}


@pytest.mark.parametrize("lanes", [1, 9, 14, 437, 3461])
def test_digits_match_mma(lanes):
    assert E.stream_digits(lanes) == mma.stream_digits(lanes)


def test_layout_rules():
    assert E.row_stride(1) == 8 and E.row_stride(8) == 8 and E.row_stride(9) == 16
    assert E.row_stride(3, 4) == 16
    assert E.plane_stride(3, 9) == 48
    lay, n = E.channel_record_layout(3, 3, 2)
    assert lay["weight"] == (0, "int8", 27) and lay["bias_x"] == (29, "int8", 2)
    assert lay["mult"][0] % 4 == 0 and n % 8 == 0
    with pytest.raises(ValueError, match="width"):
        E.row_stride(0)


def test_check_descriptor_order_and_codes():
    c = E.EngineConfig()
    ok = E.decode_descriptor(E.encode_descriptor(**_conv()))
    assert E.check_descriptor(ok, c, 1 << 20) == (E.ErrorCode.NONE, "")

    def code(mem=1 << 20, **kw):
        d = dict(ok)
        d.update(kw)
        return E.check_descriptor(d, c, mem)[0]

    assert code(op=0) == E.ErrorCode.UNKNOWN_OP
    assert code(kernel=5) == E.ErrorCode.BAD_FIELD
    assert code(policy=E.Policy.TRUNCATE, digits=0) == E.ErrorCode.BAD_FIELD
    assert code(cin=0) == E.ErrorCode.ZERO_SIZE
    assert code(cout_tile=0) == E.ErrorCode.ZERO_SIZE
    assert code(bias_lanes=c.max_bias_lanes + 1) == E.ErrorCode.SIZE_LIMIT
    assert code(width=c.max_width + 1) == E.ErrorCode.SIZE_LIMIT
    assert code(cout_tile=1000, cout=1000) == E.ErrorCode.SIZE_LIMIT
    # the buffers every core has: one channel's weight rows, one output row
    small = E.EngineConfig(arrays=(E.ArrayConfig("mma", 1, 12),), weight_buffer_bytes=64,
                           out_buffer_bytes=64)
    ok_small = dict(ok, cin=2, cout=1, cout_tile=1, width=8, bias_lanes=1)
    assert E.check_descriptor(ok_small, small, 1 << 20)[0] == E.ErrorCode.NONE
    # 143 bytes hold one row of 72 weights: 8 channels x 9 fit one row, 9 channels need
    # two (while the 104-byte channel record still fits the buffer's bytes)
    rows = E.EngineConfig(arrays=(E.ArrayConfig("mma", 1, 72),), weight_buffer_bytes=143)
    assert rows.weight_rows == 1
    d = dict(ok, cout=1, cout_tile=1, bias_lanes=1, width=8)
    assert E.check_descriptor(dict(d, cin=8), rows, 1 << 20)[0] == E.ErrorCode.NONE
    assert E.channel_record_bytes(9, 3, 1) <= 143
    code_, why = E.check_descriptor(dict(d, cin=9), rows, 1 << 20)
    assert code_ == E.ErrorCode.SIZE_LIMIT and "weight buffer rows" in why
    code_, why = E.check_descriptor(dict(ok_small, width=65), small, 1 << 20)
    assert code_ == E.ErrorCode.SIZE_LIMIT and "output row bytes" in why
    # the head's row holds INT32: 16 pixels are 64 bytes, 17 are not
    head = dict(ok_small, head=1, relu=0, policy=E.Policy.FULL, kernel=1, padding=0)
    assert E.check_descriptor(dict(head, width=16), small, 1 << 20)[0] == E.ErrorCode.NONE
    assert E.check_descriptor(dict(head, width=17), small, 1 << 20)[0] == E.ErrorCode.SIZE_LIMIT
    assert code(in_offset=0x1001) == E.ErrorCode.MISALIGNED
    assert code(param_offset=0x3008) == E.ErrorCode.MISALIGNED
    assert code(mem=0x3000) == E.ErrorCode.OUT_OF_IMAGE
    # a zero size is reported before a misaligned address (the normative order)
    assert code(cin=0, in_offset=3) == E.ErrorCode.ZERO_SIZE


def test_layer_policy_matches_hwexact():
    import torch  # noqa: F401, PLC0415 - installed by make setup (the dev extra)
    from msdf_unet.golden import hwexact
    from msdf_unet.golden.program import Layer
    for relu, head, cout in [(True, False, 8), (False, True, 1), (False, True, 3)]:
        lay = Layer("l", "conv", ["x"], "y", kernel=3, padding=1, relu=relu, head=head,
                    n_lanes=72, bias_lanes=2)
        T = hwexact.layer_digits(lay)
        for text in ["full", "end", "truncate:3", "truncate:99"]:
            rp = hwexact.RunPolicy.parse(text)
            pol, p = hwexact._layer_policy(lay, rp, T, cout)
            mine, digits = E.layer_policy(relu=relu, head=head, cout=cout, mode=rp.mode,
                                          digits=rp.digits, lanes=74)
            assert mine.value == pol.value and (digits or None) == p


def test_fields_json_exportable():
    json.dumps([f.__dict__ for f in E.DESCRIPTOR_FIELDS])


def test_check_fetch():
    assert E.check_fetch(0, 0, 64)[0] == E.ErrorCode.NONE
    assert E.check_fetch(0, 1, 64)[0] == E.ErrorCode.OUT_OF_IMAGE
    assert E.check_fetch(32, 0, 4096)[0] == E.ErrorCode.MISALIGNED
    assert E.check_fetch(0, E.MAX_COMMANDS, 1 << 30)[0] == E.ErrorCode.SIZE_LIMIT
