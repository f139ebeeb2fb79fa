"""host/compiler.py refuses a program that exceeds one of the engine's buffers described by
the EngineConfig (weight rows, output-row buffer), naming the layer and the limit; the
functional model and the cycle model derive the same buffers from the config."""
import dataclasses

import pytest

from msdf_unet.golden.conv import cycles as C
from msdf_unet.golden.conv.model import run_image
from msdf_unet.golden.conv.programs import random_program
from msdf_unet.host import compiler
from msdf_unet.spec import engine as E


def _one_level(**kw):
    """A U-Net of depth 1: conv, conv, 1x1 head (layers 0, 1, 2)."""
    return random_program(0, depth=1, **kw)


def test_output_row_buffer_int8_row():
    p = _one_level(hw=(4, 136))                          # INT8 rows of 136 bytes
    with pytest.raises(compiler.CompileError,
                       match=r"layer 0 \('down.0.conv1', conv\): output row bytes 136 exceed "
                             r"the engine limit out_buffer_bytes=128"):
        compiler.compile_program(p, E.EngineConfig(out_buffer_bytes=128))
    compiler.compile_program(p, E.EngineConfig(out_buffer_bytes=1024))


def test_output_row_buffer_head_holds_int32():
    p = _one_level(hw=(4, 40))                           # head rows: 40 x 4 bytes
    with pytest.raises(compiler.CompileError,
                       match=r"'head', conv\): output row bytes 160 exceed.*out_buffer_bytes=128"):
        compiler.compile_program(p, E.EngineConfig(out_buffer_bytes=128))
    compiler.compile_program(p, E.EngineConfig(out_buffer_bytes=160))


def test_weight_rows_of_one_channel():
    """143 bytes hold one row of 72 weights; 9 input channels x 9 need two rows although
    the channel record (fan 81 + bias lanes + 16 bytes) fits the buffer's bytes."""
    p = _one_level(in_channels=9, base_width=9, hw=(4, 8))
    cfg = E.EngineConfig(arrays=(E.ArrayConfig("mma", 1, 72),), weight_buffer_bytes=143)
    with pytest.raises(compiler.CompileError,
                       match=r"layer 0 \('down.0.conv1', conv\): weight buffer rows of one output "
                             r"channel .* 2 exceed the engine limit weight_rows=1 "
                             r"\(weight_buffer_bytes=143 // lanes=72\)"):
        compiler.compile_program(p, cfg)
    compiler.compile_program(p, dataclasses.replace(cfg, weight_buffer_bytes=4096))


def test_the_model_refuses_what_the_compiler_refuses():
    """An image compiled for a larger output-row buffer stops with SIZE_LIMIT at the first
    command that needs more than the engine it runs on holds (the RTL's check)."""
    p = _one_level(hw=(4, 40))
    img = compiler.compile_program(p, E.EngineConfig())
    res = run_image(bytearray(img.memory), E.EngineConfig(out_buffer_bytes=128))
    assert res.error and res.code == E.ErrorCode.SIZE_LIMIT
    assert img.commands[res.index].layer == "head" and "output row bytes" in res.reason


def test_param_table_bounds_the_loads_not_the_commands():
    """A channel count beyond the parameter table is never refused: the core loads its
    channels in groups of at most param_table_depth (more loads, more cycles)."""
    p = random_program(1, depth=1, base_width=6, hw=(4, 8))
    out = {}
    for depth in (1, 64):
        cfg = E.EngineConfig(arrays=(E.ArrayConfig("mma", 1, 12),), param_table_depth=depth)
        img = compiler.compile_program(p, cfg, policy="full")
        out[depth] = sum(c.cycles for c in C.image_cycles(img.memory, cfg, img.cmd_offset))
    assert out[1] > out[64]


def test_lanes_not_a_multiple_of_3_is_a_config_error():
    with pytest.raises(E.EngineConfigError, match="multiple of 3.*straddles"):
        E.EngineConfig(arrays=(E.ArrayConfig("mma", 2, 16),))
