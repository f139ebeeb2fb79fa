"""The accelerator as a PYNQ IP driver: ``Overlay("msdf_accel.bit").msdf_accel_0``.

PYNQ binds a :class:`pynq.DefaultIP` subclass to every cell of the overlay whose VLNV is in
the class's ``bindto``. ``pynq`` is imported lazily (this module imports on any machine):
the class :class:`MsdfAccelIP` is created on first access of the attribute, which
registers it with PYNQ, so import it *before* loading the overlay::

    from msdf_unet.host.pynq_ip import MsdfAccelIP   # registers the driver
    ol = Overlay("/home/xilinx/msdf_accel/msdf_accel.bit")
    accel = ol.msdf_accel_0                           # an MsdfAccelIP
    drv = accel.engine_driver(image.mem_size)         # the convolution engine (default top)
    accel.dot_driver().dot(x, w, bias)                # an overlay of the dot-product top

The overlay folder (``make bitstream``'s ``out/``) also holds ``regmap.json``,
``engine_config.json`` and the shipped programs: :func:`check_overlay` refuses a folder of
another top, register map or engine configuration; :func:`ship_programs` (build side) /
:func:`find_image` (board side) store and find the programs compiled for the overlay's
engine, so the board does not compile them.

Conventions followed (from PYNQ's own drivers): register access through the IP's MMIO
(``read``/``write``), buffers from ``pynq.allocate`` (``S_AXI_HP0`` is not cache-coherent:
:func:`to_device` flushes the CPU cache before the PL reads a buffer,
:func:`from_device` invalidates it before the CPU reads what the PL wrote), the interrupt
through the ``axi_intc`` the block design puts on ``IRQ_F2P`` (``self.irq`` when PYNQ found
it), every wait bounded by a timeout, hardware error codes raised as
:class:`~.runtime.AcceleratorFault`. One lock per IP: concurrent runs from several threads
are serialised.
"""
from __future__ import annotations

import threading
import time

import numpy as np

from .runtime import AcceleratorTimeout, BackendUnavailable, check_timeout, require_engine

__all__ = ["ACCEL_VLNV", "ACCEL_CELL", "MsdfAccelIP", "allocate", "to_device", "from_device", "pynq_module",
           "ENGINE_CONFIG_FILE", "REGMAP_FILE", "IMAGE_SUFFIX", "SHIPPED_POLICY", "check_overlay",
           "program_digest", "image_name", "ship_programs", "find_image"]

#: VLNV Vivado gives the accelerator's module reference (= hdl.soc.vivado.ACCEL_VLNV; a test
#: checks they agree: this module must not import the Amaranth side).
ACCEL_VLNV = "xilinx.com:module_ref:msdf_accel:1.0"
#: the accelerator's cell in the block design (= hdl.soc.vivado.ACCEL_CELL)
ACCEL_CELL = "msdf_accel_0"

#: Files of the overlay folder (``make bitstream``'s ``out/``) the ``pynq`` backend reads.
ENGINE_CONFIG_FILE = "engine_config.json"
REGMAP_FILE = "regmap.json"
#: Compiled images shipped beside the bitstream (``host/compiler.py:save_image``).
IMAGE_SUFFIX = ".msdfi"
#: The policy the ``pynq`` backend runs (exact early termination, labels equal ``int8``).
SHIPPED_POLICY = "end"

_CLASS = None
_CLASS_LOCK = threading.Lock()


def pynq_module():
    """``import pynq``, or BackendUnavailable saying how to get it."""
    try:
        import pynq  # noqa: PLC0415 - only on the board
    except ImportError as e:
        raise BackendUnavailable("the pynq backend needs the pynq package: it runs on a PYNQ board "
                                 "image (elsewhere `pip install msdf-unet[board]`)") from e
    return pynq


def allocate(shape, dtype=np.uint8):
    """A physically contiguous buffer (``pynq.allocate``) the PL can reach through HP0."""
    return pynq_module().allocate(shape=shape, dtype=dtype)


