"""Amaranth-simulator tests of :class:`MMADotProduct` against the golden cycle model.

Every digit on the observation port (value, index, first/last flags, cycle), every
handshake cycle on ``i`` and every result popped from ``o`` (value, digits_used,
terminated, cycle) must equal :class:`msdf_unet.golden.arith.mma.MMACycleModel`, and the
results must equal exact integer sums computed here.
"""
import numpy as np
import pytest
from amaranth.sim import Simulator

from msdf_unet.golden.arith import mma
from msdf_unet.golden.arith.mma import Policy, Transaction
from msdf_unet.hdl.arith.iface import Policy as HPolicy
from msdf_unet.hdl.arith.iface import dot_product_io
from msdf_unet.hdl.arith.mma import MMADotProduct
from msdf_unet.sim.arith.result_proof import ALL_BUT_TRUNCATE, ResultQueueProof


def simulate(dut, txns, ready, *, raw_digits=None, max_cycles=100_000):
    """Drive ``txns`` (with their gaps) and ``o.ready = ready[c]`` (True past the end).

    Returns (accept cycles, port {cycle: (digit, index, first, last)}, results
    [(pop cycle, value, digits_used, terminated)]). ``raw_digits`` overrides the
    ``digits`` field sent (to drive illegal budgets).
    """
    accepted, port, results = [], {}, []
    layout = dut.i.payload.shape()

    async def testbench(ctx):
        c, nxt = 0, 0
        offer_at = txns[0].gap if txns else 0
        while len(results) < len(txns):
            assert c < max_cycles, "simulation did not finish"
            rdy = bool(ready[c]) if c < len(ready) else True
            valid = nxt < len(txns) and c >= offer_at
            ctx.set(dut.i.valid, valid)
            if valid:
                t = txns[nxt]
                dig = t.digits if raw_digits is None else raw_digits[nxt]
                ctx.set(dut.i.payload, layout.const({
                    "x": [int(v) for v in t.x], "w": [int(v) for v in t.w],
                    "policy": HPolicy(int(mma._policy(t.policy))), "digits": int(dig)}))
            ctx.set(dut.o.ready, rdy)
            if ctx.get(dut.digits.valid):
                d = ctx.get(dut.digits.payload)
                port[c] = (d.digit, d.index, bool(d.first), bool(d.last))
            if ctx.get(dut.o.valid) and rdy:
                r = ctx.get(dut.o.payload)
                results.append((c, r.value, r.digits_used, r.terminated))
            if valid and ctx.get(dut.i.ready):
                accepted.append(c)
                nxt += 1
                if nxt < len(txns):
                    offer_at = c + 1 + txns[nxt].gap
            await ctx.tick()
            c += 1

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(testbench)
    sim.run()
    return accepted, port, results


def check_against_model(dut, txns, ready, model_txns=None):
    """Run RTL and cycle model with the same stimulus; compare everything."""
    accepted, port, results = simulate(dut, txns, ready)
    model = mma.MMACycleModel(n_lanes=dut.n_lanes, act_bits=dut.act_bits, signed_acts=dut.signed_acts)
    trace = model.run(model_txns or txns, o_ready=ready)
    y_expected = [(t.pop_cycle, t.value, t.digits_used, t.terminated) for t in trace.txns]
    assert accepted == [t.accept_cycle for t in trace.txns]
    assert port == {c: (z, t, f, bool(l)) for c, (z, t, f, l) in trace.port.items()}
    assert results == y_expected
    return trace, results


def random_txns(rng, L, n, *, signed, act_bits=8, gaps=True, policies=tuple(Policy), nb=0):
    return mma.random_transactions(rng, L, n, act_bits=act_bits, signed_acts=signed,
                                   n_bias_lanes=nb, gaps=gaps, policies=policies)


