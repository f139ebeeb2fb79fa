"""Driver of the convolution engine: the same code on the board, on the RTL and on the model.

Board-side safe (numpy, the contract in :mod:`msdf_unet.spec.engine`, the register map in
``hdl/conv/regs.py`` and the compiler ``host/compiler.py``; no torch, amaranth or cocotb).

:class:`EngineDriver` runs a compiled image (:class:`~msdf_unet.host.compiler.CompiledImage`)
through two objects:

- ``mmio``: ``read(offset)`` / ``write(offset, value)`` on the engine's AXI4-Lite registers
  (a PYNQ IP, a cocotb AXI4-Lite master, or :class:`~msdf_unet.host.engine_model.ModelEngine`);
- ``memory``: the buffer the engine reaches through its AXI4 master (``S_AXI_HP0`` on the
  board): ``base`` (physical address), ``nbytes``, ``write(offset, data)``,
  ``read(offset, n)``, ``to_device()`` (flush the CPU cache), ``from_device()``
  (invalidate it). :class:`BytesMemory` is the plain-bytes version (simulation, model),
  :class:`PynqMemory` a ``pynq.allocate`` buffer.

A run (:meth:`EngineDriver.run`): refuse an image compiled for another engine
configuration (``CONFIG_DIGEST``), copy the image into the buffer, flush, program
``MEM_BASE``, ``MEM_SIZE``, ``CMD_OFFSET``, ``WATCHDOG``, ``CTRL.irq_en``, write
``START``, wait for ``STATUS.done`` (interrupt or polling, bounded by a timeout),
decode ``ERROR`` into :class:`~msdf_unet.host.runtime.AcceleratorFault`, invalidate and
copy the image back (outputs and per-command status records), read ``CYCLES``.
One lock per driver: concurrent runs from several threads are serialised.
"""
from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import numpy as np

from ..hdl.conv.regs import ID_MAGIC, engine_map
from ..spec import engine as E
from .runtime import AcceleratorTimeout, ConfigMismatch, check_timeout, decode_error

__all__ = ["EngineDriver", "EngineRun", "BytesMemory", "PynqMemory", "input_codes", "labels_from_head"]

ERROR_NAMES = {int(c): c.name for c in E.ErrorCode}


def input_codes(images, scale: float) -> np.ndarray:
    """Float images -> INT8 input codes: ``floor(x / scale + 0.5)`` saturated to
    [-128, 127] (numpy twin of ``golden.quant.quantize_input``; a test checks they agree)."""
    x = np.asarray(images, dtype=np.float64)
    return np.clip(np.floor(x / scale + 0.5), -128, 127).astype(np.int8)


def labels_from_head(head: np.ndarray) -> np.ndarray:
    """Labels ``[H, W]`` from the head's INT32 output ``[C, H, W]``: argmax, or ``> 0`` for
    a one-channel (sign) head — as ``golden.hwexact.run`` decides."""
    head = np.asarray(head)
    return (head[0] > 0).astype(np.int64) if head.shape[0] == 1 else head.argmax(0).astype(np.int64)


class BytesMemory:
    """The engine's memory as a host ``bytearray`` at physical address ``base``."""

    def __init__(self, nbytes: int, base: int = 0):
        self.buf = bytearray(nbytes)
        self.base = base

    @property
    def nbytes(self) -> int:
        return len(self.buf)

    def write(self, offset: int, data) -> None:
        self.buf[offset:offset + len(data)] = data

    def read(self, offset: int, n: int) -> bytes:
        return bytes(self.buf[offset:offset + n])

    def to_device(self) -> None:
        pass

    def from_device(self) -> None:
        pass


class PynqMemory:
    """A ``pynq.allocate`` buffer (physically contiguous, reached through HP0, which is not
    cache-coherent: :meth:`to_device` flushes, :meth:`from_device` invalidates)."""

    def __init__(self, nbytes: int, allocate=None):
        if allocate is None:
            from .pynq_ip import allocate
        self.buf = allocate((nbytes,), np.uint8)
        self.base = int(self.buf.physical_address)

    @property
    def nbytes(self) -> int:
        return int(self.buf.nbytes)

    def write(self, offset: int, data) -> None:
        self.buf[offset:offset + len(data)] = np.frombuffer(bytes(data), np.uint8)

    def read(self, offset: int, n: int) -> bytes:
        return self.buf[offset:offset + n].tobytes()

    def to_device(self) -> None:
        self.buf.flush()

    def from_device(self) -> None:
        self.buf.invalidate()


