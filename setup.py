"""Maps the top-level folders to import names under the `msdf_unet` prefix.

`hdl/` is imported as `msdf_unet.hdl`, `golden/` as `msdf_unet.golden`, and so on; every
sub-package found below them, and below `msdf_unet/` itself (`msdf_unet.spec`), is
included. All other metadata lives in pyproject.toml.
"""
from setuptools import find_packages, setup

ROOTS = ("hdl", "golden", "host", "sim")


def package_layout(where: str = ".") -> tuple[list[str], dict[str, str]]:
    """``(packages, package_dir)`` for setuptools, found from the source tree at ``where``."""
    packages = find_packages(where=where, include=["msdf_unet", "msdf_unet.*"])
    package_dir = {"msdf_unet": "msdf_unet"}
    for root in ROOTS:
        package_dir[f"msdf_unet.{root}"] = root
        packages += [f"msdf_unet.{p}" for p in find_packages(where=where, include=[root, f"{root}.*"])]
    return packages, package_dir


if __name__ == "__main__":
    packages, package_dir = package_layout()
    setup(packages=packages, package_dir=package_dir)
