"""A register-level software model of the convolution engine (no hardware, no simulator).

:class:`ModelEngine` answers the engine's register map (``hdl/conv/regs.py``) like the RTL
and, on ``START``, runs the command list in the shared memory with the engine's functional
model (``golden/conv/model.py``, bit-exact with ``golden/hwexact.py``). So
:class:`~msdf_unet.host.engine_driver.EngineDriver` runs unchanged against it, against the
RTL (cocotb) and on the board. ``CYCLES`` is 0: the functional model has no timing (the
cycle model ``golden/conv/cycles.py`` will provide it); the status records carry the
digit cycles (``digits_used``). ``fault`` injects an error the next run reports
(``(ErrorCode, command index)``), ``hang`` a run that never finishes (timeout tests).
"""
from __future__ import annotations

from ..hdl.conv.regs import ID_MAGIC, config_word, engine_map
from ..spec import engine as E

__all__ = ["ModelEngine"]


class ModelEngine:
    """``read(offset)`` / ``write(offset, value)`` of the engine built with ``config``,
    executing in ``memory`` (a :class:`~msdf_unet.host.engine_driver.BytesMemory`)."""

    def __init__(self, config: E.EngineConfig, memory):
        self.config, self.memory = config, memory
        self.regmap = engine_map()
        self.fault: tuple | None = None
        self.hang = False
        self.runs = 0
        m = self.regmap
        self.regs = {m.address(r.name): 0 for r in m.registers}
        self._set("ID", magic=ID_MAGIC)
        self._set("VERSION", format=E.FORMAT_VERSION)
        self._set("MAP_DIGEST", digest=m.digest32)
        self._set("CONFIG_DIGEST", digest=config.digest32)
        self._set("CONFIG", **config_word(config))

    def _set(self, name, **fields):
        self.regs[self.regmap.address(name)] = self.regmap[name].encode(**fields)

    def _get(self, name) -> dict:
        return self.regmap[name].decode(self.regs[self.regmap.address(name)])

    def read(self, offset: int) -> int:
        if offset not in self.regs:
            raise ValueError(f"no engine register at offset {offset:#x}")
        return self.regs[offset]

    def write(self, offset: int, value: int) -> None:
        names = {self.regmap.address(r.name): r for r in self.regmap.registers}
        if offset not in names or names[offset].access == "r":
            raise ValueError(f"no writable engine register at offset {offset:#x}")
        if names[offset].name == "START":
            if value & 1:
                self._start()
            return
        self.regs[offset] = value

    def _start(self) -> None:
        from ..golden.conv.model import run_image
        self.runs += 1
        self._set("STATUS", busy=0, done=0, error=0)
        if self.hang:
            self._set("STATUS", busy=1, done=0, error=0)
            return
        base = self._get("MEM_BASE_LO")["addr"] | (self._get("MEM_BASE_HI")["addr"] << 32)
        if base != self.memory.base:
            self._finish(E.ErrorCode.AXI_READ_DECERR, 0)
            return
        if self.fault is not None:
            self._finish(*self.fault)
            return
        res = run_image(self.memory.buf, self.config, self._get("CMD_OFFSET")["offset"],
                        mem_size=self._get("MEM_SIZE")["bytes"])
        self._set("CYCLES", count=sum(s.get("cycles", 0) for s in res.statuses) & 0xFFFFFFFF)
        self._set("LAYER", index=res.index, op=int(E.Op.END) if not res.error else 0)
        self._finish(res.code if res.error else None, res.index)

    def _finish(self, code, index) -> None:
        if code is None:
            self._set("STATUS", busy=0, done=1, error=0)
            self._set("ERROR", code=0, index=0)
        else:
            self._set("STATUS", busy=0, done=1, error=1)
            self._set("ERROR", code=int(code), index=int(index))
