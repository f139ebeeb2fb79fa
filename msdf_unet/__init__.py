"""msdf-unet: U-Net segmentation on a Zynq-7020 with MSDF digit-serial arithmetic.

The code lives in top-level folders imported under this prefix:

- :mod:`msdf_unet.hdl`    Amaranth HDL (MSDF arithmetic and baselines, AXI4-Lite bus, SoC top)
- :mod:`msdf_unet.golden` reference models (float, INT8, hardware-exact MSDF)
- :mod:`msdf_unet.host`   host driver, register access backends, demo and the ``msdf-unet`` CLI
- :mod:`msdf_unet.sim`    cocotb testbenches and simulator plumbing
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("msdf-unet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"
