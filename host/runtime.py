"""Board-side runtime pieces shared by every backend (numpy only; pynq lazily).

Runs on the PYNQ image (Python 3.10, numpy, pynq; no amaranth, torch or cocotb):
``tests/host/test_board_safe.py`` imports this module with those packages blocked and
parses it with the Python 3.10 grammar.

- :class:`AcceleratorError` and its subclasses: every failure of a run on the accelerator
  (timeout, an error code the hardware reported, a register map or configuration that is
  not the one this runtime was built for);
- :func:`check_timeout`: a finite, positive timeout or a ValueError;
- :func:`engine_available` / :func:`require_engine`: whether this build has the
  convolution engine's contract (``hdl/conv/regs.py``, ``host/compiler.py``); the ``rtl``
  and ``pynq`` inference backends need it;
- :func:`atomic_write_bytes`: write a file under a temporary name and rename it.
"""
from __future__ import annotations

import importlib.util
import math
from pathlib import Path

__all__ = ["AcceleratorError", "AcceleratorTimeout", "AcceleratorFault", "ConfigMismatch",
           "BackendUnavailable", "check_timeout", "decode_error", "engine_available",
           "require_engine", "atomic_write_bytes", "ENGINE_MODULES", "RTL_MODULES"]

#: Modules of the convolution engine's contract the hardware backends need.
ENGINE_MODULES = ("msdf_unet.hdl.conv.regs", "msdf_unet.host.compiler", "msdf_unet.spec.engine")
#: What the ``rtl`` backend needs besides: the engine's RTL top and the cocotb runner that
#: holds the image in cocotbext-axi's AxiRam (sim/, not host/).
RTL_MODULES = ("msdf_unet.hdl.conv.engine", "msdf_unet.sim.runtime.runner")

class AcceleratorError(RuntimeError):
    """A run on the accelerator failed."""


class AcceleratorTimeout(AcceleratorError):
    """The accelerator did not finish within the timeout."""


class ConfigMismatch(AcceleratorError):
    """The bitstream's register map or the program's engine configuration differs from
    what this runtime expects."""


class AcceleratorFault(AcceleratorError):
    """The accelerator stopped with an error code.

    Attributes: ``code`` (int), ``name`` (the code's name), ``command`` (index of the
    failing command, or None).
    """

    def __init__(self, code: int, name: str, command: int | None = None):
        self.code, self.name, self.command = code, name, command
        where = f" at command {command}" if command is not None else ""
        super().__init__(f"accelerator error {code} ({name}){where}")


class BackendUnavailable(RuntimeError):
    """The backend is not available in this build or on this machine."""


def check_timeout(timeout_s) -> float:
    """``timeout_s`` as a float; ValueError unless it is finite and > 0."""
    try:
        t = float(timeout_s)
    except (TypeError, ValueError):
        raise ValueError(f"timeout must be a number of seconds, not {timeout_s!r}") from None
    if isinstance(timeout_s, bool) or not math.isfinite(t) or t <= 0:
        raise ValueError(f"timeout must be finite and > 0 seconds, not {timeout_s!r}")
    return t


def decode_error(code: int, command: int | None, names: dict[int, str]) -> AcceleratorFault:
    """The exception for error ``code`` (``names``: code -> name, from the engine's enum)."""
    return AcceleratorFault(int(code), names.get(int(code), "unknown error code"), command)


def _have(modules) -> bool:
    try:
        return all(importlib.util.find_spec(m) is not None for m in modules)
    except ModuleNotFoundError:  # a parent package is missing
        return False


def engine_available(backend: str = "pynq") -> bool:
    """True when this build holds what ``backend`` (``"pynq"`` or ``"rtl"``) needs of the
    convolution engine: its contract, register map and compiler (and for ``rtl`` its RTL
    top and cocotb runner)."""
    return _have(ENGINE_MODULES) and (backend != "rtl" or _have(RTL_MODULES))


def require_engine(backend: str) -> None:
    """BackendUnavailable naming what is missing unless :func:`engine_available`."""
    if not engine_available(backend):
        missing = [m for m in ENGINE_MODULES + (RTL_MODULES if backend == "rtl" else ())
                   if not _have((m,))]
        raise BackendUnavailable(
            f"backend {backend!r} is not available in this build: it runs the convolution engine "
            f"and needs {', '.join(missing)}, which this version of msdf-unet does not contain yet; "
            f"use --backend float, int8 or msdf")


def atomic_write_bytes(path: Path | str, data: bytes) -> Path:
    """Write ``data`` to ``path`` under a temporary name and rename it (the project's
    :func:`msdf_unet.fileio.write_bytes`): an interrupted write leaves no partial file."""
    from ..fileio import write_bytes
    return write_bytes(path, data)
