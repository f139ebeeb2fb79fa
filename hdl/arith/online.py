"""Textbook radix-2 online operators: adder, serial-serial and serial-parallel multiplier.

The building blocks of the cascaded-MSDF baseline. Golden models (digit for digit, cycle for
cycle): :mod:`msdf_unet.golden.arith.online`, whose docstring also gives the algorithms and
the error bounds.

Uniform digit-serial ports (all three units)
    ``clear``    In(1): start a new operation. Alone, it resets the state; together with
                 ``x_valid`` the digits of that cycle are the *first* step of the new
                 operation.
    ``x_valid``  In(1): the serial inputs hold the next digits; one step is taken. No
                 back-pressure: every valid cycle is a step. Idle cycles (``x_valid = 0``)
                 hold the state.
    ``x``        In(Digit): serial operand digit (fraction stream, MSD first).
    ``y``        In(Digit) (adder, SS multiplier) or In(signed(y_bits)) (SP multiplier,
                 held stable for the whole operation).
    ``z_valid``  Out(1), ``z`` Out(Digit): registered. In the cycle after the input cycle of
                 step ``k``, ``z_valid = 1`` and ``z`` is the output digit of index
                 ``k - ONLINE_DELAY`` when that index is ``>= FIRST_INDEX``; otherwise
                 ``z_valid = 0``. ``z_valid`` is 0 after idle cycles and after ``clear``.

Class attributes: ``ONLINE_DELAY`` (2 adder, 3 serial-serial, 2 serial-parallel) and
``FIRST_INDEX`` (index of the first output digit: 0 for the adder, whose ``z_0`` is an integer
digit, 1 for the multipliers). Timing with one step per cycle (first step in cycle 0): output
digit ``j`` (weight ``2**-j``) is valid in cycle ``j + ONLINE_DELAY``. A finite operand continues with zero
digits: keep ``x_valid = 1`` with zero digits to drain the remaining output digits.
Throughput: one digit per cycle.

"""
from amaranth import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .digit import Digit

__all__ = ["OnlineAdder", "OnlineMultiplierSS", "OnlineMultiplierSP"]


def _times_digit(value, digit):
    """``value * digit`` for a digit given as a signed(2) value: a select and a negation."""
    return Mux(digit == 1, value, Mux(digit == -1, -value, 0))


class _OnlineBase(wiring.Component):
    ONLINE_DELAY: int
    FIRST_INDEX: int

    def __init__(self, signature=None):
        super().__init__(signature)
        #: steps taken since ``clear``, saturating at ``ONLINE_DELAY + FIRST_INDEX - 1`` (the
        #: steps before the first output); exposed for the formal proofs
        self.steps = Signal(range(self.ONLINE_DELAY + self.FIRST_INDEX))

    def _step_control(self, m):
        """Drive the step counter and ``z_valid``; return the "this step emits" signal."""
        last = self.ONLINE_DELAY + self.FIRST_INDEX - 1  # steps taken before the first output
        cnt = self.steps
        base_cnt = Mux(self.clear, 0, cnt)
        emit = Signal()
        m.d.comb += emit.eq(base_cnt == last)
        with m.If(self.x_valid):
            m.d.sync += [cnt.eq(Mux(emit, last, base_cnt + 1)), self.z_valid.eq(emit)]
        with m.Else():
            m.d.sync += self.z_valid.eq(0)
            with m.If(self.clear):
                m.d.sync += cnt.eq(0)
        return emit


