"""On a PYNQ-Z2 with the overlay from `make bitstream`: the driver against the real PL.

Run on the board with ``MSDF_BITFILE=/path/to/msdf_accel.bit pytest -m board tests/host``.
"""
import os
import random

import pytest

from msdf_unet.golden.arith import mma as golden
from msdf_unet.host.driver import DotProductDriver


@pytest.mark.board
def test_driver_on_the_board_matches_golden():
    bitfile = os.environ.get("MSDF_BITFILE")
    try:
        import pynq  # noqa: F401
    except ImportError:
        pytest.skip("needs a PYNQ board (the pynq package)")
    if not bitfile:
        pytest.skip("set MSDF_BITFILE to the overlay's .bit (its .hwh beside it)")
    from msdf_unet.host.mmio import PynqMMIO

    driver = DotProductDriver(PynqMMIO(bitfile))
    rng = random.Random(0)
    guaranteed, _ = golden.bias_range(driver.bias_lanes, driver.act_bits, driver.signed_acts)
    lo, hi = golden.act_range(driver.act_bits, driver.signed_acts)
    for policy in ("full", "relu_end", "sign_only") * 100:
        x = [rng.randint(lo, hi) for _ in range(driver.data_lanes)]
        w = [rng.randint(-127, 127) for _ in range(driver.data_lanes)]
        b = rng.randint(-guaranteed, guaranteed)
        bw, bx = golden.fold_bias(b, driver.bias_lanes, driver.act_bits, signed_acts=driver.signed_acts)
        gold = golden.transaction(x + bx, w + bw, policy.upper(), act_bits=driver.act_bits,
                                  signed_acts=driver.signed_acts)
        got = driver.dot(x, w, b, policy=policy)
        assert (got.value, got.digits_used, got.terminated) == \
            (gold.value, gold.digits_used, bool(gold.terminated))
