"""The inference API (host/api.py): backends, geometry, caching, bad input, warnings."""
import struct
import warnings
import zlib

import numpy as np
import pytest

from msdf_unet.golden.data import mri_volume_path
from msdf_unet.host import api
from msdf_unet.host.api import InputError, load_model, read_input, segment, unstripped_reason
from msdf_unet.host import runtime
from msdf_unet.host.runtime import BackendUnavailable

import nibabel  # noqa: E402 - the io extra, installed by make setup
SLICES = [88, 96]  # two network slices of the MNI volume keep the tests fast


pytestmark = pytest.mark.usefixtures("private_model_cache")


@pytest.fixture(scope="module")
def mni():
    img = nibabel.load(str(mri_volume_path("t1")))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


@pytest.fixture(scope="module")
def runs(mni):
    v, aff = mni
    return {b: segment(v, "mri_edge", b, affine=aff, slices=SLICES, progress=False)
            for b in ("float", "int8", "msdf")}


def test_int8_and_msdf_labels_are_identical_and_msdf_has_cycles(runs, mni):
    i8, ms = runs["int8"], runs["msdf"]
    np.testing.assert_array_equal(i8.labels, ms.labels)
    assert i8.labels.shape == mni[0].shape
    assert i8.cycles is None and ms.cycles > 0 and ms.frame_ms_at_100mhz > 0
    assert set(np.unique(i8.labels)) == {0, 1, 2}


def test_msdf_cycles_are_the_engine_cycle_model(runs):
    from msdf_unet.golden.conv import cycles as C
    from msdf_unet.host.compiler import compile_program, write_input
    from msdf_unet.host.engine_driver import input_codes
    from msdf_unet.host.engine_model import FIT_CONFIG
    ms = runs["msdf"]
    program = load_model("mri_edge").program
    image = compile_program(program, FIT_CONFIG, policy="end", input_hw=ms.model_images.shape[1:])
    want = 0
    for i in SLICES:
        write_input(image, input_codes(ms.model_images[i][None], program.tensors[program.input].scale))
        want += sum(c.cycles for c in C.image_cycles(image.memory, FIT_CONFIG, image.cmd_offset, C.PYNQ_Z2))
    assert ms.cycles == want
    assert ms.frame_ms_at_100mhz == pytest.approx(want / len(SLICES) / 1e5, rel=1e-12)  # float division order
    assert "image_cycles" in ms.cycle_model


