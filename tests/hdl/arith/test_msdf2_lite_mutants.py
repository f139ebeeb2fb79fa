# amaranth: UnusedElaboratable=no
"""Mutation check of the msdf-v2-lite RTL: each mutant is a plausible bug written into a copy
of ``hdl/arith/msdf2_lite.py``; the simulation check (cycle model + exact oracle, random idle
and backpressure, the TRUNCATE rounding-boundary cases) must reject every one of them, and
accept the unmutated source run through the same loader."""

import numpy as np
import pytest

from msdf_unet.hdl.arith import msdf2_lite as rtl
from msdf_unet.sim.arith.msdf2_check import check, load_mutant, make_txns, truncate_boundary_txns

#: name -> (original text, mutated text)
MUTANTS = {
    "sign-plane-not-negated": ("px.eq(Mux(first, ~u, u) if sgn else u)", "px.eq(u)"),
    "end-offset-without-wp": ("lo.eq(Mux(is_trunc, 0, ~wp))", "lo.eq(0)"),
    "end-offset-bit-dropped": ("~first & ~is_trunc & ~wp_rev.bit_select(t, 1)", "~first & ~is_trunc"),
    "end-offset-k0-dropped": ("c0_in.eq(pay.wpos - k0_in)", "c0_in.eq(pay.wpos)"),
    # (an END stop on the last plane is an equivalent mutant here: the plane is the last one
    # anyway, and the value, flags and digits_used are the same)
    "end-decision-for-every-policy": ("early.eq(act & ~last & relu_like & neg_now)",
                                      "early.eq(act & ~last & neg_now)"),
    "truncate-half-dropped-p-le-B": ("rnd, tr = flags[0], flags[1]", "rnd, tr = Const(0, 1), flags[1]"),
    "truncate-half-dropped-p-gt-B": ("rnd, tr = flags[0], flags[1]", "rnd, tr = flags[0], Const(0, 1)"),
    "planes-after-p-not-masked": ("with m.If(live_at_load[tp]):", "with m.If(1):"),
    "low-bits-not-cleared": ("D[:F].eq(Mux(act & ~done & ~rnd, d_new[:F], 0))",
                             "D[:F].eq(Mux(act & ~done, d_new[:F], 0))"),
    "register-not-cleared-after-result": ("D[F:].eq(Mux(act & ~done, d_new[F:], 0))",
                                          "D[F:].eq(Mux(act, d_new[F:], 0))"),
    "no-output-stall": ("stall.eq(fin_valid & self.o.valid & ~self.o.ready)", "stall.eq(0)"),
    "sign-only-minus-one-missing": ("fin_set.eq(is_sign & ne_now)", "fin_set.eq(0)"),
    "digits-used-off-by-one": ("fin_used.eq(t1)", "fin_used.eq(t)"),
}


def _run(mod):
    rng = np.random.default_rng(19)
    L = 9
    dut = mod.MSDF2LiteDotProduct(n_lanes=L)
    txns = make_txns(rng, L, 100) + truncate_boundary_txns(L)
    horizon = 102 * 14 * 4
    # o.ready low 70 % of the cycles: results meet a full output register
    check(dut, txns, (rng.random(horizon) < 0.6).tolist(), (rng.random(horizon) < 0.3).tolist())


def test_unmutated_source_passes():
    _run(load_mutant(rtl, None, None, "orig"))


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_caught(name):
    mod = load_mutant(rtl, *MUTANTS[name], name)
    with pytest.raises(AssertionError):
        _run(mod)
