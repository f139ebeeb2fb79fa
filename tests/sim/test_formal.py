"""Formal proofs (SymbiYosys through YoWASP) of the on-the-fly converter and online operators.

Each proof is a wrapper component: the unit under proof with free inputs (the solver picks
every input in every cycle), a reference model written with plain carry-propagate
arithmetic, ``Assume`` on legal inputs and ``Assert`` on the contract.
"""
import pytest
from amaranth import Module, Mux, ResetSignal, Signal, signed
from amaranth.hdl import Assert, Assume
from amaranth.lib import wiring
from amaranth.lib.wiring import In

from msdf_unet.hdl.arith.online import OnlineAdder, OnlineMultiplierSP, OnlineMultiplierSS
from msdf_unet.hdl.arith.otf import OnTheFlyConverter
from msdf_unet.sim import formal

def _prove(design, **kw):
    res = formal.prove(design, **kw)
    assert res.mode == kw.get("mode", "bmc") and (res.workdir / kw["name"] / "PASS").exists()
    print(f"{kw['name']}: {res.mode} depth {res.depth}: {res.seconds:.1f} s")
    return res


def _legal_digit(m, value):
    m.d.comb += Assume(value != -2)   # the unused 2-bit pattern of Digit


def _trunc(value, bits):
    return value[:bits].as_signed()


class _Horner:
    """Wrapper-side Horner accumulators of an input stream (A) and of the output digits (B)."""

    def __init__(self, m, bits, clear, x_valid, in_digit, z_valid, z):
        self.A = Signal(signed(bits))
        self.B = Signal(signed(bits))
        base_a = Mux(clear, 0, self.A)
        with m.If(x_valid):
            m.d.sync += self.A.eq(2 * base_a + in_digit)
        with m.Elif(clear):
            m.d.sync += self.A.eq(0)
        # B including the digit on z this cycle (it belongs to the operation before a clear)
        self.B_now = Signal(signed(bits))
        m.d.comb += self.B_now.eq(Mux(z_valid, 2 * self.B + z, self.B))
        m.d.sync += self.B.eq(Mux(clear, 0, self.B_now))


class OtfProof(wiring.Component):
    """``q == ref`` and ``qm == ref - 1`` (mod 2**width), ``ref`` the carry-propagate Horner
    value; with ``exact_bits``, also ``q`` equals the exact (wide) value while it fits."""

    clear: In(1)
    digit_valid: In(1)
    digit: In(signed(2))

    def __init__(self, *, width, exact_bits=None):
        self.width, self.exact_bits = width, exact_bits
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        w = self.width
        m.submodules.dut = dut = OnTheFlyConverter(width=w)
        m.d.comb += [dut.clear.eq(self.clear), dut.digit_valid.eq(self.digit_valid),
                     dut.digit.eq(self.digit)]
        _legal_digit(m, self.digit)
        m.d.comb += Assume(~ResetSignal())
        ref = Signal(signed(w))
        base = Mux(self.clear, 0, ref)
        with m.If(self.digit_valid):
            m.d.sync += ref.eq(2 * base + self.digit)
        with m.Elif(self.clear):
            m.d.sync += ref.eq(0)
        m.d.comb += [Assert(dut.q == ref), Assert(dut.qm == _trunc(ref - 1, w))]
        if self.exact_bits:
            exact = Signal(signed(self.exact_bits))   # wide enough never to wrap in the depth
            base_e = Mux(self.clear, 0, exact)
            with m.If(self.digit_valid):
                m.d.sync += exact.eq(2 * base_e + self.digit)
            with m.Elif(self.clear):
                m.d.sync += exact.eq(0)
            fits = (exact >= -(1 << (w - 1))) & (exact < (1 << (w - 1)))
            m.d.comb += Assert(~fits | (dut.q == exact))
        return m


