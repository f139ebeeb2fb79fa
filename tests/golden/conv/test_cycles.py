"""golden/conv/cycles.py: the PE stop rule it models agrees with exact arithmetic (an
output stops before its last plane only when its sum is negative, and every negative
output's stop is no later than its last plane); FULL and TRUNCATE plane counts; the RTL
comparison itself is in sim/conv/test_engine.py (MSDF_TB_CYCLES)."""
import numpy as np

from msdf_unet.golden.arith import mma
from msdf_unet.golden.conv.cycles import PYNQ_Z2, TESTBENCH, conv_planes
from msdf_unet.spec.engine import Policy


def _layer(rng, cin=3, cout=4, k=3, nb=2):
    w = rng.integers(-127, 128, (cout, cin, k, k))
    g, _ = mma.bias_range(nb, 8, True)
    bw, bx = mma.fold_bias_array(rng.integers(-g, g + 1, cout), nb, 8, signed_acts=True)
    return w, np.asarray(bw), np.asarray(bx)


def test_end_planes_are_exact():
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (3, 6, 5))
    w, bw, bx = _layer(rng)
    planes = conv_planes(x, w, bw, bx, Policy.RELU_END)
    full = conv_planes(x, w, bw, bx, Policy.FULL)
    assert (full == 8).all()
    # exact sums, independently
    xp = np.pad(x, ((0, 0), (1, 1), (1, 1)))
    S = np.zeros(planes.shape, np.int64)
    for o in range(w.shape[0]):
        for yy in range(6):
            for xx in range(5):
                S[o, yy, xx] = (xp[:, yy:yy + 3, xx:xx + 3] * w[o]).sum() + (bw[o] * bx[o]).sum()
    assert ((planes < 8) <= (S < 0)).all()          # a stop means a negative sum
    assert (planes[S < 0] >= 1).all() and (planes >= 1).all()
    assert (planes < 8).any()                        # and stops happen
    assert (conv_planes(x, w, bw, bx, Policy.TRUNCATE, 5) == 5).all()


def test_memory_models():
    assert PYNQ_Z2.read_latency > TESTBENCH.read_latency
