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
    16      H     header: UTF-8 JSON object (see below)
    ...           zero padding up to a multiple of ALIGN bytes
    P       n     payload: the raw arrays, each starting at a multiple of ALIGN
                  bytes from P, C order, little-endian

Header keys: ``format`` ("msdf-unet program"), ``act_bits``, ``act_signed``, ``input``,
``output`` (tensor names), ``tensors`` (name -> {shape [C, H, W] at the nominal input
size, scale}), ``layers`` (list, execution order; see :class:`Layer`), ``arrays`` (name ->
{dtype, shape, offset, nbytes}), ``payload_bytes``, ``payload_sha256`` (hex digest of
the payload bytes) and ``meta`` (free-form JSON: task, classes, preset, calibration).

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

A corrupt or inconsistent file raises :class:`ProgramError` naming what is wrong.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

__all__ = [
    "MAGIC", "FORMAT_VERSION", "ALIGN", "ProgramError", "TensorInfo", "Layer", "Program",
    "save_program", "load_program", "program_to_bytes", "program_from_bytes",
]

MAGIC = b"MSDFUNET"
FORMAT_VERSION = 1
ALIGN = 64
_PREAMBLE = struct.Struct("<8sII")

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
    if p.act_bits != 8:
        _fail(f"act_bits must be 8, not {p.act_bits!r}")
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
    header = {
        "format": "msdf-unet program",
        "act_bits": program.act_bits,
        "act_signed": program.act_signed,
        "input": program.input,
        "output": program.output,
        "tensors": {n: {"shape": list(t.shape), "scale": t.scale} for n, t in program.tensors.items()},
        "layers": [dataclasses.asdict(l) for l in program.layers],
        "arrays": arrays,
        "payload_bytes": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "meta": program.meta,
    }
    hraw = json.dumps(header, indent=1, sort_keys=False).encode("utf-8")
    pre = _PREAMBLE.pack(MAGIC, FORMAT_VERSION, len(hraw))
    head = pre + hraw
    return head + b"\0" * _pad(len(head)) + payload


def _json_bool(v) -> bool:
    if not isinstance(v, bool):
        raise TypeError(f"act_signed must be a JSON boolean, not {v!r}")
    return v


def program_from_bytes(data: bytes, *, source: str = "<bytes>") -> Program:
    """Parse and validate a program; :class:`ProgramError` names what is wrong."""
    def fail(msg):
        raise ProgramError(f"{source}: {msg}")

    if len(data) < _PREAMBLE.size:
        fail(f"truncated: {len(data)} bytes, shorter than the {_PREAMBLE.size}-byte preamble")
    magic, version, hlen = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        fail(f"bad magic {magic!r}, expected {MAGIC!r} (not an msdf-unet program file)")
    if version != FORMAT_VERSION:
        fail(f"unknown format version {version}; this reader understands version {FORMAT_VERSION}")
    hend = _PREAMBLE.size + hlen
    if len(data) < hend:
        fail(f"truncated header: file has {len(data)} bytes, header needs {hend}")
    try:
        header = json.loads(data[_PREAMBLE.size:hend].decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        fail(f"header is not valid UTF-8 JSON: {e}")
    if not isinstance(header, dict) or header.get("format") != "msdf-unet program":
        fail("header is not an msdf-unet program header")
    try:
        pstart = hend + _pad(hend)
        pbytes = int(header["payload_bytes"])
        payload = data[pstart:]
        if len(payload) < pbytes:
            fail(f"truncated payload: {len(payload)} bytes present, header says {pbytes}")
        if len(payload) > pbytes:
            fail(f"{len(payload) - pbytes} unexpected trailing bytes after the payload")
        digest = hashlib.sha256(payload).hexdigest()
        if digest != header["payload_sha256"]:
            fail(f"payload checksum mismatch: SHA-256 {digest} != header {header['payload_sha256']}")
        arrays = {}
        for name, spec in header["arrays"].items():
            if spec["dtype"] not in _DTYPES:
                fail(f"array {name!r}: unsupported dtype {spec['dtype']!r}")
            dt = np.dtype(_DTYPES[spec["dtype"]]).newbyteorder("<")
            shape = tuple(int(s) for s in spec["shape"])
            if any(s < 0 for s in shape):
                fail(f"array {name!r}: negative dimension in shape {list(shape)}")
            n = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
            off, nb = int(spec["offset"]), int(spec["nbytes"])
            if nb != n:
                fail(f"array {name!r}: header shape {list(shape)} x {dt.itemsize} bytes = {n} "
                     f"bytes, but nbytes is {nb}")
            if off < 0 or off + nb > pbytes:
                fail(f"array {name!r}: bytes [{off}, {off + nb}) lie outside the {pbytes}-byte payload")
            arrays[name] = (np.frombuffer(payload, dtype=dt, count=n // dt.itemsize, offset=off)
                            .reshape(shape).astype(dt.newbyteorder("="), copy=True))
        tensors = {n: TensorInfo(shape=tuple(int(s) for s in t["shape"]), scale=float(t["scale"]))
                   for n, t in header["tensors"].items()}
        fields = {f.name for f in dataclasses.fields(Layer)}
        layers = []
        for i, l in enumerate(header["layers"]):
            unknown = set(l) - fields
            if unknown:
                fail(f"layer {i}: unknown keys {sorted(unknown)}")
            layers.append(Layer(**l))
        program = Program(layers=layers, tensors=tensors, arrays=arrays,
                          input=header["input"], output=header["output"],
                          act_bits=int(header["act_bits"]), act_signed=_json_bool(header["act_signed"]),
                          meta=header.get("meta", {}))
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, ProgramError):
            raise
        fail(f"malformed header: {type(e).__name__}: {e}")
    try:
        program.validate()
    except ProgramError as e:
        fail(f"inconsistent program: {e}")
    return program


def save_program(path, program: Program) -> Path:
    """Write ``program`` to ``path`` (parents created); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(program_to_bytes(program))
    return path


def load_program(path) -> Program:
    """Read and validate a program file; raises :class:`ProgramError` (a ValueError) when
    the file is corrupt (bad magic, unknown version, truncated, checksum mismatch, shapes
    inconsistent with the header) and OSError when it cannot be read."""
    path = Path(path)
    return program_from_bytes(path.read_bytes(), source=str(path))