PARAMS = [
    # (n_lanes, act_bits, signed, group_size, n_bias_lanes, transactions)
    (11, 8, True, 4, 2, 300),    # the lead's 9 + 2 bias lanes, G = 3
    (1, 8, True, None, 0, 150),  # one lane
    (3, 4, False, 1, 1, 200),    # unsigned, M = 1 (G = 3)
    (5, 3, True, 2, 1, 200),     # odd grouping with padding
    (20, 8, False, 20, 2, 100),  # unsigned, one group
    (38, 8, True, 9, 2, 60),     # 36 taps (3x3x4) + 2 bias lanes, G = 5 with padding
]


@pytest.mark.parametrize("L,B,signed,M,nb,n", PARAMS)
def test_random_with_stalls(L, B, signed, M, nb, n):
    rng = np.random.default_rng(L * 100 + B)
    dut = MMADotProduct(n_lanes=L, act_bits=B, signed_acts=signed, group_size=M)
    txns = random_txns(rng, L, n, signed=signed, act_bits=B, nb=nb)
    ready = mma.random_ready(rng, n * 40)
    trace, results = check_against_model(dut, txns, ready)
    T = dut.n_digits
    for t, (_, value, used, term) in zip(txns, results):
        S = int(sum(int(a) * int(b) for a, b in zip(t.x, t.w)))
        pol = mma._policy(t.policy)
        if pol is Policy.FULL:
            assert (value, used, term) == (S, T, 0)
        elif pol is Policy.RELU_END:
            assert value == max(S, 0) and term == int(S < 0)
        elif pol is Policy.SIGN_ONLY:
            assert value == int(np.sign(S)) and term == int(S != 0)
        else:
            assert used == t.digits and abs(S - value) <= 2 ** (T - t.digits)


@pytest.mark.parametrize("pol", list(Policy))
def test_back_to_back_each_policy(pol):
    """i.valid always high and o.ready high: no idle digit cycle except one bubble after
    an early stop (checked through the model, which test_mma_model checks)."""
    rng = np.random.default_rng(int(pol) + 7)
    L = 4
    dut = MMADotProduct(n_lanes=L, group_size=2)
    txns = random_txns(rng, L, 25, signed=True, gaps=False, policies=(pol,))
    trace, _ = check_against_model(dut, txns, [])
    busy = len(trace.port)
    assert busy == sum(t.digits_used for t in trace.txns)


