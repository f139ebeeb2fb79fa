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


def _patch_rtlil_signed_enum_attrs():
    """Work around an Amaranth 0.5 bug: RTLIL export of a signal whose shape is a *signed*
    enum (such as :class:`Digit`) fails with ``-1 does not fit in 2 bits`` while it writes
    the ``enum_value_<bits>`` attributes, because the variant value is formatted without
    masking it to the width. Masking gives the two's-complement bits (``-1`` -> ``11``), the
    same as any other signed constant; values that already fit are unchanged.
    """
    from amaranth.back import rtlil

    original = rtlil.to_binary
    if getattr(original, "_msdf_masks_signed", False):
        return

    def to_binary(value, width):
        if value < 0 and -(1 << (width - 1)) <= value:
            value &= (1 << width) - 1
        return original(value, width)

    to_binary._msdf_masks_signed = True
    rtlil.to_binary = to_binary


_patch_rtlil_signed_enum_attrs()
