"""Cycle-exact model of the MMA RTL (:class:`~msdf_unet.hdl.arith.mma.MMADotProduct`): many
transactions with input gaps and output backpressure, and the single-transaction helper.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from ...spec.arith import RESULT_DEPTH, Policy, online_delay
from ...spec.arith import check_act_bits as _check_act_bits
from ...spec.arith import check_lanes as _check_lanes
from ...spec.arith import policy_code as _policy
from .mma_operands import plane_sums
from .mma_recurrence import check_budget as _check_budget

__all__ = ["Transaction", "TxnTrace", "CycleTrace", "MMACycleModel", "transaction"]


@dataclass
class Transaction:
    """One dot product offered on ``i``: lanes ``x``, ``w`` (bias lanes included)."""
    x: Sequence[int]
    w: Sequence[int]
    policy: Policy | int | str = Policy.FULL
    digits: int = 0
    #: idle cycles between the previous handshake (or cycle 0) and raising ``i.valid``
    gap: int = 0


@dataclass
class TxnTrace:
    """What the unit did with one transaction (cycles count from 0 after reset)."""
    accept_cycle: int = -1               # i.valid & i.ready
    digits: list = field(default_factory=list)   # (cycle, index, digit) on the digit port
    value: int | None = None
    digits_used: int | None = None
    terminated: int | None = None
    result_cycle: int = -1               # first cycle the result is in the o FIFO
    pop_cycle: int = -1                  # o.valid & o.ready


@dataclass
class CycleTrace:
    """Trace of :meth:`MMACycleModel.run`: one :class:`TxnTrace` per transaction and the
    digit port per cycle (``port[c] = (digit, index, first, last)`` when valid)."""
    txns: list
    port: dict
    cycles: int


class MMACycleModel:
    """Cycle-by-cycle model of the RTL :class:`~msdf_unet.hdl.arith.mma.MMADotProduct`.

    Registers mirrored (names as in the RTL):

    * feeder: ``active``, the shifting activations, ``step``, ``last`` (``T-1`` or
      ``p-1`` for a legal TRUNCATE budget, else ``T-1``); at the handshake cycle the
      feeder forms step 0 straight from ``i.payload``, later steps from its registers;
    * stage 1 (``s1``): the registered group sums of one step plus tags;
    * stage 2: the recurrence on ``s1`` (``R``), the prefix value, the digit port
      registers, ``flush``/``abort`` after an early stop, the result FIFO (depth
      :data:`RESULT_DEPTH`) and
      ``count`` = accepted transactions whose result was not popped.

    Rules per cycle: ``i.ready = (~active | flush) & (count < RESULT_DEPTH)`` where
    ``active`` is cleared after the feeder formed the ``last`` step and ``flush`` (one
    cycle after stage 2 stopped a transaction before its planned last digit) drops the
    stale ``s1`` step and stops the feeder if it is still active on that transaction.
    ``o.valid`` = FIFO not empty.
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True):
        self.n_lanes = _check_lanes(n_lanes)
        self.act_bits = _check_act_bits(act_bits)
        self.signed_acts = bool(signed_acts)
        self.F = online_delay(n_lanes)
        self.T = self.act_bits + self.F

    def _prepare(self, txn: Transaction):
        if len(txn.x) != self.n_lanes or len(txn.w) != self.n_lanes:
            raise ValueError(f"transaction needs {self.n_lanes} lanes, got x:{len(txn.x)} w:{len(txn.w)}")
        pol = _policy(txn.policy)
        P = plane_sums(np.asarray(txn.x), np.asarray(txn.w), self.act_bits, self.signed_acts)
        if pol is Policy.TRUNCATE:
            last = _check_budget(txn.digits, self.T) - 1
        else:
            last = self.T - 1
        return [int(p) for p in P] + [0] * self.F, pol, last

    def run(self, txns: Sequence[Transaction], o_ready: Callable[[int], bool] | Sequence[bool] | None = None,
            max_cycles: int | None = None) -> CycleTrace:
        """Simulate until every transaction's result was popped from ``o``.

        ``o_ready(cycle)`` (or a sequence, True past its end; default always True) is the
        consumer's ``o.ready``. Transaction ``j`` raises ``i.valid`` ``txns[j].gap`` cycles
        after the handshake of transaction ``j-1`` (+1), or at cycle ``gap`` for ``j = 0``.
        """
        if o_ready is None:
            ready = lambda c: True  # noqa: E731
        elif callable(o_ready):
            ready = o_ready
        else:
            seq = list(o_ready)
            ready = lambda c: bool(seq[c]) if c < len(seq) else True  # noqa: E731
        prep = [self._prepare(t) for t in txns]
        T, F = self.T, self.F
        half, full = 1 << (F - 1), 1 << F
        traces = [TxnTrace() for _ in txns]
        port = {}
        nxt = 0                    # next transaction to offer
        offer_at = txns[0].gap if txns else 0
        # feeder registers
        active = False
        f_txn = f_step = f_last = 0
        # stage 1 register: None or (txn, step, last, P)
        s1 = None
        # stage 2 registers
        R = 0
        Z = 0
        seen = False
        flush = False
        abort = False
        port_reg = None
        fifo: list = []
        count = 0
        popped = 0
        limit = max_cycles if max_cycles is not None else 64 + sum(t.gap + 4 * T for t in txns)
        c = 0
        while popped < len(txns):
            if c > limit:
                raise RuntimeError(f"cycle model did not finish within {limit} cycles")
            # ---- combinational
            if port_reg is not None:
                port[c] = port_reg
            o_valid = bool(fifo)
            o_pop = o_valid and ready(c)
            if o_pop:
                j = fifo[0][0]
                traces[j].pop_cycle = c
            f_abort = abort and active
            i_ready = (not active or f_abort) and count < RESULT_DEPTH
            i_valid = nxt < len(txns) and c >= offer_at
            hs = i_valid and i_ready
            # feeder output this cycle
            s1_next = None
            n_active, n_txn, n_step, n_last = active, f_txn, f_step, f_last
            if hs:
                j = nxt
                traces[j].accept_cycle = c
                Pj, pol, last = prep[j]
                s1_next = (j, 0, last == 0, Pj[0])
                n_active, n_txn, n_step, n_last = last != 0, j, 1, last
                nxt += 1
                if nxt < len(txns):
                    offer_at = c + 1 + txns[nxt].gap
            elif active and not f_abort:
                Pj = prep[f_txn][0]
                s1_next = (f_txn, f_step, f_step == f_last, Pj[f_step])
                n_step = f_step + 1
                n_active = f_step != f_last
            elif f_abort:
                n_active = False
            # stage 2 on s1 (dropped in a flush cycle)
            n_port = None
            n_flush = n_abort = False
            if s1 is not None and not flush:
                j, t, is_last, p = s1
                pol = prep[j][1]
                first = t == 0
                Rp, Zp, seenp = (0, 0, False) if first else (R, Z, seen)
                v = 2 * Rp + p
                z = 1 if v >= half else (-1 if v < -half else 0)
                R = v - z * full
                assert -half <= R < half
                Z = Zp + z * (1 << (T - 1 - t))
                if pol is Policy.RELU_END:
                    early = not seenp and z < 0
                elif pol is Policy.SIGN_ONLY:
                    early = z != 0
                else:
                    early = False
                seen = seenp or z != 0
                stop = is_last or early
                n_port = (z, t, first, stop)
                traces[j].digits.append((c + 1, t, z))
                if stop:
                    if pol is Policy.RELU_END and early:
                        val = 0
                    elif pol is Policy.SIGN_ONLY:
                        val = z
                    else:
                        val = Z
                    term = int(early or (pol is Policy.TRUNCATE and t < T - 1))
                    tr = traces[j]
                    tr.value, tr.digits_used, tr.terminated, tr.result_cycle = val, t + 1, term, c + 1
                    fifo.append((j,))
                    assert len(fifo) - int(o_pop) <= RESULT_DEPTH, "result FIFO overflow"
                    if not is_last:
                        # the feeder formed step t+1 of this transaction this cycle; if that
                        # was not its last step it is still active on it next cycle
                        n_flush = n_abort = True
            # ---- clock edge
            if o_pop:
                fifo.pop(0)
                popped += 1
            count += int(hs) - int(o_pop)
            s1 = s1_next
            active, f_txn, f_step, f_last = n_active, n_txn, n_step, n_last
            flush, abort = n_flush, n_abort
            port_reg = n_port
            c += 1
        return CycleTrace(traces, port, c)


def transaction(x, w, policy="FULL", digits: int = 0, *, act_bits: int = 8,
                signed_acts: bool = True) -> TxnTrace:
    """One transaction on an idle unit with ``o.ready`` high: digits with their cycles
    (relative to the handshake at cycle 0), value, digits_used, terminated."""
    m = MMACycleModel(n_lanes=len(x), act_bits=act_bits, signed_acts=signed_acts)
    return m.run([Transaction(list(x), list(w), policy, digits)]).txns[0]
