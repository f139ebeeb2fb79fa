"""Radix-2 signed-digit streams and the on-the-fly conversion model.

Digits are Python ints in ``{-1, 0, 1}`` (the values of
:class:`msdf_unet.hdl.arith.digit.Digit`), most significant first. A stream has two
readings, and every function here says which one it uses:

integer (Horner) reading
    ``z_0 .. z_{T-1}`` has the value ``sum(z_t * 2**(T-1-t))`` (:func:`int_value`). This is
    the reading of the shared ``Digit`` doc, of the MMA unit and of
    :class:`~msdf_unet.hdl.arith.otf.OnTheFlyConverter`.
fraction reading
    ``x_1, x_2, ...`` has the value ``sum(x_j * 2**-j)`` (:func:`frac_value`), first digit
    of weight 1/2. This is the reading of the textbook online operators
    (:mod:`msdf_unet.golden.arith.online`); a stream of ``n`` digits is ``int_value / 2**n``.

Encoders
    :func:`twos_complement_digits` (bit-planes of a two's-complement integer, top plane
    negative: exactly how the MMA unit streams a signed activation),
    :func:`unsigned_digits` and :func:`naf_digits` (canonical non-adjacent form, the
    unique representation with no two adjacent nonzero digits and minimal weight);
    :func:`fraction_digits` for a fraction (binary with the sign on every digit, or NAF).

On-the-fly conversion (Ercegovac & Lang, *Digital Arithmetic*, 2004, sec. 2.9)
    A signed-digit stream is turned into two's complement without carry propagation by
    keeping two registers, ``Q`` (value of the digits so far) and ``QM = Q - ulp``, and
    building both by *appending* one bit to one of them: :func:`otf_int_steps` models the
    integer (Horner) form used by the ``OnTheFlyConverter`` RTL, :func:`otf_frac_steps`
    the fraction form (append at a moving position) used inside the online multiplier.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from typing import Iterable, Sequence

__all__ = [
    "DIGITS", "check_digits", "int_value", "frac_value",
    "twos_complement_digits", "unsigned_digits", "naf_digits", "is_naf", "decode_twos_complement",
    "fraction_digits",
    "OtfStep", "otf_int_steps", "otf_frac_steps", "to_signed", "to_unsigned",
]

#: the radix-2 digit set, as ints
DIGITS = (-1, 0, 1)


def check_digits(digits: Iterable[int]) -> tuple[int, ...]:
    """Return ``digits`` as a tuple of ints; ``ValueError`` naming the first bad one."""
    out = []
    for i, d in enumerate(digits):
        # accept Digit enum members and other int-likes, but not bool/float surprises
        v = getattr(d, "value", d)
        if isinstance(v, bool) or not isinstance(v, int) or v not in DIGITS:
            raise ValueError(f"digit {i} is {d!r}, not one of -1, 0, 1")
        out.append(v)
    return tuple(out)


def int_value(digits: Iterable[int]) -> int:
    """Integer (Horner) value ``sum(z_t * 2**(T-1-t))`` of an MSD-first stream."""
    v = 0
    for d in check_digits(digits):
        v = 2 * v + d
    return v


def frac_value(digits: Iterable[int], *, first_weight_log2: int = -1) -> Fraction:
    """Fraction value ``sum(x_j * 2**(first_weight_log2 - j + 1))`` of an MSD-first stream.

    With the default ``first_weight_log2=-1`` the first digit weighs 1/2, so
    ``frac_value(x) == int_value(x) / 2**len(x)``. ``first_weight_log2=0`` reads a stream
    whose first digit is an integer digit (the online adder output ``z_0, z_1, ...``).
    """
    ds = check_digits(digits)
    return Fraction(int_value(ds)) * Fraction(2) ** (first_weight_log2 + 1 - len(ds))


def _check_width(width):
    if isinstance(width, bool) or not isinstance(width, int) or width < 1:
        raise ValueError(f"width must be a positive integer, not {width!r}")


def twos_complement_digits(value: int, width: int) -> tuple[int, ...]:
    """Bit-planes of ``value`` as signed(width), MSB first: top digit ``-bit``, others ``+bit``.

    ``int_value`` of the result is ``value``. ``ValueError`` when ``value`` does not fit.
    """
    _check_width(width)
    lo, hi = -(1 << (width - 1)), (1 << (width - 1)) - 1
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise ValueError(f"value {value!r} does not fit signed({width}): range [{lo}, {hi}]")
    bits = value & ((1 << width) - 1)
    return tuple((-1 if t == 0 else 1) * ((bits >> (width - 1 - t)) & 1) for t in range(width))


def decode_twos_complement(digits: Sequence[int]) -> int:
    """Inverse of :func:`twos_complement_digits` (checks the stream is such a bit-plane set)."""
    ds = check_digits(digits)
    if not ds or ds[0] not in (0, -1) or any(d not in (0, 1) for d in ds[1:]):
        raise ValueError(f"{ds!r} is not a two's-complement bit-plane stream (top digit in "
                         "{0, -1}, the others in {0, 1})")
    return int_value(ds)


def unsigned_digits(value: int, width: int) -> tuple[int, ...]:
    """Bit-planes of ``value`` as unsigned(width), MSB first (every digit ``+bit``)."""
    _check_width(width)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < (1 << width):
        raise ValueError(f"value {value!r} does not fit unsigned({width}): range [0, {(1 << width) - 1}]")
    return tuple((value >> (width - 1 - t)) & 1 for t in range(width))


def naf_digits(value: int, width: int) -> tuple[int, ...]:
    """Non-adjacent form of ``value`` in ``width`` digits, MSD first.

    The NAF is the unique signed-digit form with no two adjacent nonzero digits; it has
    the fewest nonzero digits of all forms. ``width`` digits represent exactly the
    integers with ``|value| <= (2**(width+1) - 2) // 3`` whose NAF fits; ``ValueError``
    otherwise.
    """
    _check_width(width)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"value must be an integer, not {value!r}")
    lsd_first = []
    v = value
    while v:
        if v & 1:
            d = 2 - (v & 3)  # v mod 4 == 1 -> +1, == 3 -> -1: leaves v - d divisible by 4
        else:
            d = 0
        lsd_first.append(d)
        v = (v - d) // 2
    if len(lsd_first) > width:
        raise ValueError(f"the non-adjacent form of {value} needs {len(lsd_first)} digits, "
                         f"more than width={width}")
    lsd_first += [0] * (width - len(lsd_first))
    return tuple(reversed(lsd_first))


def fraction_digits(value, n: int, *, form: str = "binary") -> tuple[int, ...]:
    """``n`` digits ``x_1 .. x_n`` with ``frac_value == value`` (a multiple of ``2**-n``).

    ``form="binary"``: the binary digits of ``|value|`` with the sign of ``value`` on every
    digit (any ``|value| < 1``); ``form="naf"``: the non-adjacent form of ``value * 2**n``
    (``|value| <= 2/3`` roughly; ``ValueError`` when it does not fit). ``ValueError`` when
    ``value`` is not a multiple of ``2**-n`` or out of range.
    """
    _check_width(n)
    try:
        v = Fraction(value)
    except (TypeError, ValueError):
        raise ValueError(f"value must be a rational number, not {value!r}") from None
    scaled = v * 2 ** n
    if scaled.denominator != 1:
        raise ValueError(f"value {value} is not a multiple of 2**-{n}")
    scaled = int(scaled)
    if form == "binary":
        if abs(scaled) >= 1 << n:
            raise ValueError(f"value {value} is outside (-1, 1)")
        sign = -1 if scaled < 0 else 1
        return tuple(sign * d for d in unsigned_digits(abs(scaled), n))
    if form == "naf":
        return naf_digits(scaled, n)
    raise ValueError(f"form must be 'binary' or 'naf', not {form!r}")


def is_naf(digits: Sequence[int]) -> bool:
    """True when no two adjacent digits are both nonzero."""
    ds = check_digits(digits)
    return all(not (a and b) for a, b in zip(ds, ds[1:]))


def to_signed(bits: int, width: int) -> int:
    """Read the ``width``-bit register pattern ``bits`` as two's complement."""
    bits &= (1 << width) - 1
    return bits - (1 << width) if bits >> (width - 1) else bits