def to_device(buf) -> None:
    """Flush the CPU cache over ``buf`` so the PL reads what the CPU wrote (HP0 is not
    cache-coherent)."""
    buf.flush()


def from_device(buf) -> None:
    """Invalidate the CPU cache over ``buf`` so the CPU reads what the PL wrote."""
    buf.invalidate()


def _make_class():
    pynq = pynq_module()

    class MsdfAccelIP(pynq.DefaultIP):
        """Driver PYNQ instantiates for the ``msdf_accel`` cell of the overlay."""

        bindto = [ACCEL_VLNV]

        def __init__(self, description):
            super().__init__(description=description)
            self.lock = threading.Lock()

        # -- the dot-product top (hdl/soc/accel.py) ----------------------------------
        def dot_driver(self):
            """:class:`~msdf_unet.host.driver.DotProductDriver` over this IP's registers
            (checks ID and the register-map digest)."""
            from .driver import DotProductDriver
            return DotProductDriver(_LockedMMIO(self))

        # -- waiting ---------------------------------------------------------------------
        def wait_done(self, is_done, timeout_s: float = 10.0, poll_s: float = 1e-4) -> None:
            """Block until ``is_done()`` is true: through the interrupt when PYNQ found one
            (``self.irq``) and no event loop is running in this thread, else by polling.
            AcceleratorTimeout after ``timeout_s`` (finite, > 0)."""
            timeout_s = check_timeout(timeout_s)
            irq = getattr(self, "irq", None)
            if irq is not None and not is_done():
                import asyncio
                try:
                    asyncio.get_running_loop()
                    running = True
                except RuntimeError:
                    running = False
                if not running:
                    loop = asyncio.new_event_loop()
                    try:
                        loop.run_until_complete(asyncio.wait_for(irq.wait(), timeout_s))
                    except asyncio.TimeoutError:
                        pass
                    finally:
                        loop.close()
            deadline = time.monotonic() + timeout_s
            while not is_done():
                if time.monotonic() > deadline:
                    raise AcceleratorTimeout(f"the accelerator did not finish within {timeout_s} s")
                time.sleep(poll_s)

        # -- the convolution engine -----------------------------------------------------
        def engine_driver(self, nbytes: int):
            """:class:`~msdf_unet.host.engine_driver.EngineDriver` over this IP's registers
            and a ``pynq.allocate`` buffer of ``nbytes`` (checks ID, map digest, version;
            waits through :meth:`wait_done`)."""
            require_engine("pynq")
            from .engine_driver import EngineDriver, PynqMemory
            drv = EngineDriver(_LockedMMIO(self), PynqMemory(nbytes), wait=self.wait_done)
            #: run with CTRL.irq_en when PYNQ found the interrupt (else wait_done polls)
            drv.use_irq = getattr(self, "irq", None) is not None
            return drv

    return MsdfAccelIP


class _LockedMMIO:
    """``read``/``write`` of a PYNQ IP, each access under the IP's lock."""

    def __init__(self, ip):
        self.ip = ip

    def read(self, offset: int) -> int:
        with self.ip.lock:
            return int(self.ip.read(offset)) & 0xFFFFFFFF

    def write(self, offset: int, value: int) -> None:
        with self.ip.lock:
            self.ip.write(offset, value)


def __getattr__(name):
    global _CLASS
    if name == "MsdfAccelIP":
        with _CLASS_LOCK:
            if _CLASS is None:
                _CLASS = _make_class()
        return _CLASS
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# ------------------------------------------------------------------ the overlay folder