def test_float_probabilities_match_its_labels_and_mostly_agree_with_int8(runs):
    f = runs["float"]
    assert f.probabilities.shape == (3, *f.labels.shape)
    np.testing.assert_allclose(f.probabilities.sum(0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(f.probabilities.argmax(0), f.labels)
    z = np.nonzero(runs["int8"].labels.reshape(-1, f.labels.shape[2]).any(0))[0]
    assert np.mean(f.labels[:, :, z] == runs["int8"].labels[:, :, z]) > 0.95


def test_labels_follow_the_input_orientation(mni, runs):
    v, aff = mni
    perm = np.flip(v.transpose(1, 0, 2), axis=2)
    P = np.zeros((4, 4))
    P[0, 1] = P[1, 0] = P[3, 3] = 1
    P[2, 2], P[2, 3] = -1, v.shape[2] - 1
    seg = segment(perm, "mri_edge", "int8", affine=aff @ P, slices=SLICES, progress=False)
    np.testing.assert_array_equal(seg.labels, np.flip(runs["int8"].labels.transpose(1, 0, 2), axis=2))


def test_program_is_quantized_once_and_cached_by_weights_hash(runs, monkeypatch):
    model = load_model("mri_edge")
    cached = list((api.cache_dir() / "programs").glob("mri_edge-*.msdfp"))
    assert [p.name for p in cached] == [f"mri_edge-{model.key[:16]}.msdfp"]
    import msdf_unet.golden.quant as quant

    def boom(*a, **k):
        raise AssertionError("re-quantized")
    monkeypatch.setattr(quant, "quantize_model", boom)
    fresh = api.Model("mri_edge", "mri", model.class_names, weights_dir=model.weights_dir)
    assert fresh.program.layers  # from the disk cache
    monkeypatch.setattr(api, "_MODELS", {})
    assert load_model("mri_edge").program is not None


def test_a_compiled_program_path_is_a_model(runs, tmp_path):
    path = next((api.cache_dir() / "programs").glob("mri_edge-*.msdfp"))
    img = runs["int8"].model_images[SLICES[0]]
    by_name = segment(img, "mri_edge", "int8", progress=False)
    by_path = segment(img, str(path), "int8", progress=False)
    np.testing.assert_array_equal(by_name.labels, by_path.labels)
    assert by_path.labels.shape == img.shape
    with pytest.raises(BackendUnavailable, match="no float weights"):
        segment(img, str(path), "float", progress=False)


def test_rtl_backend_without_the_engine_rtl_says_so(monkeypatch):
    monkeypatch.setattr(runtime, "RTL_MODULES", ("msdf_unet.hdl.conv.no_such_top",))
    with pytest.raises(BackendUnavailable, match="not available in this build.*no_such_top"):
        segment(np.zeros((32, 32), np.float32), "mri_edge", "rtl")


def test_pynq_backend_off_the_board_says_it_needs_one(monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "pynq", None)
    with pytest.raises(BackendUnavailable, match="PYNQ board"):
        segment(np.zeros((32, 32), np.float32), "mri_edge", "pynq")


def _png_header(path, w, h):
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk)  # no pixel data at all
    return path


@pytest.mark.parametrize("bad, match", [
    (np.full((8, 8), np.nan, np.float32), "NaN or infinite"),
    (np.full((8, 8), np.inf, np.float32), "NaN or infinite"),
    (np.zeros((0, 8), np.float32), "empty"),
    (np.zeros((4, 4, 4, 2), np.float32), "4-D series"),
    (np.zeros(8, np.float32), "has 1 dimension; expected"),
    (np.zeros((8, 8), bool), "dtype bool"),
    (np.zeros((8, 8), complex), "dtype complex"),
    (np.zeros((5000, 2), np.uint8), "exceeds the limit of 4096"),
    ("not an array", "no such file"),
])
def test_bad_input_is_refused_with_a_clear_error(bad, match):
    with pytest.raises(InputError, match=match):
        read_input(bad)


def test_oversized_png_is_refused_from_its_header(tmp_path):
    with pytest.raises(InputError, match="10000x10000 exceeds"):
        read_input(_png_header(tmp_path / "huge.png", 10000, 10000))
    with pytest.raises(InputError, match="unsupported file type"):
        read_input(_png_header(tmp_path / "x.jpg", 8, 8))


def test_oversized_nifti_is_refused_from_its_header(tmp_path):
    hdr = nibabel.Nifti1Header()
    hdr.set_data_shape((2000, 10, 10))
    hdr.set_data_dtype(np.uint8)
    path = tmp_path / "big.nii"
    path.write_bytes(hdr.binaryblock + b"\0" * 4)  # header only: the data is never read
    with pytest.raises(InputError, match="exceeds the limits"):
        read_input(path)


def test_nuclei_model_refuses_volumes():
    with pytest.raises(InputError, match="segments 2-D images"):
        segment(np.ones((16, 16, 4), np.float32), "nuclei_edge", "int8")


def test_unstripped_looking_volumes_warn(mni):
    v, _ = mni
    assert unstripped_reason(v) is None
    X, Y, Z = np.indices(v.shape)
    c = np.array(v.shape) / 2
    r = np.sqrt(((X - c[0]) / 95) ** 2 + ((Y - c[1]) / 112) ** 2 + ((Z - c[2]) / 90) ** 2)
    scalp = v.copy()
    scalp[(r > 0.96) & (r < 1.0)] = 255  # a thin bright shell: scalp fat
    assert "outer shell" in unstripped_reason(scalp)
    noisy = v + np.random.default_rng(0).uniform(0, 3, v.shape).astype(np.float32)  # air not zero
    assert "background" in unstripped_reason(noisy)
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        seg = segment(scalp, "mri_edge", "int8", slices=[90], progress=False)
    assert seg.warnings and "skull-stripped" in str(w[0].message)


def test_bad_settings():
    with pytest.raises(ValueError, match="backend must be one of"):
        segment(np.zeros((8, 8)), "mri_edge", "gpu")
    with pytest.raises(ValueError, match="unknown model"):
        load_model("no_such_model")


def test_missing_program_file_or_weights_is_named(tmp_path):
    with pytest.raises(ValueError, match=r"nope\.msdfp': no such \.msdfp file"):
        load_model(str(tmp_path / "nope.msdfp"))
    with pytest.raises(ValueError, match="the folder holds no weights.npz"):
        load_model(str(tmp_path))
    with pytest.raises(ValueError, match="batch_size"):
        segment(np.zeros((8, 8)), "mri_edge", "int8", batch_size=0)
