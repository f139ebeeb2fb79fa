"""Register map of the convolution engine's AXI4-Lite control slave (declared once, here).

Plain Python: the board runtime imports it without Amaranth. Addresses come from the
allocation in :class:`~msdf_unet.hdl.bus.regmap.RegisterMap`; field widths of codes come
from the enums of :mod:`msdf_unet.spec.engine`. Export with :func:`engine_map` ``().to_json()``.

How a frame runs (what the runtime does): write the image (see ``host/compiler.py``) to a
buffer, write ``MEM_BASE_LO``/``MEM_BASE_HI`` (its physical address), ``MEM_SIZE`` (its
bytes), ``CMD_OFFSET`` (the command list's offset), optionally ``WATCHDOG`` and
``CTRL.irq_en``; write ``START.go = 1``; wait for ``STATUS.done`` (or the interrupt);
check ``STATUS.error`` / ``ERROR`` and read ``CYCLES``; per-command cycles are in the
status records of the image.

Deviation from the first contract draft: ``start`` is the write strobe register ``START``
(the regmap's ``w`` access), ``CTRL`` keeps the stored ``irq_en``; ``MEM_SIZE`` was added
so the engine can refuse an access beyond the image (``ErrorCode.OUT_OF_IMAGE``).
"""
from __future__ import annotations

from functools import lru_cache

from ...spec.engine import FORMAT_VERSION, ErrorCode, EngineConfig, Op
from ..bus.regmap import Field, Register, RegisterMap

__all__ = ["ADDR_WIDTH", "ID_MAGIC", "engine_map", "config_word", "enum_width"]

#: byte-address bits decoded: the whole 4 KiB window (unmapped addresses answer SLVERR)
ADDR_WIDTH = 12

#: ``ID.magic``: ASCII "MSCE" (MSDF convolution engine)
ID_MAGIC = 0x4D534345


def enum_width(e) -> int:
    """Bits needed for every member of an IntEnum."""
    return max(int(m) for m in e).bit_length()


def config_word(config: EngineConfig) -> dict[str, int]:
    """Field values of the ``CONFIG`` register for ``config``."""
    if not isinstance(config, EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {type(config).__name__}")
    return {"arrays": len(config.arrays), "kpbs": config.total_kpbs,
            "max_bias_lanes": config.max_bias_lanes, "addr_bits": config.addr_bits}


@lru_cache(maxsize=None)
def engine_map() -> RegisterMap:
    """The control register map of the convolution engine (same for every configuration;
    the configuration is identified by ``CONFIG_DIGEST`` and ``CONFIG``)."""
    code_w = enum_width(ErrorCode)
    op_w = enum_width(Op)
    return RegisterMap("msdf_conv_engine", (
        Register("ID", "r", (Field("magic", 0, 32, doc='ASCII "MSCE"'),),
                 doc="identifies the convolution engine"),
        Register("VERSION", "r", (Field("format", 0, 16, doc="spec.engine.FORMAT_VERSION"),),
                 doc=f"contract / image format version ({FORMAT_VERSION} at declaration)"),
        Register("MAP_DIGEST", "r", (Field("digest", 0, 32),),
                 doc="first 32 bits of SHA-256 of this map's JSON: the driver refuses a mismatch"),
        Register("CONFIG_DIGEST", "r", (Field("digest", 0, 32),),
                 doc="EngineConfig.digest32: the runtime refuses an image compiled for another config"),
        Register("CONFIG", "r", (
            Field("arrays", 0, 4, doc="PE arrays"),
            Field("kpbs", 4, 12, doc="KPBs over all arrays"),
            Field("max_bias_lanes", 16, 8, doc="largest bias_lanes of a command"),
            Field("addr_bits", 24, 6, doc="image offset bits"),
        ), doc="main generation parameters"),
        Register("CTRL", "rw", (Field("irq_en", 0, 1, doc="1: irq while STATUS.done"),),
                 doc="settings"),
        Register("START", "w", (Field("go", 0, 1, doc="write 1 to run the command list"),),
                 doc="starts the engine at CMD_OFFSET (ignored while busy); clears done/error"),
        Register("MEM_BASE_LO", "rw", (Field("addr", 0, 32),),
                 doc="physical address of the image, bits 31..0 (64-byte aligned)"),
        Register("MEM_BASE_HI", "rw", (Field("addr", 0, 32),),
                 doc="physical address of the image, bits 63..32"),
        Register("MEM_SIZE", "rw", (Field("bytes", 0, 32),),
                 doc="bytes of the image: every access must stay below it"),
        Register("CMD_OFFSET", "rw", (Field("offset", 0, 32),),
                 doc="offset of the first command (multiple of spec.engine.CMD_ALIGN)"),
        Register("STATUS", "r", (
            Field("busy", 0, 1), Field("done", 1, 1, doc="finished (END or error); cleared by START"),
            Field("error", 2, 1, doc="stopped on an error, see ERROR"),
        )),
        Register("ERROR", "r", (
            Field("code", 0, code_w, doc="spec.engine.ErrorCode"),
            Field("index", 16, 16, doc="index of the failing command"),
        ), doc="first error since START"),
        Register("CYCLES", "r", (Field("count", 0, 32),), doc="clock cycles from START to done"),
        Register("WATCHDOG", "rw", (Field("cycles", 0, 32),),
                 doc="cycles without progress before ErrorCode.WATCHDOG (0: off)"),
        Register("LAYER", "r", (
            Field("index", 0, 16, doc="index of the command running (or last run)"),
            Field("op", 16, op_w, doc="its op code"),
        ), doc="progress"),
    ), addr_width=ADDR_WIDTH)
