# amaranth: UnusedElaboratable=no
"""MSDF2DotProduct in the Amaranth simulator against the golden cycle model
(:class:`msdf_unet.golden.arith.msdf2.MSDF2CycleModel`) and exact integer arithmetic:
every accept cycle on ``i`` and every ``(cycle, result)`` on ``o`` under random idle
cycles and backpressure."""
import numpy as np
import pytest

from msdf_unet.golden.arith import mma, msdf2
from msdf_unet.golden.arith.mma import Policy
from msdf_unet.hdl.arith.iface import Policy as HPolicy
from msdf_unet.hdl.arith.msdf2 import MSDF2DotProduct
from msdf_unet.sim.arith.msdf2_check import check, make_txns, truncate_boundary_txns


PARAMS = [
    # (lanes, act_bits, signed, pipelined, group_size, transactions)
    (11, 8, True, True, 4, 120),
    (11, 8, True, False, None, 120),
    (1, 8, True, True, None, 60),
    (3, 4, False, True, 1, 80),
    (5, 3, True, False, None, 80),
    (20, 8, False, True, 16, 60),
    (38, 8, True, True, 9, 40),
]


@pytest.mark.parametrize("L,B,signed,pipelined,M,n", PARAMS)
def test_random_with_idle_and_backpressure(L, B, signed, pipelined, M, n):
    rng = np.random.default_rng(L * 100 + B + pipelined)
    dut = MSDF2DotProduct(n_lanes=L, act_bits=B, signed_acts=signed, pipelined=pipelined,
                          group_size=M)
    txns = make_txns(rng, L, n, B=B, signed=signed)
    horizon = n * (B + 6) * 3
    vp = [rng.random() < 0.6 for _ in range(horizon)]
    rp = [rng.random() < 0.5 for _ in range(horizon)]
    check(dut, txns, vp, rp)


@pytest.mark.parametrize("pipelined", [True, False])
def test_back_to_back_no_bubble(pipelined):
    rng = np.random.default_rng(3)
    L, B = 9, 8
    dut = MSDF2DotProduct(n_lanes=L, pipelined=pipelined)
    txns = make_txns(rng, L, 40, policies=(Policy.RELU_END, Policy.SIGN_ONLY, Policy.FULL), loose=0)
    horizon = 40 * B + 20
    acc, outs = check(dut, txns, [1] * horizon, [1] * horizon)
    used = [r.digits_used for _, r in outs]
    assert [b - a for a, b in zip(acc[1:], acc[2:])] == [max(u, 2) for u in used[:-2]]
    assert any(u < B for u in used)
    assert outs[0][0] == acc[0] + dut.latency_cycles