def to_unsigned(value: int, width: int) -> int:
    """The ``width``-bit register pattern of ``value`` (value mod 2**width)."""
    return value & ((1 << width) - 1)


@dataclass(frozen=True)
class OtfStep:
    """Register contents of the on-the-fly converter after one digit.

    ``q``/``qm`` are the exact values (Python ints, integer form; or ``Fraction``,
    fraction form); ``q_bits``/``qm_bits`` are the register bit patterns
    (``width`` bits, what the hardware holds; the value modulo ``2**width`` in the
    integer form, the value times ``2**width`` in the fraction form).
    """
    digit: int
    q: int | Fraction
    qm: int | Fraction
    q_bits: int
    qm_bits: int


def otf_int_steps(digits: Iterable[int], width: int) -> list[OtfStep]:
    """On-the-fly conversion, integer (Horner) form, with ``width``-bit registers.

    Start ``Q = 0``, ``QM = -1``. For digit ``z`` (``Q' = 2Q + z``, ``QM' = Q' - 1``)::

        z = +1:  Q' = {Q,  1}   QM' = {Q,  0}
        z =  0:  Q' = {Q,  0}   QM' = {QM, 1}
        z = -1:  Q' = {QM, 1}   QM' = {QM, 0}

    (``{A, b}`` appends bit ``b`` below ``A``: a shift, no carry.) The registers keep
    the low ``width`` bits, so ``q_bits`` read as signed(width) equals the exact Horner
    value while that value fits signed(width), and equals it modulo ``2**width`` always.
    Returns one :class:`OtfStep` per digit, exact values computed independently with
    ``2*q + z`` so the append rule is checked against plain arithmetic.
    """
    _check_width(width)
    mask = (1 << width) - 1
    qb, qmb = 0, mask  # the patterns of 0 and -1
    q = 0
    out = []
    for z in check_digits(digits):
        if z == 1:
            qb, qmb = ((qb << 1) | 1) & mask, (qb << 1) & mask
        elif z == 0:
            qb, qmb = (qb << 1) & mask, ((qmb << 1) | 1) & mask
        else:
            qb, qmb = ((qmb << 1) | 1) & mask, (qmb << 1) & mask
        q = 2 * q + z
        if to_unsigned(q, width) != qb or to_unsigned(q - 1, width) != qmb:  # pragma: no cover
            raise AssertionError("on-the-fly append rule disagrees with 2*q + z")
        out.append(OtfStep(z, q, q - 1, qb, qmb))
    return out


