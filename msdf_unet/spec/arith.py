"""Arithmetic facts of the dot-product units, declared once.

Plain Python (no numpy, no Amaranth): ``golden/`` (the models), ``hdl/`` (the units, the
register map, the accelerator config) and ``host/`` (the driver) all import these, so a
policy code, a digit count, a width or a parameter range is never typed twice.

Digit counts of the MMA (merged multiply-add) recurrence, for ``L`` lanes (bias lanes
included) and ``B``-bit activations (proof in :mod:`msdf_unet.golden.arith.mma`):

* every lane adds at most ``MAX_WEIGHT = 127`` per plane, so ``|P_t| <= L*127 < 2**Lb``
  with ``Lb = (L*127).bit_length()``;
* online delay ``F = Lb + 1`` (:func:`online_delay`): the output carries ``F`` more integer
  digits than the input planes;
* a transaction is ``T = B + F`` digits long (:func:`stream_digits`).
"""
from __future__ import annotations

import enum
import operator
from dataclasses import dataclass, field

__all__ = [
    "Policy", "POLICY_BITS", "policy_code", "code_bits", "enum_prose",
    "MAX_WEIGHT", "online_delay", "stream_digits", "acc_width", "value_width", "act_range",
    "ACT_BITS_MIN", "ACT_BITS_MAX", "ACCEL_ACT_BITS_MAX", "ACCEL_MAX_LANES", "MAX_DIGITS",
    "check_lanes", "check_act_bits", "LATENCY_TO_DIGIT0", "RESULT_DEPTH",
    "Variant", "ARITH_VARIANTS", "VARIANTS",
]


# --- termination policy ---------------------------------------------------------------------

class Policy(enum.IntEnum):
    """Termination policy of one dot-product transaction (its code on ``i.payload.policy``
    and in ``CTRL.policy``). ``hdl/arith/iface.py`` derives the Amaranth enum from it."""
    #: every digit; ``value`` is the exact dot product
    FULL = 0
    #: exact early negative detection for a ReLU: stop at the first nonzero digit when it is
    #: -1 (``value`` 0); otherwise every digit and ``value`` is the exact dot product
    RELU_END = 1
    #: stop at the first nonzero digit; ``value`` is its sign (+1/-1), 0 when all digits are 0
    SIGN_ONLY = 2
    #: emit ``digits`` digits; ``value`` is the truncated prefix value in integer units
    TRUNCATE = 3


def code_bits(codes: type[enum.Enum]) -> int:
    """Bits of the largest code of the enum ``codes`` (the width of a field carrying it);
    ValueError unless every code is a non-negative integer."""
    values = [m.value for m in codes]
    if not values or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0
                             for v in values):
        raise ValueError(f"{codes.__name__} codes must be non-negative integers, not {values}")
    return max(1, max(values).bit_length())


#: bits of a policy code (the ``policy`` field of the stream payload and of ``CTRL``)
POLICY_BITS = code_bits(Policy)


def enum_prose(codes: type[enum.Enum]) -> str:
    """``"0 FULL, 1 RELU_END, ..."``: the codes of an enum as register documentation."""
    return ", ".join(f"{m.value} {m.name}" for m in codes)


def policy_code(policy) -> Policy:
    """:class:`Policy` of ``policy``: a member, any enum member with the same code (the
    Amaranth ``iface.Policy``), an int code or a name (any case). ValueError otherwise."""
    if isinstance(policy, str):
        try:
            return Policy[policy.upper()]
        except KeyError:
            pass
    else:
        if isinstance(policy, enum.Enum) and not isinstance(policy, Policy):
            policy = policy.value
        if not isinstance(policy, bool):
            try:
                return Policy(operator.index(policy))
            except (ValueError, TypeError):
                pass
    raise ValueError(f"unknown policy {policy!r}; known: {[p.name for p in Policy]}")


# --- operands and parameter ranges ------------------------------------------------------------

#: weights are symmetric INT8: [-MAX_WEIGHT, MAX_WEIGHT] (-128 is not a legal weight)
MAX_WEIGHT = 127

#: activation widths the dot-product units support
ACT_BITS_MIN = 2
ACT_BITS_MAX = 16

#: widest activation the accelerator's register map and config accept: ``X[i]`` and the
#: program's activation packing hold one byte per activation
ACCEL_ACT_BITS_MAX = 8

#: most lanes the accelerator supports: ``CONFIG.n_lanes`` is an 8-bit field
ACCEL_MAX_LANES = 255

#: most digits of one transaction: ``digits_used``, ``digits`` and ``CONFIG.digits_total``
#: are 8-bit fields
MAX_DIGITS = 255


