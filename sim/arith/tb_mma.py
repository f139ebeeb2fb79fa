"""cocotb testbench of the MMA dot-product unit (:class:`msdf_unet.hdl.arith.mma.MMADotProduct`).

Runs inside the simulator (see :mod:`msdf_unet.sim.arith.test_mma`); parameters come from
the environment: ``N_LANES``, ``ACT_BITS``, ``SIGNED_ACTS`` (0/1), ``GROUP_SIZE``,
``N_BIAS_LANES``, ``SEED``, ``N_TXNS``.

Every cycle the :class:`TB` offers transactions after random idle gaps and drives
``o.ready`` with random backpressure, by exactly the rule of
:meth:`msdf_unet.golden.arith.mma.MMACycleModel.run`; the testbench then runs that golden
cycle model on the same stimulus and compares every digit on the observation port (value,
index, first/last, cycle), every ``i`` handshake cycle and every ``o`` result (value,
digits_used, terminated, cycle); the values must also equal the exact integer sums.
"""
import os

import cocotb
import numpy as np
from cocotb.triggers import ReadOnly, RisingEdge

from msdf_unet.golden.arith import mma
from msdf_unet.golden.arith.mma import Policy
from msdf_unet.sim.arith.dot_tb import DotProductTB
from msdf_unet.hdl.arith.mma import digit_port_layout


class Params:
    def __init__(self):
        env = os.environ
        self.n_lanes = int(env.get("N_LANES", "11"))
        self.act_bits = int(env.get("ACT_BITS", "8"))
        self.signed_acts = env.get("SIGNED_ACTS", "1") == "1"
        self.group_size = int(env.get("GROUP_SIZE", "0")) or None
        self.n_bias_lanes = int(env.get("N_BIAS_LANES", "0"))
        self.seed = int(env.get("SEED", "1"))
        self.n_txns = int(env.get("N_TXNS", "60"))

    def model(self):
        return mma.MMACycleModel(n_lanes=self.n_lanes, act_bits=self.act_bits,
                                 signed_acts=self.signed_acts)


class TB(DotProductTB):
    """The cycle-by-cycle driver/monitor of the unit's three ports."""

    def __init__(self, dut, params: Params):
        super().__init__(dut, n_lanes=params.n_lanes, act_bits=params.act_bits,
                         signed_acts=params.signed_acts)
        self.p = params
        self.d_layout = digit_port_layout()

    def pack(self, t: mma.Transaction) -> int:
        return self.pack_payload(t.x, t.w, mma._policy(t.policy), t.digits)

    async def run(self, txns, ready):
        """Drive like ``MMACycleModel.run``; return (accepts, port, results)."""
        dut = self.dut
        accepts, port, results = [], {}, []
        c, nxt = 0, 0
        offer_at = txns[0].gap if txns else 0
        limit = 64 + sum(t.gap + 4 * 64 for t in txns) + len(ready)
        while len(results) < len(txns):
            assert c < limit, f"only {len(results)} of {len(txns)} results after {c} cycles"
            rdy = bool(ready[c]) if c < len(ready) else True
            valid = nxt < len(txns) and c >= offer_at
            dut.i__valid.value = int(valid)
            if valid:
                dut.i__payload.value = self.pack(txns[nxt])
            dut.o__ready.value = int(rdy)
            await ReadOnly()
            if int(dut.digits__valid.value):
                d = self.d_layout.from_bits(dut.digits__payload.value.to_unsigned())
                port[c] = (d.digit, d.index, bool(d.first), bool(d.last))
            if int(dut.o__valid.value) and rdy:
                r = self.o_layout.from_bits(dut.o__payload.value.to_unsigned())
                results.append((c, r.value, r.digits_used, r.terminated))
            if valid and int(dut.i__ready.value):
                accepts.append(c)
                nxt += 1
                if nxt < len(txns):
                    offer_at = c + 1 + txns[nxt].gap
            await RisingEdge(dut.clk)
            c += 1
        return accepts, port, results


def compare(p: Params, txns, ready, accepts, port, results):
    trace = p.model().run(txns, o_ready=ready)
    assert accepts == [t.accept_cycle for t in trace.txns], "accept cycles differ from the golden cycle model"
    port_expected = {c: (z, t, f, bool(l)) for c, (z, t, f, l) in trace.port.items()}
    for c in sorted(set(port) | set(port_expected)):
        assert port.get(c) == port_expected.get(c), \
            f"digit port at cycle {c}: produced {port.get(c)} expected {port_expected.get(c)}"
    y_expected = [(t.pop_cycle, t.value, t.digits_used, t.terminated) for t in trace.txns]
    for t, y_p, y_e in zip(txns, results, y_expected):
        assert y_p == y_e, f"y_produced {y_p} != y_expected {y_e} for {t}"
        S = sum(int(a) * int(b) for a, b in zip(t.x, t.w))
        pol = mma._policy(t.policy)
        exact = {Policy.FULL: S, Policy.RELU_END: max(S, 0), Policy.SIGN_ONLY: (S > 0) - (S < 0)}
        if pol in exact:
            assert y_p[1] == exact[pol], f"value {y_p[1]} != exact {exact[pol]} for {t}"
    return trace


@cocotb.test()
async def test_random_with_gaps_and_backpressure(dut):
    p = Params()
    tb = TB(dut, p)
    await tb.reset()
    rng = np.random.default_rng(p.seed)
    txns = mma.random_transactions(rng, p.n_lanes, p.n_txns, act_bits=p.act_bits,
                                   signed_acts=p.signed_acts, n_bias_lanes=p.n_bias_lanes)
    ready = mma.random_ready(rng, p.n_txns * 40)
    accepts, port, results = await tb.run(txns, ready)
    compare(p, txns, ready, accepts, port, results)


@cocotb.test()
async def test_back_to_back_every_policy(dut):
    """i.valid held, o.ready high: the digit port is busy every cycle except one bubble
    after each early stop; cycles equal the golden model."""
    p = Params()
    tb = TB(dut, p)
    await tb.reset()
    rng = np.random.default_rng(p.seed + 1)
    txns = mma.random_transactions(rng, p.n_lanes, 4 * 6, act_bits=p.act_bits,
                                   signed_acts=p.signed_acts, n_bias_lanes=p.n_bias_lanes, gaps=False)
    for j, t in enumerate(txns):
        t.policy = Policy(j // 6)
    accepts, port, results = await tb.run(txns, [])
    trace = compare(p, txns, [], accepts, port, results)
    assert len(port) == sum(t.digits_used for t in trace.txns)
    assert results[0][0] == accepts[0] + 1 + results[0][2]
