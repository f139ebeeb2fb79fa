"""The interface every dot-product arithmetic variant shares.

MMA (the seed's merged multiply-add), cascaded MSDF, LSB-first bit-serial and bit-parallel
units all take one transaction per dot product on ``i`` and return one result on ``o``, so
the convolution engine and the benchmarks can swap them at generation time.

Transaction payload (``i``)
    ``x``      activations, one per lane (signed or unsigned ``act_bits``)
    ``w``      weights, one per lane, ``signed(8)`` restricted to [-127, 127]
    ``policy`` :class:`Policy` of this transaction
    ``digits`` digit budget ``p`` for :attr:`Policy.TRUNCATE` (ignored otherwise)

Result payload (``o``)
    ``value``       the result the policy defines (see :class:`Policy`);
                    ``signed(value_width(...))`` holds any exact dot product and any
                    TRUNCATE prefix value of the ``T``-digit MMA stream
    ``digits_used`` cycles of the digit recurrence the transaction occupied
    ``terminated``  1 when the policy's stop fired: negative sign detected (RELU_END),
                    nonzero digit found (SIGN_ONLY), digit budget below ``T`` (TRUNCATE)

Bias lanes are ordinary lanes: the bias is folded offline into pseudo-products
(``msdf_unet.golden.arith``), so ``n_lanes`` counts them.
"""
from amaranth import signed, unsigned
from amaranth.lib import data, enum, stream

__all__ = ["Policy", "dot_product_io", "acc_width", "value_width"]


class Policy(enum.Enum, shape=unsigned(2)):
    #: every digit; ``value`` is the exact dot product
    FULL = 0
    #: exact early negative detection for a ReLU: stop at the first nonzero digit when it is
    #: -1 (``value`` 0); otherwise every digit and ``value`` is the exact dot product
    RELU_END = 1
    #: stop at the first nonzero digit; ``value`` is its sign (+1/-1), 0 when all digits are 0
    SIGN_ONLY = 2
    #: emit ``digits`` digits; ``value`` is the truncated prefix value in integer units
    TRUNCATE = 3


def acc_width(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True) -> int:
    """Bits of a two's-complement integer that holds any dot product of ``n_lanes`` lanes."""
    if not isinstance(n_lanes, int) or n_lanes < 1:
        raise ValueError(f"n_lanes must be a positive integer, not {n_lanes!r}")
    x_max = 2 ** (act_bits - 1) if signed_acts else 2 ** act_bits - 1
    bound = n_lanes * 127 * x_max
    return bound.bit_length() + 1


def value_width(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True) -> int:
    """Bits of ``o.payload.value``: the larger of :func:`acc_width` and ``T + 1``.

    A TRUNCATE prefix ``Z_p`` of the ``T = act_bits + F`` digit MMA stream
    (``F = (n_lanes*127).bit_length() + 1``, see ``msdf_unet.golden.arith.mma``) can reach
    ``+-(2**T - 1)``, e.g. ``Z_1 = 2**(T-1)``, which needs ``T + 1`` bits.
    """
    T = act_bits + (n_lanes * 127).bit_length() + 1
    return max(acc_width(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts), T + 1)


def dot_product_io(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True):
    """``(i, o)`` stream signatures of a dot-product unit with these parameters.

    Use as ``super().__init__({"i": In(i), "o": Out(o), ...})``.
    """
    if not isinstance(act_bits, int) or not 2 <= act_bits <= 16:
        raise ValueError(f"act_bits must be an integer in [2, 16], not {act_bits!r}")
    act = signed(act_bits) if signed_acts else unsigned(act_bits)
    i = stream.Signature(data.StructLayout({
        "x": data.ArrayLayout(act, n_lanes),
        "w": data.ArrayLayout(signed(8), n_lanes),
        "policy": Policy,
        "digits": unsigned(8),
    }))
    o = stream.Signature(data.StructLayout({
        "value": signed(value_width(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)),
        "digits_used": unsigned(8),
        "terminated": unsigned(1),
    }))
    return i, o