@dataclass
class EngineRun:
    """Result of one run: ``cycles`` (register ``CYCLES``), the decoded per-command status
    records, and the seconds from ``START`` to done."""

    cycles: int
    statuses: list = field(default_factory=list)
    seconds: float = 0.0


class EngineDriver:
    """Runs compiled images on a convolution engine (see the module docstring).

    On construction it reads ``ID``, ``VERSION`` and ``MAP_DIGEST`` and refuses an engine
    whose register map or format differs from this runtime's (:class:`ConfigMismatch`).
    """

    def __init__(self, mmio, memory, *, wait=None):
        self.mmio, self.memory = mmio, memory
        self.regmap = engine_map()
        self._wait = wait
        self.lock = threading.Lock()
        magic = self._read("ID")["magic"]
        if magic != ID_MAGIC:
            raise ConfigMismatch(f"no convolution engine at this address: ID reads {magic:#010x}, "
                                 f"expected {ID_MAGIC:#010x} (is the overlay the dot-product "
                                 f"accelerator of an older build?)")
        digest = self._read("MAP_DIGEST")["digest"]
        if digest != self.regmap.digest32:
            raise ConfigMismatch(f"register map mismatch: hardware digest {digest:#010x}, this "
                                 f"runtime expects {self.regmap.digest32:#010x} (rebuild the "
                                 f"bitstream or update msdf-unet)")
        version = self._read("VERSION")["format"]
        if version != E.FORMAT_VERSION:
            raise ConfigMismatch(f"engine image format {version}, this runtime writes {E.FORMAT_VERSION}")
        self.config_digest32 = self._read("CONFIG_DIGEST")["digest"]

    def _read(self, name) -> dict:
        return self.regmap[name].decode(self.mmio.read(self.regmap.address(name)))

    def _write(self, name, **fields) -> None:
        self.mmio.write(self.regmap.address(name), self.regmap[name].encode(**fields))

    def check_image(self, image) -> None:
        """ConfigMismatch unless ``image`` was compiled for this engine's configuration."""
        if image.config.digest32 != self.config_digest32:
            raise ConfigMismatch(f"the image was compiled for engine config {image.config.digest32:#010x}, "
                                 f"the engine is {self.config_digest32:#010x}: recompile the program "
                                 f"for this engine")
        if image.mem_size > self.memory.nbytes:
            raise ValueError(f"the image needs {image.mem_size} bytes, the buffer holds {self.memory.nbytes}")

    def run(self, image, *, timeout_s: float = 10.0, watchdog_cycles: int = 1 << 24,
            irq: bool = False) -> EngineRun:
        """Run ``image`` (its ``memory`` is updated in place with what the engine wrote).

        AcceleratorTimeout after ``timeout_s``; AcceleratorFault with the decoded
        :class:`~msdf_unet.spec.engine.ErrorCode` when the engine stops on an error.
        """
        timeout_s = check_timeout(timeout_s)
        self.check_image(image)
        with self.lock:
            if self._read("STATUS")["busy"]:
                raise AcceleratorTimeout("the engine is still busy with an earlier run")
            mem = self.memory
            mem.write(0, image.memory)
            mem.to_device()
            self._write("MEM_BASE_LO", addr=mem.base & 0xFFFFFFFF)
            self._write("MEM_BASE_HI", addr=mem.base >> 32)
            self._write("MEM_SIZE", bytes=image.mem_size)
            self._write("CMD_OFFSET", offset=image.cmd_offset)
            self._write("WATCHDOG", cycles=watchdog_cycles)
            self._write("CTRL", irq_en=int(bool(irq)))
            t0 = time.perf_counter()
            self._write("START", go=1)
            done = lambda: bool(self._read("STATUS")["done"])  # noqa: E731
            if self._wait is not None:
                self._wait(done, timeout_s)
            else:
                deadline = time.monotonic() + timeout_s
                while not done():
                    if time.monotonic() > deadline:
                        raise AcceleratorTimeout(f"the engine did not finish within {timeout_s} s "
                                                 f"(LAYER {self._read('LAYER')})")
                    time.sleep(1e-4)
            seconds = time.perf_counter() - t0
            status = self._read("STATUS")
            if status["error"]:
                err = self._read("ERROR")
                raise decode_error(err["code"], err["index"], ERROR_NAMES)
            mem.from_device()
            image.memory[:] = mem.read(0, image.mem_size)
            cycles = self._read("CYCLES")["count"]
        return EngineRun(cycles=cycles, statuses=image.statuses(), seconds=seconds)
