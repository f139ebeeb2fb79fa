"""The accelerator as a PYNQ IP driver: ``Overlay("msdf_accel.bit").msdf_accel_0``.

PYNQ binds a :class:`pynq.DefaultIP` subclass to every cell of the overlay whose VLNV is in
the class's ``bindto``. ``pynq`` is imported lazily (this module imports on any machine):
the class :class:`MsdfAccelIP` is created on first access of the attribute, which
registers it with PYNQ, so import it *before* loading the overlay::

    from msdf_unet.host.pynq_ip import MsdfAccelIP   # registers the driver
    ol = Overlay("/home/xilinx/msdf_accel/msdf_accel.bit")
    accel = ol.msdf_accel_0                           # an MsdfAccelIP
    accel.dot_driver().dot(x, w, bias)                # the dot-product top

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

__all__ = ["ACCEL_VLNV", "ACCEL_CELL", "MsdfAccelIP", "allocate", "to_device", "from_device", "pynq_module"]

#: VLNV Vivado gives the accelerator's module reference (= hdl.soc.vivado.ACCEL_VLNV; a test
#: checks they agree: this module must not import the Amaranth side).
ACCEL_VLNV = "xilinx.com:module_ref:msdf_accel:1.0"
#: the accelerator's cell in the block design (= hdl.soc.vivado.ACCEL_CELL)
ACCEL_CELL = "msdf_accel_0"

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
            return EngineDriver(_LockedMMIO(self), PynqMemory(nbytes), wait=self.wait_done)

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
