"""pytest entry: the ``rtl`` backend of ``msdf_unet.segment`` on one slice (Verilator).

The board driver runs the compiled ``mri_edge`` image on the engine RTL (AXI RAM as DDR);
the labels must equal the ``int8`` backend's (hwexact) and ``CYCLES`` must be counted.
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
