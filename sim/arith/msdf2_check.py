"""Shared simulation check of the MSDF v2 units (``msdf-v2``, ``msdf-v2-lite``; Amaranth
simulator): RTL against
:class:`~msdf_unet.golden.arith.msdf2.MSDF2CycleModel` and exact integer arithmetic. Used
by the unit tests and by the mutation check."""
import sys
import types
from pathlib import Path

import numpy as np

from msdf_unet.golden.arith import baselines as g
from msdf_unet.golden.arith import mma, msdf2
from msdf_unet.golden.arith.mma import Policy
from msdf_unet.hdl.arith.iface import Policy as HPolicy
from msdf_unet.sim.arith.stream_driver import run_stream

__all__ = ["make_txns", "check", "truncate_boundary_txns", "load_mutant"]


def make_txns(rng, L, n, *, B=8, signed=True, policies=tuple(Policy), loose=0.3):
    """:func:`msdf2.random_txns` with the RTL's policy enum (for the payload constants)."""
    return [msdf2.Txn(t.x, t.w, HPolicy(int(t.policy)), t.digits, t.wpos)
            for t in msdf2.random_txns(rng, L, n, act_bits=B, signed_acts=signed,
                                       policies=policies, loose=loose)]


def check(dut, txns, vp, rp):
    acc, outs = run_stream(dut, txns, vp, rp)
    model = msdf2.MSDF2CycleModel(n_lanes=dut.n_lanes, act_bits=dut.act_bits,
                                  signed_acts=dut.signed_acts, pipelined=dut.pipelined)
    g_acc, g_outs = g.simulate(model, txns, vp, rp)
    assert len(outs) == len(txns), f"{len(outs)} of {len(txns)} results"
    assert acc == g_acc
    assert [(c, r.value, r.digits_used, r.terminated) for c, r in outs] == \
        [(c, r.value, r.digits_used, r.terminated) for c, r in g_outs]
    # independent oracle: exact integers and the MMA's TRUNCATE prefix
    B = dut.act_bits
    for (_, r), t in zip(outs, txns):
        S = sum(a * b for a, b in zip(t.x, t.w))
        pol = mma._policy(t.policy)
        if pol is Policy.FULL:
            assert (r.value, r.digits_used, r.terminated) == (S, B, 0)
        elif pol is Policy.RELU_END:
            assert (r.value, r.terminated) == (max(S, 0), int(S < 0))
        elif pol is Policy.SIGN_ONLY:
            assert (r.value, r.terminated) == ((S > 0) - (S < 0), int(S != 0))
        else:
            ref = mma.evaluate(np.array(t.x), np.array(t.w), "TRUNCATE", t.digits, act_bits=B,
                               signed_acts=dut.signed_acts)
            assert r.value == int(ref.values)
    return acc, outs


def truncate_boundary_txns(L: int, act_bits: int = 8) -> list:
    """Signed TRUNCATE ``p = 3`` transactions whose prefix ``A_2`` sits exactly on a rounding
    boundary of the MMA stream (``A_2 = -2**(F-1)``) while the later planes add a little
    (+-1): ``Z_3`` then differs from the rounded full sum, so a unit that does not mask the
    planes after ``p`` fails here (random operands almost never hit this)."""
    F = mma.online_delay(L)
    need = 1 << (F - 3)                      # P_0 = -need, P_1 = P_2 = 0
    ws = []
    while need:
        ws.append(min(127, need))
        need -= ws[-1]
    if len(ws) + 1 > L or act_bits < 4:
        raise ValueError(f"{L} lanes of {act_bits} bits cannot build the boundary case")
    lo = -(1 << (act_bits - 1))
    out = []
    for tail_w in (-1, 1):
        x = [lo] * len(ws) + [1] + [0] * (L - len(ws) - 1)
        w = ws + [tail_w] + [0] * (L - len(ws) - 1)
        wp = int(np.clip(w, 0, None).sum())
        out.append(msdf2.Txn(tuple(x), tuple(w), HPolicy.TRUNCATE, 3, wp))
    return out


def load_mutant(module, old: str | None, new: str | None, tag: str):
    """A copy of the RTL ``module`` (e.g. ``msdf_unet.hdl.arith.msdf2``) with the text ``old``
    replaced by ``new`` (both None: the unmutated source through the same loader), loaded as a
    module of the same package so its relative imports work. ``old`` must occur exactly once."""
    source = Path(module.__file__).read_text()
    if old is not None:
        assert source.count(old) == 1, f"mutation site of {tag} not found once"
        source = source.replace(old, new)
    package = module.__name__.rpartition(".")[0]
    name = f"{package}._{module.__name__.rpartition('.')[2]}_{tag.replace('-', '_')}"
    mod = types.ModuleType(name)
    mod.__package__ = package
    mod.__file__ = f"<{tag}>"
    sys.modules[name] = mod
    exec(compile(source, mod.__file__, "exec"), mod.__dict__)
    return mod
