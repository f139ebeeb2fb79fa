"""The accelerator program file: a quantized U-Net as the hardware runs it.

One self-contained, versioned file (extension ``.msdfp``) carries everything the host
driver, the RTL tests and the hardware-exact model need: the layer list in execution
order, every tensor's shape and scale, INT8 weights, INT32 biases in accumulator units,
the bias pseudo-products folded into extra MMA lanes, and the per-channel requantization
multiplier and shift.

File layout (all integers little-endian)::

    offset  size  field
    0       8     magic  b"MSDFUNET"
    8       4     uint32 format version (FORMAT_VERSION)
    12      4     uint32 header length H in bytes
    16      32    SHA-256 of every byte after the preamble (header, padding, payload)
    48      H     header: UTF-8 JSON object (see below)
    ...           zero padding up to a multiple of ALIGN bytes
    P       n     payload: the raw arrays, each starting at a multiple of ALIGN
                  bytes from P, C order, little-endian

Header keys: ``format`` ("msdf-unet program"), ``act_bits``, ``act_signed``, ``input``,
``output`` (tensor names), ``tensors`` (name -> {shape [C, H, W] at the nominal input
size, scale}), ``layers`` (list, execution order; see :class:`Layer`), ``arrays`` (name ->
{dtype, shape, offset, nbytes}), ``payload_bytes`` and ``meta`` (free-form JSON: task,
classes, preset, calibration). Every value is type-checked when read: booleans must be
JSON booleans, integers JSON integers, scales finite positive numbers, shapes lists of
positive integers, and a duplicated key is refused.

Semantics of the layers (``op``):

``conv``     k x k convolution, stride 1, zero padding ``padding``, on INT8 codes:
             ``acc = sum x*w + bias`` (exact integer; bias folded into ``bias_lanes``
             pseudo-products ``bias_w * bias_x``). Non-head layers requantize:
             ``y = sat(floor((acc * mult + 2**(shift-1)) / 2**shift))`` (round half up),
             saturated to [0, 127] when ``relu`` else to [-128, 127].
             The head (``head`` true) keeps the INT32 accumulators.
``maxpool``  2x2, stride 2, on INT8 codes (scale unchanged).
``upsample`` x2 nearest neighbour on INT8 codes (scale unchanged).
``concat``   channel concatenation; all inputs share one scale (the quantizer ties
             them), so no requantization is needed.

A corrupt or inconsistent file raises :class:`ProgramError` naming what is wrong; a
version 1 file (whose checksum left the header unprotected) is refused with a note on
how to re-create it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import stat
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..fileio import write_bytes

__all__ = [
    "MAGIC", "FORMAT_VERSION", "ALIGN", "MAX_PROGRAM_BYTES", "ProgramError", "TensorInfo", "Layer", "Program",
    "save_program", "load_program", "program_to_bytes", "program_from_bytes",
]

MAGIC = b"MSDFUNET"
#: Version 2: the SHA-256 in the preamble covers the header and the payload. Version 1
#: (checksum over the payload only) is refused; re-create such files.
FORMAT_VERSION = 2
ALIGN = 64
#: Largest program file :func:`load_program` reads (bytes); it reads at most one more.
MAX_PROGRAM_BYTES = 512 * 1024 * 1024
_VERSION = struct.Struct("<8sI")
_PREAMBLE = struct.Struct("<8sII32s")
_FORMAT_NAME = "msdf-unet program"

#: dtypes allowed in the payload (stored little-endian)
_DTYPES = {"int8": np.int8, "int16": np.int16, "int32": np.int32, "int64": np.int64,
           "uint8": np.uint8, "float32": np.float32}
_OPS = ("conv", "maxpool", "upsample", "concat")


class ProgramError(ValueError):
    """A program file or :class:`Program` object is corrupt or inconsistent."""


@dataclass
class TensorInfo:
    """An activation tensor: ``shape`` is [C, H, W] at the program's nominal input size,
    ``scale`` the real value of one INT8 code (zero point 0)."""

    shape: tuple[int, int, int]
    scale: float


@dataclass
class Layer:
    """One step of the program.

    For ``conv`` layers the arrays are named ``<name>.weight`` (int8, [Cout, Cin, k, k],
    in [-127, 127]), ``<name>.bias`` (int32, [Cout], accumulator units = input scale x
    weight scale), ``<name>.bias_w`` / ``<name>.bias_x`` (int8, [Cout, bias_lanes]: the
    folded bias, ``sum(bias_w * bias_x) == bias``), ``<name>.w_scale`` (float32, [Cout])
    and for non-head layers ``<name>.mult`` / ``<name>.shift`` (int32, [Cout]).
    ``n_lanes`` = Cin*k*k data lanes (bias lanes not included).
    """

    name: str
    op: str
    inputs: list[str]
    output: str
    kernel: int = 0
    padding: int = 0
    relu: bool = False
    head: bool = False
    n_lanes: int = 0
    bias_lanes: int = 0

    def array(self, what: str) -> str:
        """Key of this layer's array ``what`` (weight, bias, bias_w, bias_x, mult, shift)."""
        return f"{self.name}.{what}"


