"""What every PE kind of the engine derives from the layer's settings, and the value it
returns for an output from its exact prefix (``hdl/conv/pe.py`` the plane PE,
``hdl/conv/pe_dsp.py`` the bit-parallel PE).

``golden/hwexact.py`` defines the values; :mod:`msdf_unet.golden.arith.mma` proves the
TRUNCATE closed form.
"""
from __future__ import annotations

from types import SimpleNamespace

from amaranth import Cat, Const, Mux, Signal, signed

from ...spec.engine import ACT_BITS, Policy

__all__ = ["layer_constants", "policy_value", "CONSTANT_LEVELS"]

#: register levels from ``cfg`` to the last constant (:func:`layer_constants`)
CONSTANT_LEVELS = 4


def layer_constants(m, cfg, acc_bits: int) -> SimpleNamespace:
    """The layer's constants, registered from ``cfg`` (``pe_config_layout``: policy, digits
    ``p``, online delay ``F``; ``T = B + F``; ``p`` outside ``[1, T]`` runs as ``T``).

    ``cfg`` is sampled every cycle (level 1, ``c1``); what the stages need is derived over
    further register levels, so nothing combinational runs from ``cfg`` into a datapath.
    A PE reads each level no earlier than it is ready for the layer's first beat (the
    ``cfg`` contract in :mod:`.pe`):

    * level 1: ``c1`` (a copy of ``cfg``);
    * level 2: ``relu``, ``sign``, ``trunc`` (the policy one-hot), ``tmask`` (bit ``t``:
      TRUNCATE stops after plane ``t``), ``T``, ``p``, ``F``;
    * level 3: ``sh``, ``ls``, ``term_t`` (TRUNCATE's terminated flag ``p < T``);
    * level 4: ``half`` = ``2**(sh-1)`` (0 when ``sh = 0``), ``keep`` = ``~(2**sh - 1)``.

    TRUNCATE: ``Z_p = floor((A' + 2**(F-1)) / 2**F) * 2**(T-p)``, ``A' = A_{p-1}`` (``p <=
    B``) or ``A_{B-1} * 2**(p-B)``; for ``p > B`` that is ``A`` rounded (half up) to a
    multiple of ``2**(T-p)``. Both are ``((A + half) & keep) << ls`` with ``sh = F``,
    ``ls = B - p`` (``p <= B``) or ``sh = T - p``, ``ls = 0`` (``p > B``).
    """
    B = ACT_BITS
    k = SimpleNamespace()
    k.c1 = c1 = Signal(cfg.shape(), name="cfg1")
    m.d.sync += c1.eq(cfg)
    k.relu, k.sign, k.trunc = Signal(name="k_relu"), Signal(name="k_sign"), Signal(name="k_trunc")
    k.tmask = Signal(B, name="k_tmask")
    k.T, k.p, k.F = Signal(6, name="k_T"), Signal(6, name="k_p"), Signal(5, name="k_F")
    m.d.sync += [k.relu.eq(c1.policy == Policy.RELU_END), k.sign.eq(c1.policy == Policy.SIGN_ONLY),
                 k.trunc.eq(c1.policy == Policy.TRUNCATE),
                 k.tmask.eq(Cat(*[c1.digits == t + 1 for t in range(B)])),
                 k.T.eq(B + c1.online_delay), k.F.eq(c1.online_delay),
                 k.p.eq(Mux((c1.digits >= 1) & (c1.digits <= B + c1.online_delay),
                            c1.digits, B + c1.online_delay))]
    k.sh, k.ls, k.term_t = Signal(6, name="k_sh"), Signal(3, name="k_ls"), Signal(name="k_term_t")
    m.d.sync += [k.sh.eq(Mux(k.p <= B, k.F, k.T - k.p)), k.ls.eq(Mux(k.p <= B, B - k.p, 0)),
                 k.term_t.eq(k.p < k.T)]
    k.half, k.keep = Signal(acc_bits + 1, name="k_half"), Signal(acc_bits + 1, name="k_keep")
    m.d.sync += [k.half.eq(Mux(k.sh == 0, 0, Const(1, acc_bits + 1) << (k.sh - 1)[:6])),
                 k.keep.eq(Const(-1, signed(acc_bits + 1)).as_unsigned() << k.sh)]
    return k


def policy_value(m, k, A, acc_bits: int):
    """``(value, terminated)`` of an output (combinational in ``m``) from its exact prefix
    ``A`` and the layer's constants ``k`` (:func:`layer_constants`, level 4).

    ``A`` is the whole sum ``S`` (FULL, RELU_END, SIGN_ONLY), or for TRUNCATE with budget
    ``p``: ``A_{p-1}`` (the top ``p`` activation planes) when ``p <= B``, ``S`` when
    ``p > B``. FULL: ``A``; RELU_END: ``max(A, 0)``; SIGN_ONLY: ``sign(A)``; TRUNCATE:
    ``((A + half) & keep) << ls``. terminated (what hwexact counts): RELU_END and
    ``A < 0``, SIGN_ONLY and ``A != 0``, TRUNCATE and ``p < T``.
    """
    rounded = Signal(acc_bits + 1)
    m.d.comb += rounded.eq((A.as_unsigned() + k.half)[:acc_bits + 1] & k.keep)
    value = Signal(signed(acc_bits))
    with m.If(k.relu):
        m.d.comb += value.eq(Mux(A < 0, 0, A))
    with m.Elif(k.sign):
        m.d.comb += value.eq(Mux(A < 0, -1, Mux(A == 0, 0, 1)))
    with m.Elif(k.trunc):
        m.d.comb += value.eq(rounded << k.ls)
    with m.Else():
        m.d.comb += value.eq(A)
    term = Signal()
    m.d.comb += term.eq((k.relu & (A < 0)) | (k.sign & (A != 0)) | (k.trunc & k.term_t))
    return value, term
