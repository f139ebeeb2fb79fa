# amaranth: UnusedElaboratable=no
"""Mutation check of the msdf-v2-lite RTL: each mutant is a plausible bug written into a copy
of ``hdl/arith/msdf2_lite.py``; the simulation check (cycle model + exact oracle, random idle
and backpressure, the TRUNCATE rounding-boundary cases) must reject every one of them, and
accept the unmutated source run through the same loader."""

import numpy as np
import pytest

from msdf_unet.hdl.arith import msdf2_lite as rtl
from msdf_unet.sim.arith.msdf2_check import check, load_mutant, make_txns, truncate_boundary_txns

#: name -> (original text, mutated text, configurations: "flat", "pipelined" or both)
BOTH = ("flat", "pipelined")
MUTANTS = {
    "sign-plane-not-negated": ('px.eq(Mux(a["first"], ~u, u) if sgn else u)', "px.eq(u)", ("flat",)),
    "sign-plane-not-negated-pipelined": ('f = a["first"]', "f = Const(0, 1)", ("pipelined",)),
    "end-offset-without-wp": ("lo.eq(Mux(is_trunc, 0, ~wp))", "lo.eq(0)", BOTH),
    "end-offset-bit-dropped": ("~first & ~is_trunc & ~wp_rev.bit_select(t, 1)", "~first & ~is_trunc",
                               BOTH),
    "end-offset-k0-dropped": ("c0_in.eq(pay.wpos - k0_in)", "c0_in.eq(pay.wpos)", BOTH),
    # (an END stop on the last plane is an equivalent mutant here: the plane is the last one
    # anyway, and the value, flags and digits_used are the same)
    "end-decision-for-every-policy": ('early.eq(v & ~a["last"] & a["relu_like"] & neg_now)',
                                      'early.eq(v & ~a["last"] & neg_now)', ("flat",)),
    "end-decision-for-every-policy-pipelined": ("s1_cs.eq(kept & ~last & relu_like)",
                                                "s1_cs.eq(kept & ~last)", ("pipelined",)),
    "truncate-half-dropped-p-le-B": ("rnd = flags[0]", "rnd = Const(0, 1)", BOTH),
    "truncate-half-dropped-p-gt-B": ("tr=flags[1]", "tr=Const(0, 1)", BOTH),
    "planes-after-p-not-masked": ("with m.If(live_at_load[tp]):", "with m.If(1):", BOTH),
    "low-bits-not-cleared": ("D[:F].eq(Mux(keep_d & ~rnd_a, d_new[:F], 0))",
                             "D[:F].eq(Mux(keep_d, d_new[:F], 0))", BOTH),
    "register-not-cleared-after-result": ("keep_d.eq(v & ~done)", "keep_d.eq(v)", ("flat",)),
    "register-not-cleared-after-result-pipelined": ("keep_d.eq(s1_vm & ~early)",
                                                    "keep_d.eq(s1_vm | s1_vl)", ("pipelined",)),
    "no-output-stall": ("stall.eq(fin_valid & self.o.valid & ~self.o.ready)", "stall.eq(0)", BOTH),
    "sign-only-minus-one-missing": ("fin_set.eq(is_sign_a & ne_now)", "fin_set.eq(0)", BOTH),
    "digits-used-off-by-one": ('fin_used.eq(a["used"])', 'fin_used.eq(a["used"] - 1)', BOTH),
    # pipelined only
    "stale-plane-not-dropped-after-stop": ("kept.eq(act & ~early)", "kept.eq(act)", ("pipelined",)),
    "group-sums-not-stalled": ("            with m.If(~stall):\n                m.d.sync += [s1_term",
                               "            with m.If(1):\n                m.d.sync += [s1_term",
                               ("pipelined",)),
    "inversion-carry-dropped": ("acc = add_carry(side, u, f | s1_cin)",
                                "acc = add_carry(side, u, s1_cin)", ("pipelined",)),
    "leftover-group-dropped": ("side_terms = [s1_term] + s1_sum[n_main:]", "side_terms = [s1_term]",
                               ("pipelined",)),
    "sign-only-nonzero-from-low-bits": ("sgn_nz = (fin_sgn & fin_nz.any())",
                                        "sgn_nz = (fin_sgn & fin_nz[0])", ("pipelined",)),
}
CASES = [(name, cfg) for name, (_, _, cfgs) in MUTANTS.items() for cfg in cfgs]


def _run(mod, cfg):
    rng = np.random.default_rng(19)
    # flat: 9 lanes (the unit's choice); pipelined: 20 lanes in 5 registered groups (4 in
    # the accumulator's tree, one on its register side)
    L, extra = (9, {}) if cfg == "flat" else (20, {"group_size": 4})
    dut = mod.MSDF2LiteDotProduct(n_lanes=L, **extra)
    assert dut.pipelined is (cfg == "pipelined")
    txns = make_txns(rng, L, 100) + truncate_boundary_txns(L)
    horizon = 102 * 14 * 4
    # o.ready low 70 % of the cycles: results meet a full output register
    check(dut, txns, (rng.random(horizon) < 0.6).tolist(), (rng.random(horizon) < 0.3).tolist())


@pytest.mark.parametrize("cfg", BOTH)
def test_unmutated_source_passes(cfg):
    _run(load_mutant(rtl, None, None, "orig"), cfg)


@pytest.mark.parametrize("name,cfg", CASES)
def test_mutant_is_caught(name, cfg):
    old, new, _ = MUTANTS[name]
    mod = load_mutant(rtl, old, new, name)
    with pytest.raises(AssertionError):
        _run(mod, cfg)