def test_corners():
    L = 6
    T = mma.stream_digits(L)
    dut = MSDF2DotProduct(n_lanes=L, group_size=3)
    txns = []
    for pol in Policy:
        for x, w in [([-128] * L, [127] * L), ([-128] * L, [-127] * L), ([127] * L, [127] * L),
                     ([127] * L, [-127] * L), ([0] * L, [127] * L), ([5] * L, [0] * L),
                     ([1, 0, 0, 0, 0, 0], [-1, 0, 0, 0, 0, 0]), ([1, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0])]:
            for p in ([1, 2, 7, 8, 9, T - 1, T] if pol is Policy.TRUNCATE else [0]):
                wp = int(np.clip(w, 0, None).sum())
                txns.append(msdf2.Txn(tuple(x), tuple(w), HPolicy(int(pol)), p, wp))
    txns += truncate_boundary_txns(L)
    rp = ([False] * 5 + [True] * 3) * 200
    acc, outs = check(dut, txns, [1] * len(rp), rp)
    # the boundary cases: the MMA prefix is not the rounded full sum
    for (_, r), t in zip(outs[-2:], txns[-2:]):
        S = sum(a * b for a, b in zip(t.x, t.w))
        q = 1 << (T - 3)
        assert r.value != ((S + q // 2) // q) * q or t.w[3] > 0


@pytest.mark.slow
@pytest.mark.parametrize("pipelined", [True, False])
def test_144_lanes(pipelined):
    rng = np.random.default_rng(144)
    dut = MSDF2DotProduct(n_lanes=144, pipelined=pipelined)
    txns = make_txns(rng, 144, 40)
    horizon = 40 * 30
    check(dut, txns, [rng.random() < 0.7 for _ in range(horizon)],
          [rng.random() < 0.7 for _ in range(horizon)])


@pytest.mark.filterwarnings("ignore::amaranth.hdl.UnusedElaboratable")
def test_parameter_validation():
    with pytest.raises(ValueError, match="n_lanes"):
        MSDF2DotProduct(n_lanes=0)
    with pytest.raises(ValueError, match="act_bits"):
        MSDF2DotProduct(n_lanes=2, act_bits=1)
    with pytest.raises(TypeError, match="signed_acts"):
        MSDF2DotProduct(n_lanes=2, signed_acts=1)
    with pytest.raises(TypeError, match="pipelined"):
        MSDF2DotProduct(n_lanes=2, pipelined=1)
    with pytest.raises(ValueError, match="group_size"):
        MSDF2DotProduct(n_lanes=2, group_size=3)


# --- formal: SymbiYosys BMC of the results against the exact sum -------------------------------

from amaranth import Mux  # noqa: E402
from amaranth.hdl import Assume  # noqa: E402

from msdf_unet.hdl.arith.msdf2 import msdf2_io  # noqa: E402
from msdf_unet.sim.arith.result_proof import ALL_BUT_TRUNCATE, ResultQueueProof  # noqa: E402

#: results that can be accepted and not yet popped: buffer, feeder, s1, finish, o
_IN_FLIGHT = 5


class MSDF2ResultProof(ResultQueueProof):
    """:class:`ResultQueueProof` of an :class:`MSDF2DotProduct`: legal weights and
    activations and a legal bound ``wpos >= sum max(w, 0)`` assumed, TRUNCATE excluded
    (simulated above against the MMA recurrence); a FULL result uses ``B`` plane cycles."""

    def __init__(self, *, n_lanes, act_bits, signed_acts, pipelined=True, policies=ALL_BUT_TRUNCATE):
        dut = MSDF2DotProduct(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts,
                              pipelined=pipelined)
        i_sig, _ = msdf2_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__(dut, i_sig.members["payload"].shape, full_digits=act_bits, depth=_IN_FLIGHT,
                         policies=policies)

    def assume(self, m, pay):
        L = self.dut.n_lanes
        m.d.comb += Assume(pay.wpos >= sum(Mux(pay.w[k] > 0, pay.w[k], 0) for k in range(L)))


@pytest.mark.parametrize("L,signed_acts,pipelined,depth", [
    pytest.param(1, True, True, 11, id="n1-b3s-pipelined-d11"),
    pytest.param(1, True, True, 14, id="n1-b3s-pipelined-d14", marks=pytest.mark.slow),
    pytest.param(1, False, False, 10, id="n1-b3u-flat-d10"),
    pytest.param(1, False, False, 14, id="n1-b3u-flat-d14", marks=pytest.mark.slow),
    pytest.param(2, True, True, 14, id="n2-b3s-pipelined-d14", marks=pytest.mark.slow),
])
def test_formal_bmc_result_equals_exact_sum(L, signed_acts, pipelined, depth):
    """BMC with B = 3 from reset: whatever the solver drives on ``i`` (any legal x, w,
    bound, policy but TRUNCATE, any timing) and ``o.ready``, every result popped from ``o``
    equals the exact policy value of its transaction, in order, including every early END
    decision. By default depth 11 (pipelined, latency B + 4 = 7) and 10 (flat, latency 6):
    one transaction and a second one back to back. Depth 14 (``slow``) took yices about
    10 minutes once and did not finish step 13 within 8 minutes another time."""
    from msdf_unet.sim import formal
    proof = MSDF2ResultProof(n_lanes=L, act_bits=3, signed_acts=signed_acts, pipelined=pipelined)
    res = formal.prove(proof, name=f"msdf2_result_n{L}_b3{'s' if signed_acts else 'u'}"
                                   f"_{'p' if pipelined else 'f'}_d{depth}",
                       depth=depth, timeout_s=1800)
    assert res.depth == depth
