"""Maps the top-level folders to import names under the `msdf_unet` prefix.

`hdl/` is imported as `msdf_unet.hdl`, `golden/` as `msdf_unet.golden`, and so on; every
sub-package found below them is included. All other metadata lives in pyproject.toml.
"""
from setuptools import find_packages, setup

ROOTS = ("hdl", "golden", "host", "sim")

packages = ["msdf_unet"] + [f"msdf_unet.{p}" for p in find_packages(where="msdf_unet")]  # msdf_unet.spec
package_dir = {"msdf_unet": "msdf_unet"}
for root in ROOTS:
    package_dir[f"msdf_unet.{root}"] = root
    packages += [f"msdf_unet.{p}" for p in find_packages(where=".", include=[root, f"{root}.*"])]

setup(packages=packages, package_dir=package_dir)
