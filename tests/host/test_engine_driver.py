"""EngineDriver against the register-level engine model: runs, faults, timeouts, mismatches."""
import threading

import numpy as np
import pytest
import torch

from msdf_unet.golden import hwexact, quant
from msdf_unet.golden.conv.programs import random_program
from msdf_unet.host.compiler import compile_program, read_tensor, write_input
from msdf_unet.host.engine_driver import BytesMemory, EngineDriver, input_codes, labels_from_head
from msdf_unet.host.engine_model import ModelEngine
from msdf_unet.host.mmio import ModelMMIO
from msdf_unet.host.runtime import AcceleratorFault, AcceleratorTimeout, ConfigMismatch
from msdf_unet.hdl.soc.config import AccelConfig
from msdf_unet.spec import engine as E

PROGRAM = random_program(3, hw=(8, 8), base_width=3)
CONFIG = E.EngineConfig()


def _setup(program=PROGRAM, policy="end"):
    image = compile_program(program, CONFIG, policy=policy)
    mem = BytesMemory(image.mem_size, base=0x1000_0000)
    engine = ModelEngine(CONFIG, mem)
    return image, EngineDriver(engine, mem), engine


def _codes(seed, program=PROGRAM):
    shape = program.tensors[program.input].shape
    return np.random.default_rng(seed).integers(-128, 128, size=shape).astype(np.int8)


@pytest.mark.parametrize("policy", ["full", "end"])
def test_run_is_bit_exact_with_hwexact(policy):
    image, drv, _ = _setup(policy=policy)
    codes = _codes(0)
    write_input(image, codes)
    run = drv.run(image, timeout_s=5)
    ref = hwexact.run(PROGRAM, torch.from_numpy(codes.astype(np.int64))[None], policy)
    head = read_tensor(image, image.output)
    np.testing.assert_array_equal(labels_from_head(head), ref.pred[0].numpy())
    assert len(run.statuses) == len(image.commands) and all(s["done"] for s in run.statuses)
    assert all(s["digits_used"] == 0 for s in run.statuses)  # reserved, as the RTL writes it


def test_input_codes_are_quant_quantize_input():
    x = np.random.default_rng(1).uniform(-0.2, 1.2, size=(1, 1, 8, 8)).astype(np.float32)
    prog = PROGRAM
    np.testing.assert_array_equal(input_codes(x, prog.tensors[prog.input].scale),
                                  quant.quantize_input(prog, x).numpy())


def test_engine_error_becomes_a_named_exception():
    image, drv, engine = _setup()
    engine.fault = (E.ErrorCode.AXI_READ_SLVERR, 4)
    with pytest.raises(AcceleratorFault, match=r"error 7 \(AXI_READ_SLVERR\) at command 4") as e:
        drv.run(image)
    assert e.value.code == 7 and e.value.command == 4


def test_a_malformed_command_is_reported_by_the_engine():
    image, drv, _ = _setup()
    off = image.commands[2].offset
    image.memory[off:off + 4] = (0x7F).to_bytes(4, "little")  # op field: no such op
    with pytest.raises(AcceleratorFault, match="at command 2"):
        drv.run(image)


def test_hang_times_out_and_bad_timeouts_are_refused():
    image, drv, engine = _setup()
    engine.hang = True
    with pytest.raises(AcceleratorTimeout, match="within 0.05 s"):
        drv.run(image, timeout_s=0.05)
    for bad in (float("nan"), float("inf"), 0, -1):
        with pytest.raises(ValueError, match="timeout"):
            drv.run(image, timeout_s=bad)


def test_image_for_another_engine_configuration_is_refused():
    image, _, _ = _setup()
    other = E.EngineConfig.from_dict({**CONFIG.to_dict(), "max_bias_lanes": CONFIG.max_bias_lanes + 1})
    mem = BytesMemory(image.mem_size)
    drv = EngineDriver(ModelEngine(other, mem), mem)
    with pytest.raises(ConfigMismatch, match="recompile the program"):
        drv.run(image)


def test_dot_product_bitstream_or_other_register_map_is_refused():
    with pytest.raises(ConfigMismatch, match="no convolution engine"):
        EngineDriver(ModelMMIO(AccelConfig()), BytesMemory(64))
    mem = BytesMemory(64)
    engine = ModelEngine(CONFIG, mem)
    engine._set("MAP_DIGEST", digest=engine.regmap.digest32 ^ 1)
    with pytest.raises(ConfigMismatch, match="register map mismatch"):
        EngineDriver(engine, mem)


def test_concurrent_runs_are_serialised():
    image, drv, _ = _setup()
    import copy
    results, errors = {}, []

    def worker(seed):
        try:
            img = copy.deepcopy(image)
            write_input(img, _codes(seed))
            drv.run(img)
            results[seed] = labels_from_head(read_tensor(img, img.output))
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    ts = [threading.Thread(target=worker, args=(s,)) for s in range(3)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert not errors
    for seed, lab in results.items():
        ref = hwexact.run(PROGRAM, torch.from_numpy(_codes(seed).astype(np.int64))[None], "end")
        np.testing.assert_array_equal(lab, ref.pred[0].numpy())
