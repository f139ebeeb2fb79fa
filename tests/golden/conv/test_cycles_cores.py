"""golden/conv/cycles.py, several cores: how the cores share the one memory master
(parameter loads one core after the other, the rest overlapped). The comparison with the
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
