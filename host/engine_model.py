"""A register-level software model of the convolution engine (no hardware, no simulator).

:class:`ModelEngine` answers the engine's register map (``hdl/conv/regs.py``) like the RTL
and, on ``START``, runs the command list in the shared memory with the engine's functional
model (``golden/conv/model.py``, bit-exact with ``golden/hwexact.py``). So
:class:`~msdf_unet.host.engine_driver.EngineDriver` runs unchanged against it, against the
RTL (cocotb) and on the board. ``CYCLES`` and every status record's ``cycles`` are
*engine clock cycles* predicted by the engine's cycle model
(:func:`msdf_unet.golden.conv.cycles.image_cycles`, PYNQ-Z2 memory model by default; see
:func:`engine_cycles`); ``digits_used`` is 0 (reserved, as the RTL writes it). ``fault`` injects an error the next run reports (``(ErrorCode, command index)``),
``hang`` a run that never finishes (timeout tests).

This module is imported on the board: it imports only spec/register code at the top; the golden models (torch) are imported when a run starts.
"""
from __future__ import annotations

from ..hdl.conv.regs import ID_MAGIC, config_word, engine_map
from ..spec import engine as E

__all__ = ["ModelEngine", "FIT_CONFIG", "FIT_CONFIG_NOTE", "engine_cycles", "CLOCK_HZ"]

#: The engine configuration that fits the xc7z020 (docs/engine.md: 3 cores of 72 lanes,
#: spec.engine.BOARD_CONFIG);
#: the frame benchmark's and the ``msdf`` backend's default.
FIT_CONFIG = E.BOARD_CONFIG
FIT_CONFIG_NOTE = (f"{FIT_CONFIG.arrays[0].kpbs} cores x {FIT_CONFIG.lanes} data lanes "
                   f"(+{FIT_CONFIG.max_bias_lanes} bias lanes per PE; the configuration that fits "
                   f"the xc7z020, docs/engine.md)")
#: PL clock the cycle counts are converted at (``frame_ms_at_100mhz``)
CLOCK_HZ = 100_000_000


def engine_cycles(mem, config: E.EngineConfig, cmd_offset: int = 0, memory=None) -> list:
    """Per-command engine cycles (:class:`~msdf_unet.golden.conv.cycles.CommandCycles`) of
    the valid command list at ``cmd_offset`` of the image ``mem`` *before* it runs (input
    written): :func:`msdf_unet.golden.conv.cycles.image_cycles` with ``memory`` (default
    the PYNQ-Z2 memory model :data:`~msdf_unet.golden.conv.cycles.PYNQ_Z2`)."""
    from ..golden.conv import cycles as C
    return C.image_cycles(bytearray(mem), config, cmd_offset, C.PYNQ_Z2 if memory is None else memory)


class ModelEngine:
    """``read(offset)`` / ``write(offset, value)`` of the engine built with ``config``,
    executing in ``memory`` (a :class:`~msdf_unet.host.engine_driver.BytesMemory`)."""

    def __init__(self, config: E.EngineConfig, memory, *, cycle_model: bool = True,
                 memory_model=None):
        self.config, self.memory = config, memory
        #: False: CYCLES and status ``cycles`` stay 0 (faster runs)
        self.cycle_model = cycle_model
        self.memory_model = memory_model
        #: per-command CommandCycles of the last successful run (cycle model on)
        self.last_cycles: list = []
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
        from ..golden.conv import cycles as C
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
        cmd, size = self._get("CMD_OFFSET")["offset"], self._get("MEM_SIZE")["bytes"]
        cycles = []  # the cycle model follows the one functional run, command by command
        mem_model = C.PYNQ_Z2 if self.memory_model is None else self.memory_model
        follow = (lambda d, m, i: cycles.append(C.command_cycles(d, m, self.config, mem_model, i))) \
            if self.cycle_model else None
        res = run_image(self.memory.buf, self.config, cmd, mem_size=size, on_command=follow)
        total = 0
        self.last_cycles = []
        if self.cycle_model and not res.error:
            self.last_cycles = cycles
            buf = self.memory.buf
            for st, cc in zip(res.statuses, self.last_cycles):
                off = cmd + cc.index * E.DESCRIPTOR_BYTES
                so = E.decode_descriptor(buf[off:off + E.DESCRIPTOR_BYTES])["status_offset"]
                rec = {k: v for k, v in st.items() if k in {f.name for f in E.STATUS_FIELDS}}
                rec["cycles"] = min(cc.cycles, 0xFFFFFFFF)
                buf[so:so + E.STATUS_BYTES] = E.encode_status(**rec)
            total = sum(cc.cycles for cc in self.last_cycles)
        self._set("CYCLES", count=total & 0xFFFFFFFF)
        self._set("LAYER", index=res.index, op=int(E.Op.END) if not res.error else 0)
        self._finish(res.code if res.error else None, res.index)

    def _finish(self, code, index) -> None:
        if code is None:
            self._set("STATUS", busy=0, done=1, error=0)
            self._set("ERROR", code=0, index=0)
        else:
            self._set("STATUS", busy=0, done=1, error=1)
            self._set("ERROR", code=int(code), index=int(index))
