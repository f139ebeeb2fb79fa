"""Segmentation data sets for the U-Net: real MRI and nuclei images shipped in wheels, plus
a seeded synthetic set for fast tests. Nothing is downloaded.

Public API
----------
``load_dataset(name, split, *, size=None, seed=0, n=None) -> SegmentationData``
    ``name`` is ``"mri"``, ``"nuclei"`` or ``"synthetic"``; ``split`` is ``"train"``,
    ``"val"`` or ``"test"``. ``images`` are float32 ``[N, 1, H, W]`` in ``[0, 1]``,
    ``labels`` int64 ``[N, H, W]`` with values in ``range(len(class_names))``.
``CLASS_NAMES[name]``
    Class names, index = label value.
``mri_split_indices()``, ``nuclei_split_tiles(...)``
    Which z slices / tile origins make each split.
``preprocess_mri_volume(volume, affine, *, size=96)``, ``normalize_intensity(...)``
    The MRI preprocessing used by training (the ``mri`` loader below) *and* by inference
    (``msdf-unet segment``, :mod:`msdf_unet.host.segment`): one function, so both see the
    same orientation, crop, resampling and intensity scaling. :class:`VolumeGeometry`
    undoes it (:meth:`VolumeGeometry.labels_to_input`).

Data sets
---------
``mri``
    The MNI ICBM152 2009a nonlinear symmetric template shipped inside nilearn
    (``nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz``,
    197 x 233 x 189 voxels of 1 mm, uint8, already skull-stripped), read with nibabel.
    Axial slices (index z of the last axis). In plane, a fixed 192 x 192 crop
    (x 2..193, y 22..213, holding all tissue voxels x 27..169, y 28..207) is
    area-averaged down to ``size`` x ``size`` (default 96, i.e. 2 mm pixels; ``size``
    must divide 192). Intensity: ``t1 / p99.5`` of the nonzero voxels of the volume,
    clipped to ``[0, 1]``. Labels from the GM and WM probability maps (averaged the
    same way): ``0`` background (CSF and outside) where ``p_gm + p_wm < 0.5``, else
    ``1`` gray matter if ``p_gm >= p_wm`` else ``2`` white matter.
    Only slices with at least 2 % tissue pixels are used (z 10..150).
    Split by slabs of ``MRI_SLAB`` contiguous slices following the repeating pattern
    train, train, val, train, train, test; ``MRI_GAP`` slices are dropped wherever
    two neighbouring slabs belong to different splits, so no slice of one split is
    closer than ``MRI_GAP + 1`` mm to a slice of another.
``nuclei``
    StarDist's 2-D example (``stardist/data/images/img2d.tif`` and ``mask2d.tif``,
    512 x 512 fluorescence image with an instance mask), read with tifffile. Labels
    ``0`` background, ``1`` nucleus (instance id > 0). Spatial split by columns:
    train ``x < 256``, val ``256 <= x < 384``, test ``x >= 384``; tiles of
    ``size`` x ``size`` (default 64, must divide 128), non-overlapping for val and
    test, stride ``size // 2`` inside the train region. Intensity scaled by the 1st
    and 99.8th percentiles of the train region, clipped to ``[0, 1]``.
``synthetic``
    Seeded random images: smooth background with noise, discs (class 1, dim) and
    squares (class 2, bright). Fully determined by ``(seed, split)``.
"""
from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "CLASS_NAMES",
    "SPLITS",
    "DATASETS",
    "MRI_SLAB",
    "MRI_GAP",
    "MRI_CROP",
    "DatasetNotInstalledError",
    "MNI_SHAPE",
    "MRI_FOV",
    "VolumeGeometry",
    "area_down",
    "mri_volume_path",
    "normalize_intensity",
    "preprocess_mri_volume",
    "SegmentationData",
    "load_dataset",
    "mri_split_indices",
    "nuclei_split_tiles",
    "synthetic",
]

SPLITS = ("train", "val", "test")
DATASETS = ("mri", "nuclei", "synthetic", "mri4")
CLASS_NAMES: dict[str, tuple[str, ...]] = {
    "mri": ("background", "gray_matter", "white_matter"),
    "mri4": ("background", "gray_matter", "white_matter", "csf"),
    "nuclei": ("background", "nucleus"),
    "synthetic": ("background", "disc", "square"),
}