class OnlineAdder(_OnlineBase):
    """Radix-2 online adder: ``Z = X + Y``, online delay 2.

    Two-level carry-free signed-digit addition with one digit of lookahead (see
    :class:`msdf_unet.golden.arith.online.OnlineAdder`). Output digits ``z_0, z_1, ...``
    with ``z_0`` of weight 1 (read as a fraction stream the output is ``(X + Y) / 2``); after
    ``n`` input digits and 2 more (zero) steps, ``z_0 .. z_n`` equal ``X + Y`` exactly.
    Any stream length. State: 3 + 2 bits plus the step counter.

    Ports and timing: see :mod:`msdf_unet.hdl.arith.online` (uniform ports); ``z_0`` is
    on ``z`` two cycles after ``x_1``.

    Attributes
    ----------
    p_prev, w_prev : Signal
        The state after step ``k`` (``p_k`` and ``w_{k-1}``), exposed for the formal
        proof of ``2**k (X[k] + Y[k]) == 4 * (outputs so far, Horner) + 2 w_{k-1} + p_k``.
    """

    ONLINE_DELAY = 2
    FIRST_INDEX = 0

    clear: In(1)
    x_valid: In(1)
    x: In(Digit)
    y: In(Digit)
    z_valid: Out(1)
    z: Out(Digit)

    def __init__(self):
        super().__init__()
        self.p_prev = Signal(signed(3))   # p_k = x_k + y_k of the last step
        self.w_prev = Signal(signed(2))   # w_{k-1}, the interim sum waiting for its transfer

    def elaborate(self, platform):
        m = Module()
        self._step_control(m)
        p_prev, w_prev = self.p_prev, self.w_prev
        p = Signal(signed(3))
        m.d.comb += p.eq(self.x.as_value() + self.y.as_value())
        base_p = Mux(self.clear, 0, p_prev)
        base_w = Mux(self.clear, 0, w_prev)
        # split p_{k-1} = 2 t + w, choosing w against the sign of the next sum p_k so that
        # w_{k-1} + t_k can never leave {-1, 0, 1}
        t, w = Signal(signed(2)), Signal(signed(2))
        with m.Switch(base_p):
            with m.Case(2):
                m.d.comb += [t.eq(1), w.eq(0)]
            with m.Case(-2):
                m.d.comb += [t.eq(-1), w.eq(0)]
            with m.Case(1):
                m.d.comb += [t.eq(Mux(p >= 0, 1, 0)), w.eq(Mux(p >= 0, -1, 1))]
            with m.Case(-1):
                m.d.comb += [t.eq(Mux(p >= 0, 0, -1)), w.eq(Mux(p >= 0, -1, 1))]
            with m.Default():
                m.d.comb += [t.eq(0), w.eq(0)]
        with m.If(self.x_valid):
            m.d.sync += [p_prev.eq(p), w_prev.eq(w), self.z.eq((base_w + t)[:2])]
        with m.Elif(self.clear):
            m.d.sync += [p_prev.eq(0), w_prev.eq(0)]
        return m


class OnlineMultiplierSS(_OnlineBase):
    """Serial-serial radix-2 online multiplier: ``P = X * Y``, online delay 3.

    Both operands arrive as digit streams of at most ``digits`` digits; digits after the
    ``digits``-th are ignored (treated as 0). The operands received so far are kept in two's
    complement by fraction-form on-the-fly conversion (``Q``/``QM`` registers and a moving
    one-hot mask, no carry). Residual recurrence and bounds: see
    :class:`msdf_unet.golden.arith.online.OnlineMultiplierSS`; the residual register is
    ``signed(digits + 5)`` (range ``[-2, 2)``, the residual never exceeds 49/64).
    ``2 * digits`` output digits ``p_1 ..`` (``2 * digits + 3`` steps) equal ``X * Y``
    exactly.

    Parameters
    ----------
    digits : int
        Maximum operand length ``n`` (>= 1).

    Attributes
    ----------
    residual : Signal(signed(digits + 5))
        The residual ``w`` in units of ``2**-(digits+3)``, exposed for the formal proof.

    Ports and timing: see :mod:`msdf_unet.hdl.arith.online` (uniform ports); ``p_1`` is
    on ``z`` four cycles after ``x_1`` (output index ``j`` valid in cycle ``j + 3``).
    """

    ONLINE_DELAY = 3
    FIRST_INDEX = 1

    def __init__(self, *, digits: int):
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            raise ValueError(f"digits must be a positive integer, not {digits!r}")
        self.digits = digits
        super().__init__({
            "clear": In(1), "x_valid": In(1), "x": In(Digit), "y": In(Digit),
            "z_valid": Out(1), "z": Out(Digit),
        })
        #: residual register, units of 2**-(digits + 3) (exposed for the formal proof)
        self.residual = Signal(signed(digits + self.ONLINE_DELAY + 2))

    def elaborate(self, platform):
        m = Module()
        n = self.digits
        scale = n + self.ONLINE_DELAY                    # residual unit 2**-scale
        emit = self._step_control(m)

        # fraction on-the-fly registers: value * 2**n in signed(n + 1); QM starts at -1
        minus_one = Const(-(1 << n), signed(n + 1))
        regs = {}
        for name in ("x", "y"):
            regs[name] = (Signal(signed(n + 1), name=f"q_{name}"),
                          Signal(signed(n + 1), name=f"qm_{name}", init=-(1 << n)))
        mask = Signal(unsigned(n), init=1 << (n - 1))    # weight of the next digit
        w = self.residual

        base_mask = Mux(self.clear, 1 << (n - 1), mask)
        active = base_mask != 0                           # digits past the n-th are ignored
        new = {}
        for name in ("x", "y"):
            q, qm = regs[name]
            digit = getattr(self, name)
            bq = Mux(self.clear, 0, q)
            bqm = Mux(self.clear, minus_one, qm)
            nq, nqm = Signal(signed(n + 1), name=f"nq_{name}"), Signal(signed(n + 1), name=f"nqm_{name}")
            with m.If(active & (digit == Digit.POS)):
                m.d.comb += [nq.eq(bq | base_mask), nqm.eq(bq)]
            with m.Elif(active & (digit == Digit.NEG)):
                m.d.comb += [nq.eq(bqm | base_mask), nqm.eq(bqm)]
            with m.Elif(active):
                m.d.comb += [nq.eq(bq), nqm.eq(bqm | base_mask)]
            with m.Else():
                m.d.comb += [nq.eq(bq), nqm.eq(bqm)]
            new[name] = (bq, nq, nqm)

        x_eff = Mux(active, self.x.as_value(), 0)
        y_eff = Mux(active, self.y.as_value(), 0)
        bx_old = new["x"][0]
        ny = new["y"][1]
        term = Signal(signed(n + 3))
        m.d.comb += term.eq(_times_digit(bx_old, y_eff) + _times_digit(ny, x_eff))
        v = Signal(signed(scale + 2))                    # |v| < 2 by the residual bound
        base_w = Mux(self.clear, 0, w)
        m.d.comb += v.eq(2 * base_w + term)
        digit = Signal(signed(2))
        half = 1 << (scale - 1)
        m.d.comb += digit.eq(Mux(v >= half, 1, Mux(v < -half, -1, 0)))

        with m.If(self.x_valid):
            for name in ("x", "y"):
                q, qm = regs[name]
                m.d.sync += [q.eq(new[name][1]), qm.eq(new[name][2])]
            m.d.sync += [mask.eq(base_mask >> 1), self.z.eq(digit)]
            m.d.sync += w.eq(Mux(emit, v - _times_digit(Const(1 << scale, signed(scale + 2)), digit), v))
        with m.Elif(self.clear):
            for name in ("x", "y"):
                q, qm = regs[name]
                m.d.sync += [q.eq(0), qm.eq(minus_one)]
            m.d.sync += [mask.eq(1 << (n - 1)), w.eq(0)]
        return m


