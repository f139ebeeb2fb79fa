"""Cycle-exact models of the textbook radix-2 online operators (digits {-1, 0, 1}).

Ercegovac & Lang, *Digital Arithmetic* (2004), ch. 9. These are the building blocks of
the cascaded-MSDF baseline; the RTL in :mod:`msdf_unet.hdl.arith.online` matches these
models digit for digit and cycle for cycle.

Stream convention
    Operands are fraction streams ``x_1, x_2, ...`` (MSD first) of value
    ``X = sum(x_j * 2**-j)`` (:func:`~msdf_unet.golden.arith.digits.frac_value`). A finite
    stream of ``n`` digits continues with zeros.

Step convention (what one model ``step`` and one RTL input cycle are)
    Step ``k = 1, 2, ...`` takes input digit ``k`` of every serial operand and may
    produce one output digit. Every operator here produces, in step ``k``, the output digit
    of index ``k - ONLINE_DELAY`` (the output digit of weight ``2**-(k - ONLINE_DELAY)``),
    when that index is ``>= FIRST_INDEX``; otherwise the step produces nothing
    (``None``). So output digit ``j`` needs exactly the inputs ``1 .. j + ONLINE_DELAY``:
    that is the textbook online delay. In the RTL the digit of step ``k`` is on the output
    port one clock after the input cycle of step ``k`` (outputs are registered).

* :class:`OnlineAdder`: ``ONLINE_DELAY = 2``, ``FIRST_INDEX = 0``, value ``X + Y``
  (``z_0`` is an integer digit);
* :class:`OnlineMultiplierSS`: ``ONLINE_DELAY = 3``, ``FIRST_INDEX = 1``, value ``X * Y``;
* :class:`OnlineMultiplierSP`: ``ONLINE_DELAY = 2``, ``FIRST_INDEX = 1``, value ``X * Y``
  with ``Y`` a parallel integer operand.

Read as a fraction stream (first digit weight 1/2), the adder output is ``(X + Y) / 2``;
so a tree of adders of depth ``d`` yields ``sum / 2**d`` in the uniform fraction format.

Error bounds (proved in the class docstrings, tested in ``tests/golden/arith/test_online.py``)
    Let ``Z_m`` be the value of the output digits up to index ``m``.

    * adder: ``|X + Y - Z_m| < 2**-m``; exact (``==``) once ``m >= n`` (``n + 1`` digits);
    * multipliers: ``|X*Y - Z_m| <= (49/64) * 2**-m`` once every input digit has been
      taken (``m + ONLINE_DELAY >= n``); exact once ``m >= n_x + n_y`` (SS: ``2n``; SP:
      ``n + y_bits - 1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Sequence

from .digits import check_digits, frac_value

__all__ = ["OnlineAdder", "OnlineMultiplierSS", "OnlineMultiplierSP", "OnlineResult",
           "online_add", "online_mul_ss", "online_mul_sp", "select_digit"]


def select_digit(v: int, half: int) -> int:
    """Radix-2 digit selection on a residual ``v`` scaled so that 1/2 is ``half``.

    ``+1`` if ``v >= 1/2``, ``-1`` if ``v < -1/2``, else ``0``. Both thresholds are
    multiples of 1/2, so the comparison only needs the bits of ``v`` down to weight 1/2
    (the textbook's truncated estimate, exact here because the residual is kept in two's
    complement).
    """
    if v >= half:
        return 1
    if v < -half:
        return -1
    return 0


class _Model:
    ONLINE_DELAY: int
    FIRST_INDEX: int

    def __init__(self):
        self.reset()

    def reset(self):
        """Start a new operation (the RTL ``clear``)."""
        self.k = 0

    def _emit(self, digit):
        return digit if self.k - self.ONLINE_DELAY >= self.FIRST_INDEX else None


class OnlineAdder(_Model):
    """Radix-2 online adder, online delay 2 (two-level carry-free signed-digit addition).

    Per position ``j`` the digit sum ``p_j = x_j + y_j`` in ``[-2, 2]`` is split into a
    transfer ``t_j`` (to position ``j - 1``) and an interim sum ``w_j`` with
    ``p_j = 2 t_j + w_j``, looking one position ahead (at the sign of ``p_{j+1}``) so that
    the output digit ``z_j = w_j + t_{j+1}`` stays in ``{-1, 0, 1}``::

        p_j  =  2: t, w = 1, 0            p_j = -2: t, w = -1, 0
        p_j  =  1: p_{j+1} >= 0: 1, -1    p_{j+1} < 0:  0,  1
        p_j  = -1: p_{j+1} >= 0: 0, -1    p_{j+1} < 0: -1,  1
        p_j  =  0: 0, 0

    (If ``w_j = -1`` then ``t_{j+1} >= 0``; if ``w_j = 1`` then ``t_{j+1} <= 0``.)
    ``z_j`` needs ``p_j, p_{j+1}, p_{j+2}``: online delay 2. Output ``z_0 = t_1`` is an
    integer digit (``|X + Y| < 2``).

    Value: ``X[k] + Y[k] = Z_{k-2} + (w_{k-1} + t_k) 2**-(k-1) + w_k 2**-k`` after step
    ``k``; once the inputs end (``p = 0`` from ``n + 1`` on) the bracket is the final
    digit, so the ``n + 1`` digits ``z_0 .. z_n`` are exactly ``X + Y`` and any prefix
    ``Z_m`` is within the remaining digits' weight, ``|X + Y - Z_m| < 2**-m``.

    State (what the RTL holds): ``p_{k-1}`` (3 bits) and ``w_{k-2}`` (2 bits).
    """

    ONLINE_DELAY = 2
    FIRST_INDEX = 0

    def reset(self):
        super().reset()
        self.p_prev = 0   # p_{k-1}; p_0 = 0 (the integer position of the inputs)
        self.w_prev = 0   # w_{k-2}

    @staticmethod
    def split(p: int, p_next: int) -> tuple[int, int]:
        """``(t, w)`` of a position with digit sum ``p`` whose less significant neighbour has sum ``p_next``."""
        if p == 2:
            return 1, 0
        if p == -2:
            return -1, 0
        if p == 1:
            return (1, -1) if p_next >= 0 else (0, 1)
        if p == -1:
            return (0, -1) if p_next >= 0 else (-1, 1)
        return 0, 0

    def step(self, x: int, y: int) -> int | None:
        """Take input digits ``x_k, y_k``; return output digit ``z_{k-2}`` (``None`` for ``k = 1``)."""
        x, y = check_digits([x, y])
        self.k += 1
        p = x + y
        t, w = self.split(self.p_prev, p)       # t_{k-1}, w_{k-1}
        z = self.w_prev + t                      # z_{k-2} = w_{k-2} + t_{k-1}
        assert z in (-1, 0, 1)
        self.p_prev, self.w_prev = p, w
        return self._emit(z)


class OnlineMultiplierSS(_Model):
    """Serial-serial radix-2 online multiplier, online delay 3 (Ercegovac & Lang ch. 9).

    Both operands arrive as digit streams of at most ``digits`` digits (``n``). The
    operands received so far, ``X[j]`` and ``Y[j]``, are kept in two's complement by
    fraction-form on-the-fly conversion (:func:`~msdf_unet.golden.arith.digits.otf_frac_steps`,
    no carry). Iteration ``j = -3, -2, ...`` (step ``k = j + 4``) with new digits
    ``x_k, y_k``::

        v[j]     = 2 w[j] + (X[j] y_k + Y[j+1] x_k) 2**-3
        p_{j+1}  = select_digit(v[j])            (only for j >= 0)
        w[j+1]   = v[j] - p_{j+1}                 (w[j+1] = v[j] while j < 0)

    so that ``w[j] = 2**j (X[j] Y[j] - P[j])``. Bound: the added term is below
    ``2**-3 (|X[j]| + |Y[j+1]|)`` and ``w[0] = X[0] Y[0] <= (7/8)**2``; by induction
    ``|w[j]| <= 3/4 + 2**-(j+6) <= 49/64`` for ``j >= 0``, hence ``|v| < 2``: the
    residual register is ``signed(n + 5)`` in units of ``2**-(n+3)`` (exact, no estimate
    error). Once every input digit is in, ``|X Y - P_m| = 2**-m |w[m]| <= 49/64 2**-m``,
    and ``P_m = X Y`` exactly for ``m >= 2n`` (``w`` is then an integer of magnitude < 1).

    Input digits after the ``n``-th must be 0 (``ValueError`` here; the RTL ignores them).
    """

    ONLINE_DELAY = 3
    FIRST_INDEX = 1

    def __init__(self, *, digits: int):
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            raise ValueError(f"digits must be a positive integer, not {digits!r}")
        self.digits = digits
        super().__init__()

    @property
    def scale_log2(self) -> int:
        """The residual is held in units of ``2**-scale_log2``."""
        return self.digits + self.ONLINE_DELAY

    @property
    def residual_bits(self) -> int:
        """Width of the signed residual register (range ``[-2, 2)``)."""
        return self.scale_log2 + 2

    def reset(self):
        super().reset()
        self.X = 0   # X[j] * 2**n
        self.Y = 0   # Y[j] * 2**n
        self.w = 0   # w[j] * 2**(n + 3)

    def residual(self) -> Fraction:
        """Current residual ``w`` as an exact fraction."""
        return Fraction(self.w, 2 ** self.scale_log2)

    def step(self, x: int, y: int) -> int | None:
        """Take ``x_k, y_k``; return ``p_{k-3}`` (``None`` for ``k <= 3``)."""
        x, y = check_digits([x, y])
        self.k += 1
        n = self.digits
        if self.k > n:
            if x or y:
                raise ValueError(f"input digit {self.k} is nonzero but the multiplier takes "
                                 f"at most digits={n} digits per operand")
            ulp = 0
        else:
            ulp = 1 << (n - self.k)
        x_old = self.X
        self.X += x * ulp
        self.Y += y * ulp
        v = 2 * self.w + x_old * y + self.Y * x
        bound = 1 << (self.scale_log2 + 1)
        assert -bound <= v < bound, "residual left [-2, 2)"
        if self.k > self.ONLINE_DELAY:
            p = select_digit(v, 1 << (self.scale_log2 - 1))
            self.w = v - p * (1 << self.scale_log2)
            return p
        self.w = v
        return None


class OnlineMultiplierSP(_Model):
    """Serial-parallel radix-2 online multiplier, online delay 2.

    ``X`` arrives as a digit stream (any length); the parallel operand is an integer
    ``y`` in ``signed(y_bits)`` read as the fraction ``Y = y / 2**(y_bits-1)`` in
    ``[-1, 1)`` (an INT8 weight is ``y_bits=8``). Step ``k = j + 3``::

        v[j]    = 2 w[j] + x_k Y 2**-2
        p_{j+1} = select_digit(v[j])             (only for j >= 0)
        w[j+1]  = v[j] - p_{j+1}

    ``w[j] = 2**j (X[j] Y - P[j])``; ``|w[0]| = |X[0] Y| <= 3/4`` and by induction
    ``|w| <= 3/4``, ``|v| <= 7/4``: residual ``signed(y_bits + 3)`` in units of
    ``2**-(y_bits+1)``. Once all ``n`` digits are in, ``|X Y - P_m| <= (3/4) 2**-m``;
    exact for ``m >= n + y_bits - 1``.
    """

    ONLINE_DELAY = 2
    FIRST_INDEX = 1

    def __init__(self, *, y_bits: int = 8):
        if isinstance(y_bits, bool) or not isinstance(y_bits, int) or y_bits < 1:
            raise ValueError(f"y_bits must be a positive integer, not {y_bits!r}")
        self.y_bits = y_bits
        super().__init__()

    @property
    def scale_log2(self) -> int:
        return self.y_bits - 1 + self.ONLINE_DELAY

    @property
    def residual_bits(self) -> int:
        return self.scale_log2 + 2

    def reset(self):
        super().reset()
        self.w = 0

    def residual(self) -> Fraction:
        return Fraction(self.w, 2 ** self.scale_log2)

    def step(self, x: int, y: int) -> int | None:
        """Take ``x_k`` and the parallel operand ``y`` (an int); return ``p_{k-2}`` or ``None``."""
        (x,) = check_digits([x])
        lo, hi = -(1 << (self.y_bits - 1)), (1 << (self.y_bits - 1)) - 1
        if isinstance(y, bool) or not isinstance(y, int) or not lo <= y <= hi:
            raise ValueError(f"parallel operand {y!r} does not fit signed({self.y_bits})")
        self.k += 1
        v = 2 * self.w + x * y
        bound = 1 << (self.scale_log2 + 1)
        assert -bound <= v < bound, "residual left [-2, 2)"
        if self.k > self.ONLINE_DELAY:
            p = select_digit(v, 1 << (self.scale_log2 - 1))
            self.w = v - p * (1 << self.scale_log2)
            return p
        self.w = v
        return None


@dataclass(frozen=True)
class OnlineResult:
    """Output of one operation run through a model.

    ``steps[k-1]`` is what step ``k`` produced (``None`` or a digit); ``digits`` are the
    produced digits in order, the first of index ``first_index`` (weight
    ``2**-first_index``); ``value`` their exact value; ``residuals`` the model residual
    after every step (multipliers only).
    """
    steps: tuple
    digits: tuple[int, ...]
    first_index: int
    value: Fraction
    residuals: tuple[Fraction, ...] = field(default=())


def _run(model, xs, ys, n_out, parallel=False):
    n_steps = n_out + model.ONLINE_DELAY + model.FIRST_INDEX - 1
    xs = list(xs) + [0] * max(0, n_steps - len(xs))
    ys = ys if parallel else list(ys) + [0] * max(0, n_steps - len(ys))
    steps, res = [], []
    for k in range(n_steps):
        steps.append(model.step(xs[k], ys if parallel else ys[k]))
        if hasattr(model, "residual"):
            res.append(model.residual())
    digits = tuple(d for d in steps if d is not None)
    assert len(digits) == n_out
    value = frac_value(digits, first_weight_log2=-model.FIRST_INDEX)
    return OnlineResult(tuple(steps), digits, model.FIRST_INDEX, value, tuple(res))


def _check_n_out(n_out, default):
    if n_out is None:
        return default
    if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 0:
        raise ValueError(f"n_out must be a non-negative integer, not {n_out!r}")
    return n_out


def online_add(xs: Sequence[int], ys: Sequence[int], *, n_out: int | None = None) -> OnlineResult:
    """Run :class:`OnlineAdder` on two fraction streams (the shorter is zero-padded).

    ``n_out`` output digits ``z_0 ..`` (default ``max(len) + 1``: exactly ``X + Y``).
    """
    xs, ys = check_digits(xs), check_digits(ys)
    n = max(len(xs), len(ys))
    return _run(OnlineAdder(), xs, ys, _check_n_out(n_out, n + 1))


def online_mul_ss(xs: Sequence[int], ys: Sequence[int], *, digits: int | None = None,
                  n_out: int | None = None) -> OnlineResult:
    """Run :class:`OnlineMultiplierSS` (``digits`` defaults to the longer operand's length).

    ``n_out`` output digits ``p_1 ..`` (default ``2 * digits``: exactly ``X * Y``).
    """
    xs, ys = check_digits(xs), check_digits(ys)
    n = digits if digits is not None else max(len(xs), len(ys), 1)
    return _run(OnlineMultiplierSS(digits=n), xs, ys, _check_n_out(n_out, 2 * n))


def online_mul_sp(xs: Sequence[int], y: int, *, y_bits: int = 8,
                  n_out: int | None = None) -> OnlineResult:
    """Run :class:`OnlineMultiplierSP` on stream ``xs`` and parallel integer ``y``.

    ``n_out`` output digits ``p_1 ..`` (default ``len(xs) + y_bits - 1``: exactly
    ``X * y / 2**(y_bits-1)``).
    """
    xs = check_digits(xs)
    return _run(OnlineMultiplierSP(y_bits=y_bits), xs, y,
                _check_n_out(n_out, len(xs) + y_bits - 1), parallel=True)
