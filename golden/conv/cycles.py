"""Cycle model of the convolution engine RTL (``hdl/conv/``): per-command and total cycles.

It follows the RTL's phases (``hdl/conv/conv_control.py``, ``sequencer.py``,
``pool_control.py``) with a memory model of two numbers, and the data: how many planes
each output's PE consumes under END / SIGN_ONLY depends on the activations, so the model
computes every output's plane sums (as ``golden/hwexact.py`` does) and applies the PE's
stop rule (``hdl/conv/pe.py``: after plane ``t`` stop when ``A_t 2**r + wrest (2**r - 1)``
is negative, ``r = 7 - t``, ``wrest`` the positive weights of the lanes whose bits below
plane ``t`` are not all zero).

Phases of a CONV command (one conv core):

* command overhead: descriptor fetch (8 beats after ``read_latency``), check, status
  record write (4 beats, response after ``write_latency``);
* the cores: core ``j`` of ``kpbs`` computes every output channel of the output rows
  ``[j*qr, min(H, (j+1)*qr))``, ``qr = ceil(H / kpbs)``, on its own buffers; the
  command lasts as long as the slowest core plus the parameter parses the cores wait for
  (:func:`_cores_span`);
* per output-channel group (all channels, each core): parse of the channel records
  (:func:`record_parse_cycles`: ``gcd(lanes, 8)`` weight bytes per cycle, the bias lanes
  one byte per cycle, the 4-byte fields one per cycle);
* per output row of the band: line-buffer fill (``cin`` transfers of ``ceil(W/8)`` beats per new
  input row; the band's first row waits for it, every later row's new input row is
  prefetched while the row before runs: the row lasts as long as the longer of the
  two), then the pixel pipeline: the builder takes ``cin*k`` cycles (+ the plane
  writer's 9-cycle tail) per pixel, the feeder the cycles of its slot schedule
  (:func:`feed_cycles`: the pixel's outputs interleaved over :data:`SLOTS` slots, one
  plane of ``nch`` beats per turn, a stop known ``STOP_LATENCY`` cycles after the
  plane's last beat; ``n * planes * nch`` when no output can stop); two window banks
  overlap build and feed;
  then the PE/requantizer drain and one write transfer per output channel row.

Memory model (:class:`MemoryModel`): ``read_latency`` cycles from AR to the first R beat,
``write_latency`` from the last W beat to B, one beat per cycle otherwise, bursts served
one after the other. The PYNQ-Z2 defaults (16-bit DDR3-1066 behind S_AXI_HP0 at 100 MHz:
about 2.1 GB/s peak = 2.6 beats of 8 bytes per 10 ns cycle, so the port, not the DRAM,
limits a single stream to one beat per cycle; first-beat latency about 25 PL cycles
through the HP port, interconnect and DDR controller, UG585 ch. 5 / Xilinx AR 63447-style
measurements) are :data:`PYNQ_Z2`; the testbench memory is :data:`TESTBENCH`.

``golden/`` never imports ``hdl/``: the few RTL timing constants are restated here and
the tests compare this model with the RTL.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ...spec import engine as E
from ..arith import mma
from ..arith.mma_operands import weight_bounds

__all__ = ["MemoryModel", "PYNQ_Z2", "TESTBENCH", "CommandCycles", "conv_planes", "command_cycles",
           "image_cycles", "feed_cycles", "record_parse_cycles", "STOP_LATENCY", "SLOTS"]

#: cycles from the beat that decides an output's stop to the feeder seeing ``stop``
#: (the feeder's beat register + ``hdl/conv/pe.STOP_LATENCY``: group sums, chunk sum, plane
#: sum, decision register): beats issued meanwhile are spent
STOP_LATENCY = 5
#: outputs the feeder interleaves (``hdl/conv/pe.SLOTS``)
SLOTS = 5
#: PE pipeline (5 stages) + requantizer (8 stages) + output-row write enable after a row's
#: last beat
DRAIN = 15
#: the plane writer's 8 cycles + the bank-full flag after a pixel's last element (a
#: bit-parallel PE's window writer: 1 cycle instead of 8, ``beats_per_chunk``)
BUILD_TAIL = 10
#: the MSDF plane PE's cycles from a beat to its result in the FIFO (``hdl/conv/pe.py``);
#: a bit-parallel PE's DRAIN differs by its own latency (``spec.engine.bit_parallel_pe_latency``)
PLANE_PE_LATENCY = 5


@dataclass(frozen=True)
class MemoryModel:
    """``read_latency``: AR handshake to first R beat; ``write_latency``: last W beat to
    B; ``burst_gap``: idle cycles between consecutive bursts of the memory."""

    read_latency: int = 2
    write_latency: int = 2
    burst_gap: int = 1


#: PYNQ-Z2 DDR3 behind S_AXI_HP0 at 100 MHz (see the module docstring)
PYNQ_Z2 = MemoryModel(read_latency=25, write_latency=20, burst_gap=0)
#: cocotbext-axi's AxiRam with no added latency and no pauses (what the cycle test uses)
TESTBENCH = MemoryModel(read_latency=2, write_latency=2, burst_gap=1)


@dataclass
class CommandCycles:
    """Cycles of one command and where they go."""

    index: int
    op: str
    cycles: int
    compute: int = 0        # feeder beats (PE busy)
    memory: int = 0         # parameter, line and output transfers
    control: int = 0        # fetch, check, status, pipeline fill/drain


def conv_planes(x: np.ndarray, w: np.ndarray, bias_w: np.ndarray, bias_x: np.ndarray,
                policy: int, digits: int = 0) -> np.ndarray:
    """Planes the PE consumes for every output ``[cout, H, W]`` of a conv on INT8 codes
    ``x [cin, H, W]`` with weights ``w [cout, cin, k, k]`` (zero padding ``k // 2``)."""
    cin, h, wd = x.shape
    cout, _, k, _ = w.shape
    B = E.ACT_BITS
    full = np.full((cout, h * wd), B, np.int64)
    if policy == E.Policy.FULL:
        return full.reshape(cout, h, wd)
    if policy == E.Policy.TRUNCATE:
        return np.full((cout, h, wd), min(digits, B), np.int64)
    # every plane sum and every bound term is a convolution of a 0/1 image with the
    # weights: float32 is exact (|sums| <= 127 * fan-in < 2**24, asserted)
    assert cin * k * k * E.MAX_WEIGHT < 2 ** 24
    u = torch.from_numpy(np.asarray(x, np.int64) & 0xFF)               # codes as unsigned
    wm = np.asarray(w, np.int64)
    wt = torch.from_numpy(wm.astype(np.float32))
    wplus = torch.from_numpy(np.maximum(wm, 0).astype(np.float32))
    shifts = torch.arange(B - 1, -1, -1)[:, None, None, None]         # plane t: bit 7 - t
    bitp = ((u[None] >> shifts) & 1).to(torch.float32)                   # [B, cin, h, w]
    bitp[0] = -bitp[0]                                                   # the sign plane
    lows = ((1 << (B - 1 - torch.arange(B))) - 1)[:, None, None, None]
    restp = ((u[None] & lows) != 0).to(torch.float32)                     # [B, cin, h, w]
    P = F.conv2d(bitp, wt, padding=k // 2).reshape(B, cout, h * wd).to(torch.int64).numpy()
    wrest = F.conv2d(restp, wplus, padding=k // 2).reshape(B, cout, h * wd).to(torch.int64).numpy()
    bw = np.asarray(bias_w, np.int64)
    allw = np.concatenate([wm.reshape(cout, -1), bw], axis=1)
    if bw.shape[1]:
        bd = mma.plane_digits(bias_x, B, True).astype(np.int64)      # [B, cout, nb]
        P += (bd * bw[None]).sum(-1)[:, :, None]
        bu = np.asarray(bias_x, np.int64) & 0xFF
        low_b = (1 << (B - 1 - np.arange(B)))[:, None, None] - 1
        wrest += (np.maximum(bw, 0)[None] * ((bu[None] & low_b) != 0)).sum(-1)[:, :, None]
    _, wneg = (b[:, None] for b in weight_bounds(allw))
    A = np.zeros((cout, h * wd), np.int64)
    planes = full.copy()
    done = np.zeros((cout, h * wd), bool)
    for t in range(B):
        A = 2 * A + P[t]
        r = B - 1 - t
        # positive weights of the lanes whose bits below plane t are not all zero
        stop = A * 2 ** r + wrest[t] * (2 ** r - 1) < 0
        if policy == E.Policy.SIGN_ONLY:
            stop |= A * 2 ** r + wneg * (2 ** r - 1) > 0
        new = stop & ~done
        planes[new] = t + 1
        done |= stop
    return planes.reshape(cout, h, wd)


def feed_cycles(planes: np.ndarray, nch: int, max_planes: int = E.ACT_BITS,
                stops: bool = True) -> np.ndarray:
    """Feeder cycles of each pixel: ``planes [n, P]`` planes each of the pixel's ``n``
    outputs consumes (:func:`conv_planes`), ``nch`` chunks per plane, ``max_planes``
    planes of an output that runs to the end; ``stops``: outputs with fewer planes stop
    on the PE's decision (RELU_END, SIGN_ONLY). Returns ``[P]`` cycles from the pixel's
    first beat to the cycle after it is done (the next pixel's first beat).

    The feeder's schedule (``hdl/conv/conv_control.py``): :data:`SLOTS` slots, one turn
    per plane (``nch`` beats), the next turn to the next slot that has an output or can
    start the next one (round-robin); the decision on a plane whose last beat is issued at
    cycle ``c`` frees the slot at ``c + STOP_LATENCY`` (beats it issued meanwhile are
    spent; a stop inside its turn starts the next output at once); a slot is also free
    after its output's last beat. Simulated turn by turn for all pixels at once."""
    n, P = planes.shape
    if n == 0:
        return np.zeros(P, np.int64)
    if not stops:
        # one-beat outputs: the pixel is done a cycle after its last output started
        return np.full(P, n * max_planes * nch + (max_planes * nch == 1), np.int64)
    S = SLOTS
    inf = np.iinfo(np.int64).max // 4
    need = np.asarray(planes, np.int64)
    idx = np.arange(P)
    now = np.zeros(P, np.int64)
    last = np.full(P, -1, np.int64)          # the latest cycle a slot was freed
    rr = np.zeros(P, np.int64)
    nx = np.zeros(P, np.int64)
    busy = np.zeros((P, S), bool)
    out = np.zeros((P, S), np.int64)
    t = np.zeros((P, S), np.int64)
    stop = np.full((P, S), inf)
    dur = np.zeros(P, np.int64)
    act = np.ones(P, bool)
    while act.any():
        a = np.flatnonzero(act)
        nw = now[a]
        # stops visible by now free their slots
        fr = busy[a] & (stop[a] <= nw[:, None])
        if fr.any():
            last[a] = np.maximum(last[a], np.where(fr, stop[a], -1).max(axis=1))
            busy[a] &= ~fr
            stop[a] = np.where(fr, inf, stop[a])
        avail = nx[a] < n
        cand = busy[a] | avail[:, None]
        fin = ~cand.any(axis=1)
        if fin.any():
            f = a[fin]
            dur[f] = np.maximum(now[f] - 1, last[f]) + 1
            act[f] = False
        a, cand, avail, nw = a[~fin], cand[~fin], avail[~fin], nw[~fin]
        if a.size == 0:
            break
        order = (rr[a][:, None] + np.arange(S)[None]) % S
        first = np.argmax(np.take_along_axis(cand, order, axis=1), axis=1)
        s = order[np.arange(a.size), first]
        fresh = ~busy[a, s]
        # a free slot starts the next output
        f = a[fresh]
        out[f, s[fresh]] = nx[f]
        t[f, s[fresh]] = 0
        busy[f, s[fresh]] = True
        nx[f] += 1
        # a stop inside the turn: spent until then; the slot starts the next output at once
        st = stop[a, s]
        cut = st < nw + nch
        if cut.any():
            c = a[cut]
            sc = s[cut]
            last[c] = np.maximum(last[c], st[cut])
            stop[c, sc] = inf
            more = nx[c] < n
            m1, m0 = c[more], c[~more]
            now[m1] = st[cut][more]
            out[m1, sc[more]] = nx[m1]
            t[m1, sc[more]] = 0
            nx[m1] += 1
            busy[m0, sc[~more]] = False
            now[m0] = st[cut][~more] + 1          # the stop's cycle issues nothing
        # turns that issue a whole plane: not cut, or cut and restarted with a new output
        issue = ~cut
        if cut.any():
            cidx = np.flatnonzero(cut)
            issue[cidx] = busy[a[cidx], s[cidx]]
        b = a[issue]
        sb = s[issue]
        now[b] += nch
        rr[b] = (sb + 1) % S
        tb = t[b, sb]
        ob = out[b, sb]
        stops_here = (need[ob, b] - 1 == tb) & (need[ob, b] < max_planes)
        stop[b[stops_here], sb[stops_here]] = now[b[stops_here]] - 1 + STOP_LATENCY
        t[b, sb] = tb + 1
        ended = tb + 1 == max_planes
        busy[b[ended], sb[ended]] = False
        stop[b[ended], sb[ended]] = inf
        last[b[ended]] = np.maximum(last[b[ended]], now[b[ended]] - 1)
    return dur


def record_parse_cycles(fan: int, bias_lanes: int, lanes: int) -> int:
    """Cycles the conv core's parser spends on one channel record of fan-in ``fan`` and
    ``bias_lanes`` bias lanes for a PE of ``lanes`` data lanes (``hdl/conv/conv_control.py``,
    "parameter load"): FAST, ``G = gcd(lanes, 8)`` weight bytes per cycle for the
    ``fan // G`` whole groups; BYTE, one byte per cycle up to the first 4-byte field (the
    ``fan % G`` last weight bytes, the bias lanes, the alignment bytes); WORD, one 4-byte
    field (or the record's padding word) per cycle."""
    lay, rec = E.channel_record_layout(fan, 1, bias_lanes)   # the layout depends on fan only
    g = math.gcd(lanes, 8)
    first_word = min(off for off, dt, _ in lay.values() if dt == "int32")
    fast = fan // g
    return fast + (first_word - g * fast) + (rec - first_word) // 4


def _transfers(n_transfers: int, beats: int, mem: MemoryModel) -> int:
    """Cycles to receive ``n_transfers`` read transfers of ``beats`` beats, issued back to
    back (bursts are served one after the other by the memory)."""
    if n_transfers == 0:
        return 0
    bursts = n_transfers * -(-beats // 16)
    return mem.read_latency + n_transfers * beats + bursts * mem.burst_gap + 2


def command_cycles(d: dict, mem_bytes, config: E.EngineConfig, memory: MemoryModel = TESTBENCH,
                   index: int = 0) -> CommandCycles:
    """Cycles of one decoded, valid command ``d`` on the image ``mem_bytes`` (the input
    tensor and parameters are read from it, as the engine does)."""
    op = E.Op(d["op"])
    overhead = memory.read_latency + 18   # fetch (8 beats), check (6 stages), dispatch, status start
    if op == E.Op.END:
        return CommandCycles(index, op.name, overhead, control=overhead)
    c, h, w = d["cin"], d["height"], d["width"]
    rw_in = -(-w // 8)
    if op in (E.Op.MAXPOOL, E.Op.UPSAMPLE):
        pool = op == E.Op.MAXPOOL
        rows = h // 2 if pool else h
        wout = w // 2 if pool else 2 * w
        rw_out = -(-wout // 8)
        reads = (2 if pool else 1) * (memory.read_latency + rw_in + 2)
        writes = (1 if pool else 2) * (rw_out + 2)
        body = c * rows * (reads + writes + 1)
        mem_c = c * rows * (reads + writes)
        total = overhead + 4 + body + memory.write_latency + 13
        return CommandCycles(index, op.name, total, memory=mem_c, control=total - mem_c)
    # CONV
    from ..conv.model import read_fmap  # the model's tensor reader (same memory rules)
    k = d["kernel"]
    fan = c * k * k
    L = config.arrays[0].lanes
    nch = -(-fan // L)
    cout = d["cout"]
    lay, rec = E.channel_record_layout(c, k, d["bias_lanes"])
    x = read_fmap(mem_bytes, d["in_offset"], c, h, w)
    raw = np.frombuffer(bytes(mem_bytes[d["param_offset"]:d["param_offset"] + cout * rec]), np.uint8)
    recs = raw.reshape(cout, rec)
    wts = recs[:, :fan].view(np.int8).reshape(cout, c, k, k)
    nb = d["bias_lanes"]
    bw = recs[:, lay["bias_w"][0]:lay["bias_w"][0] + nb].view(np.int8)
    bx = recs[:, lay["bias_x"][0]:lay["bias_x"][0] + nb].view(np.int8)
    variant = config.arrays[0].variant
    beats = E.beats_per_chunk(variant)
    if variant in E.BIT_PARALLEL_VARIANTS:
        # whole activations: one beat per chunk of every output, whatever the policy
        planes = np.ones((cout, h, w), np.int64)
        max_planes, may_stop = 1, False
    else:
        planes = conv_planes(x, wts, bw, bx, d["policy"], d["digits"])      # [cout, h, w]
        max_planes = min(d["digits"], E.ACT_BITS) if d["policy"] == E.Policy.TRUNCATE else E.ACT_BITS
        may_stop = d["policy"] in (E.Policy.RELU_END, E.Policy.SIGN_ONLY)
    # the builder's next pixel after a bit-parallel window write: the element stage and the
    # one-cycle write (the plane writer's 8 cycles + 2 for the plane PE; measured on the RTL)
    build_tail = BUILD_TAIL if beats == E.ACT_BITS else beats + 1
    drain = DRAIN + (E.bit_parallel_pe_latency(L + config.max_bias_lanes) - PLANE_PE_LATENCY
                     if variant in E.BIT_PARALLEL_VARIANTS else 0)
    # core j computes every output channel of its band [j*qr, min(h, (j+1)*qr)) of output
    # rows on its own (:func:`_cores_span` adds the cores' shared parameter parse)
    g = _Geometry(config, L)
    wbytes = w * (4 if d["head"] else 1)
    rw_out = -(-wbytes // 8)
    cores = config.arrays[0].kpbs
    qr = -(-h // cores)
    rp = record_parse_cycles(fan, nb, L)
    build = c * (3 if k == 3 else 1)

    def core_time(y_lo, y_hi):
        total = compute = memory_c = 0
        groups, t0 = [], 0
        if y_lo >= y_hi:                    # an empty band: no channel to compute
            return total, compute, memory_c, groups
        while t0 < cout:
            n = 0
            while n < g.param_depth and t0 + n < cout and (n + 1) * nch <= g.weight_rows and \
                    (n + 1) * rw_out <= g.out_words:
                n += 1
            groups.append((t0, n))
            t0 += n
        for t0, n in groups:
            band = planes[t0:t0 + n, y_lo:y_hi]
            feed = feed_cycles(band.reshape(n, -1), nch, max_planes,
                               may_stop).reshape(band.shape[1:])  # feeder cycles per pixel
            load = n + 2 + memory.read_latency + n * rp + 2
            total += load
            memory_c += load
            # the band's first row waits for its input rows; every later row's new input
            # row was prefetched while the row before ran (the row lasts as long as the
            # longer of the two)
            loaded = min(y_lo + k // 2, h - 1) + 1
            lc = _transfers((loaded - max(y_lo - k // 2, 0)) * c, rw_in, memory) + 1
            total += lc
            memory_c += lc
            for y in range(y_lo, y_hi):
                lc = 0
                if y + 1 < y_hi:
                    hi_row = min(y + 1 + k // 2, h - 1)
                    if hi_row + 1 > loaded:
                        lc = _transfers((hi_row + 1 - loaded) * c, rw_in, memory) + 1
                        loaded = hi_row + 1
                # pixel pipeline: two banks, build x+1 while x is fed
                fb = feed[y - y_lo]
                b_end = f_end = 0
                f_ends = []
                for xi in range(w):
                    b_start = max(b_end, f_ends[xi - 2] if xi >= 2 else 0)
                    b_end = b_start + build + build_tail
                    f_start = max(b_end, f_end)
                    f_end = f_start + int(fb[xi])
                    f_ends.append(f_end)
                wc = n * (rw_out + 1) + 1
                row = f_end + drain + 2 + wc
                total += max(row, lc)
                compute += int(fb.sum())
                memory_c += wc + max(0, lc - row)
        return total, compute, memory_c, groups

    per_core = [core_time(j * qr, min(h, (j + 1) * qr)) for j in range(cores)]
    span, memory_c = _cores_span(per_core, rp)
    compute = max(pc[1] for pc in per_core)
    total = overhead + 4 + nch + qr + 1 + span
    total += memory.write_latency + 2
    return CommandCycles(index, op.name, int(total), compute=compute, memory=memory_c,
                         control=int(total) - compute - memory_c)


def _cores_span(per_core, rp: int) -> tuple[int, int]:
    """``(cycles, memory cycles)`` of several cores' work on one conv command, from each
    core's ``(cycles, compute, memory, groups)`` as if it ran alone (``rp``: parse cycles
    of one channel record, :func:`record_parse_cycles`).

    The cores run their bands of output rows at the same time, each on its own buffers,
    every core the same channel groups, behind one AXI master
    (``hdl/bus/transfer_arbiter``: transfers granted in turn, read data returned in order).
    A parameter load is one read transfer parsed at ``rp`` cycles per record (slower than
    the memory's beat per cycle outside the weights): while a core parses, the read data of
    every later transfer waits behind it, so the cores' parameter loads run one after the
    other (``n * rp`` cycles each; every core parses every record). Line fills and output
    rows move at one beat per cycle and interleave with the other cores' pixel pipelines
    at no extra cost; everything else overlaps. A core never finishes before it would
    alone; a core with an empty band (no groups) costs nothing. One core: its own cycles.
    Checked against the RTL with 2 and 3 cores (``sim/conv/test_engine.py``,
    ``mri-16x16-end-2cores-cycles``).
    """
    if len(per_core) == 1:
        t, _, mc, _ = per_core[0]
        return t, mc
    parse = [sum(n * rp for _, n in groups) for *_, groups in per_core]
    alone = max(t for t, *_ in per_core)
    span = max(alone, max(t - p for (t, *_), p in zip(per_core, parse)) + sum(parse))
    busy = max(t - mc for t, _, mc, _ in per_core)
    return span, span - busy


class _Geometry:
    """The conv core's buffer sizes (``hdl/conv/conv_control.ConvGeometry``), from the
    :class:`~msdf_unet.spec.engine.EngineConfig`."""

    def __init__(self, config, lanes=None):
        self.weight_rows = config.weight_buffer_bytes // (config.lanes if lanes is None else lanes)
        self.out_words = config.out_buffer_words
        self.param_depth = config.param_table_depth


def image_cycles(mem: bytearray, config: E.EngineConfig, cmd_offset: int = 0,
                 memory: MemoryModel = TESTBENCH) -> list[CommandCycles]:
    """Cycles of every command of a valid command list, run in order on a copy of the
    image by the functional model (so each command sees the tensors it reads)."""
    from .model import run_image
    out = []
    res = run_image(bytearray(mem), config, cmd_offset, on_command=lambda d, m, i: out.append(
        command_cycles(d, m, config, memory, i)))
    if res.error:
        raise ValueError(res.reason)
    return out