class AdderProof(wiring.Component):
    """Online adder, after every step ``k`` (``A = 2**k (X[k] + Y[k])``, ``B`` = Horner value
    of the output digits so far, ``z_0 .. z_{k-2}``):

    * value preservation with the delay: ``A == 4 B + 2 w_{k-1} + p_k`` (so
      ``|A - 4B| <= 2``), and ``A == 4 B`` once the last two input digit sums were 0;
    * every output digit is in {-1, 0, 1};
    * ``z_valid`` exactly in the cycle after steps ``k >= 2`` (online delay 2).
    """

    clear: In(1)
    x_valid: In(1)
    x: In(signed(2))
    y: In(signed(2))

    def __init__(self, *, acc_bits):
        self.acc_bits = acc_bits
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        bits = self.acc_bits
        m.submodules.dut = dut = OnlineAdder()
        m.d.comb += [dut.clear.eq(self.clear), dut.x_valid.eq(self.x_valid),
                     dut.x.eq(self.x), dut.y.eq(self.y)]
        _legal_digit(m, self.x)
        _legal_digit(m, self.y)
        m.d.comb += Assume(~ResetSignal())
        p = self.x + self.y
        z = dut.z.as_value()
        h = _Horner(m, bits, self.clear, self.x_valid, p, dut.z_valid, z)
        m.d.comb += Assert(z != -2)
        rest = 2 * dut.w_prev + dut.p_prev
        m.d.comb += Assert(h.A == _trunc(4 * h.B_now + rest, bits))
        m.d.comb += Assert((rest >= -2) & (rest <= 2))
        # the lookahead invariant that keeps the next digit in {-1, 0, 1}: an interim sum
        # of -1 waits on a non-negative next sum, +1 on a negative one
        w_prev, p_prev = dut.w_prev, dut.p_prev
        m.d.comb += Assert((p_prev >= -2) & (p_prev <= 2) & (w_prev != -2))
        m.d.comb += Assert((w_prev != -1) | (p_prev >= 0))
        m.d.comb += Assert((w_prev != 1) | (p_prev < 0))
        # before the first step the state is clear; after one step w_0 = 0 (p_0 = 0)
        # port-level timing and drained-value checks, with wrapper-side counters
        k = Signal(range(3))
        zeros = Signal(range(3))
        stepped = Signal()
        base_k = Mux(self.clear, 0, k)
        base_zeros = Mux(self.clear, 0, zeros)
        with m.If(self.x_valid):
            m.d.sync += [k.eq(Mux(base_k == 2, 2, base_k + 1)),
                         zeros.eq(Mux(p == 0, Mux(base_zeros == 2, 2, base_zeros + 1), 0))]
        with m.Elif(self.clear):
            m.d.sync += [k.eq(0), zeros.eq(0)]
        m.d.sync += stepped.eq(self.x_valid)
        m.d.comb += Assert(dut.z_valid == (stepped & (k == 2)))
        m.d.comb += Assert(dut.steps == Mux(k == 2, 1, k))
        m.d.comb += Assert((zeros != 2) | (h.A == _trunc(h.B_now * 4, bits)))
        m.d.comb += Assert((zeros == 0) | (p_prev == 0))
        m.d.comb += Assert((zeros != 2) | (w_prev == 0))
        # before the first step the state is clear; after one step w_0 = 0 (as p_0 = 0)
        m.d.comb += Assert((k != 0) | ((p_prev == 0) & (w_prev == 0)))
        m.d.comb += Assert((k != 1) | (w_prev == 0))
        m.d.comb += Assert((k == 2) | (h.B_now == 0))   # no output digit before step 2
        m.d.comb += Assert((k != 0) | (h.A == 0))
        return m


class MulSPProof(wiring.Component):
    """Serial-parallel multiplier: ``residual == A*y - 2**(y_bits+1) B`` after every step
    (``A*y`` the Horner value of the ``x`` digits times ``y``, ``B`` of the output digits), ``|residual| <= 3/4``,
    output digits in {-1, 0, 1}; ``y`` is any value held for the whole run."""

    def __init__(self, *, y_bits, acc_bits):
        self.y_bits, self.acc_bits = y_bits, acc_bits
        super().__init__({"clear": In(1), "x_valid": In(1), "x": In(signed(2)),
                          "y": In(signed(y_bits))})

    def elaborate(self, platform):
        m = Module()
        yb, bits = self.y_bits, self.acc_bits
        m.submodules.dut = dut = OnlineMultiplierSP(y_bits=yb)
        m.d.comb += [dut.clear.eq(self.clear), dut.x_valid.eq(self.x_valid),
                     dut.x.eq(self.x), dut.y.eq(self.y)]
        _legal_digit(m, self.x)
        m.d.comb += Assume(~ResetSignal())
        y_last, started = Signal(signed(yb)), Signal()
        m.d.sync += [y_last.eq(self.y), started.eq(1)]
        m.d.comb += Assume(~started | (self.y == y_last))
        z = dut.z.as_value()
        # A*y accumulated in Horner form (x*y is a select: keeps the SMT problem linear)
        xy = Mux(self.x == 1, self.y, Mux(self.x == -1, -self.y, 0))
        h = _Horner(m, bits, self.clear, self.x_valid, xy, dut.z_valid, z)
        m.d.comb += Assert(z != -2)
        m.d.comb += Assert(_trunc(dut.residual, bits) == _trunc(h.A - (h.B_now << (yb + 1)), bits))
        bound = 3 << (yb - 1)
        m.d.comb += Assert((dut.residual <= bound) & (dut.residual >= -bound))
        return m


def _times(value, digit):
    return Mux(digit == 1, value, Mux(digit == -1, -value, 0))


