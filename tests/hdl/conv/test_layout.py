"""The hardware twin of the channel-record layout against ``spec.engine.channel_record_layout``,
including the offsets continued from a registered field offset (``start=``)."""
import itertools

import pytest

from msdf_unet.hdl.conv.layout import record_offsets
from msdf_unet.spec.engine import channel_record_layout


@pytest.mark.parametrize("cin,kernel,nb", list(itertools.product((1, 2, 3, 7, 64), (1, 3), (0, 1, 5, 8))))
def test_record_offsets(cin, kernel, nb):
    lay, rec = channel_record_layout(cin, kernel, nb)
    offs, r = record_offsets(cin * kernel * kernel, nb)
    assert r == rec and all(offs[k][0] == lay[k][0] for k in lay)
    tail, r2 = record_offsets(None, None, start=("mult", offs["mult"][0]))
    assert r2 == rec and set(tail) == {"mult", "shift", "wpos", "wneg"}
    assert all(tail[k][0] == lay[k][0] for k in tail)


def test_record_offsets_start_refuses():
    with pytest.raises(ValueError):
        record_offsets(None, None, start=("weight", 0))
    with pytest.raises(ValueError):
        record_offsets(None, None, start=("nope", 0))