def otf_frac_steps(digits: Iterable[int], width: int) -> list[OtfStep]:
    """On-the-fly conversion, fraction form: ``Q[j] = sum_{i<=j} x_i 2**-i``, ``QM = Q - 2**-j``.

    The registers hold ``width`` fractional bits plus a sign bit (pattern = value *
    2**width, two's complement in ``width + 1`` bits). Digit ``j`` is appended at bit
    position ``width - j`` (a one-hot mask that moves right), no carry::

        x = +1:  Q' = Q  | mask   QM' = Q
        x =  0:  Q' = Q           QM' = QM | mask
        x = -1:  Q' = QM | mask   QM' = QM

    Start ``Q = 0``, ``QM = -1`` (0 minus the ulp of the empty stream, weight 2**0).
    At most ``width`` digits (``ValueError`` otherwise).
    """
    _check_width(width)
    ds = check_digits(digits)
    if len(ds) > width:
        raise ValueError(f"{len(ds)} digits do not fit a fraction register of width={width}")
    qb, qmb = 0, 1 << width  # 0 and -1, times 2**width: only the sign bit set
    out = []
    q = Fraction(0)
    for j, x in enumerate(ds, start=1):
        m = 1 << (width - j)
        if x == 1:
            qb, qmb = qb | m, qb
        elif x == 0:
            qmb = qmb | m
        else:
            qb, qmb = qmb | m, qmb
        q += Fraction(x, 2 ** j)
        ulp = Fraction(1, 2 ** j)
        if to_signed(qb, width + 1) != q * 2 ** width or to_signed(qmb, width + 1) != (q - ulp) * 2 ** width:
            raise AssertionError("fraction on-the-fly rule disagrees with exact sum")  # pragma: no cover
        out.append(OtfStep(x, q, q - ulp, qb, qmb))
    return out
