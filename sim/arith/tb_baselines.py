"""cocotb testbench of the baseline dot-product units (bit-serial, bit-parallel, cascaded).

Runs inside the simulator (see :mod:`msdf_unet.sim.arith.test_baselines`); parameters come
from the environment: ``VARIANT`` (``bitserial``, ``bitparallel-lut``, ``bitparallel-dsp``,
``cascaded``), ``N_LANES``, ``ACT_BITS``, ``SIGNED_ACTS`` (0/1), ``SEED``, ``N_TXNS``.

Every cycle the :class:`TB` drives ``i`` with random idle cycles and ``o.ready`` with
random backpressure, by exactly the driver rule of
:func:`msdf_unet.golden.arith.baselines.simulate`; the accept cycles and every
``(cycle, result)`` on ``o`` must equal the golden cycle model's, and the values the exact
integer dot product.
"""
import os
import random

import cocotb

from msdf_unet.golden.arith import baselines as g
from msdf_unet.sim.arith.dot_tb import DotProductTB
from msdf_unet.sim.arith.stream_driver import exact_policy_value


class Params:
    def __init__(self):
        self.variant = os.environ.get("VARIANT", "bitserial")
        self.n_lanes = int(os.environ.get("N_LANES", "9"))
        self.act_bits = int(os.environ.get("ACT_BITS", "8"))
        self.signed_acts = os.environ.get("SIGNED_ACTS", "1") == "1"
        self.seed = int(os.environ.get("SEED", "1"))
        self.n_txns = int(os.environ.get("N_TXNS", "40"))

    def golden_model(self):
        kw = dict(act_bits=self.act_bits, signed_acts=self.signed_acts)
        if self.variant == "bitserial":
            return g.SerialShellModel(g.bitserial_cycles(act_bits=self.act_bits),
                                      lambda t: g.bitserial_dot(t.x, t.w, policy=t.policy, **kw))
        if self.variant == "cascaded":
            return g.SerialShellModel(g.cascaded_cycles(self.n_lanes, act_bits=self.act_bits),
                                      lambda t: g.cascaded_dot(t.x, t.w, policy=t.policy, **kw))
        if self.variant.startswith("bitparallel"):
            return g.PipelineShellModel(g.BITPARALLEL_LATENCY_CYCLES,
                                        lambda t: g.bitparallel_dot(t.x, t.w, policy=t.policy, **kw))
        raise ValueError(f"unknown VARIANT {self.variant!r}")


class TB(DotProductTB):
    """The cycle-by-cycle stream driver/monitor of one unit."""

    def __init__(self, dut, params: Params):
        super().__init__(dut, n_lanes=params.n_lanes, act_bits=params.act_bits,
                         signed_acts=params.signed_acts)
        self.p = params

    def pack(self, t: g.Txn) -> int:
        return self.pack_payload(t.x, t.w, t.policy, t.digits)

    def unpack(self, raw: int) -> g.Result:
        view = self.o_layout.from_bits(raw)
        return g.Result(value=view.value, digits_used=view.digits_used, terminated=view.terminated)


@cocotb.test()
async def test_random_and_corners_against_golden(dut):
    p = Params()
    tb = TB(dut, p)
    await tb.reset()
    rng = random.Random(p.seed)
    txns = g.corner_txns(p.n_lanes, act_bits=p.act_bits, signed_acts=p.signed_acts)
    txns += g.random_txns(rng, p.n_txns, p.n_lanes, act_bits=p.act_bits, signed_acts=p.signed_acts)
    k = p.golden_model().latency_cycles
    horizon = len(txns) * (k + 1) * 3 + 20
    vp = [rng.random() < 0.6 for _ in range(horizon)]
    rp = [rng.random() < 0.5 for _ in range(horizon)]
    accepts, outputs = await tb.run(txns, vp, rp)
    g_accepts, g_outputs = g.simulate(p.golden_model(), txns, vp, rp)
    assert len(outputs) == len(txns), f"{len(outputs)} of {len(txns)} results"
    assert accepts == g_accepts, "accept cycles differ from the golden cycle model"
    assert len(g_outputs) == len(txns), f"golden model gave {len(g_outputs)} of {len(txns)} results"
    for (c, r), (gc, gr), t in zip(outputs, g_outputs, txns):
        assert (c, r) == (gc, gr), f"y_produced {(c, r)} != y_expected {(gc, gr)} for {t}"
        assert r.value == exact_policy_value(t)


@cocotb.test()
async def test_back_to_back(dut):
    p = Params()
    tb = TB(dut, p)
    await tb.reset()
    txns = g.random_txns(random.Random(p.seed + 1), 8, p.n_lanes, act_bits=p.act_bits,
                         signed_acts=p.signed_acts)
    model = p.golden_model()
    horizon = (len(txns) + 2) * (model.latency_cycles + 1)
    accepts, outputs = await tb.run(txns, [1] * horizon, [1] * horizon)
    g_accepts, g_outputs = g.simulate(p.golden_model(), txns, [1] * horizon, [1] * horizon)
    assert accepts == g_accepts
    assert outputs == g_outputs
    assert [c for c, _ in outputs] == [a + model.latency_cycles for a in accepts]