class MulSSProof(wiring.Component):
    """Serial-serial multiplier with ``digits = n``: the operands so far ``X[k]``, ``Y[k]``
    are rebuilt in the wrapper with carry-propagate adds (``Xs += x_k 2**(n-k)``), and
    ``C = 2 C + Xs_old y_k + Ys_new x_k`` is ``2**(n+3) 2**j X[j] Y[j]``; then after every
    step ``residual == C - 2**(n+3) B`` (``B`` Horner of the outputs), ``|residual| <=
    49/64``, output digits in {-1, 0, 1}; digits after the ``n``-th are ignored."""

    def __init__(self, *, digits, acc_bits):
        self.digits, self.acc_bits = digits, acc_bits
        super().__init__({"clear": In(1), "x_valid": In(1), "x": In(signed(2)), "y": In(signed(2))})

    def elaborate(self, platform):
        m = Module()
        n, bits = self.digits, self.acc_bits
        m.submodules.dut = dut = OnlineMultiplierSS(digits=n)
        m.d.comb += [dut.clear.eq(self.clear), dut.x_valid.eq(self.x_valid),
                     dut.x.eq(self.x), dut.y.eq(self.y)]
        _legal_digit(m, self.x)
        _legal_digit(m, self.y)
        m.d.comb += Assume(~ResetSignal())
        mask = Signal(range(1 << n), init=1 << (n - 1))
        xs, ys = Signal(signed(n + 2)), Signal(signed(n + 2))
        c = Signal(signed(bits))
        base_mask = Mux(self.clear, 1 << (n - 1), mask)
        base_xs, base_ys, base_c = (Mux(self.clear, 0, r) for r in (xs, ys, c))
        active = base_mask != 0
        x_eff, y_eff = Mux(active, self.x, 0), Mux(active, self.y, 0)
        new_xs = base_xs + _times(base_mask, x_eff)
        new_ys = base_ys + _times(base_mask, y_eff)
        with m.If(self.x_valid):
            m.d.sync += [mask.eq(base_mask >> 1), xs.eq(new_xs), ys.eq(new_ys),
                         c.eq(2 * base_c + _times(base_xs, y_eff) + _times(new_ys, x_eff))]
        with m.Elif(self.clear):
            m.d.sync += [mask.eq(1 << (n - 1)), xs.eq(0), ys.eq(0), c.eq(0)]
        z = dut.z.as_value()
        h = _Horner(m, bits, self.clear, self.x_valid, 0, dut.z_valid, z)
        m.d.comb += Assert(z != -2)
        m.d.comb += Assert(_trunc(dut.residual, bits) == _trunc(c - (h.B_now << (n + 3)), bits))
        bound = 49 << n >> 3   # 49/64 in units of 2**-(n+3)
        m.d.comb += Assert((dut.residual <= bound) & (dut.residual >= -bound))
        return m


def test_otf_equals_horner_value_forever():
    # k-induction: q/qm equal the carry-propagate Horner value (mod 2**8) in every cycle
    _prove(OtfProof(width=8), name="otf_prove_w8", depth=4, mode="prove")


def test_otf_exact_value_bmc():
    # every stream of up to 12 digits with idles/clears: q is the exact value while it fits
    _prove(OtfProof(width=6, exact_bits=20), name="otf_exact_bmc_w6", depth=14, mode="bmc")


def test_online_adder_value_preservation_forever():
    _prove(AdderProof(acc_bits=12), name="adder_prove", depth=6, mode="prove")


def test_online_adder_value_exact_bmc():
    # accumulators wide enough never to wrap within the depth: the identity is exact
    _prove(AdderProof(acc_bits=24), name="adder_exact_bmc", depth=16, mode="bmc")


def test_mul_sp_residual_bmc():
    _prove(MulSPProof(y_bits=4, acc_bits=20), name="mul_sp_bmc", depth=12, mode="bmc")


def test_mul_ss_residual_bmc():
    # n = 2 digits per operand: 2n + 3 = 7 steps give the full product; depth 9 leaves room
    # for a clear and idles
    _prove(MulSSProof(digits=2, acc_bits=16), name="mul_ss_bmc_n2", depth=9, mode="bmc")


@pytest.mark.slow
def test_mul_ss_residual_bmc_n3():
    # n = 3 reaches the 49/64 residual bound; ~80 s
    _prove(MulSSProof(digits=3, acc_bits=20), name="mul_ss_bmc_n3", depth=12, mode="bmc")


def test_failing_property_is_reported():
    class Bad(wiring.Component):
        a: In(4)

        def elaborate(self, platform):
            m = Module()
            r = Signal(4)
            m.d.sync += r.eq(self.a)
            m.d.comb += Assert(r != 9)
            return m
    with pytest.raises(formal.FormalError, match="logfile") as err:
        formal.prove(Bad(), name="must_fail", depth=3)
    assert err.value.log.exists()


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        formal.prove("module top(); endmodule", name="x", depth=1, mode="cover")
    with pytest.raises(ValueError, match="depth"):
        formal.prove("module top(); endmodule", name="x", depth=0)
    with pytest.raises(ValueError, match="name"):
        formal.prove("module top(); endmodule", name="a b", depth=1)



def test_digit_signals_convert_to_verilog():
    """hdl/arith/digit.py masks Digit.NEG to its two's-complement bits in RTLIL attributes
    (Amaranth 0.5 raises there); values that fit convert as before, others still raise."""
    from amaranth.back import rtlil
    from msdf_unet.hdl.arith.otf import OnTheFlyConverter
    assert rtlil.to_binary(-1, 2) == "11" and rtlil.to_binary(2, 2) == "10"
    with pytest.raises(ValueError):
        rtlil.to_binary(4, 2)
    assert "enum_value_11" in formal.to_rtlil(OnTheFlyConverter(width=8))
