"""Signed-digit streams and the on-the-fly conversion model against plain integer math."""
import itertools
import random
from fractions import Fraction

import pytest

from msdf_unet.golden.arith import digits as dg
from msdf_unet.hdl.arith.digit import Digit


def test_values_of_small_streams():
    for n in range(0, 6):
        for ds in itertools.product(dg.DIGITS, repeat=n):
            expected = sum(d * 2 ** (n - 1 - t) for t, d in enumerate(ds))
            assert dg.int_value(ds) == expected
            assert dg.frac_value(ds) == Fraction(expected, 2 ** n)
            assert dg.frac_value(ds, first_weight_log2=0) == Fraction(expected) * Fraction(2) ** (1 - n)


def test_digit_enum_members_accepted():
    assert dg.int_value([Digit.POS, Digit.NEG, Digit.ZERO]) == 4 - 2


@pytest.mark.parametrize("bad", [2, -2, 0.5, True, "1", None])
def test_bad_digit_rejected(bad):
    with pytest.raises(ValueError, match="digit 1"):
        dg.int_value([1, bad])


@pytest.mark.parametrize("width", [1, 2, 5, 8])
def test_twos_complement_round_trip(width):
    for v in range(-(1 << (width - 1)), 1 << (width - 1)):
        ds = dg.twos_complement_digits(v, width)
        assert len(ds) == width and dg.int_value(ds) == v == dg.decode_twos_complement(ds)
        # the bit pattern is the two's-complement bits, top plane negative
        assert [abs(d) for d in ds] == [(v >> (width - 1 - t)) & 1 for t in range(width)]
        assert all(d in (0, 1) for d in ds[1:]) and ds[0] in (0, -1)


def test_twos_complement_range():
    with pytest.raises(ValueError, match="128"):
        dg.twos_complement_digits(128, 8)
    with pytest.raises(ValueError, match="-129"):
        dg.twos_complement_digits(-129, 8)
    with pytest.raises(ValueError, match="width"):
        dg.twos_complement_digits(0, 0)
    with pytest.raises(ValueError, match="bit-plane"):
        dg.decode_twos_complement([1, 0])


@pytest.mark.parametrize("width", [1, 3, 8])
def test_unsigned(width):
    for v in range(1 << width):
        assert dg.int_value(dg.unsigned_digits(v, width)) == v
    with pytest.raises(ValueError, match=str(1 << width)):
        dg.unsigned_digits(1 << width, width)


def test_naf_is_unique_minimal_form():
    width = 7
    # all streams of `width` digits, grouped by value: the NAF is the non-adjacent one with
    # the minimum number of nonzero digits
    by_value = {}
    for ds in itertools.product(dg.DIGITS, repeat=width):
        by_value.setdefault(dg.int_value(ds), []).append(ds)
    for v, forms in by_value.items():
        nafs = [f for f in forms if dg.is_naf(f)]
        if nafs:
            assert dg.naf_digits(v, width) == nafs[0] and len(nafs) == 1
            assert sum(map(abs, nafs[0])) == min(sum(map(abs, f)) for f in forms)
        else:
            with pytest.raises(ValueError, match=str(v)):
                dg.naf_digits(v, width)
    rng = random.Random(1)
    for _ in range(200):
        v = rng.randrange(-10 ** 12, 10 ** 12)
        ds = dg.naf_digits(v, 42)
        assert dg.int_value(ds) == v and dg.is_naf(ds)


@pytest.mark.parametrize("width", [1, 3, 5])
def test_otf_int_exhaustive(width):
    for n in range(0, 7):
        for ds in itertools.product(dg.DIGITS, repeat=n):
            steps = dg.otf_int_steps(ds, width)
            assert len(steps) == n
            for k, st in enumerate(steps, start=1):
                exact = dg.int_value(ds[:k])
                assert st.q == exact and st.qm == exact - 1 and st.digit == ds[k - 1]
                assert st.q_bits == exact % 2 ** width and st.qm_bits == (exact - 1) % 2 ** width
                if -(1 << (width - 1)) <= exact < (1 << (width - 1)):
                    assert dg.to_signed(st.q_bits, width) == exact


def test_otf_int_random_long():
    rng = random.Random(2)
    for _ in range(100):
        ds = [rng.choice(dg.DIGITS) for _ in range(40)]
        last = dg.otf_int_steps(ds, 42)[-1]
        assert dg.to_signed(last.q_bits, 42) == dg.int_value(ds)
        assert dg.to_signed(last.qm_bits, 42) == dg.int_value(ds) - 1


def test_otf_frac_exhaustive():
    width = 6
    for n in range(0, width + 1):
        for ds in itertools.product(dg.DIGITS, repeat=n):
            for j, st in enumerate(dg.otf_frac_steps(ds, width), start=1):
                exact = dg.frac_value(ds[:j])
                assert st.q == exact and st.qm == exact - Fraction(1, 2 ** j)
                assert dg.to_signed(st.q_bits, width + 1) == exact * 2 ** width
                assert dg.to_signed(st.qm_bits, width + 1) == (exact - Fraction(1, 2 ** j)) * 2 ** width
    with pytest.raises(ValueError, match="width=2"):
        dg.otf_frac_steps([1, 0, 1], 2)


def test_fraction_digits():
    n = 5
    for k in range(-(1 << n) + 1, 1 << n):
        v = Fraction(k, 2 ** n)
        ds = dg.fraction_digits(v, n)
        assert dg.frac_value(ds) == v and len(ds) == n
        assert all(d * k >= 0 for d in ds)  # the sign of the value on every digit
        try:
            naf = dg.fraction_digits(v, n, form="naf")
        except ValueError:
            with pytest.raises(ValueError):
                dg.naf_digits(k, n)
        else:
            assert dg.frac_value(naf) == v and dg.is_naf(naf)
    with pytest.raises(ValueError, match="multiple"):
        dg.fraction_digits(Fraction(1, 3), 4)
    with pytest.raises(ValueError, match=r"\(-1, 1\)"):
        dg.fraction_digits(1, 4)
    with pytest.raises(ValueError, match="form"):
        dg.fraction_digits(0, 4, form="csd")
