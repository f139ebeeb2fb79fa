"""On-the-fly conversion of a signed-digit stream into two's complement.

Golden model: :func:`msdf_unet.golden.arith.digits.otf_int_steps`. Formal proof (k-induction,
all streams, all time): ``tests/sim/test_formal.py``.
"""
from amaranth import Cat, Const, Module, Mux, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .digit import Digit

__all__ = ["OnTheFlyConverter"]


class OnTheFlyConverter(wiring.Component):
    """Integer (Horner) on-the-fly converter with the ``Q`` / ``QM = Q - 1`` registers.

    After the digits ``z_0 .. z_{k-1}`` of the current stream have been received,
    ``q == sum(z_t * 2**(k-1-t))`` and ``qm == q - 1`` (both modulo ``2**width``: exact
    while the value fits ``signed(width)``). No carry-propagate adder: each digit only
    selects which register is shifted left with which bit appended (Ercegovac & Lang,
    *Digital Arithmetic*, sec. 2.9)::

        z = +1:  q <= {q,  1}   qm <= {q,  0}
        z =  0:  q <= {q,  0}   qm <= {qm, 1}
        z = -1:  q <= {qm, 1}   qm <= {qm, 0}

    Parameters
    ----------
    width : int
        Register width in bits (>= 1). A stream of ``k`` digits needs ``width >= k + 1``
        for an exact signed result (its value lies in ``[-(2**k - 1), 2**k - 1]``).

    Members
    -------
    clear : In(1)
        Start a new stream. In a cycle with ``clear`` and no ``digit_valid``, the next
        ``q``/``qm`` are ``0``/``-1`` (the empty stream). With ``clear`` and
        ``digit_valid`` together, ``digit`` is the *first* digit of the new stream.
    digit_valid : In(1)
        ``digit`` holds the next digit of the stream this cycle (no back-pressure: every
        valid digit is taken).
    digit : In(Digit)
        The digit, most significant first.
    q, qm : Out(signed(width))
        Registered: they reflect every digit presented up to and including the previous
        clock cycle (latency 1 cycle: a digit given in cycle ``c`` is in ``q`` in cycle
        ``c + 1``). Reset values ``0`` and ``-1``. Throughput one digit per cycle.
    """

    def __init__(self, *, width: int):
        if isinstance(width, bool) or not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be a positive integer, not {width!r}")
        self.width = width
        super().__init__({
            "clear": In(1),
            "digit_valid": In(1),
            "digit": In(Digit),
            "q": Out(signed(width)),
            "qm": Out(signed(width), init=-1),
        })

    def elaborate(self, platform):
        m = Module()
        w = self.width
        # the registers the next digit is appended to: the current ones, or 0 / -1 on clear
        base_q = Mux(self.clear, Const(0, signed(w)), self.q)
        base_qm = Mux(self.clear, Const(-1, signed(w)), self.qm)
        keep_q, keep_qm = base_q[:w - 1], base_qm[:w - 1]   # what survives the left shift
        with m.If(self.digit_valid):
            with m.Switch(self.digit):
                with m.Case(Digit.POS):
                    m.d.sync += [self.q.eq(Cat(Const(1, 1), keep_q)),
                                 self.qm.eq(Cat(Const(0, 1), keep_q))]
                with m.Case(Digit.ZERO):
                    m.d.sync += [self.q.eq(Cat(Const(0, 1), keep_q)),
                                 self.qm.eq(Cat(Const(1, 1), keep_qm))]
                with m.Case(Digit.NEG):
                    m.d.sync += [self.q.eq(Cat(Const(1, 1), keep_qm)),
                                 self.qm.eq(Cat(Const(0, 1), keep_qm))]
                with m.Default():  # the unused encoding -2 (0b10): treated as no digit
                    m.d.sync += [self.q.eq(base_q), self.qm.eq(base_qm)]
        with m.Elif(self.clear):
            m.d.sync += [self.q.eq(0), self.qm.eq(-1)]
        return m
