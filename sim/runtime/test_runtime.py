"""pytest entry: the ``rtl`` backend of ``msdf_unet.segment`` on one slice (Verilator).

The board driver runs the compiled ``mri_edge`` image on the engine RTL (AXI RAM as DDR);
the labels must equal the ``int8`` backend's (hwexact) and ``CYCLES`` must agree with the
engine's cycle model (``golden/conv/cycles.py``, testbench memory) within the 2 % the
engine's own cycle test allows per layer (``sim/conv/tb_engine.py``).
A 16 x 16 crop of a test slice keeps the simulation to about a minute.
"""
import numpy as np
import pytest

from msdf_unet.golden.data import load_dataset
from msdf_unet.host import api
from msdf_unet.sim.toolchain import require_simulator


def test_rtl_backend_labels_equal_int8(tmp_path, monkeypatch):
    require_simulator("verilator")
    monkeypatch.setenv("MSDF_UNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(api, "_MODELS", {})
    img = load_dataset("mri", "test").images[5, 0, 40:56, 40:56]
    sw = api.segment(img, "mri_edge", "int8", progress=False)
    hw = api.segment(img, "mri_edge", "rtl", progress=False)
    np.testing.assert_array_equal(hw.labels, sw.labels)
    assert len(np.unique(sw.labels)) == 3  # the crop holds every class
    assert hw.cycles > 0 and "CYCLES register" in hw.cycle_model
    assert hw.frame_ms_at_100mhz == pytest.approx(hw.cycles / 1e5)
    # the same compiled image through the cycle model: RTL and model agree on the cycles
    from msdf_unet.golden.conv.cycles import TESTBENCH, image_cycles
    from msdf_unet.host.compiler import compile_program, write_input
    from msdf_unet.host.engine_driver import input_codes
    from msdf_unet.sim.runtime.runner import RTL_CONFIG
    program = api.load_model("mri_edge").program
    x = hw.model_images[:, None]
    image = compile_program(program, RTL_CONFIG, policy="end", input_hw=tuple(x.shape[2:]))
    write_input(image, input_codes(x[0], program.tensors[program.input].scale))
    predicted = sum(c.cycles for c in image_cycles(image.memory, RTL_CONFIG, image.cmd_offset, TESTBENCH))
    assert abs(predicted - hw.cycles) <= 0.02 * hw.cycles, (hw.cycles, predicted)
