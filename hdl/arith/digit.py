"""The radix-2 signed digit shared by every MSDF unit.

A digit stream ``z_0, z_1, ...`` (most significant first) with ``T`` digits has the
integer value ``sum(z_t * 2**(T-1-t))``. The digit is carried as a 2-bit two's-complement
number, so ``Digit.NEG`` is ``-1`` in arithmetic expressions (``digit.as_value()`` is
``signed(2)``).
"""
from amaranth import signed
from amaranth.lib import enum

__all__ = ["Digit"]


class Digit(enum.Enum, shape=signed(2)):
    #: digit -1: subtract this weight
    NEG = -1
    #: digit 0
    ZERO = 0
    #: digit +1: add this weight
    POS = 1
