"""Golden model of the MMA (merged multiply-add) dot-product unit, exact to the bit and cycle.

This is the oracle of :class:`msdf_unet.hdl.arith.mma.MMADotProduct` and the arithmetic
core of the hardware-exact network model (``msdf_unet.golden.hwexact``). The facts the RTL shares
(:class:`Policy`, :func:`online_delay`, :func:`stream_digits`, the timing constants) are
declared once in :mod:`msdf_unet.spec.arith`; the specification is this docstring:

Dot product with bias ``S = sum_{i<N} x_i*w_i + b`` over ``L = N + NB`` lanes (the bias is
folded into ``NB`` pseudo-product lanes by :func:`fold_bias`). Activations are streamed one
bit-plane per input step, MSB first: step ``k`` uses digit ``d_{i,k}`` of ``x_i`` with
``x = sum_k d_k 2**(B-1-k)`` (:func:`plane_digits`; the signed top plane has ``d = -bit``).

Recurrence (integer form), one output digit per step ``t = 0 .. T-1``::

    P_t = sum_i d_{i,t} * w_i      (P_t = 0 for t >= B),   |P_t| <= L*127 < 2**Lb
    v_t = 2*R_{t-1} + P_t          (R_{-1} = 0)
    z_t = +1 if v_t >= 2**(F-1);  -1 if v_t < -2**(F-1);  0 otherwise
    R_t = v_t - z_t * 2**F

with ``Lb`` the smallest integer with ``2**Lb > L*127`` and ``F = Lb + 1``.

Proved bounds (and tested exhaustively / randomly in ``tests/golden/arith``):

* invariant ``-2**(F-1) <= R_t < 2**(F-1)``, so the residual fits ``signed(F)`` and
  ``v_t`` fits ``signed(F+2)``; the selection only looks at ``v_t >> (F-1)`` (3 bits);
* with ``Z_p = sum_{t<p} z_t 2**(T-1-t)`` (``T = B + F``), unrolling gives
  ``S - Z_p = R_{p-1} * 2**(B-p) + sum_{p<=k<B} P_k 2**(B-1-k)``, hence
  ``-2**(T-1-p) <= S - Z_p < 2**(T-1-p)`` once ``p >= B`` (no input left) and
  ``|S - Z_p| < 2**(T-p) - 2**(F-1)`` (so ``< 2**(T-p)``) while ``p < B``;
* ``R_{T-1}`` is a multiple of ``2**F`` inside ``[-2**(F-1), 2**(F-1))``, so it is 0 and
  ``Z_T = S`` exactly: ``T`` digits always suffice;
* the first nonzero digit ``z_j`` has the sign of ``S`` (``|S - Z_{j+1}| < 2**(T-1-j)`` and
  ``Z_{j+1} = z_j 2**(T-1-j)``), and all ``T`` digits are 0 iff ``S == 0``.

Online delay: the output stream carries ``F`` more integer digits than the input planes
(digit ``z_t`` has weight ``2**(T-1-t) = 2**F * 2**(B-1-t)``); digit ``t`` depends only on
planes ``0..t``. A transaction is ``T = B + F`` digits long.

Termination policies (:class:`Policy`): ``FULL`` all ``T`` digits, value ``S``;
``RELU_END`` stop after the first nonzero digit when it is ``-1`` (value 0), else value
``S``; ``SIGN_ONLY`` stop at the first nonzero digit, value its sign (0 when every digit is
0); ``TRUNCATE p`` ``p`` digits, value ``Z_p``. ``digits_used`` counts the digits emitted.
``terminated`` is 1 when the policy's stop fired: the negative sign was detected
(``RELU_END``), a nonzero digit was found (``SIGN_ONLY``), or ``p < T`` (``TRUNCATE``).
The early stop can fire on the last digit ``T-1`` (``digits_used == T``, ``terminated == 1``).

Timing of the RTL as built (see :class:`MMACycleModel` for the exact rules): a transaction
accepted on ``i`` at cycle ``h`` shows digit ``t`` on the digit port at cycle ``h + 2 + t``
and raises ``o.valid`` with its result at ``h + 1 + digits_used``. Back-to-back
transactions follow without an idle digit cycle, except one bubble after an early stop.

Entry points: :func:`fold_bias`, :func:`bias_plane_sums`, :func:`plane_digits`,
:func:`plane_sums`, :func:`digit_stream` (scalar recurrence), :func:`evaluate_planes`
(vectorized, the one the network model calls), :func:`evaluate`, :func:`transaction`
(single transaction on an idle unit, with cycles) and :class:`MMACycleModel` (many
transactions with input gaps and output backpressure).

This module is the specification and the one import name of the model; the code lives by
responsibility in :mod:`.mma_operands` (legal operands, bit-planes, lane sums),
:mod:`.mma_bias` (bias folding), :mod:`.mma_recurrence` (scalar recurrence and policies),
:mod:`.mma_eval` (vectorized evaluator), :mod:`.mma_cycles` (cycle-exact model of the RTL)
and :mod:`.mma_stimulus` (testbench stimulus); the facts shared with the RTL are in
:mod:`msdf_unet.spec.arith`. Every name is re-exported here.
"""
from __future__ import annotations

from ...spec.arith import (LATENCY_TO_DIGIT0, MAX_WEIGHT, RESULT_DEPTH, Policy, act_range,
                           online_delay, stream_digits)
from ...spec.arith import check_act_bits as _check_act_bits  # noqa: F401 (old private names)
from ...spec.arith import check_lanes as _check_lanes  # noqa: F401
from ...spec.arith import policy_code as _policy  # noqa: F401
from .mma_bias import bias_plane_sums, bias_range, fold_bias, fold_bias_array
from .mma_cycles import CycleTrace, MMACycleModel, Transaction, TxnTrace, transaction
from .mma_eval import Result, evaluate, evaluate_planes
from .mma_operands import check_acts, check_weights, plane_digits, plane_sums
from .mma_recurrence import apply_policy, digit_stream
from .mma_recurrence import check_budget as _check_budget  # noqa: F401
from .mma_stimulus import random_ready, random_transactions

__all__ = [
    "Policy", "MAX_WEIGHT", "online_delay", "stream_digits", "act_range", "check_weights",
    "check_acts", "fold_bias", "fold_bias_array", "bias_range", "bias_plane_sums", "plane_digits", "plane_sums",
    "digit_stream", "apply_policy", "Result", "evaluate_planes", "evaluate", "Transaction",
    "TxnTrace", "CycleTrace", "MMACycleModel", "transaction", "random_transactions", "random_ready", "LATENCY_TO_DIGIT0", "RESULT_DEPTH",
]
