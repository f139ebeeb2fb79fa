"""Tests of the ``mri4`` data set (paper preset: 4 T1 channels, 4 classes) and a training
smoke test on it."""
import importlib.util

import numpy as np
import pytest

from msdf_unet.golden.data import (
    CLASS_NAMES, DATASETS, MRI4_CHANNELS, MRI_CROP, SPLITS, load_dataset, mri_split_indices)
from msdf_unet.golden.train import TrainArgs, train


def _raw(kind):
    import nibabel

    base = importlib.util.find_spec("nilearn").submodule_search_locations[0]
    path = f"{base}/datasets/data/mni_icbm152_{kind}_tal_nlin_sym_09a_converted.nii.gz"
    x0, x1, y0, y1 = MRI_CROP
    v = np.asarray(nibabel.load(path).dataobj).astype(np.float64) / 255
    return v[x0:x1, y0:y1, :].transpose(2, 1, 0)  # [z, y, x]


def test_shapes_dtypes_classes():
    assert "mri4" in DATASETS
    for split in SPLITS:
        d = load_dataset("mri4", split)
        n = len(d)
        assert d.images.shape == (n, 4, 192, 192) and d.images.dtype == np.float32
        assert d.labels.shape == (n, 192, 192) and d.labels.dtype == np.int64
        assert 0.0 <= d.images.min() and d.images.max() <= 1.0
        assert d.class_names == CLASS_NAMES["mri4"] and d.num_classes == 4
        assert set(np.unique(d.labels)) == {0, 1, 2, 3}, split
        # same slices as the 1-channel mri set
        assert np.array_equal(d.index, mri_split_indices()[split])


def test_channels_and_labels_follow_the_volumes():
    t1, gm, wm = _raw("t1"), _raw("gm"), _raw("wm")
    brain = t1 > 0
    scale = np.percentile(t1[brain], 99.5)
    t1n = np.clip(t1 / scale, 0, 1)
    d = load_dataset("mri4", "test")
    mri = load_dataset("mri", "test", size=192)
    for k in (0, len(d) // 2, len(d) - 1):
        z = int(d.index[k])
        for c, offs in enumerate(MRI4_CHANNELS):
            expected = np.mean([t1n[z + o] for o in offs], axis=0)
            np.testing.assert_allclose(d.images[k, c], expected, atol=1e-5)
        g, w = gm[z], wm[z]
        tissue = g + w >= 0.5
        expected = np.where(tissue, np.where(g >= w, 1, 2), np.where(brain[z], 3, 0))
        assert np.array_equal(d.labels[k], expected)
        # GM / WM exactly as in the mri set; mri background = mri4 background + csf
        assert np.array_equal(d.labels[k] % 3, mri.labels[k])
    np.testing.assert_array_equal(d.images[:, 1], mri.images[:, 0])


def test_context_slices_never_reach_another_split():
    idx = mri_split_indices()
    offs = sorted({o for c in MRI4_CHANNELS for o in c})
    read = {s: {int(z) + o for z in zs for o in offs} for s, zs in idx.items()}
    for a in SPLITS:
        for b in SPLITS:
            if a != b:
                assert not read[a] & set(idx[b].tolist()), (a, b)


def test_deterministic_and_downsampled():
    a, b = load_dataset("mri4", "val", size=48), load_dataset("mri4", "val", size=48)
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    full = load_dataset("mri4", "val")
    pooled = full.images.reshape(len(full), 4, 48, 4, 48, 4).mean(axis=(3, 5))
    np.testing.assert_allclose(a.images, pooled, atol=1e-6)
    with pytest.raises(ValueError, match="must divide 192"):
        load_dataset("mri4", "val", size=50)


def test_paper_preset_training_step():
    res = train(TrainArgs(dataset="mri4", preset="paper", epochs=1, threads=1, batch_size=2,
                          size=48, max_steps=1), progress=False)
    c = res.config
    assert (c.in_channels, c.out_channels, c.depth, c.base_width) == (4, 4, 5, 16)
    assert len(res.losses) == 1 and np.isfinite(res.losses[0])
    assert res.log["data"]["class_names"] == list(CLASS_NAMES["mri4"])