#: Slices per MRI slab, slices dropped between slabs of different splits, slab pattern.
MRI_SLAB = 8
MRI_GAP = 4
MRI_PATTERN = ("train", "train", "val", "train", "train", "test")
#: In-plane crop of the MNI volume: (x0, x1, y0, y1), 192 x 192 voxels.
MRI_CROP = (2, 194, 22, 214)
#: In-plane field of view of the network's MRI input, in 1 mm voxels (192 mm x 192 mm).
MRI_FOV = 192
#: In-plane grid of the MNI152 2009a template (x, y) at 1 mm: volumes on it use MRI_CROP.
MNI_SHAPE = (197, 233)
MRI_MIN_TISSUE = 0.02

NUCLEI_REGIONS = {"train": (0, 256), "val": (256, 384), "test": (384, 512)}

_MNI_FILE = "mni_icbm152_{}_tal_nlin_sym_09a_converted.nii.gz"
_PIP = {"nilearn": "pip install --no-deps nilearn==0.14.1",
        "stardist": "pip install --no-deps stardist==0.9.2"}


class DatasetNotInstalledError(FileNotFoundError):
    """The wheel that ships a data set's files is not installed in this environment."""


@dataclass(frozen=True)
class SegmentationData:
    """One split of a data set.

    Attributes
    ----------
    images : np.ndarray
        float32 ``[N, C, H, W]``, values in ``[0, 1]``.
    labels : np.ndarray
        int64 ``[N, H, W]``, values in ``range(len(class_names))``.
    class_names : tuple of str
    name, split : str
    index : np.ndarray
        Where each sample came from: the z slice (mri), the tile origin ``(y, x)``
        (nuclei) or the sample number (synthetic).
    """

    images: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    name: str
    split: str
    index: np.ndarray

    def __len__(self) -> int:
        return len(self.images)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def _package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, without importing the package
    (nilearn and stardist are installed without their dependencies)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise DatasetNotInstalledError(
            f"the data set needs the '{package}' package for its data files; "
            f"install it with `{_PIP[package]}`")
    path = Path(list(spec.submodule_search_locations)[0]).joinpath(*parts)
    if not path.is_file():
        raise DatasetNotInstalledError(
            f"{path} is missing from the installed '{package}' package; "
            f"reinstall it with `{_PIP[package]}`")
    return path


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}, choose from {SPLITS}")


