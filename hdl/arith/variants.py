"""Pick the dot-product unit of an arithmetic variant at generation time.

Every variant has the ``i``/``o`` streams of :mod:`.iface`, so the accelerator, the
testbenches and the benchmarks build any of them through :func:`make_dot_product`.
"""
from __future__ import annotations

import importlib

__all__ = ["make_dot_product"]

# variant -> (module, class, extra keyword arguments)
_VARIANTS = {
    "mma": ("mma", "MMADotProduct", {}),
    "cascaded": ("cascaded", "CascadedMSDFDotProduct", {}),
    "bitserial": ("bitserial", "BitSerialDotProduct", {}),
    "bitparallel-lut": ("bitparallel", "BitParallelDotProduct", {"multiplier": "lut"}),
    "bitparallel-dsp": ("bitparallel", "BitParallelDotProduct", {"multiplier": "dsp"}),
    "msdf-v2": ("msdf2", "MSDF2DotProduct", {}),
}


def make_dot_product(config):
    """The dot-product unit for an :class:`~msdf_unet.hdl.soc.config.AccelConfig`."""
    try:
        module, cls_name, extra = _VARIANTS[config.variant]
    except KeyError:
        raise ValueError(f"unknown arithmetic variant {config.variant!r}; "
                         f"known: {sorted(_VARIANTS)}") from None
    cls = getattr(importlib.import_module(f"{__package__}.{module}"), cls_name)
    kwargs = dict(n_lanes=config.n_lanes, act_bits=config.act_bits,
                  signed_acts=config.signed_acts, **extra)
    if config.variant == "mma":
        kwargs["group_size"] = config.group_size
    return cls(**kwargs)
