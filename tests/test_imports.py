"""Import rules of the source tree, checked on the syntax tree of every module:

* ``golden/`` never imports ``hdl/`` (nor Amaranth): the models stay independent of the RTL;
* ``host/`` never imports ``sim/`` (board-side code must not need cocotb); the exceptions
  are the simulation entry points of :data:`HOST_LAZY_SIM` (the demo's RTL part and the
  API's ``rtl`` backend), which call one runner in ``sim/`` through an import inside a
  function, so ``host/`` holds no simulation code;
* ``msdf_unet/spec/`` imports only the standard library modules of :data:`SPEC_ALLOWED`
  and itself (no numpy, Amaranth, torch or project folder).
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: source folder -> import name
PACKAGES = {"hdl": "msdf_unet.hdl", "golden": "msdf_unet.golden", "host": "msdf_unet.host",
            "sim": "msdf_unet.sim", "msdf_unet": "msdf_unet"}
SPEC_ALLOWED = {"__future__", "enum", "operator", "dataclasses", "typing", "hashlib", "json", "inspect",
                "msdf_unet.spec"}
#: host module that may import sim/ lazily (inside a function) -> the runners it may import
HOST_LAZY_SIM = {"msdf_unet.host.demo": ("msdf_unet.sim.soc.batch", "msdf_unet.sim.runtime.runner"),
                 "msdf_unet.host.api": ("msdf_unet.sim.runtime.runner",)}


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT).with_suffix("")
    parts = list(rel.parts)
    parts[0] = PACKAGES[parts[0]]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path):
    """``(imported module, lineno, lazy)`` for every import of the file; relative imports
    are resolved against the file's package, ``lazy`` is True inside a function."""
    tree = ast.parse(path.read_text(), str(path))
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    funcs = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    in_func = {id(c) for f in funcs for c in ast.walk(f) if c is not f}
    for node in ast.walk(tree):
        lazy = id(node) in in_func
        if isinstance(node, ast.Import):
            for a in node.names:
                yield a.name, node.lineno, lazy
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            yield target, node.lineno, lazy
            for a in node.names:   # `from . import x` may name a module
                yield f"{target}.{a.name}", node.lineno, lazy


def sources(folder: str):
    return sorted((ROOT / folder).rglob("*.py"))


def under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def violations(folder: str, forbidden, allow_lazy=None):
    """Imports of modules under ``folder`` for which ``forbidden(target)`` holds, except
    ``allow_lazy[module]`` (and names in it) imported inside a function of ``module``."""
    allow_lazy = allow_lazy or {}
    out = []
    for path in sources(folder):
        name = module_name(path)
        for target, line, lazy in imports(path):
            excused = lazy and name in allow_lazy and any(under(target, t) for t in allow_lazy[name])
            if forbidden(target) and not excused:
                out.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return out


def test_module_names_resolve():
    assert module_name(ROOT / "golden/arith/mma.py") == "msdf_unet.golden.arith.mma"
    assert module_name(ROOT / "msdf_unet/spec/__init__.py") == "msdf_unet.spec"
    got = {t for t, _, _ in imports(ROOT / "hdl/arith/iface.py")}
    assert "msdf_unet.spec.arith" in got and "amaranth.lib" in got


def test_golden_does_not_import_hdl():
    bad = violations("golden", lambda t: under(t, "msdf_unet.hdl") or under(t, "amaranth"))
    assert not bad, bad


def test_host_does_not_import_sim():
    bad = violations("host", lambda t: under(t, "msdf_unet.sim") or under(t, "cocotb_tools"),
                     allow_lazy=HOST_LAZY_SIM)
    assert not bad, bad


def test_spec_imports_only_light_stdlib():
    bad = [v for v in violations("msdf_unet", lambda t: not any(under(t, a) for a in SPEC_ALLOWED))
           if v.startswith("msdf_unet/spec/")]
    assert not bad, bad


@pytest.mark.parametrize("folder", ["golden", "host", "hdl", "sim", "msdf_unet"])
def test_every_source_parses(folder):
    assert sources(folder)
    for path in sources(folder):
        list(imports(path))
