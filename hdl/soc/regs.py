"""Register map of the accelerator's AXI4-Lite control slave (declared once, here).

Plain Python: the host driver imports it on the board without Amaranth. Addresses come from
the allocation in :class:`~msdf_unet.hdl.bus.regmap.RegisterMap`; ``make verilog`` exports
the map as ``build/verilog/regmap.json``.

How a dot product runs (what :class:`msdf_unet.host.driver.DotProductDriver` does):
write the lanes ``W[i]`` / ``X[i]`` (bias pseudo-products in the last ``bias_lanes`` lanes),
write ``CTRL`` (policy, digit budget), write ``START.go = 1``; poll ``STATUS.done`` (or take
the interrupt); read ``RESULT``, ``DIGITS``, ``CYCLES``.
"""
from __future__ import annotations

from functools import lru_cache

from ...spec.arith import (ACCEL_ACT_BITS_MAX, ACCEL_MAX_LANES, MAX_DIGITS, Policy, check_act_bits,
                           check_lanes)
from ..bus.regmap import Field, Register, RegisterMap, enum_field

__all__ = ["ADDR_WIDTH", "ID_MAGIC", "accelerator_map"]

#: Byte-address bits decoded: the whole 4 KiB window the block design assigns, so no address
#: in it aliases a register (unmapped ones answer SLVERR).
ADDR_WIDTH = 12

#: ``ID.magic``: ASCII "MSDF".
ID_MAGIC = 0x4D534446


@lru_cache(maxsize=None)
def accelerator_map(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True) -> RegisterMap:
    """The control register map of an accelerator with ``n_lanes`` dot-product lanes."""
    n_lanes = check_lanes(n_lanes, hi=ACCEL_MAX_LANES)
    act_bits = check_act_bits(act_bits, hi=ACCEL_ACT_BITS_MAX)
    lanes_w, digits_w = ACCEL_MAX_LANES.bit_length(), MAX_DIGITS.bit_length()
    return RegisterMap("msdf_accel", (
        Register("ID", "r", (Field("magic", 0, 32, doc='ASCII "MSDF"'),),
                 doc="identifies the accelerator"),
        Register("MAP_DIGEST", "r", (Field("digest", 0, 32),),
                 doc="first 32 bits of SHA-256 of this map's JSON: the driver refuses a mismatch"),
        Register("CONFIG", "r", (
            Field("n_lanes", 0, lanes_w, doc="dot-product lanes, bias lanes included"),
            Field("bias_lanes", 8, lanes_w, doc="lanes reserved for bias pseudo-products"),
            Field("act_bits", 16, ACCEL_ACT_BITS_MAX.bit_length(), doc="activation width B"),
            Field("signed_acts", 20, 1, doc="1: signed activations, 0: unsigned"),
            Field("digits_total", 24, digits_w, doc="digits T of a full-precision result"),
        ), doc="generation parameters"),
        Register("CTRL", "rw", (
            enum_field("policy", 0, Policy),
            Field("digits", 8, digits_w, doc="digit budget p for TRUNCATE"),
            Field("irq_en", 16, 1, doc="1: raise irq while STATUS.done"),
        ), doc="settings of the next transaction"),
        Register("START", "w", (Field("go", 0, 1, doc="write 1 to start one dot product"),),
                 doc="starts a transaction (ignored, STATUS.overrun set, while busy)"),
        Register("STATUS", "r", (
            Field("busy", 0, 1), Field("done", 1, 1, doc="result ready; cleared by START"),
            Field("terminated", 2, 1, doc="the policy stopped the transaction early"),
            Field("overrun", 3, 1, doc="START while busy was ignored; cleared by the next START"),
        )),
        Register("RESULT", "r", (Field("value", 0, 32, signed=True),),
                 doc="result value as the policy defines it"),
        Register("DIGITS", "r", (Field("used", 0, digits_w),), doc="digit cycles the transaction used"),
        Register("CYCLES", "r", (Field("count", 0, 32),),
                 doc="clock cycles from START to done"),
        Register("W", "rw", (Field("value", 0, 8, signed=True),), count=n_lanes,
                 doc="lane weights, [-127, 127]"),
        Register("X", "rw", (Field("value", 0, act_bits, signed=bool(signed_acts)),), count=n_lanes,
                 doc="lane activations"),
    ), addr_width=ADDR_WIDTH)
