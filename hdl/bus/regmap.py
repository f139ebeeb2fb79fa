"""Register maps declared once, as data.

A :class:`RegisterMap` is built from named :class:`Register` declarations, each made of
named :class:`Field` bit ranges; addresses are allocated by the builder (4-byte words in
declaration order), never typed by hand. The same object

- drives the AXI4-Lite register file in RTL (:mod:`msdf_unet.hdl.bus.axi_lite`),
- is exported to JSON by the build (``build/verilog/regmap.json``, beside the bitstream),
- is read by the host driver and the testbenches (:mod:`msdf_unet.host.driver`).

This module is plain Python (no Amaranth import) so the host driver can use it on the
board.
"""
from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field

from ...spec.arith import code_bits, enum_prose

__all__ = ["Field", "Register", "RegisterMap", "RegisterMapError", "enum_field"]

ACCESS = ("r", "rw", "w")  # r: the hardware drives it; rw: storage; w: write-only strobe


class RegisterMapError(ValueError):
    """A register map declaration or a JSON export is malformed."""


@dataclass(frozen=True)
class Field:
    """``width`` bits at bit ``offset`` of a register; ``signed`` for two's complement."""

    name: str
    offset: int
    width: int
    signed: bool = False
    doc: str = ""

    def __post_init__(self):
        if not self.name.isidentifier():
            raise RegisterMapError(f"field name must be an identifier, not {self.name!r}")
        if not (0 <= self.offset and 1 <= self.width and self.offset + self.width <= 32):
            raise RegisterMapError(f"field {self.name!r} at bits [{self.offset}+:{self.width}] "
                                   f"does not fit in a 32-bit register")

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.offset

    def encode(self, value: int) -> int:
        """``value`` placed in the field's bits; ValueError when it does not fit."""
        lo, hi = (-(1 << (self.width - 1)), (1 << (self.width - 1)) - 1) if self.signed \
            else (0, (1 << self.width) - 1)
        if not isinstance(value, int) or not lo <= value <= hi:
            raise ValueError(f"field {self.name!r} holds integers in [{lo}, {hi}], not {value!r}")
        return (value & ((1 << self.width) - 1)) << self.offset

    def decode(self, word: int) -> int:
        raw = (word >> self.offset) & ((1 << self.width) - 1)
        if self.signed and raw >> (self.width - 1):
            raw -= 1 << self.width
        return raw


def enum_field(name: str, offset: int, codes: type[enum.Enum], doc: str = "") -> Field:
    """A field that carries a code of the enum ``codes``: its width is the bits of the
    largest code and its doc lists the codes (``"0 FULL, 1 RELU_END, ..."``), so neither is
    typed twice."""
    try:
        width = code_bits(codes)
    except ValueError as e:
        raise RegisterMapError(f"field {name!r}: {e}") from None
    prose = enum_prose(codes)
    return Field(name, offset, width, doc=f"{doc}: {prose}" if doc else prose)


@dataclass(frozen=True)
class Register:
    """A 32-bit register (or an array of ``count`` of them) with its fields."""

    name: str
    access: str
    fields: tuple[Field, ...]
    doc: str = ""
    count: int = 1

    def __post_init__(self):
        if not self.name.isidentifier():
            raise RegisterMapError(f"register name must be an identifier, not {self.name!r}")
        if self.access not in ACCESS:
            raise RegisterMapError(f"register {self.name!r}: access must be one of {ACCESS}, "
                                   f"not {self.access!r}")
        if not isinstance(self.count, int) or self.count < 1:
            raise RegisterMapError(f"register {self.name!r}: count must be >= 1, not {self.count!r}")
        used = 0
        for f in self.fields:
            if used & f.mask:
                raise RegisterMapError(f"register {self.name!r}: field {f.name!r} overlaps another")
            used |= f.mask
        if len({f.name for f in self.fields}) != len(self.fields):
            raise RegisterMapError(f"register {self.name!r}: duplicate field names")

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"register {self.name!r} has no field {name!r}; "
                       f"fields: {[f.name for f in self.fields]}")

    def encode(self, **values: int) -> int:
        word = 0
        for name, value in values.items():
            word |= self.field(name).encode(value)
        return word

    def decode(self, word: int) -> dict[str, int]:
        return {f.name: f.decode(word) for f in self.fields}


@dataclass(frozen=True)
class RegisterMap:
    """Registers at consecutive 32-bit words from address 0, in declaration order.

    ``addr_width`` is the number of byte-address bits the bus decodes.
    """

    name: str
    registers: tuple[Register, ...]
    addr_width: int = field(default=0)

    def __post_init__(self):
        names = [r.name for r in self.registers]
        if len(set(names)) != len(names):
            raise RegisterMapError(f"map {self.name!r}: duplicate register names in {names}")
        need = max(2, (4 * self.n_words - 1).bit_length())
        if self.addr_width == 0:
            object.__setattr__(self, "addr_width", need)
        elif self.addr_width < need:
            raise RegisterMapError(f"map {self.name!r} needs {need} address bits, "
                                   f"not {self.addr_width}")

    @property
    def n_words(self) -> int:
        return sum(r.count for r in self.registers)

    def __getitem__(self, name: str) -> Register:
        for r in self.registers:
            if r.name == name:
                return r
        raise KeyError(f"map {self.name!r} has no register {name!r}; "
                       f"registers: {[r.name for r in self.registers]}")

    def address(self, name: str, index: int = 0) -> int:
        """Byte address of register ``name`` (element ``index`` of an array)."""
        word = 0
        for r in self.registers:
            if r.name == name:
                if not isinstance(index, int) or not 0 <= index < r.count:
                    raise IndexError(f"register {name!r} has {r.count} elements; "
                                     f"index {index!r} is out of range")
                return 4 * (word + index)
            word += r.count
        raise KeyError(f"map {self.name!r} has no register {name!r}")

    def words(self):
        """``(byte_address, register, index)`` for every word, in address order."""
        word = 0
        for r in self.registers:
            for i in range(r.count):
                yield 4 * (word + i), r, i
            word += r.count

    # --- export --------------------------------------------------------------------------
    def to_dict(self) -> dict:
        regs = []
        for r in self.registers:
            d = asdict(r)
            d["address"] = self.address(r.name)
            regs.append(d)
        return {"name": self.name, "addr_width": self.addr_width, "registers": regs}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @property
    def digest32(self) -> int:
        """32-bit digest of the map; the RTL exposes it so a driver can detect a mismatch."""
        return int.from_bytes(hashlib.sha256(self.to_json().encode()).digest()[:4], "big")

    @classmethod
    def from_dict(cls, d: dict) -> "RegisterMap":
        try:
            regs = tuple(Register(name=r["name"], access=r["access"], doc=r.get("doc", ""),
                                  count=r.get("count", 1),
                                  fields=tuple(Field(**f) for f in r["fields"]))
                         for r in d["registers"])
            rmap = cls(name=d["name"], registers=regs, addr_width=d["addr_width"])
        except (KeyError, TypeError) as e:
            raise RegisterMapError(f"malformed register map: {e!r}") from e
        for r in d["registers"]:
            if "address" in r and r["address"] != rmap.address(r["name"]):
                raise RegisterMapError(f"register {r['name']!r}: stored address {r['address']:#x} "
                                       f"disagrees with the allocation {rmap.address(r['name']):#x}")
        return rmap

    @classmethod
    def from_json(cls, text: str) -> "RegisterMap":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise RegisterMapError(f"register map is not valid JSON: {e}") from e
        return cls.from_dict(d)
