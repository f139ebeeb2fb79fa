"""setup.py installs every package, ``msdf_unet.spec`` included, also without ``-e``."""
import runpy
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def layout():
    return runpy.run_path(str(ROOT / "setup.py"), run_name="setup")["package_layout"](str(ROOT))


def test_package_list_has_every_package_folder():
    packages, package_dir = layout()
    assert "msdf_unet" in packages and "msdf_unet.spec" in packages
    # every folder with an __init__.py below msdf_unet/ and the mapped roots is a package
    expected = {"msdf_unet." + ".".join(p.parent.relative_to(ROOT / "msdf_unet").parts)
                for p in (ROOT / "msdf_unet").rglob("__init__.py") if p.parent != ROOT / "msdf_unet"}
    for root in ("hdl", "golden", "host", "sim"):
        assert package_dir[f"msdf_unet.{root}"] == root
        expected |= {"msdf_unet." + ".".join(p.parent.relative_to(ROOT).parts)
                     for p in (ROOT / root).rglob("__init__.py")}
    assert expected <= set(packages)


def _setuptools_major() -> int:
    return int(version("setuptools").split(".")[0])


@pytest.mark.slow
@pytest.mark.skipif(_setuptools_major() < 68, reason="pyproject.toml needs setuptools >= 68")
def test_wheel_contains_spec(tmp_path):
    # build from a copy: setuptools writes its build/ tree beside setup.py
    src = tmp_path / "src"
    skip = shutil.ignore_patterns("__pycache__", "*.egg-info", "build", ".venv", ".git")
    src.mkdir()
    for name in ("setup.py", "pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for folder in ("msdf_unet", "hdl", "golden", "host", "sim"):
        shutil.copytree(ROOT / folder, src / folder, ignore=skip)
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps",
                    "--no-build-isolation", "-q", "-w", str(tmp_path)], check=True)
    (wheel,) = tmp_path.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "msdf_unet/spec/__init__.py" in names and "msdf_unet/spec/arith.py" in names
    assert "msdf_unet/sim/soc/batch.py" in names
