"""pytest entry: ``msdf-unet segment --backend rtl`` on one slice (Verilator).

The CLI segments a PNG through ``int8``, ``msdf`` and ``rtl``: on ``rtl`` the board driver
runs the compiled ``mri_edge`` image on the engine RTL (AXI RAM as DDR). The labels must be
identical across the three (``labels_sha256`` of the summaries) and ``CYCLES`` must agree
with the engine's cycle model (``golden/conv/cycles.py``, testbench memory) within the 2 %
the engine's own cycle test allows per layer (``sim/conv/tb_engine.py``).
A 16 x 16 crop of a test slice keeps the simulation to about a minute.
"""
import json

import numpy as np
import PIL.Image
import pytest

from msdf_unet.golden.data import load_dataset
from msdf_unet.host import api
from msdf_unet.host.cli import main
from msdf_unet.sim.toolchain import require_simulator


def test_rtl_backend_labels_equal_int8(tmp_path, monkeypatch):
    require_simulator("verilator")
    monkeypatch.setenv("MSDF_UNET_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(api, "_MODELS", {})
    img = load_dataset("mri", "test").images[5, 0, 40:56, 40:56]
    png = tmp_path / "crop.png"
    PIL.Image.fromarray((img * 255).round().astype(np.uint8)).save(png)
    runs = {}
    for b in ("int8", "msdf", "rtl"):
        assert main(["segment", str(png), "--backend", b, "--out", str(tmp_path / b), "--no-progress"]) == 0
        runs[b] = json.loads((tmp_path / b / "crop.summary.json").read_text())
    assert len({r["labels_sha256"] for r in runs.values()}) == 1, runs
    assert sum(v > 0 for v in runs["rtl"]["class_voxels"].values()) == 3  # the crop holds every class
    hw = runs["rtl"]
    assert hw["cycles"] > 0 and "CYCLES register" in hw["cycle_model"]
    assert hw["frame_ms_at_100mhz"] == pytest.approx(hw["cycles"] / 1e5, abs=1e-4)
    # the same compiled image through the cycle model: RTL and model agree on the cycles
    from msdf_unet.golden.conv.cycles import TESTBENCH, image_cycles
    from msdf_unet.host.compiler import compile_program, write_input
    from msdf_unet.host.engine_driver import input_codes
    from msdf_unet.sim.runtime.runner import RTL_CONFIG
    model = api.load_model("mri_edge")
    x, _, _ = api._prepare(api.read_input(png), model)
    program = model.program
    image = compile_program(program, RTL_CONFIG, policy="end", input_hw=tuple(x.shape[2:]))
    write_input(image, input_codes(x[0], program.tensors[program.input].scale))
    predicted = sum(c.cycles for c in image_cycles(image.memory, RTL_CONFIG, image.cmd_offset, TESTBENCH))
    assert abs(predicted - hw["cycles"]) <= 0.02 * hw["cycles"], (hw["cycles"], predicted)
