"""The one MRI preprocessing function of training and inference (golden/data.py)."""
import numpy as np
import pytest

from msdf_unet.golden import data
from msdf_unet.golden.data import MRI_CROP, normalize_intensity, preprocess_mri_volume


@pytest.fixture(scope="module")
def mni():
    import nibabel  # installed by make setup (the io extra)
    img = nibabel.load(str(data.mri_volume_path("t1")))
    return np.asarray(img.dataobj, dtype=np.float32), img.affine


def test_training_slices_are_the_documented_crop_transpose_and_scaling(mni):
    v, _ = mni
    x0, x1, y0, y1 = MRI_CROP
    zyx = (v / 255.0)[x0:x1, y0:y1, :].transpose(2, 1, 0)  # the loader reads uint8 / 255
    expected = np.clip(zyx / np.percentile(zyx[zyx > 0], 99.5), 0, 1)
    t1, _, _ = data._mni_volumes()
    np.testing.assert_array_equal(t1, expected.astype(np.float32))
    img96 = data.load_dataset("mri", "test").images[:, 0]
    z = data.mri_split_indices()["test"]
    np.testing.assert_allclose(img96, expected[z].reshape(len(z), 96, 2, 96, 2).mean(axis=(2, 4)), atol=1e-6)


def test_orientation_is_undone_through_the_affine(mni):
    v, aff = mni
    ref, geom = preprocess_mri_volume(v, aff)
    # the same voxels stored as (y, x, -z): the affine says so, the slices must not change
    perm = np.flip(v.transpose(1, 0, 2), axis=2)
    P = np.zeros((4, 4))
    P[0, 1] = P[1, 0] = P[3, 3] = 1
    P[2, 2], P[2, 3] = -1, v.shape[2] - 1
    slices, g2 = preprocess_mri_volume(perm, aff @ P)
    np.testing.assert_array_equal(slices, ref)
    labels = (ref > 0.4).astype(np.int64)
    back, back2 = geom.labels_to_input(labels), g2.labels_to_input(labels)
    assert back.shape == v.shape and back2.shape == perm.shape
    np.testing.assert_array_equal(back2, np.flip(back.transpose(1, 0, 2), axis=2))


def test_coarser_voxels_are_resampled_to_1mm(mni):
    v, aff = mni
    a2 = aff.copy()
    a2[0, 0] = a2[1, 1] = 2.0
    slices, geom = preprocess_mri_volume(v[::2, ::2], a2)
    assert slices.shape == (v.shape[2], 96, 96) and geom.spacing == (2.0, 2.0)
    assert geom.labels_to_input(np.ones_like(slices, dtype=np.int64)).shape == v[::2, ::2].shape


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="must be 3-D"):
        preprocess_mri_volume(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="must divide 192"):
        preprocess_mri_volume(np.zeros((4, 4, 4)), size=100)
    with pytest.raises(ValueError, match="unknown intensity"):
        normalize_intensity(np.zeros(3), "max")
