# amaranth: UnusedElaboratable=no
"""Mutation check of the MSDF v2 RTL: each mutant is a plausible bug written into a copy of
``hdl/arith/msdf2.py``; the simulation check of :mod:`test_msdf2` (cycle model + exact
oracle, random idle and backpressure) must reject every one of them, and accept the
unmutated source run through the same loader."""

import numpy as np
import pytest

from msdf_unet.hdl.arith import msdf2 as rtl

from msdf_unet.sim.arith.msdf2_check import check, load_mutant, make_txns, truncate_boundary_txns

#: name -> (original text, mutated text)
MUTANTS = {
    "sign-plane-not-negated": ("c_new.eq(base + px + (self.sign_plane | self.cin))",
                               "c_new.eq(base + px + self.cin)"),
    "end-bound-without-wp": ("j.eq(ks[B - 1:] - wp)", "j.eq(ks[B - 1:])"),
    "end-decision-on-last-plane": ("self.early.eq(self.valid & self.plane_end & ~self.last & relu_like",
                                   "self.early.eq(self.valid & self.plane_end & relu_like"),
    "truncate-half-dropped": ("cin.eq((p_r > F) & (p_r < T) & (t + F == p_r))", "cin.eq(0)"),
    "stale-plane-not-dropped": ("m.d.sync += s1_valid.eq(act & ~core.early)", "m.d.sync += s1_valid.eq(act)"),
    "no-output-stall": ("stall.eq(core.res_valid & self.o.valid & ~self.o.ready)", "stall.eq(0)"),
    "digits-used-without-lag": ("fin_t + 1 + self.lag", "fin_t + 1"),
    "masked-plane-live": ("live.eq(t < p_r)", "live.eq(1)"),
}


def _run(mod, pipelined=True):
    rng = np.random.default_rng(17)
    L = 7
    dut = mod.MSDF2DotProduct(n_lanes=L, pipelined=pipelined, group_size=4)
    txns = make_txns(rng, L, 150) + truncate_boundary_txns(L)
    horizon = 150 * 14 * 3
    check(dut, txns, (rng.random(horizon) < 0.6).tolist(), (rng.random(horizon) < 0.5).tolist())


def test_unmutated_source_passes():
    _run(load_mutant(rtl, None, None, "orig"))


@pytest.mark.parametrize("name", list(MUTANTS))
def test_mutant_is_caught(name):
    mod = load_mutant(rtl, *MUTANTS[name], name)
    with pytest.raises(AssertionError):
        _run(mod)
