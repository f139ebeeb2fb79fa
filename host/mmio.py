"""Register access backends for the host driver.

The driver (:mod:`.driver`) talks to the accelerator only through an object with
``read(offset) -> int`` and ``write(offset, value)`` on 32-bit words at byte offsets, so
the same driver code runs

- on the board: :class:`PynqMMIO` (``pynq.Overlay`` / ``pynq.MMIO``; pynq is imported lazily,
  it exists only on the PYNQ image or with the ``board`` extra),
- against the RTL in cocotb: :class:`CocotbMMIO` (each access becomes an AXI4-Lite
  transaction of cocotbext-axi's ``AxiLiteMaster``; call the driver from a thread started by
  ``cocotb.task.bridge``),
- in pure software: :class:`ModelMMIO`, a register-level model of the accelerator whose
  arithmetic is the golden cycle model.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

__all__ = ["MMIO", "BusError", "PynqMMIO", "CocotbMMIO", "ModelMMIO", "control_cycles"]


class MMIO(Protocol):
    def read(self, offset: int) -> int: ...
    def write(self, offset: int, value: int) -> None: ...


class BusError(RuntimeError):
    """The slave answered an access with an error response (SLVERR/DECERR)."""


def _check_word(offset: int, value: int | None = None):
    if not isinstance(offset, int) or offset < 0 or offset % 4:
        raise ValueError(f"register offset must be a non-negative multiple of 4, not {offset!r}")
    if value is not None and (not isinstance(value, int) or not 0 <= value < 2**32):
        raise ValueError(f"register value must be a 32-bit unsigned integer, not {value!r}")


class PynqMMIO:
    """The accelerator on a PYNQ board.

    Parameters
    ----------
    bitfile : path of the ``.bit`` (its ``.hwh`` must sit beside it)
    ip_name : name of the accelerator's cell in the block design
    download : program the PL (False: attach to an overlay that is already loaded)
    """

    def __init__(self, bitfile: str | Path, *, ip_name: str = "msdf_accel_0", download: bool = True):
        try:
            import pynq  # noqa: PLC0415 - only on the board
        except ImportError as e:
            raise RuntimeError("PynqMMIO needs the pynq package (the PYNQ image has it; "
                               "elsewhere `pip install msdf-unet[board]`)") from e
        bitfile = Path(bitfile)
        if not bitfile.is_file() or not bitfile.with_suffix(".hwh").is_file():
            raise FileNotFoundError(f"need {bitfile} and {bitfile.with_suffix('.hwh')} "
                                    f"(copy both from build/vivado/out/)")
        self.overlay = pynq.Overlay(str(bitfile), download=download)
        if ip_name not in self.overlay.ip_dict:
            raise KeyError(f"overlay has no IP {ip_name!r}; it has {sorted(self.overlay.ip_dict)}")
        ip = self.overlay.ip_dict[ip_name]
        self._mmio = pynq.MMIO(ip["phys_addr"], ip["addr_range"])

    def read(self, offset: int) -> int:
        _check_word(offset)
        return int(self._mmio.read(offset)) & 0xFFFFFFFF

    def write(self, offset: int, value: int) -> None:
        _check_word(offset, value)
        self._mmio.write(offset, value)


class CocotbMMIO:
    """Register access through a cocotbext-axi ``AxiLiteMaster`` inside a cocotb test.

    The driver is ordinary blocking code: run it with
    ``await cocotb.task.bridge(fn)(...)``; each access here blocks that thread on
    ``cocotb.task.resume`` until the AXI4-Lite transaction completes in simulation.
    """

    def __init__(self, axil_master):
        from cocotb.task import resume

        self._read = resume(axil_master.read)
        self._write = resume(axil_master.write)

    def read(self, offset: int) -> int:
        _check_word(offset)
        resp = self._read(offset, 4)
        if int(resp.resp) != 0:
            raise BusError(f"read of offset {offset:#x} answered {resp.resp!r}")
        return int.from_bytes(bytes(resp.data), "little")

    def write(self, offset: int, value: int) -> None:
        _check_word(offset, value)
        resp = self._write(offset, value.to_bytes(4, "little"))
        if int(resp.resp) != 0:
            raise BusError(f"write of {value:#x} to offset {offset:#x} answered {resp.resp!r}")


def control_cycles(result_cycle: int) -> int:
    """``CYCLES`` of :class:`~msdf_unet.hdl.soc.accel.DotProductControl` for a unit whose
    result appears ``result_cycle`` cycles after it accepted the transaction: one cycle from
    the ``START`` write to the handshake, and the cycle the result is taken."""
    return result_cycle + 2


class ModelMMIO:
    """A register-level software model of the accelerator (no hardware, no simulator).

    It implements the register map of :func:`msdf_unet.hdl.soc.regs.accelerator_map` with
    the semantics of :class:`msdf_unet.hdl.soc.accel.DotProductControl`; a ``START`` runs the
    golden cycle model of the configured arithmetic at once. Bad accesses raise
    :class:`BusError` like the RTL's SLVERR.
    """

    def __init__(self, config=None):
        from ..hdl.soc.config import AccelConfig
        from ..hdl.soc.regs import accelerator_map

        self.config = config or AccelConfig()
        cfg = self.config
        if cfg.variant != "mma":
            raise ValueError(f"ModelMMIO models the 'mma' variant, not {cfg.variant!r}")
        self.regmap = accelerator_map(n_lanes=cfg.n_lanes, act_bits=cfg.act_bits,
                                      signed_acts=cfg.signed_acts)
        self._store = {addr: 0 for addr, _, _ in self.regmap.words()}
        from ..hdl.soc.regs import ID_MAGIC
        from ..golden.arith import mma as golden_mma
        self._golden = golden_mma
        rm = self.regmap
        self._store[rm.address("ID")] = ID_MAGIC
        self._store[rm.address("MAP_DIGEST")] = rm.digest32
        self._store[rm.address("CONFIG")] = rm["CONFIG"].encode(
            n_lanes=cfg.n_lanes, bias_lanes=cfg.bias_lanes, act_bits=cfg.act_bits,
            signed_acts=int(cfg.signed_acts),
            digits_total=golden_mma.stream_digits(cfg.n_lanes, cfg.act_bits))

    def _reg(self, offset):
        for addr, reg, index in self.regmap.words():
            if addr == offset:
                return reg, index
        raise BusError(f"offset {offset:#x} is outside the register map (SLVERR)")

    def read(self, offset: int) -> int:
        _check_word(offset)
        reg, _ = self._reg(offset)
        return 0 if reg.access == "w" else self._store[offset]

    def write(self, offset: int, value: int) -> None:
        _check_word(offset, value)
        reg, _ = self._reg(offset)
        if reg.access == "r":
            raise BusError(f"register {reg.name} at {offset:#x} is read-only (SLVERR)")
        if reg.access == "rw":
            self._store[offset] = value
        elif reg.name == "START" and reg.decode(value)["go"]:
            self._start()

    def _field(self, name, index=0):
        reg = self.regmap[name]
        return reg.decode(self._store[self.regmap.address(name, index)])

    def _start(self):
        rm, cfg = self.regmap, self.config
        ctrl = self._field("CTRL")
        xs = [self._field("X", i)["value"] for i in range(cfg.n_lanes)]
        ws = [self._field("W", i)["value"] for i in range(cfg.n_lanes)]
        res = self._golden.transaction(xs, ws, ctrl["policy"], ctrl["digits"],
                                       act_bits=cfg.act_bits, signed_acts=cfg.signed_acts)
        self._store[rm.address("RESULT")] = rm["RESULT"].encode(value=res.value)
        self._store[rm.address("DIGITS")] = rm["DIGITS"].encode(used=res.digits_used)
        self._store[rm.address("CYCLES")] = rm["CYCLES"].encode(
            count=control_cycles(res.result_cycle))
        self._store[rm.address("STATUS")] = rm["STATUS"].encode(
            busy=0, done=1, terminated=int(res.terminated), overrun=0)
