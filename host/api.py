"""The Python inference API: ``msdf_unet.load_model`` and ``msdf_unet.segment``.

::

    import msdf_unet
    model = msdf_unet.load_model("mri_edge")             # or "nuclei_edge", or a .msdfp path
    seg = msdf_unet.segment("t1.nii.gz", model, backend="int8")
    seg.labels            # int labels on the input's grid (NIfTI: same shape, affine kept)
    seg.probabilities     # per-class probabilities (float backend only)
    seg.seconds, seg.cycles, seg.warnings

Backends: ``float`` (the PyTorch model), ``int8`` (the hardware-exact integer model,
``golden/hwexact.py``, full precision), ``msdf`` (the same through the MSDF digit recurrence
with exact early negative detection, what the PE array does: same labels as ``int8``, and the
engine clock cycles the convolution engine's cycle model predicts for it), ``rtl`` and ``pynq`` (the convolution engine in simulation / on the
board; they need the engine, see :func:`~msdf_unet.host.runtime.require_engine`).

Inputs (:func:`read_input`): a numpy array (2-D image ``[H, W]`` or 3-D volume ``[x, y, z]``
with an optional ``affine``), a PNG, or a NIfTI volume (``.nii`` / ``.nii.gz``; every axial
slice is segmented, in batches, with a progress bar). Size limits, checked before the image
is decoded: :data:`MAX_IMAGE_SIDE` for 2-D images, :data:`MAX_VOLUME_SIDE` per axis and
:data:`MAX_VOLUME_VOXELS` for volumes.

Requirements of the MRI model (``mri_edge``): a T1-weighted volume, **skull-stripped**
(brain only, zero outside), any orientation (the affine is used) and voxel size; 2-D inputs
are single axial slices already at the model's 2 mm pixels. An input that looks
unstripped gives a warning (:func:`unstripped_reason`). The nuclei model takes 2-D
fluorescence images (nuclei bright).

Only numpy is imported here at module level: the ``pynq`` backend runs on the board
without torch; the software backends import torch when they run.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .runtime import BackendUnavailable, atomic_write_bytes, require_engine

__all__ = ["BACKENDS", "MODELS", "MAX_IMAGE_SIDE", "MAX_VOLUME_SIDE", "MAX_VOLUME_VOXELS",
           "InputError", "Model", "Segmentation", "load_model", "read_input", "segment",
           "unstripped_reason", "cache_dir", "DEFAULT_OVERLAY", "check_file_size"]

BACKENDS = ("float", "int8", "msdf", "rtl", "pynq")
#: Shipped models: name -> task (data set whose preprocessing and classes it uses).
MODELS = {"mri_edge": "mri", "nuclei_edge": "nuclei"}
#: Largest side of a 2-D input (pixels); a larger PNG is refused from its header.
MAX_IMAGE_SIDE = 4096
#: Largest side (voxels) and voxel count of a volume; refused from the NIfTI header.
MAX_VOLUME_SIDE = 1024
MAX_VOLUME_VOXELS = 512 ** 3
#: Policies of hwexact for the integer backends.
_POLICY = {"int8": "full", "msdf": "end"}
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class InputError(ValueError):
    """The input cannot be segmented (shape, dtype, values, size, file type)."""


# ------------------------------------------------------------------------------ models

def cache_dir() -> Path:
    """Where compiled programs are cached: ``$MSDF_UNET_CACHE``, else
    ``$XDG_CACHE_HOME/msdf-unet``, else ``~/.cache/msdf-unet``."""
    if os.environ.get("MSDF_UNET_CACHE"):
        return Path(os.environ["MSDF_UNET_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "msdf-unet"


@dataclass
class Model:
    """A segmentation model: a shipped name, a weights folder or a compiled ``.msdfp``.

    ``program`` (the quantized accelerator program) is built on first use and cached on
    disk under :func:`cache_dir` keyed by the SHA-256 of the weights and the quantization
    settings, so quantization runs once per model, not per call. ``float_model`` exists
    only for models with float weights (not for a bare ``.msdfp``).
    """

    name: str
    task: str
    class_names: tuple
    weights_dir: Path | None = None
    program_path: Path | None = None
    _program: object = field(default=None, repr=False)
    _float: object = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def key(self) -> str:
        """SHA-256 of what determines the program: weights, architecture, quantization."""
        from ..golden.program import FORMAT_VERSION
        from ..golden.quant import QuantConfig
        h = hashlib.sha256()
        if self.weights_dir is None:
            h.update(Path(self.program_path).read_bytes())
        else:
            for f in ("weights.npz", "config.json"):
                h.update((self.weights_dir / f).read_bytes())
            h.update(repr(QuantConfig()).encode())
            h.update(f"calibration={self.task}:train;format={FORMAT_VERSION}".encode())
        return h.hexdigest()

    @property
    def program(self):
        """The compiled program (loaded from the cache, or quantized once and cached)."""
        with self._lock:
            if self._program is None:
                self._program = self._load_program()
            return self._program

    def _load_program(self):
        from ..golden.program import load_program, program_to_bytes
        if self.weights_dir is None:
            return load_program(self.program_path)
        path = cache_dir() / "programs" / f"{self.name}-{self.key[:16]}.msdfp"
        if path.is_file():
            try:
                return load_program(path)
            except ValueError:  # a corrupt cache entry: rebuild it
                pass
        from ..golden.quant import quantize_model
        program = quantize_model(self.float_model, _calibration_images(self.task),
                                 meta={"task": self.task, "model": self.name})
        atomic_write_bytes(path, program_to_bytes(program))
        return program

    @property
    def float_model(self):
        """The float PyTorch U-Net (BackendUnavailable for a bare ``.msdfp``)."""
        if self.weights_dir is None:
            raise BackendUnavailable(f"model {self.name!r} is a compiled program ({self.program_path}): "
                                     f"it has no float weights for the float backend")
        if self._float is None:
            from ..golden.train import load_model as load_float
            self._float, _ = load_float(self.weights_dir)
        return self._float

    @property
    def step(self) -> int:
        """Input height and width must be multiples of this (2 ** pools)."""
        if self.weights_dir is not None:
            cfg = json.loads((self.weights_dir / "config.json").read_text())
            return 2 ** (int(cfg["depth"]) - 1)
        return 2 ** self.program.depth


def _calibration_images(task: str):
    from ..golden.data import load_dataset
    return load_dataset(task, "train").images


_MODELS: dict = {}
_MODELS_LOCK = threading.Lock()


def load_model(name_or_path="mri_edge") -> Model:
    """A shipped model by name (:data:`MODELS`), a weights folder (``weights.npz`` +
    ``config.json`` + ``train_log.json`` naming the data set) or a ``.msdfp`` program.
    Models are kept per process, so repeated calls reuse the compiled program."""
    from ..golden.data import CLASS_NAMES
    if isinstance(name_or_path, Model):
        return name_or_path
    key = str(name_or_path)
    with _MODELS_LOCK:
        if key in _MODELS:
            return _MODELS[key]
        if key in MODELS:
            from ..golden.train import PRETRAINED_TASKS, WEIGHTS_DIR
            task = MODELS[key]
            m = Model(key, task, CLASS_NAMES[task], weights_dir=WEIGHTS_DIR / PRETRAINED_TASKS[task])
        else:
            path = Path(key)
            if path.suffix == ".msdfp" and path.is_file():
                from ..golden.program import load_program
                prog = load_program(path)
                task = prog.meta.get("task")
                if task not in CLASS_NAMES:
                    raise ValueError(f"{path}: program meta names no known task ({task!r}); "
                                     f"expected one of {sorted(CLASS_NAMES)}")
                m = Model(path.stem, task, CLASS_NAMES[task], program_path=path, _program=prog)
            elif path.is_dir() and (path / "weights.npz").is_file():
                log = path / "train_log.json"
                task = json.loads(log.read_text())["args"]["dataset"] if log.is_file() else None
                if task not in CLASS_NAMES:
                    raise ValueError(f"{path}: train_log.json names no known data set ({task!r})")
                m = Model(path.name, task, CLASS_NAMES[task], weights_dir=path)
            elif path.is_dir():
                raise ValueError(f"model {key!r}: the folder holds no weights.npz")
            elif path.suffix == ".msdfp":
                raise ValueError(f"model {key!r}: no such .msdfp file")
            else:
                raise ValueError(f"unknown model {key!r}: give one of {sorted(MODELS)}, a .msdfp "
                                 f"program or a folder with weights.npz")
        _MODELS[key] = m
        return m


# ------------------------------------------------------------------------------ inputs

@dataclass
class Input:
    """An input read by :func:`read_input`: ``data`` float32 2-D ``[H, W]`` or 3-D
    ``[x, y, z]``; ``affine`` / ``header`` for NIfTI; ``source`` describes it."""

    data: np.ndarray
    kind: str                 # "image" or "volume"
    source: str
    affine: np.ndarray | None = None
    header: object = None
    file_type: str = "array"  # "array", "png", "nifti"


def _check_array(a, source: str) -> np.ndarray:
    if not isinstance(a, np.ndarray):
        raise InputError(f"{source}: expected a numpy array, not {type(a).__name__}")
    if a.dtype == bool or not (np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)):
        raise InputError(f"{source}: dtype {a.dtype} is not an integer or real dtype")
    while a.ndim > 3 and a.shape[-1] == 1:  # NIfTI volumes often carry a trailing t = 1
        a = a[..., 0]
    if a.ndim not in (2, 3):
        hint = " (4-D series are not supported: pick a volume)" if a.ndim > 3 else ""
        raise InputError(f"{source}: shape {a.shape} has {a.ndim} dimension{'s' * (a.ndim != 1)}; "
                         f"expected a 2-D image [H, W] or a 3-D volume [x, y, z]{hint}")
    if a.size == 0 or min(a.shape) == 0:
        raise InputError(f"{source}: the image is empty (shape {a.shape})")
    _check_size(a.shape, source)
    a = a.astype(np.float32, copy=False)
    if not np.all(np.isfinite(a)):
        raise InputError(f"{source}: the image holds NaN or infinite values")
    return a


def _check_size(shape, source: str) -> None:
    shape = tuple(int(s) for s in shape)
    if len(shape) == 2 and max(shape) > MAX_IMAGE_SIDE:
        raise InputError(f"{source}: image {shape[0]}x{shape[1]} exceeds the limit of "
                         f"{MAX_IMAGE_SIDE} pixels per side")
    if len(shape) >= 3 and (max(shape) > MAX_VOLUME_SIDE or int(np.prod(shape)) > MAX_VOLUME_VOXELS):
        raise InputError(f"{source}: volume {'x'.join(map(str, shape))} exceeds the limits "
                         f"({MAX_VOLUME_SIDE} voxels per axis, {MAX_VOLUME_VOXELS} voxels)")


def _png_size(path: Path) -> tuple[int, int]:
    with open(path, "rb") as f:
        head = f.read(24)
    if len(head) < 24 or head[:8] != _PNG_MAGIC or head[12:16] != b"IHDR":
        raise InputError(f"{path}: not a PNG file")
    w, h = struct.unpack(">II", head[16:24])
    return h, w


def check_file_size(path) -> None:
    """InputError when the PNG / NIfTI file ``path`` exceeds the size limits, from its header
    only (nothing decoded); a file whose header cannot be read is left to its reader. Used
    by ``msdf-unet eval --input`` (:func:`read_input` checks the same)."""
    path = Path(path)
    name = path.name.lower()
    shape = None
    if name.endswith(".png"):
        try:
            shape = _png_size(path)
        except (InputError, OSError):
            return
    elif name.endswith(".nii") or name.endswith(".nii.gz"):
        try:
            import nibabel
            shape = nibabel.load(str(path)).shape
        except Exception:
            return
        shape = tuple(s for s in shape if s != 1) or shape
    if shape is not None:
        _check_size(shape, str(path))


def read_input(source, affine=None) -> Input:
    """Read and check an input (array, or a PNG, NIfTI or ``.npy`` path); InputError when it
    is unusable.

    The size limits are checked from the PNG / NIfTI / ``.npy`` header before the pixels are
    decoded.
    """
    if isinstance(source, np.ndarray):
        a = _check_array(source, "input array")
        if affine is not None and a.ndim != 3:
            raise InputError("an affine only applies to a 3-D volume")
        return Input(a, "volume" if a.ndim == 3 else "image", "array", affine=affine)
    if not isinstance(source, (str, os.PathLike)):
        raise InputError(f"input must be a numpy array or a file path, not {type(source).__name__}")
    path = Path(source)
    if not path.is_file():
        raise InputError(f"{path}: no such file")
    name = path.name.lower()
    if name.endswith(".png"):
        _check_size(_png_size(path), str(path))
        try:
            from PIL import Image
            with Image.open(path) as im:
                if im.mode not in ("L", "I", "I;16", "F", "RGB", "RGBA"):
                    im = im.convert("RGBA")  # palette, 1-bit, gray + alpha: real intensities
                a = np.asarray(im)
        except Exception as e:
            raise InputError(f"{path}: cannot decode the PNG ({type(e).__name__}: {e})") from e
        if a.ndim == 3:
            if a.shape[2] not in (2, 3, 4):
                raise InputError(f"{path}: PNG with {a.shape[2]} channels; expected gray, RGB or RGBA")
            a = a[..., :3].mean(axis=2) if a.shape[2] >= 3 else a[..., 0]
        return Input(_check_array(np.asarray(a), str(path)), "image", str(path), file_type="png")
    if name.endswith(".nii") or name.endswith(".nii.gz"):
        import nibabel
        try:
            img = nibabel.load(str(path))
            shape = img.shape
        except Exception as e:
            raise InputError(f"{path}: cannot read the NIfTI header ({type(e).__name__}: {e})") from e
        _check_size(tuple(s for s in shape if s != 1) or shape, str(path))
        try:
            a = np.asarray(img.dataobj, dtype=np.float32)
        except Exception as e:
            raise InputError(f"{path}: cannot read the NIfTI data ({type(e).__name__}: {e})") from e
        a = _check_array(a, str(path))
        return Input(a, "volume" if a.ndim == 3 else "image", str(path), affine=img.affine,
                     header=img.header, file_type="nifti")
    if name.endswith(".npy"):
        a = _read_npy(path)
        return Input(a, "volume" if a.ndim == 3 else "image", str(path))
    raise InputError(f"{path}: unsupported file type; use .png, .nii, .nii.gz or .npy (or pass an array)")


def _read_npy(path: Path) -> np.ndarray:
    """A checked ``.npy`` array; dtype and size come from its header, before the data is read."""
    from numpy.lib import format as npy
    try:
        with open(path, "rb") as f:
            major, _ = npy.read_magic(f)
            shape, _, dtype = (npy.read_array_header_1_0 if major == 1 else npy.read_array_header_2_0)(f)
    except Exception as e:
        raise InputError(f"{path}: not a .npy array ({type(e).__name__}: {e})") from e
    if dtype.hasobject or dtype == bool or not (np.issubdtype(dtype, np.integer)
                                                or np.issubdtype(dtype, np.floating)):
        raise InputError(f"{path}: dtype {dtype} is not an integer or real dtype")
    _check_size(tuple(s for s in shape if s != 1) or shape, str(path))
    try:
        a = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as e:
        raise InputError(f"{path}: cannot read the .npy array ({type(e).__name__}: {e})") from e
    return _check_array(np.asarray(a), str(path))


def unstripped_reason(volume: np.ndarray) -> str | None:
    """Why a T1 volume looks *not* skull-stripped, or None.

    Heuristic (documented in docs/runtime.md): a skull-stripped volume is zero outside the
    brain, so (a) at least 20 % of its voxels sit exactly at its minimum (the MNI152 brain:
    78 %), and (b) its brightest voxels (white matter) lie inside, not on the outer shell
    of the head: at most 35 % of the top 1 % brightest voxels of the head mask lie within 3
    voxels of the mask's border (an unstripped T1 has bright scalp fat there).
    """
    v = np.asarray(volume, dtype=np.float32)
    at_min = float(np.mean(v == v.min()))
    if at_min < 0.20:
        return (f"only {100 * at_min:.1f} % of the voxels are background (at the minimum); "
                f"a skull-stripped volume is zero outside the brain")
    nz = v[v > v.min()]
    if nz.size < 100:
        return None
    mask = v > 0.1 * np.percentile(nz, 99.5)
    inner = mask.copy()
    for _ in range(3):
        e = inner.copy()
        for ax in range(3):
            e &= np.roll(inner, 1, ax) & np.roll(inner, -1, ax)
        inner = e
    rim = mask & ~inner
    bright = v >= np.percentile(v[mask], 99) if mask.any() else mask
    frac = float((bright & rim).sum() / max(1, bright.sum()))
    if frac > 0.35:
        return (f"{100 * frac:.0f} % of the brightest voxels lie on the outer shell of the head "
                f"(scalp fat in an unstripped T1)")
    return None


# ------------------------------------------------------------------------------ segment

@dataclass
class Segmentation:
    """The result of :func:`segment`.

    ``labels``: on the input's grid (``[H, W]`` image, ``[x, y, z]`` volume; int, values
    index ``class_names``). ``probabilities``: float backend only, ``[C, *labels.shape]``.
    ``model_images`` / ``model_labels``: the network's view (``[N, H, W]`` preprocessed
    slices and their labels), for overlays. ``cycles``: engine clock cycles summed
    over the slices -- the ``msdf`` backend's from the engine's cycle model (3 cores x 72
    lanes, PYNQ-Z2 memory), ``rtl``/``pynq``'s from the ``CYCLES`` register; None for
    ``float``/``int8`` (``cycle_model`` says which); ``frame_ms_at_100mhz`` per slice; ``seconds``: wall
    time of the backend on all slices.
    """

    labels: np.ndarray
    class_names: tuple
    backend: str
    model: str
    source: str
    kind: str
    seconds: float
    model_images: np.ndarray
    model_labels: np.ndarray
    slices: np.ndarray
    probabilities: np.ndarray | None = None
    cycles: int | None = None
    cycle_model: str | None = None
    affine: np.ndarray | None = None
    header: object = None
    file_type: str = "array"
    warnings: list = field(default_factory=list)

    @property
    def frames(self) -> int:
        return int(len(self.slices))

    @property
    def frame_ms_at_100mhz(self) -> float | None:
        if self.cycles is None or not self.frames:
            return None
        return self.cycles / self.frames / 100e6 * 1e3

    @property
    def class_voxels(self) -> dict:
        return {name: int(np.count_nonzero(self.labels == c)) for c, name in enumerate(self.class_names)}


def _prepare(inp: Input, model: Model):
    """-> (images [N, 1, H, W] float32, back(labels [N,H,W]) -> input grid, warnings)."""
    from ..golden.data import normalize_intensity, preprocess_mri_volume
    warn = []
    if inp.kind == "volume":
        if model.task != "mri":
            raise InputError(f"{inp.source}: the {model.name} model segments 2-D images, not volumes")
        reason = unstripped_reason(inp.data)
        if reason:
            warn.append(f"{inp.source} does not look skull-stripped: {reason}. The MRI model was "
                        f"trained on skull-stripped T1 volumes; unstripped input labels the scalp "
                        f"as tissue.")
        slices, geom = preprocess_mri_volume(inp.data, inp.affine)
        return slices[:, None], geom.labels_to_input, warn
    img = normalize_intensity(inp.data, "p99.5" if model.task == "mri" else "p1-p99.8")
    h, w = img.shape
    step = model.step
    H, W = -(-h // step) * step, -(-w // step) * step
    x = np.zeros((1, 1, H, W), np.float32)
    x[0, 0, :h, :w] = img
    return x, (lambda lab: lab[0, :h, :w]), warn


#: Where the notebook and ``--backend pynq`` look for the overlay (``$MSDF_OVERLAY`` first).
DEFAULT_OVERLAY = "/home/xilinx/msdf_accel/msdf_accel.bit"


def _pynq_engine(overlay):
    """(EngineDriver factory(nbytes), EngineConfig, overlay folder) of the overlay's
    convolution engine; ConfigMismatch for an overlay of another top, register map or
    engine configuration (:func:`~msdf_unet.host.pynq_ip.check_overlay`)."""
    from .pynq_ip import ACCEL_CELL, check_overlay, pynq_module
    from .runtime import ConfigMismatch
    pynq = pynq_module()
    path = Path(overlay or os.environ.get("MSDF_OVERLAY") or DEFAULT_OVERLAY)
    if not path.is_file() or not path.with_suffix(".hwh").is_file():
        raise BackendUnavailable(f"the pynq backend needs the overlay {path} and its .hwh "
                                 f"(copy the folder written by `make bitstream`; or set MSDF_OVERLAY)")
    config = check_overlay(path.parent)
    from . import pynq_ip
    pynq_ip.MsdfAccelIP  # registers the driver class before the overlay is parsed
    ol = pynq.Overlay(str(path))
    ip = getattr(ol, ACCEL_CELL)

    def make_driver(nbytes):
        drv = ip.engine_driver(nbytes)
        if drv.config_digest32 != config.digest32:
            raise ConfigMismatch(f"the bitstream {path.name} holds engine config "
                                 f"{drv.config_digest32:#010x}, its {pynq_ip.ENGINE_CONFIG_FILE} says "
                                 f"{config.digest32:#010x}: the overlay folder mixes two builds")
        return drv
    return make_driver, config, path.parent


def _run_engine(model: Model, x: np.ndarray, backend: str, progress: bool, overlay=None,
                timeout_s: float = 30.0):
    """Labels and CYCLES of the convolution engine, one compiled image reused per slice."""
    from .compiler import compile_program, read_tensor, write_input
    from .engine_driver import input_codes, labels_from_head
    program = model.program
    if backend == "rtl":  # the cocotb runner lives in sim/ (imported here only, lazily)
        from ..sim.runtime.runner import RTL_CONFIG, run_on_rtl
        image = compile_program(program, RTL_CONFIG, policy="end", input_hw=tuple(x.shape[2:]))
        codes = input_codes(x, program.tensors[program.input].scale)
        heads, cycles = run_on_rtl(image, codes)
        return np.stack([labels_from_head(h) for h in heads]), None, int(cycles.sum())
    from .pynq_ip import SHIPPED_POLICY, find_image
    make_driver, config, folder = _pynq_engine(overlay)
    # the image shipped in the overlay folder, else compiled here (numpy, once per call)
    image = find_image(folder, program, config, tuple(x.shape[2:]), SHIPPED_POLICY) or \
        compile_program(program, config, policy=SHIPPED_POLICY, input_hw=tuple(x.shape[2:]))
    driver = make_driver(image.mem_size)
    scale = program.tensors[program.input].scale
    labels, cycles = [], 0
    bar = _tqdm()(total=len(x), desc=f"segment {backend}", unit="slice", disable=not progress, leave=False)
    for i in range(len(x)):
        bar.update(1)
        write_input(image, input_codes(x[i], scale))
        run = driver.run(image, timeout_s=timeout_s, irq=getattr(driver, "use_irq", False))
        labels.append(labels_from_head(read_tensor(image, image.output)))
        cycles += run.cycles
    bar.close()
    return np.stack(labels), None, cycles


class _NoBar:
    def __init__(self, *a, **k):
        pass

    def update(self, n=1):
        pass

    def close(self):
        pass


def _tqdm():
    """tqdm, or a silent stand-in where it is not installed (the board)."""
    try:
        from tqdm import tqdm
    except ImportError:
        return _NoBar
    return tqdm


def _have_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def _engine_frame(program, x: np.ndarray):
    """``frame(slice [1, H, W]) -> engine cycles`` of the convolution engine
    (:data:`~msdf_unet.host.engine_model.FIT_CONFIG`, END policy, PYNQ-Z2 memory model of
    :func:`msdf_unet.golden.conv.cycles.image_cycles`) on the program compiled once."""
    from .compiler import compile_program, write_input
    from .engine_driver import input_codes
    from .engine_model import FIT_CONFIG, engine_cycles
    image = compile_program(program, FIT_CONFIG, policy="end", input_hw=tuple(x.shape[2:]))
    scale = program.tensors[program.input].scale

    def frame(xi) -> int:
        write_input(image, input_codes(xi, scale))
        return sum(c.cycles for c in engine_cycles(image.memory, FIT_CONFIG, image.cmd_offset))
    return frame


def _run_backend(model: Model, x: np.ndarray, backend: str, batch_size: int, progress: bool,
                 overlay=None):
    """(labels [N, H, W] int64, probabilities [N, C, H, W] or None, cycles or None)."""
    if backend in ("rtl", "pynq"):
        require_engine(backend)
        return _run_engine(model, x, backend, progress, overlay)
    tqdm = _tqdm()
    bar = tqdm(total=len(x), desc=f"segment {backend}", unit="slice", disable=not progress, leave=False)
    labels, probs, cycles = [], [], 0
    try:
        if backend == "float":
            import torch
            net = model.float_model.eval()
            with torch.no_grad():
                for i in range(0, len(x), batch_size):
                    p = torch.softmax(net(torch.from_numpy(x[i:i + batch_size])), dim=1).numpy()
                    probs.append(p.astype(np.float32))
                    labels.append(p.argmax(1))
                    bar.update(len(p))
            return np.concatenate(labels).astype(np.int64), np.concatenate(probs), None
        program = model.program
        if backend == "int8" and not _have_torch():  # on the board: the numpy twin of hwexact
            from .cpu_int8 import predict_codes
            from .engine_driver import input_codes
            scale = program.tensors[program.input].scale
            for xi in x:
                labels.append(predict_codes(program, input_codes(xi, scale))[None])
                bar.update(1)
            return np.concatenate(labels).astype(np.int64), None, None
        from ..golden import hwexact
        frame = _engine_frame(program, x) if backend == "msdf" else None
        for i in range(0, len(x), batch_size):
            pred, _ = hwexact.predict(program, x[i:i + batch_size], _POLICY[backend],
                                      batch_size=batch_size)
            labels.append(pred)
            if frame is not None:
                cycles += sum(frame(xi) for xi in x[i:i + batch_size])
            bar.update(len(pred))
        return np.concatenate(labels).astype(np.int64), None, (cycles if backend == "msdf" else None)
    finally:
        bar.close()


def segment(source, model="mri_edge", backend: str = "int8", *, affine=None, batch_size: int = 8,
            progress: bool = True, slices=None, overlay=None) -> Segmentation:
    """Segment an image or a volume.

    Parameters
    ----------
    source : numpy array, or path of a PNG / NIfTI file (see :func:`read_input`)
    model : a :class:`Model`, a shipped name or a path (see :func:`load_model`)
    backend : one of :data:`BACKENDS`
    affine : voxel -> world matrix of an array volume (NIfTI files carry their own)
    batch_size : slices per batch
    progress : tqdm progress bar over the slices
    slices : optional slice indices (of the network's axial slices) to segment; the others
        are labelled 0 (fast previews and tests)
    overlay : ``pynq`` backend: the overlay's ``.bit`` (default ``$MSDF_OVERLAY`` or
        :data:`DEFAULT_OVERLAY`); ``engine_config.json`` beside it names the engine's
        configuration (default ``EngineConfig()``; the engine refuses a mismatch)

    Raises InputError (a ValueError) for unusable input, BackendUnavailable for a backend
    this build or machine lacks. Warns (UserWarning, also in ``.warnings``) when an MRI
    volume does not look skull-stripped.
    """
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, not {batch_size!r}")
    if backend in ("rtl", "pynq"):
        require_engine(backend)
    model = load_model(model)
    inp = read_input(source, affine)
    x, back, warn = _prepare(inp, model)
    for w in warn:
        warnings.warn(w, UserWarning, stacklevel=2)
    idx = np.arange(len(x))
    if slices is not None:
        idx = np.unique(np.asarray(slices, dtype=np.int64).reshape(-1))
        if idx.size == 0 or idx.min() < 0 or idx.max() >= len(x):
            raise InputError(f"slices must lie in [0, {len(x)}), not {slices!r}")
    if backend == "float":
        model.float_model  # loaded (or quantized and cached) before the clock starts
    else:
        model.program
    t0 = time.perf_counter()
    lab, prob, cycles = _run_backend(model, x[idx], backend, batch_size, progress, overlay)
    seconds = time.perf_counter() - t0
    full = np.zeros((len(x),) + lab.shape[1:], np.int64)
    full[idx] = lab
    labels = back(full)
    probabilities = None
    if prob is not None:
        pf = np.zeros((len(x),) + prob.shape[1:], np.float32)
        pf[:, 0] = 1.0  # slices not segmented: background
        pf[idx] = prob
        fg = [back(pf[:, c]) for c in range(1, pf.shape[1])]  # outside the field of view: 0
        probabilities = np.stack([1.0 - np.sum(fg, axis=0, dtype=np.float32), *fg]).astype(np.float32)
    return Segmentation(labels=labels.astype(np.int64), class_names=tuple(model.class_names),
                        backend=backend, model=model.name, source=inp.source, kind=inp.kind,
                        seconds=seconds, model_images=x[:, 0], model_labels=full, slices=idx,
                        probabilities=probabilities, cycles=cycles,
                        cycle_model=(None if cycles is None else
                                     "CYCLES register of the engine (clock cycles from START to done)"
                                     if backend in ("rtl", "pynq") else
                                     "engine clock cycles of the cycle model golden.conv.cycles."
                                     "image_cycles (3 cores x 72 lanes, END policy, PYNQ-Z2 memory), "
                                     "summed over the slices"),
                        affine=inp.affine, header=inp.header, file_type=inp.file_type, warnings=warn)
