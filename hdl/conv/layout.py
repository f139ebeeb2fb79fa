"""Hardware views of the contract's declared layouts (``msdf_unet.spec.engine``): nothing is
retyped here, every offset and width is taken from the declaration."""
from __future__ import annotations

from amaranth import Signal, unsigned
from amaranth.lib import data

from ...spec.engine import (CHANNEL_RECORD, DESCRIPTOR_BYTES, DESCRIPTOR_FIELDS, STATUS_BYTES,
                            STATUS_FIELDS)

__all__ = ["descriptor_layout", "decode_fields", "status_words", "record_offsets"]


def descriptor_layout() -> data.StructLayout:
    """One field per :data:`~msdf_unet.spec.engine.DESCRIPTOR_FIELDS` entry, same widths."""
    return data.StructLayout({f.name: unsigned(f.width) for f in DESCRIPTOR_FIELDS})


def decode_fields(raw) -> dict:
    """``{name: slice of raw}`` of a ``DESCRIPTOR_BYTES*8``-bit little-endian descriptor."""
    assert len(raw) == DESCRIPTOR_BYTES * 8
    return {f.name: raw[32 * f.word + f.lsb:32 * f.word + f.lsb + f.width] for f in DESCRIPTOR_FIELDS}


def reserved_mask_bits(raw):
    """The reserved bits of a raw descriptor (every bit no field covers), OR-reduced."""
    used = [0] * (DESCRIPTOR_BYTES // 4)
    for f in DESCRIPTOR_FIELDS:
        used[f.word] |= ((1 << f.width) - 1) << f.lsb
    bits = [raw[32 * w + b] for w in range(len(used)) for b in range(32) if not used[w] >> b & 1]
    out = 0
    for b in bits:
        out = out | b
    return out


def status_words(values: dict) -> list:
    """The ``STATUS_BYTES // 4`` 32-bit words of a status record from ``{field: value}``
    (Amaranth values; missing fields 0), placed by :data:`STATUS_FIELDS`."""
    from amaranth import Const
    words = [Const(0, 32) for _ in range(STATUS_BYTES // 4)]
    by_word = {}
    for f in STATUS_FIELDS:
        if f.name in values:
            by_word.setdefault(f.word, []).append(f)
    for w, fs in by_word.items():
        acc = Const(0, 32)
        for f in fs:
            acc = acc | (values[f.name][:f.width] << f.lsb)
        words[w] = acc[:32]
    return words


def record_offsets(fan, nb, *, start=None):
    """``({name: (offset expression, bytes per element)}, record bytes expression)`` of one
    channel record for Amaranth values ``fan`` (= cin*k*k) and ``nb`` (bias lanes), following
    :data:`~msdf_unet.spec.engine.CHANNEL_RECORD` (elements aligned to their size, record
    padded to 8 bytes) -- the hardware twin of ``channel_record_layout``.

    With ``start=(name, value)``: only the fields from ``name`` on, given ``value`` (e.g. a
    register) as the offset of ``name``; each is ``value`` plus a constant (one adder, not
    the chain from ``fan``). The fields from ``name`` on must be single elements no wider
    than ``name``'s (so ``value`` aligned for ``name`` is aligned for them).
    """
    if start is not None:
        names = [r[0] for r in CHANNEL_RECORD]
        sname, base = start
        if sname not in names:
            raise ValueError(f"start field must be one of {names}, not {sname!r}")
        tail = CHANNEL_RECORD[names.index(sname):]
        sizes = [4 if dt == "int32" else 1 for _, dt, _ in tail]
        if any(cnt != "1" for _, _, cnt in tail) or any(sizes[0] % z for z in sizes):
            raise ValueError(f"the record from {sname!r} on is not single elements no wider than it")
        c, out = 0, {}
        for (name, _, _), size in zip(tail, sizes):
            c = -(-c // size) * size
            out[name] = (base + c, size)
            c += size
        return out, ((base + (c + 7)) >> 3) << 3
    off = 0
    out = {}
    for name, dt, cnt in CHANNEL_RECORD:
        n = {"fan": fan, "nb": nb, "1": 1}[cnt]
        size = 4 if dt == "int32" else 1
        if size > 1:
            off = ((off + (size - 1)) >> 2) << 2
        out[name] = (off, size)
        off = off + n * size
    return out, ((off + 7) >> 3) << 3
