"""Tests of the data loaders: shapes, label sets, split disjointness, determinism."""
import importlib.util

import numpy as np
import pytest

from msdf_unet.golden import data
from msdf_unet.golden.data import (
    CLASS_NAMES, MRI_CROP, MRI_GAP, MRI_SLAB, SPLITS, DatasetNotInstalledError,
    load_dataset, mri_split_indices, nuclei_split_tiles, synthetic)


@pytest.mark.parametrize("name", ["mri", "nuclei", "synthetic"])
def test_shapes_dtypes_labels(name):
    for split in SPLITS:
        d = load_dataset(name, split)
        n = len(d)
        assert n > 0
        assert d.images.dtype == np.float32 and d.labels.dtype == np.int64
        assert d.images.ndim == 4 and d.images.shape[:2] == (n, 1)
        assert d.labels.shape == (n, *d.images.shape[2:])
        assert d.images.min() >= 0.0 and d.images.max() <= 1.0
        assert d.class_names == CLASS_NAMES[name]
        # every class occurs in every split, and nothing else does
        assert set(np.unique(d.labels)) == set(range(len(d.class_names))), (name, split)
        assert len(d.index) == n


def test_mri_split_slabs_are_disjoint_with_gap():
    idx = mri_split_indices()
    assert idx["train"].size > idx["val"].size > 0 and idx["test"].size > 0
    owner = {}
    for split, zs in idx.items():
        for z in zs.tolist():
            assert z not in owner, f"z={z} in {owner.get(z)} and {split}"
            owner[z] = split
    # any two slices of different splits are more than MRI_GAP slices apart
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                dist = np.abs(idx[a][:, None] - idx[b][None, :]).min()
                assert dist > MRI_GAP, (a, b, dist)
    # splits are made of contiguous slabs; the pattern repeats train twice, val and
    # test once, so a run of contiguous slices is at most 2 (train) or 1 slab long
    for split, zs in idx.items():
        runs = np.split(zs, np.nonzero(np.diff(zs) != 1)[0] + 1)
        longest = (2 if split == "train" else 1) * MRI_SLAB
        assert all(len(r) <= longest for r in runs), split
        assert len(runs) >= 2, split  # several slabs spread over the brain
    for split in SPLITS:
        assert np.array_equal(load_dataset("mri", split).index, idx[split])


def test_mri_labels_follow_probability_maps():
    """At full resolution (size 192) the labels are the thresholded argmax of the raw maps."""
    import nibabel

    base = importlib.util.find_spec("nilearn").submodule_search_locations[0]

    def vol(kind):
        path = f"{base}/datasets/data/mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
        return np.asarray(nibabel.load(path).dataobj).astype(np.float64) / 255

    gm, wm = vol("gm"), vol("wm")
    d = load_dataset("mri", "test", size=192)
    x0, x1, y0, y1 = MRI_CROP
    for k in (0, len(d) // 2, len(d) - 1):
        z = d.index[k]
        g, w = gm[x0:x1, y0:y1, z].T, wm[x0:x1, y0:y1, z].T
        expected = np.where(g + w < 0.5, 0, np.where(g >= w, 1, 2))
        assert np.array_equal(d.labels[k], expected)
    # the 96-pixel version is the 2x2 average-pooled one
    d96 = load_dataset("mri", "test", size=96)
    assert d96.images.shape[2:] == (96, 96)
    pooled = d.images.reshape(len(d), 1, 96, 2, 96, 2).mean(axis=(3, 5))
    np.testing.assert_allclose(d96.images, pooled, rtol=0, atol=1e-6)


def test_nuclei_tiles_disjoint():
    masks = {}
    for split in SPLITS:
        d = load_dataset("nuclei", split)
        assert d.images.shape[2:] == (64, 64)
        m = np.zeros((512, 512), bool)
        for y, x in d.index:
            m[y:y + 64, x:x + 64] = True
        masks[split] = m
    assert not (masks["train"] & masks["val"]).any()
    assert not (masks["train"] & masks["test"]).any()
    assert not (masks["val"] & masks["test"]).any()
    # val and test tiles do not overlap each other
    for split in ("val", "test"):
        org = nuclei_split_tiles(split)
        assert masks[split].sum() == len(org) * 64 * 64


def test_sizes_and_bad_arguments():
    assert load_dataset("mri", "val", size=48).images.shape[2:] == (48, 48)
    assert load_dataset("nuclei", "val", size=128).images.shape[2:] == (128, 128)
    with pytest.raises(ValueError, match="divide 192"):
        load_dataset("mri", "val", size=100)
    with pytest.raises(ValueError, match="divide 128"):
        load_dataset("nuclei", "val", size=96)
    with pytest.raises(ValueError, match="unknown data set"):
        load_dataset("brats", "train")
    with pytest.raises(ValueError, match="unknown split"):
        load_dataset("mri", "training")


def test_synthetic_is_deterministic():
    a = synthetic(8, size=32, seed=3, split="train")
    b = synthetic(8, size=32, seed=3, split="train")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    c = synthetic(8, size=32, seed=4, split="train")
    v = synthetic(8, size=32, seed=3, split="val")
    assert not np.array_equal(a.images, c.images)
    assert not np.array_equal(a.images, v.images)
    assert len(load_dataset("synthetic", "train", n=5)) == 5


def test_missing_package_names_pip_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotInstalledError, match=r"pip install --no-deps nilearn==0\.14\.1"):
        data._package_file("nilearn", "datasets", "data", "x.nii.gz")
    with pytest.raises(DatasetNotInstalledError, match=r"pip install --no-deps stardist==0\.9\.2"):
        data._package_file("stardist", "data", "images", "img2d.tif")


def test_missing_file_in_package():
    with pytest.raises(DatasetNotInstalledError, match="no_such_file"):
        data._package_file("stardist", "data", "images", "no_such_file.tif")