def check_overlay(folder):
    """The :class:`~msdf_unet.spec.engine.EngineConfig` of the overlay in ``folder``
    (``engine_config.json``), after checking that its ``regmap.json`` is the register map
    of this runtime's engine; :class:`~.runtime.ConfigMismatch` naming the file otherwise
    (an overlay of the dot-product top, of an older build, or of another engine)."""
    import json
    from pathlib import Path

    from ..hdl.conv.regs import engine_map
    from ..spec.engine import EngineConfig
    from .runtime import ConfigMismatch
    folder = Path(folder)
    regmap, cfg = folder / REGMAP_FILE, folder / ENGINE_CONFIG_FILE
    if not cfg.is_file():
        raise ConfigMismatch(f"the overlay in {folder} has no {ENGINE_CONFIG_FILE}: it was not built "
                             f"with the convolution engine as its top (rebuild it with "
                             f"`make bitstream`, whose default top is the engine)")
    if not regmap.is_file():
        raise ConfigMismatch(f"the overlay in {folder} has no {REGMAP_FILE} (copy the whole folder "
                             f"`make bitstream` wrote)")
    want = engine_map()
    try:
        got = json.loads(regmap.read_text())
        same = got == json.loads(want.to_json())
    except (ValueError, UnicodeDecodeError):
        same = False
    if not same:
        raise ConfigMismatch(f"{regmap} is not the register map of this runtime's engine "
                             f"(digest {want.digest32:#010x}): the overlay was built from another "
                             f"version of msdf-unet; rebuild it or install the matching msdf-unet")
    try:
        return EngineConfig.from_json(cfg.read_text())
    except ValueError as e:
        raise ConfigMismatch(f"{cfg} is not a valid EngineConfig: {e}") from None


def program_digest(program) -> str:
    """SHA-256 (hex) of a program's ``.msdfp`` bytes: what a shipped image is keyed by."""
    import hashlib

    from ..golden.program import program_to_bytes
    return hashlib.sha256(program_to_bytes(program)).hexdigest()


def image_name(program, input_hw, policy: str = SHIPPED_POLICY) -> str:
    """File name of ``program`` compiled for ``input_hw`` with ``policy``:
    ``<model>-<digest16>.<H>x<W>.<policy>.msdfi`` (the engine config is in the file and
    checked when it is loaded)."""
    name = str(program.meta.get("model") or "program")
    h, w = (int(v) for v in input_hw)
    return f"{name}-{program_digest(program)[:16]}.{h}x{w}.{policy.replace(':', '-')}{IMAGE_SUFFIX}"


def ship_programs(programs, config, dest, *, policy: str = SHIPPED_POLICY) -> list:
    """Write each ``name -> Program`` of ``programs`` into ``dest`` as ``<name>.msdfp`` and
    compiled for ``config`` at its nominal input size (:func:`image_name`); return the paths."""
    from pathlib import Path

    from ..golden.program import program_to_bytes
    from .compiler import compile_program, save_image
    from .runtime import atomic_write_bytes
    dest = Path(dest)
    out = []
    for name, program in programs.items():
        out.append(atomic_write_bytes(dest / f"{name}.msdfp", program_to_bytes(program)))
        image = compile_program(program, config, policy=policy)
        out.append(save_image(dest / image_name(program, image.meta["input_hw"], policy), image))
    return out


def find_image(folder, program, config, input_hw, policy: str = SHIPPED_POLICY):
    """The image of ``program`` compiled for ``config`` / ``input_hw`` / ``policy`` shipped
    in ``folder``, or None when there is none (the caller compiles it).
    :class:`~msdf_unet.host.compiler.ImageFormatError` for a corrupt file or one compiled
    for another engine configuration."""
    from pathlib import Path

    from .compiler import ImageFormatError, load_image
    path = Path(folder) / image_name(program, input_hw, policy)
    if not path.is_file():
        return None
    image = load_image(path, expect_config=config)
    if list(image.meta.get("input_hw", ())) != [int(v) for v in input_hw] or image.policy != policy:
        raise ImageFormatError(f"{path}: holds input {image.meta.get('input_hw')} / policy "
                               f"{image.policy}, its name says {list(input_hw)} / {policy}")
    return image