def _integer(value, name: str) -> int:
    """``value`` as an int (any integer type, numpy's included); never a bool or a float."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, not {value!r}")
    try:
        return operator.index(value)
    except TypeError:
        raise ValueError(f"{name} must be an integer, not {value!r}") from None


def check_lanes(n_lanes, name: str = "n_lanes", hi: int | None = None) -> int:
    """``n_lanes`` as an int >= 1 (and <= ``hi``); ValueError naming the bad value."""
    try:
        n = _integer(n_lanes, name)
    except ValueError:
        n = 0
    if n < 1 or (hi is not None and n > hi):
        what = "a positive integer" if hi is None else f"an integer in [1, {hi}]"
        raise ValueError(f"{name} must be {what}, not {n_lanes!r}")
    return n


def check_act_bits(act_bits, hi: int = ACT_BITS_MAX, name: str = "act_bits") -> int:
    """``act_bits`` as an int in ``[ACT_BITS_MIN, hi]`` (the units: :data:`ACT_BITS_MAX`, the
    accelerator: :data:`ACCEL_ACT_BITS_MAX`); ValueError naming the bad value."""
    try:
        b = _integer(act_bits, name)
    except ValueError:
        b = None
    if b is None or not ACT_BITS_MIN <= b <= hi:
        raise ValueError(f"{name} must be an integer in [{ACT_BITS_MIN}, {hi}], not {act_bits!r}")
    return b


def act_range(act_bits: int = 8, signed_acts: bool = True) -> tuple[int, int]:
    """Inclusive range of a legal activation."""
    act_bits = check_act_bits(act_bits)
    if signed_acts:
        return -(1 << (act_bits - 1)), (1 << (act_bits - 1)) - 1
    return 0, (1 << act_bits) - 1


# --- digit counts and widths ---------------------------------------------------------------

def online_delay(n_lanes: int) -> int:
    """``F = Lb + 1``: headroom digits of the output stream for ``n_lanes`` lanes."""
    n_lanes = check_lanes(n_lanes)
    return (n_lanes * MAX_WEIGHT).bit_length() + 1  # bit_length = smallest Lb with 2**Lb > L*127


def stream_digits(n_lanes: int, act_bits: int = 8) -> int:
    """Transaction length ``T = B + F`` in digits (and digit cycles)."""
    return check_act_bits(act_bits) + online_delay(n_lanes)


def acc_width(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True) -> int:
    """Bits of a two's-complement integer that holds any dot product of ``n_lanes`` lanes."""
    n_lanes = check_lanes(n_lanes)
    lo, hi = act_range(act_bits, signed_acts)
    return (n_lanes * MAX_WEIGHT * max(-lo, hi)).bit_length() + 1


def value_width(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True) -> int:
    """Bits of a unit's result ``value``: the larger of :func:`acc_width` and ``T + 1``.

    A TRUNCATE prefix ``Z_p`` of the ``T``-digit MMA stream can reach ``+-(2**T - 1)``, e.g.
    ``Z_1 = 2**(T-1)``, which needs ``T + 1`` bits.
    """
    T = stream_digits(n_lanes, act_bits)
    return max(acc_width(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts), T + 1)


# --- MMA unit timing (the RTL and its cycle model share these) --------------------------------

#: cycles from the ``i`` handshake to digit 0 on the digit port of the MMA unit
LATENCY_TO_DIGIT0 = 2

#: depth of the MMA unit's result FIFO; at most this many accepted transactions are not yet
#: popped from ``o`` (3 keeps full throughput with ``o.ready`` high, even for 1-digit
#: transactions)
RESULT_DEPTH = 3


# --- arithmetic variants ---------------------------------------------------------------------

@dataclass(frozen=True)
class Variant:
    """An arithmetic variant selectable at generation time.

    ``module``/``cls`` name its dot-product unit under ``msdf_unet.hdl.arith``; ``options``
    are extra constructor arguments.
    """
    name: str
    module: str
    cls: str
    options: tuple[tuple[str, object], ...] = field(default=())
    doc: str = ""
    #: its ``i`` payload is exactly ``dot_product_io``, so the AXI-Lite dot-product
    #: accelerator (hdl/soc/accel.py) can drive it from its registers
    accel: bool = True


#: every variant, in the order reports list them (all share the ``i``/``o`` streams of
#: ``hdl/arith/iface.py``)
ARITH_VARIANTS = (
    Variant("mma", "mma", "MMADotProduct", doc="MSDF merged multiply-add (the seed's unit)"),
    Variant("cascaded", "cascaded", "CascadedMSDFDotProduct",
            doc="online multipliers and an online adder tree"),
    Variant("bitserial", "bitserial", "BitSerialDotProduct", doc="LSB-first bit-serial"),
    Variant("bitparallel-lut", "bitparallel", "BitParallelDotProduct", (("multiplier", "lut"),),
            doc="bit-parallel, shift-add multipliers in LUTs"),
    Variant("bitparallel-dsp", "bitparallel", "BitParallelDotProduct", (("multiplier", "dsp"),),
            doc="bit-parallel, DSP48E1 multipliers"),
    Variant("msdf-v2", "msdf2", "MSDF2DotProduct",
            doc="MSDF planes into a binary accumulator, bound-based exact ReLU stop (issue 9)",
            accel=False),  # needs a per-transaction bound ``wpos`` the registers do not hold
    Variant("msdf-v2-lite", "msdf2_lite", "MSDF2LiteDotProduct",
            doc="msdf-v2 with its fixed cost cut (END test in the accumulator's sign); flat "
                "(msdf-v2-flat's cycles) up to one group of lanes, pipelined (msdf-v2's) above",
            accel=False),
)

#: names of the arithmetic variants (``AccelConfig.variant``, ``--variant``)
VARIANTS = tuple(v.name for v in ARITH_VARIANTS)
