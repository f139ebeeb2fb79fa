"""Formal harness shared by the BMC tests of the dot-product units (``tests/hdl/arith``):
every result popped from ``o`` equals the exact policy value of its transaction, in order.
"""
from __future__ import annotations

from amaranth import Module, Mux, ResetSignal, Signal, signed
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from msdf_unet.hdl.arith.bitserial import full_policy_value
from msdf_unet.hdl.arith.iface import Policy as HPolicy

__all__ = ["ALL_BUT_TRUNCATE", "ResultQueueProof"]

#: the policies whose value is a function of the exact sum alone
ALL_BUT_TRUNCATE = (HPolicy.FULL, HPolicy.RELU_END, HPolicy.SIGN_ONLY)


class ResultQueueProof(wiring.Component):
    """Free inputs every cycle (the solver's choice of ``i.valid``, payload, ``o.ready``);
    legal weights (no -128) and one of ``policies`` assumed (plus :meth:`assume`). A queue
    of the exact policy values (``S``, ``max(S, 0)``, ``sign(S)``) of the accepted
    transactions is compared with every result popped from ``o``, in order;
    ``digits_used == full_digits`` and ``terminated == 0`` are checked for FULL.

    Parameters
    ----------
    dut : the unit (``i``/``o`` streams, ``n_lanes``)
    payload_shape : the layout of the unit's ``i`` payload
    full_digits : int
        ``digits_used`` of a FULL transaction.
    depth : int
        Results that can be accepted and not yet popped.
    policies : tuple of HPolicy
    """

    def __init__(self, dut, payload_shape, *, full_digits, depth, policies=ALL_BUT_TRUNCATE):
        self.dut, self.full_digits, self.depth, self.policies = dut, full_digits, depth, policies
        super().__init__({"i_valid": In(1), "i_payload": In(payload_shape), "o_ready": In(1)})

    def assume(self, m, pay):
        """Extra assumptions on the payload ``pay`` (none here)."""

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        L, depth = dut.n_lanes, self.depth
        pay = self.i_payload
        m.d.comb += [dut.i.valid.eq(self.i_valid), dut.i.payload.eq(pay), dut.o.ready.eq(self.o_ready)]
        m.d.comb += Assume(~ResetSignal())
        for lane in range(L):
            m.d.comb += Assume(pay.w[lane] != -128)
        m.d.comb += Assume(sum((pay.policy == p).as_unsigned() for p in self.policies) != 0)
        self.assume(m, pay)
        W = len(dut.o.payload.value)
        S = Signal(signed(W))
        m.d.comb += S.eq(sum(pay.x[k] * pay.w[k] for k in range(L)))
        exp = full_policy_value(m, pay.policy, S, W)   # the baselines' rule; not used by MMA/MSDF2
        qv = [Signal(signed(W), name=f"qv{j}") for j in range(depth)]
        qf = [Signal(name=f"qfull{j}") for j in range(depth)]   # entry was a FULL transaction
        qn = Signal(range(depth + 2))                             # holds depth + 1: no wrap
        push = dut.i.valid & dut.i.ready
        pop = dut.o.valid & dut.o.ready
        with m.If(pop):
            m.d.comb += [Assert(qn > 0), Assert(dut.o.payload.value == qv[0])]
            with m.If(qf[0]):
                m.d.comb += [Assert(dut.o.payload.digits_used == self.full_digits),
                             Assert(dut.o.payload.terminated == 0)]
        m.d.comb += Assert(qn <= depth)
        # next queue state: drop the head on pop, append on push
        shifted_v = [Mux(pop, qv[j + 1] if j + 1 < depth else 0, qv[j]) for j in range(depth)]
        shifted_f = [Mux(pop, qf[j + 1] if j + 1 < depth else 0, qf[j]) for j in range(depth)]
        n_after = Signal(range(depth + 2))
        m.d.comb += n_after.eq(qn - pop)
        for j in range(depth):
            with m.If(push & (n_after == j)):
                m.d.sync += [qv[j].eq(exp), qf[j].eq(pay.policy == HPolicy.FULL)]
            with m.Else():
                m.d.sync += [qv[j].eq(shifted_v[j]), qf[j].eq(shifted_f[j])]
        m.d.sync += qn.eq(n_after + push)
        return m