@dataclass
class Program:
    """A quantized network in execution order (see the module docstring)."""

    layers: list[Layer]
    tensors: dict[str, TensorInfo]
    arrays: dict[str, np.ndarray]
    input: str
    output: str
    act_bits: int = 8
    act_signed: bool = True
    meta: dict = field(default_factory=dict)

    def conv_layers(self) -> list[Layer]:
        return [l for l in self.layers if l.op == "conv"]

    @property
    def head(self) -> Layer:
        return next(l for l in self.layers if l.op == "conv" and l.head)

    @property
    def n_classes(self) -> int:
        """Classes of the decision: 2 for a one-channel (sign) head, else its channels."""
        c = self.tensors[self.output].shape[0]
        return 2 if c == 1 else c

    @property
    def depth(self) -> int:
        """Number of 2x2 pools on the deepest path (input H and W must divide 2**depth)."""
        return int(round(np.log2(self.tensors[self.input].shape[1]
                                 / min(t.shape[1] for t in self.tensors.values()))))

    def validate(self) -> None:
        """Raise :class:`ProgramError` unless the program is internally consistent."""
        _validate(self)


# ----------------------------------------------------------------------------- checks

def _fail(msg: str):
    raise ProgramError(msg)


def _validate(p: Program) -> None:
    # the same types the loader insists on, so whatever save_program writes loads again
    if isinstance(p.act_bits, bool) or p.act_bits != 8 or not isinstance(p.act_bits, int):
        _fail(f"act_bits must be the integer 8, not {p.act_bits!r}")
    if not isinstance(p.act_signed, bool):
        _fail(f"act_signed must be a bool, not {p.act_signed!r}")
    if not (isinstance(p.input, str) and isinstance(p.output, str) and isinstance(p.meta, dict)):
        _fail(f"input/output must be tensor names and meta a dict, not {p.input!r}, "
              f"{p.output!r}, {type(p.meta).__name__}")
    if not p.layers:
        _fail("a program needs at least one layer")
    for i, l in enumerate(p.layers):
        for k, kind in _LAYER_TYPES.items():
            v = getattr(l, k)
            if not isinstance(v, kind) or (kind is int and isinstance(v, bool)):
                _fail(f"layer {i}: {k} must be {kind.__name__}, not {v!r}")
        if not all(isinstance(t, str) for t in l.inputs):
            _fail(f"layer {i}: inputs must be tensor names, not {l.inputs!r}")
    for name, t in p.tensors.items():
        if len(t.shape) != 3 or not all(isinstance(s, int) and s > 0 for s in t.shape):
            _fail(f"tensor {name!r}: shape must be 3 positive integers [C, H, W], not {t.shape!r}")
        if not (isinstance(t.scale, float) and np.isfinite(t.scale) and t.scale > 0):
            _fail(f"tensor {name!r}: scale must be a positive finite float, not {t.scale!r}")
    if p.input not in p.tensors:
        _fail(f"input tensor {p.input!r} is not declared in tensors")
    if p.output not in p.tensors:
        _fail(f"output tensor {p.output!r} is not declared in tensors")
    defined = {p.input}
    used_arrays = set()
    heads = 0
    for i, l in enumerate(p.layers):
        where = f"layer {i} ({l.name!r}, {l.op})"
        if l.op not in _OPS:
            _fail(f"{where}: unknown op {l.op!r}; expected one of {_OPS}")
        for t in l.inputs:
            if t not in defined:
                _fail(f"{where}: input tensor {t!r} is not produced by an earlier layer")
        if l.output in defined:
            _fail(f"{where}: output tensor {l.output!r} is produced twice")
        if l.output not in p.tensors:
            _fail(f"{where}: output tensor {l.output!r} is not declared in tensors")
        ins = [p.tensors[t] for t in l.inputs]
        out = p.tensors[l.output]
        if l.op != "concat" and len(ins) != 1:
            _fail(f"{where}: takes exactly one input, got {len(ins)}")
        if l.op == "conv":
            heads += l.head
            used_arrays |= _check_conv(p, l, ins[0], out, where)
        elif l.op == "maxpool" or l.op == "upsample":
            a = ins[0].shape
            exp = ((a[0], a[1] // 2, a[2] // 2) if l.op == "maxpool" else (a[0], a[1] * 2, a[2] * 2))
            if l.op == "maxpool" and (a[1] % 2 or a[2] % 2):
                _fail(f"{where}: input shape {list(a)} is not divisible by 2")
            if tuple(out.shape) != exp:
                _fail(f"{where}: output shape {list(out.shape)} inconsistent with input {list(a)}; expected {list(exp)}")
            if out.scale != ins[0].scale:
                _fail(f"{where}: output scale {out.scale} differs from input scale {ins[0].scale}")
        elif l.op == "concat":
            if len(ins) < 2:
                _fail(f"{where}: needs at least two inputs")
            if any(t.shape[1:] != ins[0].shape[1:] for t in ins):
                _fail(f"{where}: inputs differ in spatial size: {[list(t.shape) for t in ins]}")
            c = sum(t.shape[0] for t in ins)
            if tuple(out.shape) != (c, *ins[0].shape[1:]):
                _fail(f"{where}: output shape {list(out.shape)} is not the concatenation {[c, *ins[0].shape[1:]]}")
            if any(t.scale != out.scale for t in ins):
                _fail(f"{where}: inputs must share the output scale {out.scale}, got {[t.scale for t in ins]}")
        defined.add(l.output)
    if p.output not in defined:
        _fail(f"output tensor {p.output!r} is never produced")
    if heads != 1:
        _fail(f"a program needs exactly one head conv layer, found {heads}")
    last = p.layers[-1]
    if not (last.op == "conv" and last.head and last.output == p.output):
        _fail("the last layer must be the head conv producing the output tensor")
    extra = set(p.arrays) - used_arrays
    if extra:
        _fail(f"arrays not referenced by any layer: {sorted(extra)}")


def _get(p: Program, key: str, dtype, shape, where: str) -> np.ndarray:
    if key not in p.arrays:
        _fail(f"{where}: missing array {key!r}")
    a = p.arrays[key]
    if not isinstance(a, np.ndarray) or a.dtype != np.dtype(dtype):
        _fail(f"{where}: array {key!r} must be {np.dtype(dtype).name}, got "
              f"{getattr(a, 'dtype', type(a).__name__)}")
    if tuple(a.shape) != tuple(shape):
        _fail(f"{where}: array {key!r} has shape {list(a.shape)}, header/layer needs {list(shape)}")
    return a


def _check_conv(p: Program, l: Layer, xin: TensorInfo, out: TensorInfo, where: str) -> set:
    k = l.kernel
    if k not in (1, 3) or l.padding != k // 2:
        _fail(f"{where}: kernel {k} / padding {l.padding} unsupported (1/0 or 3/1)")
    cin, cout = xin.shape[0], out.shape[0]
    if tuple(out.shape[1:]) != tuple(xin.shape[1:]):
        _fail(f"{where}: output spatial size {list(out.shape[1:])} differs from input {list(xin.shape[1:])}")
    if l.n_lanes != cin * k * k:
        _fail(f"{where}: n_lanes {l.n_lanes} != Cin*k*k = {cin * k * k}")
    w = _get(p, l.array("weight"), np.int8, (cout, cin, k, k), where)
    if w.min(initial=0) < -127:
        _fail(f"{where}: weight -128 present; weights must lie in [-127, 127]")
    b = _get(p, l.array("bias"), np.int32, (cout,), where)
    if l.bias_lanes < 0:
        _fail(f"{where}: bias_lanes must be >= 0, not {l.bias_lanes}")
    bw = _get(p, l.array("bias_w"), np.int8, (cout, l.bias_lanes), where)
    bx = _get(p, l.array("bias_x"), np.int8, (cout, l.bias_lanes), where)
    if bw.min(initial=0) < -127:
        _fail(f"{where}: bias lane weight -128 present; must lie in [-127, 127]")
    if not p.act_signed and bx.min(initial=0) < 0:
        _fail(f"{where}: negative bias lane activation in unsigned mode")
    if not np.array_equal((bw.astype(np.int64) * bx).sum(axis=1), b.astype(np.int64)):
        _fail(f"{where}: bias lanes do not sum to the bias")
    ws = _get(p, l.array("w_scale"), np.float32, (cout,), where)
    if not (np.all(np.isfinite(ws)) and np.all(ws > 0)):
        _fail(f"{where}: w_scale must be positive and finite")
    keys = {l.array(s) for s in ("weight", "bias", "bias_w", "bias_x", "w_scale")}
    if l.head:
        if l.relu:
            _fail(f"{where}: the head has no ReLU")
        return keys
    m = _get(p, l.array("mult"), np.int32, (cout,), where)
    s = _get(p, l.array("shift"), np.int32, (cout,), where)
    if m.min(initial=1) < 0 or s.min(initial=1) < 1 or s.max(initial=1) > 62:
        _fail(f"{where}: mult must be >= 0 and shift in [1, 62]")
    return keys | {l.array("mult"), l.array("shift")}


# ----------------------------------------------------------------------- serialization

def _pad(n: int) -> int:
    return (-n) % ALIGN


def _header_dict(program: Program, arrays: dict, payload_bytes: int) -> dict:
    return {
        "format": _FORMAT_NAME,
        "act_bits": program.act_bits,
        "act_signed": program.act_signed,
        "input": program.input,
        "output": program.output,
        "tensors": {n: {"shape": list(t.shape), "scale": t.scale} for n, t in program.tensors.items()},
        "layers": [dataclasses.asdict(l) for l in program.layers],
        "arrays": arrays,
        "payload_bytes": payload_bytes,
        "meta": program.meta,
    }


def program_to_bytes(program: Program) -> bytes:
    """Serialize a validated program (see the module docstring for the layout)."""
    program.validate()
    arrays, chunks, offset = {}, [], 0
    for name in sorted(program.arrays):
        a = np.ascontiguousarray(program.arrays[name])
        dt = a.dtype.newbyteorder("<")
        raw = a.astype(dt, copy=False).tobytes()
        arrays[name] = {"dtype": a.dtype.name, "shape": list(a.shape), "offset": offset,
                        "nbytes": len(raw)}
        chunks.append(raw + b"\0" * _pad(len(raw)))
        offset += len(raw) + _pad(len(raw))
    payload = b"".join(chunks)
    hraw = json.dumps(_header_dict(program, arrays, len(payload)), indent=1, sort_keys=False,
                      allow_nan=False).encode("utf-8")
    body = hraw + b"\0" * _pad(_PREAMBLE.size + len(hraw)) + payload
    pre = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(hraw), hashlib.sha256(body).digest())
    return pre + body


# ------------------------------------------------------------------ strict header reading
#
# Every value of the header is checked for its JSON type and range before it is used, so
# a malformed header raises ProgramError naming the key and the bad value -- never a
# TypeError, OverflowError or a silently accepted "false" (a non-empty string is truthy).

#: Largest integer accepted anywhere in the header (dimensions, offsets, lane counts).
_MAX_INT = 2 ** 40


def _show(v) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _typed(v, kind: type, key: str):
    if kind is int:
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif kind is float:
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    else:
        ok = isinstance(v, kind)
    if not ok:
        what = {bool: "a JSON boolean (true/false)", int: "a JSON integer", float: "a JSON number",
                str: "a JSON string", list: "a JSON list", dict: "a JSON object"}[kind]
        raise ProgramError(f"header key {key!r} must be {what}, not {_show(v)}")
    return v


def _int(v, key: str, lo: int = 0, hi: int = _MAX_INT) -> int:
    _typed(v, int, key)
    if not lo <= v <= hi:
        raise ProgramError(f"header key {key!r} must be an integer in [{lo}, {hi}], not {_show(v)}")
    return v


def _scale(v, key: str) -> float:
    _typed(v, float, key)
    try:
        f = float(v)
    except OverflowError:
        f = float("inf")
    if not (math.isfinite(f) and f > 0):
        raise ProgramError(f"header key {key!r} must be a finite positive number, not {_show(v)}")
    return f


def _obj(v, key: str, required: tuple, optional: tuple = ()) -> dict:
    _typed(v, dict, key)
    missing = [k for k in required if k not in v]
    if missing:
        raise ProgramError(f"header key {key!r} lacks {missing}")
    unknown = sorted(set(v) - set(required) - set(optional))
    if unknown:
        raise ProgramError(f"header key {key!r} has unknown keys {unknown}")
    return v


def _shape(v, key: str, ndim: int | None = None, lo: int = 1) -> tuple[int, ...]:
    _typed(v, list, key)
    if ndim is not None and len(v) != ndim:
        raise ProgramError(f"header key {key!r} must list {ndim} dimensions, not {_show(v)}")
    if len(v) > 8:
        raise ProgramError(f"header key {key!r} has {len(v)} dimensions; at most 8 are supported")
    dims = tuple(_int(s, f"{key}[{i}]", lo, 2 ** 31) for i, s in enumerate(v))
    return dims


_TOP_KEYS = ("format", "act_bits", "act_signed", "input", "output", "tensors", "layers",
             "arrays", "payload_bytes")
_LAYER_TYPES = {"name": str, "op": str, "inputs": list, "output": str, "kernel": int,
                "padding": int, "relu": bool, "head": bool, "n_lanes": int, "bias_lanes": int}


def _no_duplicates(pairs):
    out = {}
    for k, v in pairs:
        if k in out:
            raise ProgramError(f"header key {k!r} appears twice")
        out[k] = v
    return out


def _parse_header(raw: bytes) -> dict:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProgramError(f"header is not valid UTF-8 JSON: {e}") from None
    try:
        return json.loads(text, object_pairs_hook=_no_duplicates)
    except RecursionError:
        raise ProgramError("header is not valid UTF-8 JSON: nested too deeply") from None
    except ProgramError:
        raise
    except ValueError as e:  # JSONDecodeError, and integers longer than Python converts
        raise ProgramError(f"header is not valid UTF-8 JSON: {e}") from None


def _read_arrays(header: dict, payload: bytes, pbytes: int) -> dict[str, np.ndarray]:
    arrays = {}
    for name, spec in _typed(header["arrays"], dict, "arrays").items():
        key = f"arrays.{name}"
        _obj(spec, key, ("dtype", "shape", "offset", "nbytes"))
        dtype = _typed(spec["dtype"], str, f"{key}.dtype")
        if dtype not in _DTYPES:
            raise ProgramError(f"array {name!r}: unsupported dtype {_show(dtype)}; expected one of "
                               f"{sorted(_DTYPES)}")
        dt = np.dtype(_DTYPES[dtype]).newbyteorder("<")
        shape = _shape(spec["shape"], f"{key}.shape", lo=0)
        n = math.prod(shape) * dt.itemsize
        off = _int(spec["offset"], f"{key}.offset")
        nb = _int(spec["nbytes"], f"{key}.nbytes")
        if nb != n:
            raise ProgramError(f"array {name!r}: header shape {list(shape)} x {dt.itemsize} bytes = "
                               f"{n} bytes, but nbytes is {nb}")
        if off + nb > pbytes:
            raise ProgramError(f"array {name!r}: bytes [{off}, {off + nb}) lie outside the "
                               f"{pbytes}-byte payload")
        arrays[name] = (np.frombuffer(payload, dtype=dt, count=n // dt.itemsize, offset=off)
                        .reshape(shape).astype(dt.newbyteorder("="), copy=True))
    return arrays


def _read_layer(i: int, l) -> Layer:
    key = f"layers[{i}]"
    _obj(l, key, tuple(_LAYER_TYPES))
    for k, kind in _LAYER_TYPES.items():
        _typed(l[k], kind, f"{key}.{k}")
    for k in ("kernel", "padding", "n_lanes", "bias_lanes"):
        _int(l[k], f"{key}.{k}")
    if l["op"] not in _OPS:
        raise ProgramError(f"header key '{key}.op' must be one of {_OPS}, not {_show(l['op'])}")
    for j, t in enumerate(l["inputs"]):
        _typed(t, str, f"{key}.inputs[{j}]")
    return Layer(**{**l, "inputs": list(l["inputs"])})


def _read_program(header, payload: bytes) -> Program:
    _obj(header, "<header>", _TOP_KEYS, ("meta",))
    if header["format"] != _FORMAT_NAME:
        raise ProgramError(f"header is not an msdf-unet program header (format {_show(header['format'])})")
    pbytes = _int(header["payload_bytes"], "payload_bytes")
    if len(payload) < pbytes:
        raise ProgramError(f"truncated payload: {len(payload)} bytes present, header says {pbytes}")
    if len(payload) > pbytes:
        raise ProgramError(f"{len(payload) - pbytes} unexpected trailing bytes after the payload")
    arrays = _read_arrays(header, payload, pbytes)
    tensors = {}
    for name, t in _typed(header["tensors"], dict, "tensors").items():
        key = f"tensors.{name}"
        _obj(t, key, ("shape", "scale"))
        tensors[name] = TensorInfo(shape=_shape(t["shape"], f"{key}.shape", ndim=3),
                                   scale=_scale(t["scale"], f"{key}.scale"))
    layers = [_read_layer(i, l) for i, l in enumerate(_typed(header["layers"], list, "layers"))]
    act_bits = _int(header["act_bits"], "act_bits", 2, 16)
    return Program(layers=layers, tensors=tensors, arrays=arrays,
                   input=_typed(header["input"], str, "input"),
                   output=_typed(header["output"], str, "output"),
                   act_bits=act_bits, act_signed=_typed(header["act_signed"], bool, "act_signed"),
                   meta=_typed(header.get("meta", {}), dict, "meta"))


def program_from_bytes(data: bytes, *, source: str = "<bytes>") -> Program:
    """Parse and validate a program; :class:`ProgramError` names what is wrong."""
    def fail(msg):
        raise ProgramError(f"{source}: {msg}")

    if len(data) < _VERSION.size:
        fail(f"truncated: {len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    magic, version = _VERSION.unpack_from(data)
    if magic != MAGIC:
        fail(f"bad magic {magic!r}, expected {MAGIC!r} (not an msdf-unet program file)")
    if version < FORMAT_VERSION:
        fail(f"format version {version} is no longer read (its checksum does not cover the "
             f"header); this reader needs version {FORMAT_VERSION}. Re-create the program: "
             f"`msdf-unet eval` writes <task>.msdfp, or quantize the model with "
             f"msdf_unet.golden.quant.quantize_model and save it with save_program")
    if version != FORMAT_VERSION:
        fail(f"unknown format version {version}; this reader understands version {FORMAT_VERSION}")
    if len(data) < _PREAMBLE.size:
        fail(f"truncated: {len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    _, _, hlen, digest = _PREAMBLE.unpack_from(data)
    hend = _PREAMBLE.size + hlen
    if len(data) < hend:
        fail(f"truncated header: file has {len(data)} bytes, header needs {hend}")
    pstart = hend + _pad(hend)
    if len(data) < pstart:
        fail(f"truncated: file has {len(data)} bytes, the payload starts at {pstart}")
    got = hashlib.sha256(memoryview(data)[_PREAMBLE.size:]).digest()
    bad_sum = (f"checksum mismatch: SHA-256 of header and payload {got.hex()} != preamble "
               f"{digest.hex()} (the file was changed or damaged)")
    try:
        header = _parse_header(data[_PREAMBLE.size:hend])
    except ProgramError as e:
        fail(bad_sum if got != digest else f"malformed header: {e}")
    # a cut or extended file is named as such rather than as a checksum mismatch
    pbytes = header.get("payload_bytes") if isinstance(header, dict) else None
    if isinstance(pbytes, int) and not isinstance(pbytes, bool) and pbytes >= 0:
        if len(data) - pstart < pbytes:
            fail(f"truncated payload: {len(data) - pstart} bytes present, header says {pbytes}")
        if len(data) - pstart > pbytes:
            fail(f"{len(data) - pstart - pbytes} unexpected trailing bytes after the payload")
    if got != digest:
        fail(bad_sum)
    try:
        program = _read_program(header, data[pstart:])
    except ProgramError as e:
        fail(f"malformed header: {e}")
    try:
        program.validate()
    except ProgramError as e:
        fail(f"inconsistent program: {e}")
    return program


def save_program(path, program: Program) -> Path:
    """Write ``program`` to ``path`` atomically (parents created); returns the path.

    The bytes go to a temporary file in the same folder that replaces ``path`` only when
    complete, so a failure or Ctrl-C never leaves a truncated program behind.
    """
    return write_bytes(Path(path), program_to_bytes(program))


def load_program(path) -> Program:
    """Read and validate a program file.

    Raises
    ------
    ProgramError
        (a ValueError) when the file is corrupt (bad magic, old or unknown version,
        truncated, checksum mismatch, malformed header, shapes inconsistent with the
        header), is not a regular file (a FIFO, a device such as ``/dev/zero``, a
        directory), or is larger than :data:`MAX_PROGRAM_BYTES` (512 MiB; at most that
        many bytes plus one are read).
    OSError
        When the file cannot be opened or read.
    """
    path = Path(path)
    # O_NONBLOCK: opening a FIFO for reading must not wait for a writer
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ProgramError(f"{path}: not a regular file (a program is a .msdfp file)")
        if st.st_size > MAX_PROGRAM_BYTES:
            raise ProgramError(f"{path}: {st.st_size} bytes, more than the {MAX_PROGRAM_BYTES}-byte "
                               f"limit of a program file")
        chunks, n = [], 0
        while n <= MAX_PROGRAM_BYTES:
            chunk = os.read(fd, min(1 << 24, MAX_PROGRAM_BYTES + 1 - n))
            if not chunk:
                break
            chunks.append(chunk)
            n += len(chunk)
    finally:
        os.close(fd)
    if n > MAX_PROGRAM_BYTES:
        raise ProgramError(f"{path}: more than the {MAX_PROGRAM_BYTES}-byte limit of a program file")
    return program_from_bytes(b"".join(chunks), source=str(path))