class OnlineMultiplierSP(_OnlineBase):
    """Serial-parallel radix-2 online multiplier: ``P = X * Y``, online delay 2.

    ``x`` is a digit stream of any length; ``y`` is a parallel ``signed(y_bits)`` integer
    read as ``Y = y / 2**(y_bits - 1)`` (an INT8 weight: ``y_bits=8``), read in every
    step: hold it for the operation. Residual ``signed(y_bits + 3)``; recurrence and
    bounds: :class:`msdf_unet.golden.arith.online.OnlineMultiplierSP`. After ``n`` input
    digits, ``n + y_bits - 1`` output digits (``n + y_bits + 1`` steps) equal ``X * Y``
    exactly.

    Parameters
    ----------
    y_bits : int
        Width of the parallel operand (>= 1, default 8).

    Attributes
    ----------
    residual : Signal(signed(y_bits + 3))
        The residual ``w`` in units of ``2**-(y_bits+1)``, exposed for the formal proof of
        ``residual == A * y - 2**(y_bits+1) * B`` (``A``, ``B``: Horner values of the input
        digits and of the output digits so far) and ``|residual| <= 3/4``.

    Ports and timing: see :mod:`msdf_unet.hdl.arith.online` (uniform ports); ``p_1`` is
    on ``z`` three cycles after ``x_1`` (output index ``j`` valid in cycle ``j + 2``).
    """

    ONLINE_DELAY = 2
    FIRST_INDEX = 1

    def __init__(self, *, y_bits: int = 8):
        if isinstance(y_bits, bool) or not isinstance(y_bits, int) or y_bits < 1:
            raise ValueError(f"y_bits must be a positive integer, not {y_bits!r}")
        self.y_bits = y_bits
        super().__init__({
            "clear": In(1), "x_valid": In(1), "x": In(Digit), "y": In(signed(y_bits)),
            "z_valid": Out(1), "z": Out(Digit),
        })
        #: residual register, units of 2**-(y_bits + 1) (exposed for the formal proof)
        self.residual = Signal(signed(y_bits + 1 + 2))

    def elaborate(self, platform):
        m = Module()
        scale = self.y_bits - 1 + self.ONLINE_DELAY
        emit = self._step_control(m)
        w = self.residual
        v = Signal(signed(scale + 2))                    # |v| <= 7/4 by the residual bound
        base_w = Mux(self.clear, 0, w)
        m.d.comb += v.eq(2 * base_w + _times_digit(self.y, self.x.as_value()))
        digit = Signal(signed(2))
        half = 1 << (scale - 1)
        m.d.comb += digit.eq(Mux(v >= half, 1, Mux(v < -half, -1, 0)))
        with m.If(self.x_valid):
            m.d.sync += [self.z.eq(digit),
                         w.eq(Mux(emit, v - _times_digit(Const(1 << scale, signed(scale + 2)), digit), v))]
        with m.Elif(self.clear):
            m.d.sync += w.eq(0)
        return m
