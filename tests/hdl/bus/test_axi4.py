"""The burst rule of the engine's AXI4 master, against brute force."""
import pytest

from msdf_unet.hdl.bus.axi4 import AXI4Signature, BOUNDARY_BYTES, MAX_BURST_BEATS, burst_split


@pytest.mark.parametrize("addr", [0, 8, 4096 - 8, 4096 - 128, 4096 - 136, 12288 + 64])
@pytest.mark.parametrize("beats", [1, 15, 16, 17, 33, 600])
def test_burst_split_covers_the_transfer_legally(addr, beats):
    bursts = burst_split(addr, beats)
    cur = addr
    for a, n in bursts:
        assert a == cur and 1 <= n <= MAX_BURST_BEATS
        assert a // BOUNDARY_BYTES == (a + 8 * n - 1) // BOUNDARY_BYTES
        # greedy: only a boundary or the end cuts a burst short
        assert n == MAX_BURST_BEATS or (a + 8 * n) % BOUNDARY_BYTES == 0 or a + 8 * n == addr + 8 * beats
        cur += 8 * n
    assert cur == addr + 8 * beats


@pytest.mark.parametrize("bad", [(3, 1), (-8, 1), (0, 0)])
def test_burst_split_refuses(bad):
    with pytest.raises(ValueError):
        burst_split(*bad)


def test_signature_refuses_bad_widths():
    with pytest.raises(ValueError, match="data_width"):
        AXI4Signature(data_width=48)
