"""host/engine_model.py: CYCLES and status ``cycles`` are the engine cycle model's."""
import numpy as np

from msdf_unet.golden.conv import cycles as C
from msdf_unet.golden.conv.programs import random_program
from msdf_unet.host.compiler import compile_program, write_input
from msdf_unet.host.engine_driver import BytesMemory, EngineDriver
from msdf_unet.host.engine_model import FIT_CONFIG, ModelEngine

PROGRAM = random_program(5, hw=(8, 8), base_width=3)


def _run(engine_kw=None):
    image = compile_program(PROGRAM, FIT_CONFIG, policy="end")
    shape = PROGRAM.tensors[PROGRAM.input].shape
    write_input(image, np.random.default_rng(2).integers(-128, 128, size=shape))
    before = bytearray(image.memory)
    mem = BytesMemory(image.mem_size, base=0x1000_0000)
    engine = ModelEngine(FIT_CONFIG, mem, **(engine_kw or {}))
    run = EngineDriver(engine, mem).run(image, timeout_s=10)
    return before, image, run, engine


def test_cycles_are_image_cycles_with_the_pynq_z2_memory_model():
    before, image, run, engine = _run()
    want = C.image_cycles(before, FIT_CONFIG, image.cmd_offset, C.PYNQ_Z2)
    assert run.cycles == sum(c.cycles for c in want) > 0
    assert [s["cycles"] for s in run.statuses] == [c.cycles for c in want]
    assert [c.cycles for c in engine.last_cycles] == [c.cycles for c in want]
    assert all(s["done"] for s in run.statuses)


def test_memory_model_and_switch_off():
    before, image, run, _ = _run({"memory_model": C.TESTBENCH})
    want = C.image_cycles(before, FIT_CONFIG, image.cmd_offset, C.TESTBENCH)
    assert run.cycles == sum(c.cycles for c in want)
    _, _, run, _ = _run({"cycle_model": False})
    assert run.cycles == 0 and all(s["cycles"] == 0 for s in run.statuses)
