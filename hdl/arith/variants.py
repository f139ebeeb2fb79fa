"""Pick the dot-product unit of an arithmetic variant at generation time.

Every variant has the ``i``/``o`` streams of :mod:`.iface`, so the accelerator, the
testbenches and the benchmarks build any of them through :func:`make_dot_product`. The
variants and their units are declared once, in :data:`msdf_unet.spec.arith.ARITH_VARIANTS`.
"""
from __future__ import annotations

import importlib

from ...spec.arith import ARITH_VARIANTS, VARIANTS, Variant

__all__ = ["make_dot_product", "unit_class", "variant"]


def variant(name: str) -> Variant:
    """The :class:`~msdf_unet.spec.arith.Variant` called ``name``; ValueError if unknown."""
    for v in ARITH_VARIANTS:
        if v.name == name:
            return v
    raise ValueError(f"unknown arithmetic variant {name!r}; known: {list(VARIANTS)}")


def unit_class(v: Variant) -> type:
    """The dot-product component class of variant ``v``."""
    return getattr(importlib.import_module(f"{__package__}.{v.module}"), v.cls)


def make_dot_product(config):
    """The dot-product unit for an :class:`~msdf_unet.hdl.soc.config.AccelConfig`."""
    v = variant(config.variant)
    kwargs = dict(n_lanes=config.n_lanes, act_bits=config.act_bits,
                  signed_acts=config.signed_acts, **dict(v.options))
    if v.name == "mma":
        kwargs["group_size"] = config.group_size
    return unit_class(v)(**kwargs)
