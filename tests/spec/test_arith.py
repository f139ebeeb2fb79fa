"""The facts of msdf_unet.spec.arith, and every place that uses them agrees with them."""
import numpy as np
import pytest

from msdf_unet.spec import arith as spec


def test_digit_counts_from_the_lane_bound():
    for L in [1, 2, 3, 11, 129, 576, 3456]:
        F = spec.online_delay(L)
        # smallest Lb with 2**Lb > L*127, F = Lb + 1
        Lb = next(b for b in range(64) if 2 ** b > L * 127)
        assert F == Lb + 1
        assert spec.stream_digits(L, 5) == 5 + F
    assert spec.online_delay(np.int64(9)) == spec.online_delay(9)
    for bad in (0, -1, 1.0, True, "9", None):
        with pytest.raises(ValueError, match="n_lanes"):
            spec.online_delay(bad)


@pytest.mark.parametrize("L,B,signed", [(1, 2, True), (9, 8, True), (11, 8, False), (3, 16, True)])
def test_widths_hold_the_extremes(L, B, signed):
    lo, hi = spec.act_range(B, signed)
    extreme = max(L * 127 * max(-lo, hi), 1)
    w = spec.acc_width(n_lanes=L, act_bits=B, signed_acts=signed)
    assert -(2 ** (w - 1)) <= -extreme and extreme <= 2 ** (w - 1) - 1
    assert not extreme <= 2 ** (w - 2) - 1         # the smallest such width
    T = spec.stream_digits(L, B)
    vw = spec.value_width(n_lanes=L, act_bits=B, signed_acts=signed)
    assert vw >= w and 2 ** (vw - 1) - 1 >= 2 ** T - 1


def test_act_bits_ranges_are_named_once():
    assert spec.check_act_bits(spec.ACT_BITS_MAX) == spec.ACT_BITS_MAX
    assert spec.check_act_bits(np.int32(4)) == 4
    for bad in (spec.ACT_BITS_MIN - 1, spec.ACT_BITS_MAX + 1, 8.0, True, None):
        with pytest.raises(ValueError, match=r"act_bits must be an integer in \[2, 16\]"):
            spec.check_act_bits(bad)
    with pytest.raises(ValueError, match=r"\[2, 8\]"):
        spec.check_act_bits(spec.ACCEL_ACT_BITS_MAX + 1, hi=spec.ACCEL_ACT_BITS_MAX)


def test_units_and_accelerator_use_the_declared_act_bits_bounds():
    from msdf_unet.hdl.arith.iface import dot_product_io
    from msdf_unet.hdl.soc.config import AccelConfig
    from msdf_unet.hdl.soc.regs import accelerator_map

    dot_product_io(n_lanes=2, act_bits=spec.ACT_BITS_MAX)
    with pytest.raises(ValueError, match="act_bits"):
        dot_product_io(n_lanes=2, act_bits=spec.ACT_BITS_MAX + 1)
    for B in (spec.ACT_BITS_MIN, spec.ACCEL_ACT_BITS_MAX):
        AccelConfig(act_bits=B)
        accelerator_map(n_lanes=3, act_bits=B)
    for B in (spec.ACT_BITS_MIN - 1, spec.ACCEL_ACT_BITS_MAX + 1):
        with pytest.raises(ValueError, match="act_bits"):
            AccelConfig(act_bits=B)
        with pytest.raises(ValueError, match="act_bits"):
            accelerator_map(n_lanes=3, act_bits=B)
    # the CONFIG.act_bits field holds the largest accepted width
    f = accelerator_map(n_lanes=3)["CONFIG"].field("act_bits")
    assert f.decode(f.encode(spec.ACCEL_ACT_BITS_MAX)) == spec.ACCEL_ACT_BITS_MAX
    with pytest.raises(ValueError, match="n_lanes"):
        accelerator_map(n_lanes=spec.ACCEL_MAX_LANES + 1)


def test_policy_declared_once_used_everywhere():
    from msdf_unet.golden.arith import baselines, mma
    from msdf_unet.hdl.arith.iface import Policy as HPolicy
    from msdf_unet.hdl.soc.regs import accelerator_map
    from msdf_unet.host import driver

    codes = {p.name: int(p) for p in spec.Policy}
    assert {p.name: p.value for p in HPolicy} == codes
    assert HPolicy.as_shape().width == spec.POLICY_BITS == max(codes.values()).bit_length()
    assert mma.Policy is spec.Policy and baselines.Policy is spec.Policy
    assert driver.POLICIES == {n.lower(): c for n, c in codes.items()}
    field = accelerator_map(n_lanes=3)["CTRL"].field("policy")
    assert field.width == spec.POLICY_BITS
    assert field.doc == ", ".join(f"{c} {n}" for n, c in codes.items())
    for p in spec.Policy:
        assert spec.policy_code(HPolicy[p.name]) is p
        assert spec.policy_code(p.name.lower()) is p
        assert spec.policy_code(np.int64(p.value)) is p
    for bad in ("nope", 4, -1, 1.5, True, None):
        with pytest.raises(ValueError, match="unknown policy"):
            spec.policy_code(bad)


def test_variants_declared_once():
    from msdf_unet.hdl.arith import bench, variants
    from msdf_unet.hdl.soc.config import VARIANTS, AccelConfig

    assert VARIANTS == spec.VARIANTS == tuple(v.name for v in spec.ARITH_VARIANTS)
    assert set(spec.VARIANTS) <= set(bench.VARIANTS)
    assert set(bench.VARIANTS) - set(spec.VARIANTS) == {"mma-g4", "bitserial-mux", "msdf-v2-flat"}
    for v in spec.ARITH_VARIANTS:
        unit = variants.make_dot_product(AccelConfig(data_lanes=3, bias_lanes=1, variant=v.name))
        assert type(unit).__name__ == v.cls
        assert bench.VARIANTS[v.name][:2] == (v.module, v.cls)
    with pytest.raises(ValueError, match="unknown arithmetic variant"):
        variants.variant("booth")
