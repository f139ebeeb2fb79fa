"""msdf-unet: U-Net segmentation on a Zynq-7020 with MSDF digit-serial arithmetic.

The code lives in top-level folders imported under this prefix:

- :mod:`msdf_unet.hdl`    Amaranth HDL (MSDF arithmetic and baselines, AXI4-Lite bus, SoC top)
- :mod:`msdf_unet.golden` reference models (float, INT8, hardware-exact MSDF)
- :mod:`msdf_unet.host`   host driver, register access backends, demo and the ``msdf-unet`` CLI
- :mod:`msdf_unet.sim`    cocotb testbenches and simulator plumbing

Inference API (imported on first use, so ``import msdf_unet`` stays light and works on the
board without torch or amaranth): :func:`segment` and :func:`load_model` from
:mod:`msdf_unet.host.api`::

    import msdf_unet
    seg = msdf_unet.segment("t1.nii.gz", "mri_edge", backend="int8")
"""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("msdf-unet")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["segment", "load_model", "__version__"]
_API = ("segment", "load_model")


def __getattr__(name):
    if name in _API:
        from .host import api
        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
