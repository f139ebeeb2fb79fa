"""The convolution engine's PE (``hdl/conv/pe.py:PlanePE``) against the MSDF v2 golden model,
through the golden models only (no RTL): ``golden/conv/cycles.conv_planes`` (the planes the
engine PE consumes per output, its stop rule restated) and ``golden/hwexact``'s values
(``mma.evaluate_planes``: what the PE returns) against :mod:`msdf_unet.golden.arith.msdf2`
(``evaluate_planes``, ``lite_accumulate``) on the same outputs, fan-in in one chunk.

What holds (asserted):

* values: identical for every policy (FULL ``S``, RELU_END ``max(S, 0)``, SIGN_ONLY
  ``sign(S)``, TRUNCATE ``Z_p``);
* FULL: both consume ``B`` planes;
* RELU_END: the ``wpos`` form of the engine's stop rule, ``A_t 2**r + Wp (2**r - 1) < 0``,
  is msdf-v2's rule ``A_t < floor(Wp 2**t / 2**(B-1)) - Wp`` applied to the bound ``Wp - 1``
  (for ``Wp >= 1``; both are ``A_t < 0`` for ``Wp = 0``; proved exhaustively below). The
  engine's PE bounds the rest tighter still (only the positive weights of lanes whose
  remaining bits are not all zero, docs/engine.md "END"), so its stop planes are never later
  than msdf-v2's with ``wpos = max(Wp - 1, 0)``, and some are earlier;
* SIGN_ONLY: the engine also stops on a positive lower bound (``wneg``), msdf-v2 only on
  a negative upper one: never later on any output;
* TRUNCATE ``p``: the engine stops after plane ``p - 1`` (``min(p, B)`` planes), msdf-v2
  masks the planes after it and runs ``B``.
"""
import numpy as np
import pytest

from msdf_unet.golden.arith import mma, msdf2
from msdf_unet.golden.arith.mma import Policy
from msdf_unet.golden.arith.mma_operands import weight_bounds
from msdf_unet.golden.conv.cycles import conv_planes
from msdf_unet.spec import engine as E

B = E.ACT_BITS


def _layer(rng, cin, cout, k, h, w, nb, relu_input):
    lo = 0 if relu_input else -128
    x = rng.integers(lo, 128, (cin, h, w))
    x[:, ::3, ::2] //= 16                                    # small codes: early stops
    wt = rng.integers(-127, 128, (cout, cin, k, k))
    wt[:, :, 0, 0] *= rng.random((cout, cin)) < 0.5           # some zero weights
    bias_w = rng.integers(-127, 128, (cout, nb))
    bias_x = rng.integers(-128, 128, (cout, nb))
    return x, wt, bias_w, bias_x


def _plane_sums(x, wt, bias_w, bias_x):
    """``P [B, cout, h*w]`` over every lane of each output (fan-in + bias lanes) and the
    lanes' weights ``[cout, L]``, independently of conv_planes."""
    cin, h, w = x.shape
    cout, _, k, _ = wt.shape
    pad = k // 2
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    cols = np.stack([xp[:, ky:ky + h, kx:kx + w] for ky in range(k) for kx in range(k)], axis=1)
    cols = cols.reshape(cin * k * k, h * w).T                                # [hw, fan]
    lanes_x = np.concatenate([np.broadcast_to(cols[None], (cout,) + cols.shape),
                              np.broadcast_to(bias_x[:, None, :], (cout, h * w, bias_x.shape[1]))], -1)
    lanes_w = np.concatenate([wt.reshape(cout, -1), bias_w], axis=1)          # [cout, L]
    P = mma.plane_sums(lanes_x, lanes_w[:, None, :], B, True)                # [B, cout, hw]
    return P, lanes_w


def _planes(stop_plane):
    return np.where(stop_plane >= 0, stop_plane + 1, B)


@pytest.mark.parametrize("cin,k,nb,relu_input", [(1, 3, 1, False), (4, 3, 1, True), (16, 3, 2, True),
                                                 (8, 1, 1, False)])
def test_engine_pe_matches_msdf2(cin, k, nb, relu_input):
    rng = np.random.default_rng(cin * 10 + k + nb)
    x, wt, bias_w, bias_x = _layer(rng, cin, 6, k, 7, 9, nb, relu_input)
    P, lanes_w = _plane_sums(x, wt, bias_w, bias_x)
    L = lanes_w.shape[1]
    T = mma.stream_digits(L, B)
    wpos = weight_bounds(lanes_w)[0][:, None]                 # the channel record's bound
    S = np.zeros(P.shape[1:], np.int64)
    for t in range(B):
        S = 2 * S + P[t]
    for pol in Policy:
        for p in ([1, 3, B, B + 2, T - 1, T] if pol is Policy.TRUNCATE else [0]):
            engine = conv_planes(x, wt, bias_w, bias_x, int(pol), p).reshape(P.shape[1:])
            values = mma.evaluate_planes(P, L, pol, p or None).values   # hwexact / the PE
            ref = msdf2.evaluate_planes(P, wpos, L, pol, p or None, pipelined=False)
            lite = msdf2.lite_accumulate(P, wpos, L, pol, p or None)
            assert np.array_equal(ref.values, values) and np.array_equal(lite["values"], values)
            if pol is Policy.FULL:
                assert np.all(engine == B) and np.all(ref.digits_used == B)
            elif pol is Policy.TRUNCATE:
                assert np.all(engine == min(p, B)) and np.all(ref.digits_used == B)
            else:
                tight = msdf2.evaluate_planes(P, np.maximum(wpos - 1, 0), L, pol, pipelined=False)
                assert np.all(engine <= _planes(ref.stop_plane))
                assert np.all(engine <= _planes(tight.stop_plane))
                if pol is Policy.RELU_END:
                    # a stop is only ever taken on a negative pre-activation
                    assert np.all(S[engine < B] < 0)
    # the data exercises the stop rule
    relu = conv_planes(x, wt, bias_w, bias_x, int(Policy.RELU_END)).reshape(P.shape[1:])
    assert (relu < B).any()


def test_engine_stop_rule_is_msdf2_rule_with_bound_minus_one():
    """Exhaustively over small prefixes and bounds: ``A 2**r + Wp (2**r - 1) < 0`` (the
    engine) iff ``A < floor((Wp - 1) 2**t / 2**(B-1)) - (Wp - 1)`` (msdf-v2 with
    ``wpos = Wp - 1``), ``r = B - 1 - t``, for ``Wp >= 1``."""
    for t in range(B - 1):
        r = B - 1 - t
        for Wp in range(1, 300):
            A = np.arange(-2 * Wp - 3, 3)
            engine = A * 2 ** r + Wp * (2 ** r - 1) < 0
            v = Wp - 1
            msdf = A < ((v << t) >> (B - 1)) - v
            assert np.array_equal(engine, msdf), (t, Wp)
