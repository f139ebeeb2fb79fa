"""Verilog generation for any :class:`amaranth.lib.wiring.Component` of the project.

Every testbench and the ``make verilog`` target go through :func:`write_verilog`, so a
unit's ports are named the same way everywhere (Amaranth flattens interface members with
``__``: ``s_axil__awaddr``).
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from amaranth.back import verilog

from ..fileio import write_text

__all__ = ["write_verilog", "BUILD_DIR"]

#: All generated output lives under this folder (ignored by git).
BUILD_DIR = Path("build")


def write_verilog(component, *, name: str, path: Path | str) -> Path:
    """Write ``component`` as Verilog module ``name`` to ``path`` and return the path.

    The file is only rewritten when its text changed, so simulator builds that depend on
    it are not redone needlessly.
    """
    path = Path(path)
    if not name.isidentifier():
        raise ValueError(f"Verilog module name must be an identifier, not {name!r}")
    text = verilog.convert(component, name=name, emit_src=False)
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or hashlib.sha256(path.read_bytes()).digest() != hashlib.sha256(text.encode()).digest():
        write_text(path, text)
    return path
