"""golden/conv/cycles.py, several cores: each core computes every output channel of its
band of output rows; how the cores share the one memory master (parameter loads one core
after the other, the rest overlapped). The comparison with the
RTL is sim/conv/test_engine.py (``mri-16x16-end-2cores-cycles``, slow)."""
import numpy as np

from msdf_unet.golden.conv import cycles as C
from msdf_unet.golden.conv.programs import random_program
from msdf_unet.host.compiler import compile_program, write_input
from msdf_unet.spec import engine as E


def test_one_core_is_its_own_time():
    assert C._cores_span([(1000, 500, 300, [(0, 4)])], 40) == (1000, 300)


def test_parameter_loads_queue_and_the_rest_overlaps():
    rp, n = 40, 4
    parse = n * rp                                     # rp parse cycles per record
    alone = (1000, 500, 300, [(0, n)])
    span, mem = C._cores_span([alone, alone], rp)
    # the second core's parse waits for the first one's; everything else overlaps
    assert span == 1000 + parse
    busy = 1000 - 300
    assert mem == span - busy
    # never faster than the slowest core alone, never slower than every transfer in a row
    slow = (1500, 900, 100, [(4, 1)])
    span, _ = C._cores_span([alone, slow], rp)
    assert 1500 <= span <= max(1000 - 300, 1500 - 100) + 300 + 100


def test_more_cores_are_faster_on_a_wide_layer():
    p = random_program(5, depth=1, base_width=12, hw=(8, 8))
    x = np.random.default_rng(5).integers(-128, 128, (1, 8, 8))
    total = {}
    for cores in (1, 2, 3):
        cfg = E.EngineConfig(arrays=(E.ArrayConfig("mma", cores, 12),))
        img = compile_program(p, cfg, policy="end")
        write_input(img, x)
        total[cores] = sum(c.cycles for c in C.image_cycles(img.memory, cfg, img.cmd_offset))
    assert total[1] > total[2] > total[3] > total[1] / 3


def _per_core(monkeypatch, cores, hw=(8, 8), depth=2, base_width=6):
    """Every conv command's ``(h, per-core (cycles, compute, memory, groups))`` of a random
    program on ``cores`` cores of 12 lanes (END), captured where the model joins them."""
    p = random_program(7, depth=depth, base_width=base_width, hw=hw)
    x = np.random.default_rng(7).integers(-128, 128, (1, *hw))
    cfg = E.EngineConfig(arrays=(E.ArrayConfig("mma", cores, 12),))
    img = compile_program(p, cfg, policy="end")
    write_input(img, x)
    seen, heights = [], []
    join, command = C._cores_span, C.command_cycles

    def command_spy(d, *args):
        if d["op"] == E.Op.CONV:
            heights.append(d["height"])
        return command(d, *args)
    monkeypatch.setattr(C, "command_cycles", command_spy)
    monkeypatch.setattr(C, "_cores_span", lambda per_core, rec: seen.append(per_core) or join(per_core, rec))
    cycles = C.image_cycles(img.memory, cfg, img.cmd_offset)
    assert len(heights) == len(seen)
    return list(zip(heights, seen)), cycles


def test_cores_split_the_output_rows(monkeypatch):
    # 8x8 and 4x4 layers on 3 cores: bands of 3/3/2 and 2/2/0 rows (an empty band)
    one, _ = _per_core(monkeypatch, 1)
    three, _ = _per_core(monkeypatch, 3)
    for (h, (alone,)), (h3, per_core) in zip(one, three):
        assert h == h3
        qr = -(-h // 3)
        bands = [max(0, min(h, (j + 1) * qr) - j * qr) for j in range(3)]
        # every core with rows computes every output channel (the same groups as one core)
        for rows, (t, compute, mem, groups) in zip(bands, per_core):
            assert groups == (alone[3] if rows else [])
            assert (t, compute, mem) != (0, 0, 0) or not rows
        # the bands partition the rows: the cores' feeder beats add up to one core's
        assert sum(pc[1] for pc in per_core) == alone[1]
    assert any(h < 3 * -(-h // 3) for h, _ in three)     # a short band was exercised
    assert any(h <= 2 * -(-h // 3) for h, _ in three)    # and an empty one (h = 4)


def test_fewer_rows_than_cores(monkeypatch):
    # 2x2 (and 1x1 at the bottom) layers: on 3 or 4 cores the cores past the rows have empty
    # bands and cost nothing, so the cycles equal those on 2 cores (the same bands of one
    # row, and the same split count: qr = 1)
    totals = {}
    for cores in (2, 3, 4):
        _, cycles = _per_core(monkeypatch, cores, hw=(2, 2))
        totals[cores] = [c.cycles for c in cycles]
    assert totals[2] == totals[3] == totals[4]


def test_only_a_bands_first_row_waits_for_its_input_rows():
    # later rows' input rows are prefetched while the row before runs: a slower memory
    # (read latency + d, loads still shorter than a row's pixels) costs d per command
    # (descriptor fetch), per parameter load and per band (its first rows), not per row
    p = random_program(3, depth=1, base_width=6, hw=(8, 8))
    x = np.random.default_rng(3).integers(-128, 128, (1, 8, 8))
    for cores in (1, 2):
        cfg = E.EngineConfig(arrays=(E.ArrayConfig("mma", cores, 12),))
        img = compile_program(p, cfg, policy="full")
        write_input(img, x)
        base = C.image_cycles(img.memory, cfg, img.cmd_offset, C.TESTBENCH)
        d = 3
        slow = C.MemoryModel(C.TESTBENCH.read_latency + d, C.TESTBENCH.write_latency,
                             C.TESTBENCH.burst_gap)
        later = C.image_cycles(img.memory, cfg, img.cmd_offset, slow)
        convs = [i for i, c in enumerate(base) if c.op == "CONV"]
        assert len(convs) >= 3                   # conv1, conv2, head: all 8x8
        for i in convs:
            # one channel group each (small layers); the cores wait for each other's
            # parses, not for their latencies
            assert later[i].cycles - base[i].cycles == d * (1 + 1 + 1)
