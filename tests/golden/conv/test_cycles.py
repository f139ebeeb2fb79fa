"""golden/conv/cycles.py: the PE stop rule it models agrees with exact arithmetic (an
output stops before its last plane only when its sum is negative, and every negative
output's stop is no later than its last plane); FULL and TRUNCATE plane counts; the RTL
comparison itself is in sim/conv/test_engine.py (MSDF_TB_CYCLES)."""
import numpy as np

from msdf_unet.golden.arith import mma
from msdf_unet.golden.conv import cycles as C
from msdf_unet.golden.conv.cycles import (PYNQ_Z2, SLOTS, STOP_LATENCY, TESTBENCH, conv_planes,
                                          feed_cycles)
from msdf_unet.spec import engine as E
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


def _feeder_reference(need, nch, max_planes=8, slots=SLOTS, latency=STOP_LATENCY, stops=True):
    """Cycle by cycle, the feeder's rules of hdl/conv/conv_control.py (round-robin turns
    of one plane per slot, a stop visible ``latency`` cycles after the plane's last beat,
    a stop inside a turn starting the next output at once): cycles of one pixel."""
    n = len(need)
    busy, out, t, stop = [False] * slots, [0] * slots, [0] * slots, [None] * slots
    mid, cur, fc, rr, nx, cyc = False, 0, 0, 0, 0, 0
    while True:
        stop_now = [busy[s] and stop[s] == cyc for s in range(slots)]
        live = [busy[s] and not stop_now[s] for s in range(slots)]
        avail = nx < n
        have, pick = False, cur
        if mid:
            have = live[cur] or avail
        else:
            for i in range(slots):
                if live[(rr + i) % slots] or avail:
                    pick, have = (rr + i) % slots, True
                    break
        nxt_busy = live[:]
        if mid and not have:
            mid, fc = False, 0
        if have:
            c = fc
            if not live[pick]:
                out[pick], t[pick], stop[pick], nx, c = nx, 0, None, nx + 1, 0
            last_chunk = c == nch - 1
            ends = last_chunk and t[pick] == max_planes - 1
            nxt_busy[pick] = not ends
            if last_chunk:
                if stops and need[out[pick]] - 1 == t[pick] and need[out[pick]] < max_planes:
                    stop[pick] = cyc + latency
                mid, fc, rr, t[pick] = False, 0, (pick + 1) % slots, t[pick] + 1
            else:
                mid, cur, fc = True, pick, c + 1
        busy = nxt_busy
        if not avail and not any(busy):         # (avail as the cycle began)
            return cyc + 1
        cyc += 1


def test_feed_cycles_follow_the_feeder_schedule():
    rng = np.random.default_rng(1)
    for _ in range(150):
        n, nch = int(rng.integers(1, 12)), int(rng.integers(1, 5))
        need = rng.choice([1, 2, 3, 5, 6, 7, 8, 8, 8], size=(n, 4))
        got = feed_cycles(need, nch)
        assert [int(v) for v in got] == [_feeder_reference(list(need[:, p]), nch) for p in range(4)]
    # no stops possible (FULL, TRUNCATE): every beat, back to back
    assert (feed_cycles(np.full((5, 3), 8), 2, stops=False) == 80).all()
    for n, nch, p in ((5, 2, 8), (3, 1, 1), (6, 1, 2), (2, 3, 1)):
        assert feed_cycles(np.full((n, 1), p), nch, p, stops=False)[0] == \
            _feeder_reference([p] * n, nch, p, stops=False)
    # one chunk, stops while all slots are busy: they cost nothing (cycles = planes consumed)
    assert STOP_LATENCY <= SLOTS
    need = np.concatenate([rng.integers(1, 8, (SLOTS, 6)), np.full((SLOTS, 6), 8)])
    assert (feed_cycles(need, 1) == need.sum(0)).all()


def _parse_walk(fan, nb, lanes):
    """The parser's cycles on one record, walked byte by byte from the record layout (FAST:
    a group of gcd(lanes, 8) weight bytes while one is left, BYTE: one byte, WORD: 4 bytes
    from the first int32 field on)."""
    import math
    lay, rec = E.channel_record_layout(fan, 1, nb)
    g = math.gcd(lanes, 8)
    first_word = min(off for off, dt, _ in lay.values() if dt == "int32")
    pos = cycles = 0
    while pos < rec:
        if pos >= first_word:
            step = 4
        elif pos + g <= fan and pos % g == 0:
            step = g
        else:
            step = 1
        pos += step
        cycles += 1
    assert pos == rec
    return cycles


def test_record_parse_cycles():
    for lanes in (9, 12, 18, 72):
        for fan in (1, 2, 3, 7, 8, 9, 12, 16, 27, 45, 72, 81, 1158, 3456):
            for nb in range(0, 15):
                assert C.record_parse_cycles(fan, nb, lanes) == _parse_walk(fan, nb, lanes), (fan, nb, lanes)
    # 72 lanes, 8 bytes per cycle: fan 144 + 3 bias lanes (168-byte record) in 30 cycles
    assert C.record_parse_cycles(144, 3, 72) == 144 // 8 + 6 + 2 + 4
