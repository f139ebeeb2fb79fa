"""Golden models of the baseline dot-product units the seed paper compares against.

Values and cycles of :mod:`msdf_unet.hdl.arith.bitserial`,
:mod:`msdf_unet.hdl.arith.bitparallel` and :mod:`msdf_unet.hdl.arith.cascaded`.

Values
    :func:`bitserial_dot` runs the LSB-first shift-add recurrence the bit-serial unit runs,
    :func:`bitparallel_dot` sums full products. Both return :class:`Result` after applying
    the policy to the exact dot product ``S`` (:func:`apply_full_policy`): these units
    cannot stop early, so every policy costs the fixed cycle count.

Cycles
    :class:`SerialShellModel` (bit-serial, cascaded) and :class:`PipelineShellModel`
    (bit-parallel) are cycle-accurate models of the valid/ready shells the units are
    wrapped in; :func:`simulate` drives one with a transaction list and per-cycle
    valid/ready patterns the same way the RTL testbenches do, so tests compare every accept
    cycle and every output cycle.

Operand rules are the MMA spec's: weights in [-127, 127]; activations B-bit two's
complement (signed) or [0, 2^B - 1] (unsigned). Out-of-range operands raise ValueError.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from ...spec.arith import MAX_WEIGHT, Policy, act_range, policy_code
from .online import OnlineAdder, OnlineMultiplierSP

__all__ = [
    "Result", "Txn", "check_operands", "exact_dot", "apply_full_policy",
    "bitserial_planes", "bitserial_dot", "bitparallel_dot",
    "bitserial_cycles", "bitparallel_cycles", "BITPARALLEL_LATENCY_CYCLES",
    "SerialShellModel", "PipelineShellModel", "simulate", "corner_txns", "random_txns",
    "cascade_depth", "cascade_tree", "cascade_steps", "cascaded_cycles", "cascaded_digits",
    "cascaded_dot", "CASCADE_LEVEL_CYCLES",
]

#: register stages of the bit-parallel unit: operands, products, sum (one result per cycle)
BITPARALLEL_LATENCY_CYCLES = 3


@dataclass(frozen=True)
class Result:
    """One result on the ``o`` stream (fields of iface.py's result payload)."""
    value: int
    digits_used: int
    terminated: int = 0


@dataclass(frozen=True)
class Txn:
    """One transaction on the ``i`` stream."""
    x: tuple
    w: tuple
    policy: Policy = Policy.FULL
    digits: int = 0


def check_operands(x: Sequence[int], w: Sequence[int], *, act_bits: int = 8,
                   signed_acts: bool = True) -> None:
    """Raise ValueError unless ``x`` and ``w`` are legal operands of the same length."""
    if len(x) != len(w) or len(x) == 0:
        raise ValueError(f"x and w must be non-empty and of equal length, not {len(x)} and {len(w)}")
    lo, hi = act_range(act_bits, signed_acts)
    for k, v in enumerate(x):
        if not isinstance(v, int) or not lo <= v <= hi:
            raise ValueError(f"activation x[{k}]={v!r} outside [{lo}, {hi}]")
    for k, v in enumerate(w):
        if not isinstance(v, int) or not -MAX_WEIGHT <= v <= MAX_WEIGHT:
            raise ValueError(f"weight w[{k}]={v!r} outside [-{MAX_WEIGHT}, {MAX_WEIGHT}]")


def exact_dot(x: Sequence[int], w: Sequence[int]) -> int:
    """Plain integer dot product (the oracle)."""
    return sum(a * b for a, b in zip(x, w))


def apply_full_policy(s: int, policy: Policy, cycles: int) -> Result:
    """The result a unit that always computes the full ``s`` returns for ``policy``.

    FULL and TRUNCATE give ``s`` (TRUNCATE's digit budget is ignored: the unit has no digit
    prefix to truncate, it returns the exact value, which meets any truncation bound);
    RELU_END gives ``max(s, 0)``; SIGN_ONLY gives the sign of ``s``. ``digits_used`` is the
    fixed cycle count ``cycles`` and ``terminated`` is always 0.
    """
    policy = policy_code(policy)
    if policy == Policy.RELU_END:
        value = max(s, 0)
    elif policy == Policy.SIGN_ONLY:
        value = (s > 0) - (s < 0)
    else:
        value = s
    return Result(value=value, digits_used=cycles, terminated=0)


def bitserial_planes(x: Sequence[int], w: Sequence[int], *, act_bits: int = 8,
                     signed_acts: bool = True) -> list[int]:
    """Plane sums ``P_j = sum_i d_{i,j} w_i``, least significant plane first (j = 0..B-1).

    ``d_{i,j}`` is bit j of ``x_i`` (two's complement); in signed mode the top plane j = B-1
    counts negative, so ``x_i = sum_j d_{i,j} 2^j``.
    """
    check_operands(x, w, act_bits=act_bits, signed_acts=signed_acts)
    planes = []
    for j in range(act_bits):
        p = sum(wi for xi, wi in zip(x, w) if (xi >> j) & 1)
        planes.append(-p if signed_acts and j == act_bits - 1 else p)
    return planes


def bitserial_cycles(*, act_bits: int = 8) -> int:
    """Digit (plane) cycles one bit-serial transaction occupies: ``B``."""
    return act_bits


def bitparallel_cycles() -> int:
    """Cycles one bit-parallel transaction occupies: 1 (one result per cycle)."""
    return 1


def bitserial_dot(x: Sequence[int], w: Sequence[int], *, act_bits: int = 8,
                  signed_acts: bool = True, policy: Policy = Policy.FULL,
                  digits: int = 0) -> Result:
    """Result of the LSB-first bit-serial unit.

    The shift-add recurrence of the RTL: ``A_0 = 0``; per plane j, ``u = A_j + P_j``,
    ``l_j = u mod 2`` (shifted into the low result bits), ``A_{j+1} = floor(u / 2)``.
    Then ``S = A_B * 2^B + sum_j l_j 2^j`` (induction: ``A_j 2^j + sum_{k<j} l_k 2^k =
    sum_{k<j} P_k 2^k``), and ``|A_j| <= max |P|`` sizes the accumulator.
    """
    acc, low = 0, 0
    for j, p in enumerate(bitserial_planes(x, w, act_bits=act_bits, signed_acts=signed_acts)):
        u = acc + p
        low |= (u & 1) << j
        acc = u >> 1
    s = (acc << act_bits) + low
    return apply_full_policy(s, policy, bitserial_cycles(act_bits=act_bits))


def bitparallel_dot(x: Sequence[int], w: Sequence[int], *, act_bits: int = 8,
                    signed_acts: bool = True, policy: Policy = Policy.FULL,
                    digits: int = 0) -> Result:
    """Result of the bit-parallel unit: the sum of full products, then the policy."""
    check_operands(x, w, act_bits=act_bits, signed_acts=signed_acts)
    return apply_full_policy(exact_dot(x, w), policy, bitparallel_cycles())


class SerialShellModel:
    """Cycle model of the shell of a unit that works ``compute_cycles`` cycles per transaction.

    Registers: ``busy``, a cycle counter, the held transaction, and an output register
    (``o.valid`` + payload). Per cycle, before the clock edge, with
    ``space = not o.valid or o.ready`` and ``last = busy and count == compute_cycles - 1``:

    - ``i.ready = not busy or (last and space)``;
    - an accepted transaction computes during the next ``compute_cycles`` cycles; at the
      edge ending the last one its result enters the output register, so it is on ``o`` at
      ``accept + compute_cycles + 1``;
    - the last cycle waits (holds its state) while the output register is full and not
      read (``not space``); the earlier cycles never wait.

    Throughput: one transaction every ``compute_cycles`` cycles without backpressure.
    """

    def __init__(self, compute_cycles: int, result_fn: Callable[[Txn], Result]):
        if not isinstance(compute_cycles, int) or compute_cycles < 1:
            raise ValueError(f"compute_cycles must be a positive integer, not {compute_cycles!r}")
        self.compute_cycles = compute_cycles
        self.result_fn = result_fn
        self.busy = False
        self.count = 0
        self.cur = None
        self.o_valid = False
        self.o_payload = None

    @property
    def latency_cycles(self) -> int:
        return self.compute_cycles + 1

    def peek(self, out_ready: bool) -> tuple[bool, bool, Result | None]:
        """``(i.ready, o.valid, o.payload)`` in the current cycle."""
        last = self.busy and self.count == self.compute_cycles - 1
        space = not self.o_valid or out_ready
        in_ready = not self.busy or (last and space)
        return in_ready, self.o_valid, self.o_payload

    def step(self, in_valid: bool, txn: Txn | None, out_ready: bool) -> tuple[bool, bool, Result | None]:
        """Advance one clock; return the pre-edge ``(i.ready, o.valid, o.payload)``."""
        in_ready, o_valid, o_payload = self.peek(out_ready)
        space = not self.o_valid or out_ready
        if self.o_valid and out_ready:
            self.o_valid, self.o_payload = False, None
        if self.busy:
            if self.count < self.compute_cycles - 1:
                self.count += 1
            elif space:
                self.o_valid, self.o_payload = True, self.result_fn(self.cur)
                self.busy = False
        if in_valid and in_ready:
            self.busy, self.count, self.cur = True, 0, txn
        return in_ready, o_valid, o_payload


class PipelineShellModel:
    """Cycle model of a ``latency_cycles``-stage pipeline with one global stall.

    ``i.ready = enable = not o.valid or o.ready``; every stage (valid bit + data) moves on
    when ``enable``. A transaction accepted at cycle ``a`` is on ``o`` at
    ``a + latency_cycles`` without backpressure; one transaction per cycle.
    """

    def __init__(self, latency_cycles: int, result_fn: Callable[[Txn], Result]):
        if not isinstance(latency_cycles, int) or latency_cycles < 1:
            raise ValueError(f"latency_cycles must be a positive integer, not {latency_cycles!r}")
        self.latency_cycles = latency_cycles
        self.result_fn = result_fn
        self.stages: list[Txn | None] = [None] * latency_cycles

    def step(self, in_valid: bool, txn: Txn | None, out_ready: bool) -> tuple[bool, bool, Result | None]:
        last = self.stages[-1]
        o_valid = last is not None
        enable = not o_valid or out_ready
        o_payload = self.result_fn(last) if o_valid else None
        if enable:
            self.stages = [txn if in_valid else None] + self.stages[:-1]
        return enable, o_valid, o_payload


def simulate(model, txns: Sequence[Txn], valid_pattern: Sequence[bool],
             ready_pattern: Sequence[bool]) -> tuple[list[int], list[tuple[int, Result]]]:
    """Drive ``model`` like the RTL testbenches do; return accept cycles and outputs.

    Driver rule (the stream rule: valid stays up until accepted): at cycle ``c`` the driver
    offers the next pending transaction if it offered it in ``c - 1`` and it was not
    accepted, or if ``valid_pattern[c]``. ``o.ready`` is ``ready_pattern[c]``. Runs for
    ``len(valid_pattern)`` cycles (``ready_pattern`` must be as long).

    Returns ``(accept_cycles, [(output_cycle, Result), ...])``.
    """
    if len(ready_pattern) != len(valid_pattern):
        raise ValueError("valid_pattern and ready_pattern must have the same length")
    accepts, outputs = [], []
    nxt, offering = 0, False
    for c, (want, rdy) in enumerate(zip(valid_pattern, ready_pattern)):
        offering = nxt < len(txns) and (offering or bool(want))
        in_ready, o_valid, o_payload = model.step(offering, txns[nxt] if offering else None, bool(rdy))
        if o_valid and rdy:
            outputs.append((c, o_payload))
        if offering and in_ready:
            accepts.append(c)
            nxt += 1
            offering = False
    return accepts, outputs


def corner_txns(n: int, *, act_bits: int = 8, signed_acts: bool = True) -> list[Txn]:
    """Corner transactions (FULL policy): extreme activations against +-127 weights,
    all zeros, one nonzero lane, alternating signs."""
    lo, hi = act_range(act_bits, signed_acts)
    out = []
    for xv in (lo, hi):
        for wv in (127, -127):
            out.append(Txn((xv,) * n, (wv,) * n))
    out.append(Txn((lo,) * n, tuple(127 if k % 2 else -127 for k in range(n))))
    out.append(Txn((0,) * n, (0,) * n))
    out.append(Txn((hi,) * n, (0,) * n))
    out.append(Txn((0,) * n, (127,) * n))
    for lane in sorted({0, n - 1}):
        x = [0] * n
        x[lane] = lo if signed_acts else hi
        w = [0] * n
        w[lane] = -127
        out.append(Txn(tuple(x), tuple(w)))
    return out


def random_txns(rng, count: int, n: int, *, act_bits: int = 8, signed_acts: bool = True,
                policies: Sequence[Policy] = tuple(Policy)) -> list[Txn]:
    """``count`` random transactions (uniform operands, random policy and digit budget)."""
    lo, hi = act_range(act_bits, signed_acts)
    return [Txn(tuple(rng.randint(lo, hi) for _ in range(n)),
                tuple(rng.randint(-127, 127) for _ in range(n)),
                rng.choice(list(policies)), rng.randint(1, 40)) for _ in range(count)]


# --- cascaded MSDF ------------------------------------------------------------------------
#
# N serial-parallel online multipliers (activation digits MSB first x parallel INT8 weight)
# feed a binary tree of online adders. Every operator registers its output digit, and every
# operator steps in every compute cycle from the first one (before its real input arrives
# it sees zero digits, which it passes on as zero digits). Read as "the digit a consumer
# takes in its step c weighs 2**-c", each level scales its stream by 1/8: the operator's
# online delay 2 (its digit k - 2 leaves in step k), the adder's extra integer digit z_0
# (the sum of two fractions), or the multiplier's first index 1 and the output register.
# So the root stream is S / 2**(B + 10 + 3d) with d = ceil(log2 N) adder levels. Its
# first 2 + 2d digits (the online delay delta_mult + d * delta_add) are always 0; the
# transaction runs B + 9 + 3d steps until the digit of weight 1 leaves the root.

#: compute cycles one tree level adds to a transaction (online delay 2 + output register)
CASCADE_LEVEL_CYCLES = 3


def cascade_depth(n_lanes: int) -> int:
    """Adder levels ``d = ceil(log2 N)`` of the cascaded tree."""
    if not isinstance(n_lanes, int) or n_lanes < 1:
        raise ValueError(f"n_lanes must be a positive integer, not {n_lanes!r}")
    return (n_lanes - 1).bit_length()


def cascade_tree(n_lanes: int) -> list[list[tuple[int, ...]]]:
    """Nodes of each adder level: pairs ``(a, b)`` (an online adder of nodes ``a`` and ``b``
    of the level below) or singles ``(a,)`` (a 3-register digit delay line, which has the
    adder's timing and the value ``X + 0``). Level 0 below the first is the multipliers."""
    levels, width = [], n_lanes
    for _ in range(cascade_depth(n_lanes)):
        level = [(k, k + 1) for k in range(0, width - 1, 2)]
        if width % 2:
            level.append((width - 1,))
        levels.append(level)
        width = len(level)
    return levels


def cascade_steps(n_lanes: int, *, act_bits: int = 8) -> int:
    """Operator steps per transaction: ``C - 1 = B + 9 + 3d``; the last root digit weighs 1."""
    return act_bits + 9 + CASCADE_LEVEL_CYCLES * cascade_depth(n_lanes)


def cascaded_cycles(n_lanes: int, *, act_bits: int = 8) -> int:
    """Compute cycles of one cascaded transaction (shell ``compute_cycles``): the operator
    steps, one cycle for the last digit to reach the on-the-fly converter and one for the
    converter's register: ``B + 11 + 3d``."""
    return cascade_steps(n_lanes, act_bits=act_bits) + 2


class _DelayLine:
    """Golden model of the pass-through node: a digit leaves 2 steps after it enters."""

    def __init__(self):
        self.regs = [0, 0]

    def step(self, x: int) -> int:
        out, self.regs = self.regs[-1], [x] + self.regs[:-1]
        return out


def cascaded_digits(x: Sequence[int], w: Sequence[int], *, act_bits: int = 8,
                    signed_acts: bool = True) -> list[int]:
    """Root digits of the cascaded unit, one per operator step ``c = 1 .. C - 1`` (the digit
    the root registers in step ``c``), integer value ``sum r_c 2**(C-1-c) = S``.

    Runs the textbook golden operators (:mod:`msdf_unet.golden.arith.online`) in lockstep.
    """
    check_operands(x, w, act_bits=act_bits, signed_acts=signed_acts)
    n, b = len(x), act_bits
    mults = [OnlineMultiplierSP(y_bits=8) for _ in range(n)]
    levels = [[OnlineAdder() if len(node) == 2 else _DelayLine() for node in level]
              for level in cascade_tree(n)]
    tree = cascade_tree(n)
    outs = [[0] * n] + [[0] * len(level) for level in tree]   # registered outputs
    root = []
    for c in range(1, cascade_steps(n, act_bits=b) + 1):
        if c <= b:
            j = b - c                                           # plane, MSB first
            digits = [(-1 if signed_acts and j == b - 1 else 1) * ((xi >> j) & 1) for xi in x]
        else:
            digits = [0] * n
        new = [[(op.step(d, wi) or 0) for op, d, wi in zip(mults, digits, w)]]
        for lv, (level, ops) in enumerate(zip(tree, levels)):
            below = outs[lv]
            new.append([(op.step(below[node[0]], below[node[1]]) or 0) if len(node) == 2
                        else op.step(below[node[0]]) for node, op in zip(level, ops)])
        outs = new
        root.append(outs[-1][0])
    return root


def cascaded_dot(x: Sequence[int], w: Sequence[int], *, act_bits: int = 8,
                 signed_acts: bool = True, policy: Policy = Policy.FULL,
                 digits: int = 0) -> Result:
    """Result of the cascaded-MSDF unit: the converted root stream, then the policy.

    Every transaction runs all its digits (no early stop); ``digits_used`` is the fixed
    ``cascaded_cycles``, ``terminated`` 0, like the other baselines.
    """
    s = 0
    for d in cascaded_digits(x, w, act_bits=act_bits, signed_acts=signed_acts):
        s = 2 * s + d
    return apply_full_policy(s, policy, cascaded_cycles(len(x), act_bits=act_bits))
