"""The numpy INT8 network (the board's int8 backend) equals hwexact."""
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from msdf_unet.golden import hwexact, quant
from msdf_unet.golden.conv.programs import random_program
from msdf_unet.golden.data import load_dataset
from msdf_unet.golden.program import save_program
from msdf_unet.host import api
from msdf_unet.host.cpu_int8 import predict_codes


@pytest.fixture(scope="module")
def mri_program(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("MSDF_UNET_CACHE", str(tmp_path_factory.mktemp("cache")))
    mp.setattr(api, "_MODELS", {})
    yield api.load_model("mri_edge").program
    mp.undo()


def test_shipped_program_on_real_slices(mri_program):
    x = load_dataset("mri", "test").images[[2, 7, 12]]
    codes = quant.quantize_input(mri_program, x).numpy()
    ref, _ = hwexact.predict(mri_program, x, "full")
    for c, r in zip(codes, ref):
        np.testing.assert_array_equal(predict_codes(mri_program, c), r)


@pytest.mark.parametrize("seed, out_channels", [(0, 3), (1, 1)])
def test_random_programs_and_the_sign_head(seed, out_channels):
    prog = random_program(seed, hw=(12, 8), out_channels=out_channels)
    x = np.random.default_rng(seed).uniform(0, 1, size=(2, 1, 12, 8)).astype(np.float32)
    codes = quant.quantize_input(prog, x).numpy()
    ref, _ = hwexact.predict(prog, x, "full")
    for c, r in zip(codes, ref):
        np.testing.assert_array_equal(predict_codes(prog, c), r)


def test_int8_backend_runs_without_torch(mri_program, tmp_path):
    path = save_program(tmp_path / "mri_edge.msdfp", mri_program)
    img = load_dataset("mri", "test").images[3, 0]
    np.save(tmp_path / "img.npy", img)
    want = api.segment(img, str(path), "int8", progress=False).labels
    np.save(tmp_path / "want.npy", want)
    script = textwrap.dedent(f"""
        import sys
        class Blocker:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("torch", "amaranth", "cocotb", "tqdm"):
                    raise ImportError(name + " is blocked: not on the board")
        sys.meta_path.insert(0, Blocker())
        import numpy as np, msdf_unet
        seg = msdf_unet.segment(np.load({str(tmp_path / 'img.npy')!r}), {str(path)!r}, "int8")
        assert np.array_equal(seg.labels, np.load({str(tmp_path / 'want.npy')!r}))
        assert "torch" not in sys.modules
        print("ok")
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr
