"""The value an engine PE returns for an output, from its exact prefix, per policy.

Shared by every PE kind of the engine (:mod:`.pe_dsp`; the plane PE computes the same in
its last stage): ``golden/hwexact.py`` defines the values, :mod:`msdf_unet.golden.arith.mma`
proves the TRUNCATE closed form.
"""
from __future__ import annotations

from amaranth import Const, Mux, Signal, signed

from ...spec.engine import ACT_BITS, Policy

__all__ = ["policy_value"]


def policy_value(m, cfg, A, acc_bits: int):
    """``(value, terminated)`` of an output (combinational, in module ``m``).

    ``A`` is the output's exact prefix: the whole sum ``S`` (FULL, RELU_END, SIGN_ONLY),
    or for TRUNCATE with budget ``p``: ``A_{p-1}`` (the top ``p`` activation planes) when
    ``p <= B``, ``S`` when ``p > B``. ``cfg`` is the PE's ``pe_config_layout`` (policy,
    digits ``p``, online delay ``F``; ``T = B + F``; ``p`` outside ``[1, T]`` runs as ``T``).

    * FULL: ``A``; RELU_END: ``max(A, 0)``; SIGN_ONLY: ``sign(A)``;
    * TRUNCATE: the MMA's ``Z_p * 2**(T-p)`` with ``Z_p = floor((A' + 2**(F-1)) / 2**F)``,
      ``A' = A_{p-1}`` (``p <= B``) or ``S * 2**(p-B)``: for ``p > B`` that is ``S``
      rounded half up to a multiple of ``2**(T-p)``.
    * terminated (what hwexact counts): RELU_END and ``A < 0``, SIGN_ONLY and ``A != 0``,
      TRUNCATE and ``p < T``.
    """
    B = ACT_BITS
    T, p = Signal(6), Signal(6)
    m.d.comb += T.eq(B + cfg.online_delay)
    with m.If((cfg.digits >= 1) & (cfg.digits <= T)):
        m.d.comb += p.eq(cfg.digits)
    with m.Else():
        m.d.comb += p.eq(T)
    sh, up = Signal(6), Signal(6)
    m.d.comb += [sh.eq(Mux(p <= B, cfg.online_delay, T - p)), up.eq(T - p)]
    half = Signal(signed(acc_bits + 1))
    m.d.comb += half.eq(Mux(sh == 0, 0, Const(1, 2) << (sh - 1)[:6]))
    rounded = Signal(signed(acc_bits + 1))
    m.d.comb += rounded.eq((A + half) >> sh)
    value = Signal(signed(acc_bits))
    term = Signal()
    with m.Switch(cfg.policy):
        with m.Case(Policy.RELU_END):
            m.d.comb += [value.eq(Mux(A < 0, 0, A)), term.eq(A < 0)]
        with m.Case(Policy.SIGN_ONLY):
            m.d.comb += [value.eq(Mux(A < 0, -1, Mux(A > 0, 1, 0))), term.eq(A != 0)]
        with m.Case(Policy.TRUNCATE):
            m.d.comb += [value.eq(rounded << up), term.eq(p < T)]
        with m.Default():
            m.d.comb += value.eq(A)
    return value, term