def area_down(a: np.ndarray, factor: int) -> np.ndarray:
    """Mean over ``factor x factor`` blocks of the last two axes."""
    if factor == 1:
        return a
    *lead, h, w = a.shape
    return a.reshape(*lead, h // factor, factor, w // factor, factor).mean(axis=(-3, -1))


# ----------------------------------------------------------------------------- MRI

def normalize_intensity(a: np.ndarray, method: str = "p99.5", ref: np.ndarray | None = None) -> np.ndarray:
    """Scale intensities to ``[0, 1]`` (float32), statistics taken from ``ref`` (default ``a``).

    ``"p99.5"`` (MRI): divide by the 99.5th percentile of the nonzero voxels, clip.
    ``"p1-p99.8"`` (nuclei): map the 1st..99.8th percentiles to 0..1, clip.
    """
    a = np.asarray(a, dtype=np.float32)
    ref = a if ref is None else np.asarray(ref, dtype=np.float32)
    if method == "p99.5":
        nz = ref[ref > 0]
        scale = float(np.percentile(nz, 99.5)) if nz.size else 0.0
        return np.clip(a / (scale if scale > 0 else 1.0), 0.0, 1.0).astype(np.float32)
    if method == "p1-p99.8":
        lo, hi = np.percentile(ref, [1.0, 99.8])
        return np.clip((a - lo) / (hi - lo if hi > lo else 1.0), 0.0, 1.0).astype(np.float32)
    raise ValueError(f"unknown intensity normalisation {method!r}, use 'p99.5' or 'p1-p99.8'")


def _resample_linear(a: np.ndarray, axis: int, n_out: int, step: float) -> np.ndarray:
    """Linear interpolation of ``a`` along ``axis`` at positions ``0, step, 2 step, ...``."""
    pos = np.arange(n_out, dtype=np.float64) * step
    i0 = np.clip(np.floor(pos).astype(np.int64), 0, a.shape[axis] - 1)
    i1 = np.clip(i0 + 1, 0, a.shape[axis] - 1)
    f = (pos - i0).astype(np.float32)
    shape = [1] * a.ndim
    shape[axis] = n_out
    f = f.reshape(shape)
    return np.take(a, i0, axis=axis) * (1 - f) + np.take(a, i1, axis=axis) * f


@dataclass(frozen=True)
class VolumeGeometry:
    """How :func:`preprocess_mri_volume` mapped the input grid to the network's slices.

    ``ornt``: nibabel orientation that brought the input to RAS; ``input_shape``: the
    input's (x, y, z) shape; ``ras_shape``: after reorientation; ``spacing``: in-plane voxel
    size (x, y) in mm; ``grid_shape``: the in-plane 1 mm grid (x, y) the crop was taken from;
    ``crop``: (x0, x1, y0, y1) on that grid (may extend past it: zero padding);
    ``factor``: area-averaging factor from 1 mm to the network's pixels.
    """

    ornt: tuple
    input_shape: tuple
    ras_shape: tuple
    spacing: tuple
    grid_shape: tuple
    crop: tuple
    factor: int

    def labels_to_input(self, labels: np.ndarray) -> np.ndarray:
        """Per-slice labels ``[Z, size, size]`` -> labels on the input grid (x, y, z),
        nearest neighbour, 0 outside the field of view."""
        import nibabel.orientations as no

        lab = np.repeat(np.repeat(labels, self.factor, axis=1), self.factor, axis=2)  # [z, y, x] 1 mm
        gx, gy = self.grid_shape
        x0, x1, y0, y1 = self.crop
        grid = np.zeros((lab.shape[0], gy, gx), dtype=labels.dtype)
        sx0, sy0 = max(x0, 0), max(y0, 0)
        sx1, sy1 = min(x1, gx), min(y1, gy)
        if sx1 > sx0 and sy1 > sy0:
            grid[:, sy0:sy1, sx0:sx1] = lab[:, sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0]
        nx, ny = self.ras_shape[:2]
        ix = np.minimum(np.floor((np.arange(nx) + 0.5) * self.spacing[0]).astype(np.int64), gx - 1)
        iy = np.minimum(np.floor((np.arange(ny) + 0.5) * self.spacing[1]).astype(np.int64), gy - 1)
        if (nx, ny) == (gx, gy):
            ix, iy = np.arange(nx), np.arange(ny)
        ras = grid[:, iy][:, :, ix].transpose(2, 1, 0)  # [x, y, z]
        identity = np.array([[0, 1], [1, 1], [2, 1]], dtype=np.float64)
        back = no.apply_orientation(ras, no.ornt_transform(np.asarray(self.ornt), identity))
        return np.ascontiguousarray(back)


def preprocess_mri_volume(volume, affine=None, *, size: int = 96, intensity: str | None = "p99.5"
                          ) -> tuple[np.ndarray, VolumeGeometry]:
    """The MRI preprocessing of training and inference: volume -> axial slices.

    1. **Orientation**: the volume (x, y, z voxels, ``affine`` voxel -> world mm as in
       NIfTI; None = already RAS, 1 mm) is reoriented to RAS (nibabel's closest canonical
       orientation).
    2. **Resampling**: in plane to 1 mm (linear) when the voxel size differs from 1 mm
       by more than 1 %. Slices (z) are segmented one by one, so z is not resampled.
    3. **Crop**: a ``MRI_FOV`` x ``MRI_FOV`` (192 mm) window: :data:`MRI_CROP` on the
       MNI152 grid (:data:`MNI_SHAPE`, what training uses), otherwise centred on the
       bounding box of the voxels above 1 % of the 99.5th percentile (zero-padded).
    4. **Intensity** (``intensity="p99.5"``; None skips it, for probability maps): divided by
       the 99.5th percentile of the nonzero voxels of the cropped volume, clipped to [0, 1].
    5. Axial slices ``[z, y, x]`` (rows = y, posterior to anterior; columns = x, left to
       right), area-averaged to ``size`` x ``size`` (``size`` divides 192; 96 = 2 mm).

    Returns ``(slices float32 [Z, size, size], geometry)``.
    """
    import nibabel.orientations as no

    if not isinstance(size, int) or size < 1 or MRI_FOV % size:
        raise ValueError(f"MRI size must divide {MRI_FOV} (e.g. 48, 64, 96, 192), not {size!r}")
    v = np.asarray(volume, dtype=np.float32)
    if v.ndim != 3:
        raise ValueError(f"an MRI volume must be 3-D (x, y, z), not shape {v.shape}")
    aff = np.eye(4) if affine is None else np.asarray(affine, dtype=np.float64)
    if aff.shape != (4, 4) or not np.all(np.isfinite(aff)):
        raise ValueError(f"affine must be a finite 4x4 matrix, not {aff!r}")
    ornt = no.io_orientation(aff)
    ras = no.apply_orientation(v, ornt)
    zooms = np.sqrt((aff[:3, :3] ** 2).sum(axis=0))
    spacing = tuple(float(zooms[int(ornt[i, 0])]) for i in range(2))  # after reorientation: x, y
    a = ras
    for axis in (0, 1):
        if abs(spacing[axis] - 1.0) > 0.01:
            n_out = max(1, int(round(a.shape[axis] * spacing[axis])))
            a = _resample_linear(a, axis, n_out, 1.0 / spacing[axis])
    gx, gy = a.shape[:2]
    if (gx, gy) == MNI_SHAPE:
        crop = MRI_CROP
    else:
        ref = normalize_intensity(a) if intensity else a
        xs, ys = np.nonzero((ref > 0.01).any(axis=2))
        cx = (xs.min() + xs.max() + 1) // 2 if xs.size else gx // 2
        cy = (ys.min() + ys.max() + 1) // 2 if ys.size else gy // 2
        crop = (int(cx) - MRI_FOV // 2, int(cx) + MRI_FOV // 2, int(cy) - MRI_FOV // 2, int(cy) + MRI_FOV // 2)
    x0, x1, y0, y1 = crop
    pad = max(0, -x0, -y0, x1 - gx, y1 - gy)
    if pad:
        a = np.pad(a, ((pad, pad), (pad, pad), (0, 0)))
    win = a[x0 + pad:x1 + pad, y0 + pad:y1 + pad, :]
    zyx = np.ascontiguousarray(win.transpose(2, 1, 0))
    if intensity:
        zyx = normalize_intensity(zyx, intensity)
    geometry = VolumeGeometry(ornt=tuple(map(tuple, ornt.tolist())), input_shape=tuple(v.shape),
                              ras_shape=tuple(ras.shape), spacing=spacing, grid_shape=(gx, gy),
                              crop=tuple(crop), factor=MRI_FOV // size)
    return area_down(zyx, MRI_FOV // size).astype(np.float32), geometry


def mri_volume_path(kind: str = "t1") -> Path:
    """Path of a bundled MNI152 volume (``"t1"``, ``"gm"`` or ``"wm"``) in the nilearn wheel."""
    if kind not in ("t1", "gm", "wm"):
        raise ValueError(f"kind must be 't1', 'gm' or 'wm', not {kind!r}")
    return _package_file("nilearn", "datasets", "data", _MNI_FILE.format(kind))


@functools.lru_cache(maxsize=1)
def _mni_volumes() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """T1 (normalised to [0, 1]), p_gm, p_wm as float32 [z, y, x] of the 192x192 crop, at
    1 mm (:func:`preprocess_mri_volume` with ``size=192``)."""
    import nibabel

    vols = []
    for kind in ("t1", "gm", "wm"):
        img = nibabel.load(str(mri_volume_path(kind)))
        v = np.asarray(img.dataobj, dtype=np.float32) / 255.0
        slices, _ = preprocess_mri_volume(v, img.affine, size=MRI_FOV,
                                          intensity="p99.5" if kind == "t1" else None)
        vols.append(slices)
    t1, gm, wm = vols
    return t1, gm, wm


@functools.lru_cache(maxsize=1)
def _mri_slices_with_tissue() -> np.ndarray:
    _, gm, wm = _mni_volumes()
    frac = ((gm + wm) >= 0.5).mean(axis=(1, 2))
    return np.nonzero(frac >= MRI_MIN_TISSUE)[0]


def mri_split_indices(slab: int = MRI_SLAB, gap: int = MRI_GAP,
                      pattern: tuple[str, ...] = MRI_PATTERN) -> dict[str, np.ndarray]:
    """z indices (axial slices of the MNI volume) of each split.

    Slabs of ``slab`` contiguous slices follow ``pattern`` cyclically from the first
    slice with tissue; ``gap`` slices are skipped where the split changes.
    """
    if slab < 1 or gap < 0:
        raise ValueError(f"slab must be >= 1 and gap >= 0, not slab={slab!r} gap={gap!r}")
    zs = _mri_slices_with_tissue()
    z, z_end = int(zs[0]), int(zs[-1]) + 1
    out: dict[str, list[int]] = {s: [] for s in SPLITS}
    prev = None
    k = 0
    while z < z_end:
        split = pattern[k % len(pattern)]
        if prev is not None and split != prev:
            z += gap
        out[split].extend(range(z, min(z + slab, z_end)))
        z += slab
        prev = split
        k += 1
    return {s: np.asarray(v, dtype=np.int64) for s, v in out.items()}


def _load_mri(split: str, size: int) -> SegmentationData:
    if 192 % size:
        raise ValueError(f"MRI size must divide 192 (e.g. 48, 64, 96, 192), not {size!r}")
    t1, gm, wm = _mni_volumes()
    z = mri_split_indices()[split]
    f = 192 // size
    img = area_down(t1[z], f)
    pg, pw = area_down(gm[z], f), area_down(wm[z], f)
    labels = np.where(pg >= pw, 1, 2)
    labels[(pg + pw) < 0.5] = 0
    return SegmentationData(
        images=img[:, None].astype(np.float32), labels=labels.astype(np.int64),
        class_names=CLASS_NAMES["mri"], name="mri", split=split, index=z)


#: ``mri4`` input channels: T1 slice offsets averaged into each channel (2.5-D input).
MRI4_CHANNELS: tuple[tuple[int, ...], ...] = ((-1,), (0,), (1,), (-2, 2))


def _load_mri4(split: str, size: int) -> SegmentationData:
    """The ``paper``-preset MRI task: 4 T1 channels around slice z, 4 classes.

    Channels (``MRI4_CHANNELS``): T1 at z-1, z, z+1 and the mean of T1 at z-2 and z+2,
    each normalised and area-averaged exactly like ``mri``. Labels at slice z:
    ``0`` background outside the brain mask (T1 == 0: the template is skull-stripped),
    ``1`` gray / ``2`` white matter as in ``mri``, ``3`` csf: inside the brain mask
    with ``p_gm + p_wm < 0.5`` (ventricles, sulcal CSF and the partial-volume rim).
    Same slices and splits as ``mri``; the +-2 slice context stays inside the
    ``MRI_GAP`` = 4 slices dropped between splits, so no split reads another's slices.
    """
    if 192 % size:
        raise ValueError(f"MRI size must divide 192 (e.g. 48, 64, 96, 192), not {size!r}")
    t1, gm, wm = _mni_volumes()
    z = mri_split_indices()[split]
    f = 192 // size
    chans = [np.mean([t1[z + dz] for dz in offs], axis=0) for offs in MRI4_CHANNELS]
    img = area_down(np.stack(chans, axis=1), f)
    pg, pw = area_down(gm[z], f), area_down(wm[z], f)
    brain = area_down((t1[z] > 0).astype(np.float32), f) >= 0.5
    labels = np.where(pg >= pw, 1, 2)
    labels[(pg + pw) < 0.5] = 3
    labels[((pg + pw) < 0.5) & ~brain] = 0
    return SegmentationData(
        images=np.ascontiguousarray(img, dtype=np.float32), labels=labels.astype(np.int64),
        class_names=CLASS_NAMES["mri4"], name="mri4", split=split, index=z)


# -------------------------------------------------------------------------- nuclei

@functools.lru_cache(maxsize=1)
def _stardist_images() -> tuple[np.ndarray, np.ndarray]:
    import tifffile

    img = tifffile.imread(_package_file("stardist", "data", "images", "img2d.tif"))
    mask = tifffile.imread(_package_file("stardist", "data", "images", "mask2d.tif"))
    img = img.astype(np.float32)
    x0, x1 = NUCLEI_REGIONS["train"]
    img = normalize_intensity(img, "p1-p99.8", ref=img[:, x0:x1])
    return img, (mask > 0).astype(np.int64)


def nuclei_split_tiles(split: str, size: int = 64) -> np.ndarray:
    """Tile origins ``(y, x)`` of a nuclei split, int64 ``[N, 2]``."""
    _check_split(split)
    if size < 1 or 128 % size:
        raise ValueError(f"nuclei tile size must divide 128 (e.g. 32, 64, 128), not {size!r}")
    x0, x1 = NUCLEI_REGIONS[split]
    stride = size // 2 if split == "train" and size > 1 else size
    ys = range(0, 512 - size + 1, stride)
    xs = range(x0, x1 - size + 1, stride)
    return np.asarray([(y, x) for y in ys for x in xs], dtype=np.int64)


def _load_nuclei(split: str, size: int) -> SegmentationData:
    img, lab = _stardist_images()
    org = nuclei_split_tiles(split, size)
    images = np.stack([img[y:y + size, x:x + size] for y, x in org])[:, None]
    labels = np.stack([lab[y:y + size, x:x + size] for y, x in org])
    return SegmentationData(images=images.astype(np.float32), labels=labels,
                            class_names=CLASS_NAMES["nuclei"], name="nuclei",
                            split=split, index=org)


# ----------------------------------------------------------------------- synthetic

def synthetic(n: int, size: int = 32, seed: int = 0, split: str = "train"
              ) -> SegmentationData:
    """Seeded synthetic images: discs (label 1) and squares (label 2) on a noisy ramp.

    The same ``(n, size, seed, split)`` always gives the same arrays; different splits
    use independent random streams.
    """
    _check_split(split)
    if n < 1 or size < 8:
        raise ValueError(f"synthetic needs n >= 1 and size >= 8, not n={n!r} size={size!r}")
    rng = np.random.default_rng(np.random.SeedSequence([seed, SPLITS.index(split)]))
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    images = np.empty((n, 1, size, size), np.float32)
    labels = np.zeros((n, size, size), np.int64)
    for i in range(n):
        gx, gy = rng.uniform(-0.1, 0.1, 2)
        img = 0.15 + gx * xx / size + gy * yy / size
        lab = labels[i]
        for _ in range(int(rng.integers(1, 4))):
            r = rng.uniform(size / 10, size / 5)
            cy, cx = rng.uniform(r, size - r, 2)
            m = (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
            lab[m], img = 1, np.where(m, 0.5, img)
        for _ in range(int(rng.integers(1, 3))):
            h = int(rng.integers(size // 8, size // 4 + 1))
            y0, x0 = rng.integers(0, size - h, 2)
            lab[y0:y0 + h, x0:x0 + h] = 2
            img[y0:y0 + h, x0:x0 + h] = 0.85
        img = img + rng.normal(0.0, 0.05, img.shape)
        images[i, 0] = np.clip(img, 0.0, 1.0)
    return SegmentationData(images=images, labels=labels, class_names=CLASS_NAMES["synthetic"],
                            name="synthetic", split=split, index=np.arange(n, dtype=np.int64))


# -------------------------------------------------------------------------- common

_DEFAULT_SIZE = {"mri": 96, "nuclei": 64, "synthetic": 32, "mri4": 192}
_SYNTH_N = {"train": 64, "val": 16, "test": 16}


def load_dataset(name: str, split: str, *, size: int | None = None, seed: int = 0,
                 n: int | None = None) -> SegmentationData:
    """Load one split of a data set.

    Parameters
    ----------
    name : {"mri", "nuclei", "synthetic"}
    split : {"train", "val", "test"}
    size : int, optional
        Image side: MRI in-plane resolution (divides 192, default 96), nuclei tile side
        (divides 128, default 64), synthetic side (default 32).
    seed : int
        Synthetic only.
    n : int, optional
        Synthetic only: number of samples (default 64 / 16 / 16 per split).

    Raises
    ------
    ValueError
        Unknown name, split or an invalid size.
    DatasetNotInstalledError
        The package that ships the files (nilearn, stardist) is missing; the message
        gives the pip command.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}, choose from {DATASETS}")
    _check_split(split)
    size = _DEFAULT_SIZE[name] if size is None else size
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int, not {size!r}")
    if name == "mri":
        return _load_mri(split, size)
    if name == "mri4":
        return _load_mri4(split, size)
    if name == "nuclei":
        return _load_nuclei(split, size)
    return synthetic(_SYNTH_N[split] if n is None else n, size=size, seed=seed, split=split)
