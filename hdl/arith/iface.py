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
import types

from amaranth import signed, unsigned
from amaranth.lib import data, enum, stream

from ...spec import arith as spec
from ...spec.arith import acc_width, value_width

__all__ = ["Policy", "dot_product_io", "acc_width", "value_width"]

#: The Amaranth enum of :class:`msdf_unet.spec.arith.Policy` (same names and codes; the
#: meaning of each member is documented there).
Policy = types.new_class(
    "Policy", (enum.Enum,), {"shape": unsigned(spec.POLICY_BITS)},
    lambda ns: ns.update({p.name: p.value for p in spec.Policy}))
Policy.__module__ = __name__
Policy.__doc__ = spec.Policy.__doc__


def dot_product_io(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True):
    """``(i, o)`` stream signatures of a dot-product unit with these parameters.

    Use as ``super().__init__({"i": In(i), "o": Out(o), ...})``.
    """
    n_lanes = spec.check_lanes(n_lanes)
    act_bits = spec.check_act_bits(act_bits)
    act = signed(act_bits) if signed_acts else unsigned(act_bits)
    i = stream.Signature(data.StructLayout({
        "x": data.ArrayLayout(act, n_lanes),
        "w": data.ArrayLayout(signed(8), n_lanes),
        "policy": Policy,
        "digits": unsigned(spec.MAX_DIGITS.bit_length()),
    }))
    o = stream.Signature(data.StructLayout({
        "value": signed(value_width(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)),
        "digits_used": unsigned(spec.MAX_DIGITS.bit_length()),
        "terminated": unsigned(1),
    }))
    return i, o
