"""AccelConfig refuses every setting of the wrong type or range with a ValueError that
names the setting and the value, from Python and from JSON."""
import json
import math

import pytest

from msdf_unet.hdl.soc.config import CLK_MHZ_RANGE, VARIANTS, AccelConfig
from msdf_unet.spec.arith import ACCEL_ACT_BITS_MAX, ACCEL_MAX_LANES


def test_round_trip_and_defaults():
    c = AccelConfig(variant=VARIANTS[-1], clk_mhz=125)
    assert isinstance(c.clk_mhz, float) and c.clk_mhz == 125.0
    assert AccelConfig.from_json(c.to_json()) == c
    assert AccelConfig.from_json("{}") == AccelConfig()
    assert AccelConfig.from_json(json.dumps({"clk_mhz": CLK_MHZ_RANGE[1]})).clk_mhz == CLK_MHZ_RANGE[1]


BAD = [
    ("clk_mhz", True), ("clk_mhz", False), ("clk_mhz", "100"), ("clk_mhz", None), ("clk_mhz", []),
    ("clk_mhz", math.nan), ("clk_mhz", math.inf), ("clk_mhz", CLK_MHZ_RANGE[0] - 0.5),
    ("clk_mhz", CLK_MHZ_RANGE[1] + 1),
    ("data_lanes", 9.0), ("data_lanes", True), ("data_lanes", "9"), ("data_lanes", None),
    ("data_lanes", 0), ("bias_lanes", -1), ("bias_lanes", 2.5), ("group_size", 0),
    ("group_size", [4]), ("act_bits", 8.0), ("act_bits", ACCEL_ACT_BITS_MAX + 1), ("act_bits", 1),
    ("act_bits", True), ("signed_acts", 1), ("signed_acts", "false"), ("signed_acts", None),
    ("variant", "booth"), ("variant", None), ("variant", ["mma"]), ("variant", 0),
]


@pytest.mark.parametrize("key,value", BAD, ids=[f"{k}={v!r}" for k, v in BAD])
def test_bad_setting_names_key_and_value(key, value):
    with pytest.raises(ValueError) as e:
        AccelConfig(**{key: value})
    assert key in str(e.value) and repr(value) in str(e.value)
    if not (isinstance(value, float) and not math.isfinite(value)):   # JSON has no nan/inf
        with pytest.raises(ValueError) as e:
            AccelConfig.from_json(json.dumps({key: value}))
        assert key in str(e.value)


def test_lane_total_bound():
    AccelConfig(data_lanes=ACCEL_MAX_LANES - 1, bias_lanes=1)
    with pytest.raises(ValueError, match=str(ACCEL_MAX_LANES)):
        AccelConfig(data_lanes=ACCEL_MAX_LANES, bias_lanes=1)


@pytest.mark.parametrize("text", ["[]", "null", "3", '"mma"', "true", "[1, 2]"])
def test_json_that_is_not_an_object(text):
    with pytest.raises(ValueError, match="must be an object"):
        AccelConfig.from_json(text)


@pytest.mark.parametrize("text", ["", "{", "{'clk_mhz': 100}", "clk_mhz=100", None, b"\xff{}"])
def test_text_that_is_not_json(text):
    with pytest.raises(ValueError, match="not valid JSON"):
        AccelConfig.from_json(text)


def test_unknown_key():
    with pytest.raises(ValueError, match="unknown AccelConfig keys"):
        AccelConfig.from_json('{"clock": 100}')


def test_accelerator_refuses_variants_it_cannot_drive(capsys, tmp_path):
    """A variant whose transactions need more than the register map holds (msdf-v2's bound
    wpos) is refused with its name, never built with the input tied to 0 (a wrong ReLU stop)."""
    from msdf_unet.hdl.soc.accel import DotProductAccelerator
    from msdf_unet.host.cli import main
    from msdf_unet.spec.arith import ARITH_VARIANTS

    for v in ARITH_VARIANTS:
        config = AccelConfig(data_lanes=2, bias_lanes=1, variant=v.name)
        if v.accel:
            DotProductAccelerator(config)
        else:
            with pytest.raises(ValueError, match=repr(v.name)):
                DotProductAccelerator(config)
    assert not all(v.accel for v in ARITH_VARIANTS)
    assert main(["verilog", "--top", "dot", "--variant", "msdf-v2", "--out", str(tmp_path / "v")]) == 2
    assert "'msdf-v2' cannot sit behind the dot-product accelerator" in capsys.readouterr().err
    assert main(["verilog", "--variant", "msdf-v2", "--out", str(tmp_path / "v")]) == 2   # engine top
    assert "--variant apply to --top dot" in capsys.readouterr().err