def test_corners():
    L = 6
    T = mma.stream_digits(L)
    dut = MMADotProduct(n_lanes=L, group_size=3)
    txns = []
    for pol in Policy:
        for x, w in [([-128] * L, [127] * L), ([-128] * L, [-127] * L), ([127] * L, [127] * L),
                     ([127] * L, [-127] * L), ([0] * L, [127] * L), ([5] * L, [0] * L),
                     ([1, 0, 0, 0, 0, 0], [-1, 0, 0, 0, 0, 0]), ([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0])]:
            for p in ([1, T // 2, T] if pol is Policy.TRUNCATE else [0]):
                txns.append(Transaction(x, w, pol, p))
    # a bias that flips the sign: data sum +1, bias -2 (and the reverse)
    for b in (-2, 2):
        ws, xs = mma.fold_bias(b, 2)
        sgn = 1 if b < 0 else -1
        txns.append(Transaction([1, 1, 0, 0] + xs, [sgn, 0, 0, 0] + ws, Policy.SIGN_ONLY))
        txns.append(Transaction([1, 1, 0, 0] + xs, [sgn, 0, 0, 0] + ws, Policy.RELU_END))
    ready = ([False] * 5 + [True] * 3) * 200
    _, results = check_against_model(dut, txns, ready)
    assert results[0][1] == -128 * 127 * L


def test_illegal_budget_runs_full_length():
    """TRUNCATE with digits 0 or > T runs T digits (documented); the golden model raises."""
    L = 2
    T = mma.stream_digits(L)
    dut = MMADotProduct(n_lanes=L)
    txns = [Transaction([100, -7], [-99, 55], Policy.TRUNCATE, 0),
            Transaction([-3, 7], [9, 55], Policy.TRUNCATE, T + 1)]
    with pytest.raises(ValueError):
        mma.MMACycleModel(n_lanes=L).run(txns)
    accepted, port, results = simulate(dut, txns, [], raw_digits=[0, T + 1])
    legal = [Transaction(t.x, t.w, Policy.TRUNCATE, T) for t in txns]
    trace = mma.MMACycleModel(n_lanes=L).run(legal)
    assert results == [(t.pop_cycle, t.value, t.digits_used, t.terminated) for t in trace.txns]
    assert [r[1] for r in results] == [100 * -99 - 7 * 55, -27 + 7 * 55]


def test_weight_minus128_exact_while_bound_holds():
    """w = -128 is outside the contract; the unit stays exact while |P_t| < 2**(F-1)."""
    L = 2                       # F = 9: |P| <= 128 < 256
    dut = MMADotProduct(n_lanes=L)
    txns = [Transaction([x, 3], [-128, 0], Policy.FULL, 0) for x in (-128, -1, 1, 127)]
    _, _, results = simulate(dut, txns, [])
    assert [r[1] for r in results] == [x * -128 for x in (-128, -1, 1, 127)]


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameter_validation():
    with pytest.raises(ValueError, match="n_lanes"):
        MMADotProduct(n_lanes=0)
    with pytest.raises(ValueError, match="act_bits"):
        MMADotProduct(n_lanes=2, act_bits=1)
    with pytest.raises(TypeError, match="signed_acts"):
        MMADotProduct(n_lanes=2, signed_acts=1)
    with pytest.raises(ValueError, match="group_size"):
        MMADotProduct(n_lanes=2, group_size=3)
    dut = MMADotProduct(n_lanes=11, group_size=4)
    dut._MustUse__silence = True
    assert (dut.n_groups, dut.online_delay, dut.n_digits) == (3, mma.online_delay(11), mma.stream_digits(11))
    assert dut.latency_cycles == mma.LATENCY_TO_DIGIT0


# --- formal: SymbiYosys BMC of the result against the exact sum --------------------------------

class MMAResultProof(ResultQueueProof):
    """:class:`ResultQueueProof` of an :class:`MMADotProduct`: legal weights and
    activations assumed, TRUNCATE excluded; a FULL result uses ``T`` digits."""

    def __init__(self, *, n_lanes, act_bits, signed_acts, policies=ALL_BUT_TRUNCATE):
        dut = MMADotProduct(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        i_sig, _ = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__(dut, i_sig.members["payload"].shape, full_digits=dut.n_digits,
                         depth=dut.result_depth, policies=policies)


FULL_ONLY = (HPolicy.FULL,)


@pytest.mark.parametrize("L,signed_acts,policies,depth", [
    pytest.param(1, True, FULL_ONLY, 16, id="n1-b3s-full-d16"),
    pytest.param(1, False, FULL_ONLY, 16, id="n1-b3u-full-d16"),
    pytest.param(1, True, ALL_BUT_TRUNCATE, 16, id="n1-b3s-policies-d16", marks=pytest.mark.slow),
])
def test_formal_bmc_result_equals_exact_sum(L, signed_acts, policies, depth):
    """BMC with B = 3 from reset: whatever the solver drives on i (any legal x, w, any
    timing) and o.ready, every result popped from o equals the exact policy value of its
    transaction, in order. Depth 16 covers one full transaction of one lane (T = 11) with
    free timing. Two lanes (first result at step 13) did not finish in 15 minutes with
    yices, also with the recurrence invariant added as per-digit lemmas: the final step is
    a multiplier-equivalence problem, hard for bit-level solvers."""
    from msdf_unet.sim import formal
    proof = MMAResultProof(n_lanes=L, act_bits=3, signed_acts=signed_acts, policies=policies)
    res = formal.prove(proof, name=f"mma_result_n{L}_b3{'s' if signed_acts else 'u'}_p{len(policies)}_d{depth}",
                       depth=depth, timeout_s=1800)
    assert res.depth == depth

