"""Online adder and multipliers (golden models) against exact Fraction arithmetic."""
import itertools
import random
from fractions import Fraction

import pytest

from msdf_unet.golden.arith import online
from msdf_unet.golden.arith.digits import DIGITS, frac_value, twos_complement_digits

MUL_BOUND = Fraction(49, 64)


def _prefix_values(res):
    """Value of the output digits up to each index m (m = first_index, ...)."""
    out, acc = [], Fraction(0)
    for i, d in enumerate(res.digits):
        m = res.first_index + i
        acc += Fraction(d, 2 ** m)
        out.append((m, acc))
    return out


def _check_timing(res, delay, first_index):
    # step k produces output index k - delay, nothing before first_index
    for k, d in enumerate(res.steps, start=1):
        if k - delay >= first_index:
            assert d in DIGITS
        else:
            assert d is None
    assert all(d in DIGITS for d in res.digits)


def _check_add(xs, ys):
    X, Y = frac_value(xs), frac_value(ys)
    n = max(len(xs), len(ys))
    res = online.online_add(xs, ys)
    _check_timing(res, 2, 0)
    assert res.value == X + Y and len(res.digits) == n + 1
    for m, zm in _prefix_values(res):
        assert abs(X + Y - zm) < Fraction(1, 2 ** m)
        if m >= n:
            assert zm == X + Y
    # a shorter run is a prefix of the long one (online: digits never change)
    short = online.online_add(xs, ys, n_out=max(0, n - 1))
    assert short.digits == res.digits[:len(short.digits)]
    return res


def test_adder_exhaustive_short():
    for n in range(0, 5):
        for xs in itertools.product(DIGITS, repeat=n):
            for ys in itertools.product(DIGITS, repeat=n):
                _check_add(xs, ys)


def test_adder_random_long():
    rng = random.Random(10)
    for _ in range(300):
        n = rng.randrange(5, 40)
        _check_add([rng.choice(DIGITS) for _ in range(n)], [rng.choice(DIGITS) for _ in range(n)])


def test_adder_uses_only_needed_inputs():
    # z_j depends on inputs 1 .. j+2 only: changing input j+3 never changes z_0..z_j
    rng = random.Random(11)
    for _ in range(200):
        xs = [rng.choice(DIGITS) for _ in range(8)]
        ys = [rng.choice(DIGITS) for _ in range(8)]
        base = online.online_add(xs, ys).digits
        i = rng.randrange(8)
        xs2 = list(xs)
        xs2[i] = rng.choice([d for d in DIGITS if d != xs[i]])
        alt = online.online_add(xs2, ys).digits
        # input digit index i+1 (1-based) may change outputs of index >= i+1-2 only
        keep = max(0, i + 1 - 2)
        assert alt[:keep] == base[:keep]


def _check_mul_ss(xs, ys):
    n = len(xs)
    X, Y = frac_value(xs), frac_value(ys)
    res = online.online_mul_ss(xs, ys)
    _check_timing(res, 3, 1)
    assert res.value == X * Y and len(res.digits) == 2 * n
    for m, pm in _prefix_values(res):
        err = abs(X * Y - pm)
        assert err < Fraction(1, 2 ** m)
        if m + 3 >= n:
            assert err <= MUL_BOUND / 2 ** m
    assert all(abs(w) <= MUL_BOUND for w in res.residuals)
    return res


def test_mul_ss_exhaustive_short():
    worst = Fraction(0)
    for n in range(1, 5):
        for xs in itertools.product(DIGITS, repeat=n):
            for ys in itertools.product(DIGITS, repeat=n):
                res = _check_mul_ss(xs, ys)
                worst = max(worst, max(map(abs, res.residuals)))
    assert worst == MUL_BOUND  # the documented bound is reached (first 3 digits all 1)


def test_mul_ss_random_long():
    rng = random.Random(12)
    for _ in range(200):
        n = rng.randrange(5, 24)
        _check_mul_ss([rng.choice(DIGITS) for _ in range(n)], [rng.choice(DIGITS) for _ in range(n)])


def test_mul_ss_rejects_digits_past_width():
    m = online.OnlineMultiplierSS(digits=2)
    m.step(1, 1)
    m.step(0, 1)
    m.step(0, 0)  # zero tail is fine
    with pytest.raises(ValueError, match="digits=2"):
        m.step(1, 0)


def _check_mul_sp(xs, y, y_bits):
    n = len(xs)
    X, Y = frac_value(xs), Fraction(y, 2 ** (y_bits - 1))
    res = online.online_mul_sp(xs, y, y_bits=y_bits)
    _check_timing(res, 2, 1)
    assert res.value == X * Y and len(res.digits) == n + y_bits - 1
    for m, pm in _prefix_values(res):
        err = abs(X * Y - pm)
        assert err < Fraction(1, 2 ** m)
        if m + 2 >= n:
            assert err <= Fraction(3, 4) / 2 ** m
    assert all(abs(w) <= Fraction(3, 4) for w in res.residuals)


def test_mul_sp_exhaustive_short():
    y_bits = 4
    for n in range(1, 6):
        for xs in itertools.product(DIGITS, repeat=n):
            for y in range(-(1 << (y_bits - 1)), 1 << (y_bits - 1)):
                _check_mul_sp(xs, y, y_bits)


def test_mul_sp_int8_activation_times_weight():
    # an INT8 activation as bit-plane digits times an INT8 weight: exact integer product
    rng = random.Random(13)
    for _ in range(300):
        a, w = rng.randrange(-128, 128), rng.randrange(-127, 128)
        res = online.online_mul_sp(twos_complement_digits(a, 8), w, y_bits=8)
        assert res.value * 2 ** 8 * 2 ** 7 == a * w


def test_mul_sp_random_long():
    rng = random.Random(14)
    for _ in range(200):
        n = rng.randrange(5, 30)
        _check_mul_sp([rng.choice(DIGITS) for _ in range(n)], rng.randrange(-128, 128), 8)


def test_bad_arguments():
    with pytest.raises(ValueError, match="digit 0"):
        online.online_add([2], [0])
    with pytest.raises(ValueError, match="128"):
        online.online_mul_sp([1], 128, y_bits=8)
    with pytest.raises(ValueError, match="digits"):
        online.OnlineMultiplierSS(digits=0)
    with pytest.raises(ValueError, match="y_bits"):
        online.OnlineMultiplierSP(y_bits=0)
    with pytest.raises(ValueError, match="n_out"):
        online.online_add([1], [1], n_out=-1)
