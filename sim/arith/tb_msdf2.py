"""cocotb testbench of the MSDF v2 dot-product unit against its golden cycle model.

Runs inside the simulator (see :mod:`msdf_unet.sim.arith.test_msdf2`); parameters from the
environment: ``N_LANES``, ``ACT_BITS``, ``SIGNED_ACTS`` (0/1), ``PIPELINED`` (0/1),
``SEED``, ``N_TXNS``. Drives ``i`` with random idle cycles and ``o.ready`` with random
backpressure by exactly the driver rule of
:func:`msdf_unet.golden.arith.baselines.simulate`; the accept cycles and every
``(cycle, result)`` must equal :class:`~msdf_unet.golden.arith.msdf2.MSDF2CycleModel`,
and the values the exact integer policy values (TRUNCATE: the MMA's prefix value).
"""
import os

import cocotb
import numpy as np

from msdf_unet.golden.arith import baselines as g
from msdf_unet.golden.arith import mma, msdf2
from msdf_unet.golden.arith.mma import Policy
from msdf_unet.hdl.arith.msdf2 import msdf2_io
from msdf_unet.sim.arith.dot_tb import DotProductTB


class Params:
    def __init__(self):
        self.n_lanes = int(os.environ.get("N_LANES", "9"))
        self.act_bits = int(os.environ.get("ACT_BITS", "8"))
        self.signed_acts = os.environ.get("SIGNED_ACTS", "1") == "1"
        self.pipelined = os.environ.get("PIPELINED", "1") == "1"
        self.seed = int(os.environ.get("SEED", "1"))
        self.n_txns = int(os.environ.get("N_TXNS", "60"))

    def model(self):
        return msdf2.MSDF2CycleModel(n_lanes=self.n_lanes, act_bits=self.act_bits,
                                     signed_acts=self.signed_acts, pipelined=self.pipelined)


class TB(DotProductTB):
    def __init__(self, dut, p: Params):
        super().__init__(dut, n_lanes=p.n_lanes, act_bits=p.act_bits, signed_acts=p.signed_acts)
        i_sig, _ = msdf2_io(n_lanes=p.n_lanes, act_bits=p.act_bits, signed_acts=p.signed_acts)
        self.i_layout = i_sig.members["payload"].shape      # dot_product_io + wpos
        self.p = p

    def pack(self, t: msdf2.Txn) -> int:
        return self.i_layout.const({"x": list(t.x), "w": list(t.w), "policy": int(t.policy),
                                    "digits": int(t.digits), "wpos": int(t.wpos)}).as_bits()

    def unpack(self, raw: int) -> msdf2.Result:
        v = self.o_layout.from_bits(raw)
        return msdf2.Result(value=v.value, digits_used=v.digits_used, terminated=v.terminated)


def _oracle(t: msdf2.Txn, act_bits: int, signed_acts: bool) -> int:
    S = sum(a * b for a, b in zip(t.x, t.w))
    pol = Policy(int(t.policy))
    if pol is Policy.TRUNCATE:
        return int(mma.evaluate(np.array(t.x), np.array(t.w), "TRUNCATE", t.digits,
                                act_bits=act_bits, signed_acts=signed_acts).values)
    return {Policy.FULL: S, Policy.RELU_END: max(S, 0), Policy.SIGN_ONLY: (S > 0) - (S < 0)}[pol]


async def _check(dut, p: Params, txns, vp, rp):
    tb = TB(dut, p)
    await tb.reset()
    accepts, outputs = await tb.run(txns, vp, rp)
    g_acc, g_out = g.simulate(p.model(), txns, vp, rp)
    assert len(outputs) == len(txns), f"{len(outputs)} of {len(txns)} results"
    assert accepts == g_acc, "accept cycles differ from the golden cycle model"
    for (c, r), (gc, gr), t in zip(outputs, g_out, txns):
        assert (c, r) == (gc, gr), f"y_produced {(c, r)} != y_expected {(gc, gr)} for {t}"
        assert r.value == _oracle(t, p.act_bits, p.signed_acts)
    return accepts, outputs


@cocotb.test()
async def test_random_with_idle_and_backpressure(dut):
    p = Params()
    rng = np.random.default_rng(p.seed)
    txns = msdf2.random_txns(rng, p.n_lanes, p.n_txns, act_bits=p.act_bits, signed_acts=p.signed_acts)
    horizon = p.n_txns * (p.act_bits + 6) * 3
    vp = (rng.random(horizon) < 0.6).tolist()
    rp = (rng.random(horizon) < 0.5).tolist()
    await _check(dut, p, txns, vp, rp)


@cocotb.test()
async def test_back_to_back(dut):
    p = Params()
    rng = np.random.default_rng(p.seed + 1)
    txns = msdf2.random_txns(rng, p.n_lanes, 30, act_bits=p.act_bits, signed_acts=p.signed_acts,
                             policies=(Policy.RELU_END, Policy.SIGN_ONLY, Policy.FULL), loose=0)
    horizon = 30 * p.act_bits + 20
    accepts, outputs = await _check(dut, p, txns, [1] * horizon, [1] * horizon)
    used = [r.digits_used for _, r in outputs]
    assert [b - a for a, b in zip(accepts[1:], accepts[2:])] == [max(u, 2) for u in used[:-2]]
