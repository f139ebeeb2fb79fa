"""Compiler: a ``.msdfp`` program + an :class:`EngineConfig` -> a :class:`CompiledImage`.

Board-side safe: numpy only (the program module it reads is plain numpy too). The
contract it follows (descriptor layout, memory rules, checks) is
:mod:`msdf_unet.spec.engine`; ``docs/compiler.md`` shows the layout.

Image layout (byte offsets from ``MEM_BASE``, every region :data:`TENSOR_ALIGN`-aligned)::

    0               command list: one 64-byte descriptor per layer (concat has none), END
    status_offset   status area: one 32-byte record per command (written by the engine)
    params_offset   conv parameter blocks, in layer order: cout channel records each
    arena_offset    activation arena: every tensor allocation (live ranges reuse memory)
    mem_size        end of the image

Tensors: a concat output is one allocation and its inputs are views at adjacent channel
ranges of it (no copy, no command); an allocation is reserved from the step that first
writes into it until its last reader (so skip tensors survive the encoder), then reused.
The input tensor is written by the host before the run (:func:`write_input`); every
other tensor by the engine. The head's output is INT32.

The result is deterministic (same program, config and options -> identical bytes) and
versioned (:data:`~msdf_unet.spec.engine.FORMAT_VERSION`); :func:`save_image` /
:func:`load_image` store it with a header (magic, version, JSON with the EngineConfig
and its digest) and SHA-256 checksums.
"""
from __future__ import annotations

import hashlib
import json
import struct
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..golden.arith.mma_operands import weight_bounds
from ..golden.program import Layer, Program, load_program
from ..spec import engine as E

__all__ = ["CompileError", "ImageFormatError", "TensorPlacement", "Command", "CompiledImage",
           "compile_program", "pack_channel_records", "parse_policy", "write_input", "read_tensor", "save_image",
           "load_image", "image_to_bytes", "image_from_bytes", "MAGIC"]

MAGIC = b"MSDFIMG\0"
_PREAMBLE = struct.Struct("<8sII")
_OPS = {"conv": E.Op.CONV, "maxpool": E.Op.MAXPOOL, "upsample": E.Op.UPSAMPLE}


class CompileError(ValueError):
    """The program does not fit the engine configuration (or cannot be laid out)."""


class ImageFormatError(ValueError):
    """A compiled image file is corrupt, of another version or for another engine."""


@dataclass(frozen=True)
class TensorPlacement:
    """Where a tensor lives: ``channels x height x width`` elements of ``elem_bytes``
    bytes from ``offset`` (rows ``row_stride`` bytes apart, planes ``plane_stride``)."""

    name: str
    offset: int
    channels: int
    height: int
    width: int
    elem_bytes: int
    row_stride: int
    plane_stride: int

    @property
    def nbytes(self) -> int:
        return self.channels * self.plane_stride

    @property
    def dtype(self) -> str:
        return "int8" if self.elem_bytes == 1 else "int32"


@dataclass(frozen=True)
class Command:
    """One command of the list: its ``index``, the ``layer`` it runs (``"END"`` for the
    last), the descriptor's byte ``offset``, and its decoded ``fields``."""

    index: int
    layer: str
    offset: int
    fields: dict

    @property
    def op(self) -> E.Op:
        return E.Op(self.fields["op"])

    @property
    def status_offset(self) -> int:
        return self.fields["status_offset"]


@dataclass
class CompiledImage:
    """A program compiled for one engine configuration.

    Attributes
    ----------
    config : EngineConfig
    memory : bytearray
        The whole image (``mem_size`` bytes); copy it to the board buffer as is.
    cmd_offset : int
        Offset of the first descriptor (register ``CMD_OFFSET``).
    commands : list of Command
    tensors : dict of str -> TensorPlacement
    input, output : str
        Tensor names of the input (written by the host) and the head output (INT32).
    policy : str
        Run policy compiled in (``full``, ``end``, ``truncate:<p>``).
    regions : dict
        ``status``, ``params``, ``arena``: (offset, bytes) of each region.
    meta : dict
        The program's meta plus ``program_sha256`` and ``input_hw``.
    """

    config: E.EngineConfig
    memory: bytearray
    cmd_offset: int
    commands: list[Command]
    tensors: dict[str, TensorPlacement]
    input: str
    output: str
    policy: str
    regions: dict = field(default_factory=dict)
    meta: dict = field(default_factory=dict)

    @property
    def mem_size(self) -> int:
        return len(self.memory)

    def command_bytes(self, index: int) -> bytes:
        c = self.commands[index]
        return bytes(self.memory[c.offset:c.offset + E.DESCRIPTOR_BYTES])

    def statuses(self) -> list[dict]:
        """Decoded status record of every command (as the engine left them)."""
        return [E.decode_status(self.memory[c.status_offset:c.status_offset + E.STATUS_BYTES])
                for c in self.commands]

    def clear_status(self) -> None:
        """Zero the status area (before a run)."""
        off, n = self.regions["status"]
        self.memory[off:off + n] = bytes(n)

    def summary(self) -> str:
        """Human-readable table of the commands and tensors."""
        lines = [f"engine config {self.config.digest[:16]}  image {self.mem_size} bytes  "
                 f"policy {self.policy}  commands {len(self.commands)}"]
        for k, (o, n) in self.regions.items():
            lines.append(f"  region {k:7s} @{o:#010x} {n} bytes")
        for c in self.commands:
            f = c.fields
            desc = ", ".join(f"{k}={v}" for k, v in f.items()
                             if v and k not in ("op", "reserved", "status_offset"))
            lines.append(f"  [{c.index:2d}] {c.op.name:8s} {c.layer:16s} {desc}")
        for t in self.tensors.values():
            lines.append(f"  tensor {t.name:16s} @{t.offset:#010x} {t.channels}x{t.height}x{t.width}"
                         f" {t.dtype} row {t.row_stride} plane {t.plane_stride}")
        return "\n".join(lines)


# ------------------------------------------------------------------------- policy

def parse_policy(text: str) -> tuple[str, int | None]:
    """``full`` / ``msdf-full`` / ``end`` / ``truncate:<p>`` (or ``p<p>``) -> (mode, p)."""
    if not isinstance(text, str):
        raise TypeError(f"policy must be a string, not {type(text).__name__}")
    t = text.strip().lower()
    if t in ("full", "msdf-full"):
        return "full", None
    if t == "end":
        return "end", None
    for pre in ("truncate:", "trunc:", "p"):
        if t.startswith(pre) and t[len(pre):].isdigit() and int(t[len(pre):]) >= 1:
            return "truncate", int(t[len(pre):])
    raise ValueError(f"unknown policy {text!r}; use full, end or truncate:<p> (p >= 1)")


# ------------------------------------------------------------------------- layout

def _align(n: int, a: int = E.TENSOR_ALIGN) -> int:
    return -(-n // a) * a


def _shapes(program: Program, input_hw) -> dict[str, tuple[int, int, int]]:
    c0, h0, w0 = program.tensors[program.input].shape
    if input_hw is None:
        return {n: tuple(t.shape) for n, t in program.tensors.items()}
    h, w = input_hw
    step = 2 ** program.depth
    if (isinstance(h, bool) or isinstance(w, bool) or not isinstance(h, int) or not isinstance(w, int)
            or h < step or w < step or h % step or w % step):
        raise ValueError(f"input_hw must be two positive integers divisible by {step}, not {input_hw!r}")
    out = {}
    for n, t in program.tensors.items():
        c, th, tw = t.shape
        # every tensor is the input scaled by a power of two (pool / upsample)
        out[n] = (c, h * th // h0, w * tw // w0)
    return out


def _groups(program: Program):
    """tensor -> (root allocation, channel offset): concat inputs are views of the concat."""
    parent = {}
    for i, l in enumerate(program.layers):
        if l.op != "concat":
            continue
        c = 0
        for t in l.inputs:
            if t in parent:
                raise CompileError(f"layer {i} ({l.name!r}): tensor {t!r} is an input of two "
                                   f"concats; it cannot live in both without a copy")
            parent[t] = (l.output, c)
            c += program.tensors[t].shape[0]

    def root(t):
        ch = 0
        while t in parent:
            t, c = parent[t]
            ch += c
        return t, ch
    return {t: root(t) for t in program.tensors}


def _allocate(requests: list[tuple[str, int, int, int]], base: int) -> tuple[dict[str, int], int]:
    """First-fit placement of ``(name, bytes, first_step, last_step)`` requests (in order)
    so that allocations live at the same time never overlap. Returns offsets and the end."""
    placed: list[tuple[int, int, int, int]] = []   # (offset, end, first, last)
    out, top = {}, base
    for name, size, s, e in requests:
        busy = sorted((o, oe) for o, oe, ps, pe in placed if not (pe < s or e < ps))
        off = base
        for o, oe in busy:
            if off + size <= o:
                break
            off = max(off, _align(oe))
        out[name] = off
        placed.append((off, off + size, s, e))
        top = max(top, off + size)
    return out, _align(top)


def pack_channel_records(w, bias_w, bias_x, mult, shift) -> tuple[bytes, int]:
    """A conv parameter block: one :data:`~msdf_unet.spec.engine.CHANNEL_RECORD` per output
    channel, and the record size in bytes.

    Parameters
    ----------
    w : array [cout, cin, k, k]
        INT8 weights.
    bias_w, bias_x : array [cout, bias_lanes]
        Folded bias-lane weights and activations.
    mult, shift : array [cout]
        Requantization (zeros for the head).
    """
    w = np.asarray(w, np.int64)
    cout, cin, k = w.shape[0], w.shape[1], w.shape[2]
    bw, bx = np.asarray(bias_w, np.int64), np.asarray(bias_x, np.int64)
    lay, rec = E.channel_record_layout(cin, k, bw.shape[1])
    block = np.zeros((cout, rec), np.uint8)
    wpos, wneg = weight_bounds(np.concatenate([w.reshape(cout, -1), bw], axis=1))
    cols = {
        "weight": w.reshape(cout, -1), "bias_w": bw, "bias_x": bx,
        "mult": np.asarray(mult, np.int64).reshape(cout, 1),
        "shift": np.asarray(shift, np.int64).reshape(cout, 1),
        "wpos": wpos.reshape(cout, 1), "wneg": wneg.reshape(cout, 1),
    }
    for name, (off, dt, n) in lay.items():
        v = np.ascontiguousarray(cols[name].astype("<i1" if dt == "int8" else "<i4"))
        assert v.shape == (cout, n), (name, v.shape, n)
        block[:, off:off + v.itemsize * n] = v.view(np.uint8).reshape(cout, -1)
    return block.tobytes(), rec


def _param_block(program: Program, l: Layer, cin: int) -> tuple[bytes, int]:
    """The conv layer's parameter block (cout channel records) and the record size."""
    w = program.arrays[l.array("weight")]
    cout = w.shape[0]
    assert w.shape[1:] == (cin, l.kernel, l.kernel), (l.name, w.shape, cin)
    zero = np.zeros(cout, np.int64)
    return pack_channel_records(w, program.arrays[l.array("bias_w")], program.arrays[l.array("bias_x")],
                                zero if l.head else program.arrays[l.array("mult")],
                                zero if l.head else program.arrays[l.array("shift")])


def compile_program(program: Program, config: E.EngineConfig = E.EngineConfig(), *,
                    policy: str = "full", sign_head: bool = True,
                    input_hw: tuple[int, int] | None = None,
                    reuse_memory: bool = True) -> CompiledImage:
    """Compile ``program`` for ``config``.

    Parameters
    ----------
    program : Program
        A validated program (``golden/program.py``).
    config : EngineConfig
    policy : str
        ``full``, ``end`` or ``truncate:<p>`` (as ``golden.hwexact.RunPolicy``).
    sign_head : bool
        ``end`` only: a one-channel head uses ``SIGN_ONLY``.
    input_hw : (int, int), optional
        Input size (default: the program's nominal size); divisible by ``2**depth``.
    reuse_memory : bool
        False: every allocation stays reserved for the whole run, so every layer's output
        can be read from the image afterwards (tests, debugging); True (default): an
        allocation is reused after its last reader.

    Raises
    ------
    CompileError
        The program exceeds the configuration; the message names the layer and the limit.
    """
    if not isinstance(program, Program):
        raise TypeError(f"program must be a Program, not {type(program).__name__}")
    if not isinstance(config, E.EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {type(config).__name__}")
    program.validate()
    if not program.act_signed:
        raise CompileError("the engine runs signed INT8 activations; this program has act_signed=False")
    mode, digits = parse_policy(policy)
    shapes = _shapes(program, input_hw)
    groups = _groups(program)
    elem = {t: 1 for t in program.tensors}
    elem[program.output] = E.HEAD_ELEM_BYTES

    layers = [(i, l) for i, l in enumerate(program.layers) if l.op != "concat"]
    n_cmd = len(layers) + 1
    cmd_bytes = n_cmd * E.DESCRIPTOR_BYTES
    status_off = _align(cmd_bytes)
    params_off = _align(status_off + n_cmd * E.STATUS_BYTES)

    # parameter blocks
    blocks, recs, off = {}, {}, params_off
    for i, l in layers:
        if l.op == "conv":
            cin = shapes[l.inputs[0]][0]
            data, rec = _param_block(program, l, cin)
            blocks[l.name] = (off, data)
            recs[l.name] = rec
            off = _align(off + len(data))
    arena_off = off

    # tensor allocations: live from the first write into the root to its last read
    first, last = {}, {}
    first[groups[program.input][0]] = -1
    for i, l in enumerate(program.layers):
        if l.op == "concat":
            continue
        r = groups[l.output][0]
        first.setdefault(r, i)
        for t in l.inputs:
            last[groups[t][0]] = max(last.get(groups[t][0], -1), i)
    # concat outputs are read through their root as well
    for i, l in enumerate(program.layers):
        if l.op == "concat":
            for t in (l.output,):
                r = groups[t][0]
                last[r] = max(last.get(r, -1), i)
    last[groups[program.output][0]] = len(program.layers)
    requests = []
    for r in sorted(first, key=lambda r: (first[r], r)):
        c, h, w = shapes[r]
        life = (first[r], last.get(r, first[r])) if reuse_memory else (-1, len(program.layers))
        requests.append((r, E.tensor_bytes(c, h, w, elem[r]), *life))
    offsets, mem_size = _allocate(requests, arena_off)
    if mem_size > config.max_image_bytes:
        raise CompileError(f"image of {mem_size} bytes exceeds the engine's address limit of "
                           f"{config.max_image_bytes} bytes (addr_bits={config.addr_bits})")
    tensors = {}
    for t in program.tensors:
        r, ch = groups[t]
        c, h, w = shapes[t]
        ps = E.plane_stride(h, w, elem[t])
        tensors[t] = TensorPlacement(t, offsets[r] + ch * ps, c, h, w, elem[t],
                                     E.row_stride(w, elem[t]), ps)

    memory = bytearray(mem_size)
    commands = []
    for idx, (i, l) in enumerate(layers):
        src, dst = tensors[l.inputs[0]], tensors[l.output]
        f = dict(op=_OPS[l.op], cin=src.channels, height=src.height, width=src.width,
                 in_offset=src.offset, out_offset=dst.offset,
                 status_offset=status_off + idx * E.STATUS_BYTES)
        where = f"layer {i} ({l.name!r}, {l.op})"
        if l.op == "conv":
            cout = dst.channels
            lanes = src.channels * l.kernel ** 2 + l.bias_lanes
            pol, p = E.layer_policy(relu=l.relu, head=l.head, cout=cout, mode=mode, digits=digits,
                                    sign_head=sign_head, lanes=lanes)
            rec = recs[l.name]
            if rec > config.weight_buffer_bytes:
                raise CompileError(f"{where}: one output channel's parameters ({rec} bytes) exceed "
                                   f"the weight buffer (weight_buffer_bytes={config.weight_buffer_bytes})")
            tile = min(cout, config.weight_buffer_bytes // rec, 0xFFFF)
            f.update(policy=pol, digits=p, relu=l.relu, head=l.head, kernel=l.kernel,
                     padding=l.padding, cout=cout, bias_lanes=l.bias_lanes, cout_tile=tile,
                     param_offset=blocks[l.name][0])
            _limits(where, f, config, lanes)
        try:
            raw = E.encode_descriptor(**f)
        except E.DescriptorError as e:
            raise CompileError(f"{where}: {e}") from None
        d = E.decode_descriptor(raw)
        code, why = E.check_descriptor(d, config, mem_size)
        if code != E.ErrorCode.NONE:
            raise CompileError(f"{where}: the engine would refuse this command ({code.name}): {why}")
        memory[idx * E.DESCRIPTOR_BYTES:(idx + 1) * E.DESCRIPTOR_BYTES] = raw
        commands.append(Command(idx, l.name, idx * E.DESCRIPTOR_BYTES, d))
    end_idx = len(layers)
    raw = E.encode_descriptor(op=E.Op.END, status_offset=status_off + end_idx * E.STATUS_BYTES)
    memory[end_idx * E.DESCRIPTOR_BYTES:(end_idx + 1) * E.DESCRIPTOR_BYTES] = raw
    commands.append(Command(end_idx, "END", end_idx * E.DESCRIPTOR_BYTES, E.decode_descriptor(raw)))
    for off, data in blocks.values():
        memory[off:off + len(data)] = data

    pol_text = {"full": "full", "end": "end"}.get(mode) or f"truncate:{digits}"
    meta = dict(program.meta)
    c_in, h_in, w_in = shapes[program.input]
    meta.update(input_hw=[h_in, w_in], sign_head=bool(sign_head), reuse_memory=bool(reuse_memory),
                act_signed=bool(program.act_signed),
                layers=[l.name for _, l in layers])
    return CompiledImage(config=config, memory=memory, cmd_offset=0, commands=commands,
                         tensors=tensors, input=program.input, output=program.output,
                         policy=pol_text,
                         regions={"commands": (0, cmd_bytes),
                                  "status": (status_off, n_cmd * E.STATUS_BYTES),
                                  "params": (params_off, arena_off - params_off),
                                  "arena": (arena_off, mem_size - arena_off)},
                         meta=meta)


def _limits(where: str, f: dict, c: E.EngineConfig, lanes: int) -> None:
    """Clear errors naming the limit before the generic descriptor check."""
    checks = [
        (f["cin"], c.max_channels, "input channels", "max_channels"),
        (f["cout"], c.max_channels, "output channels", "max_channels"),
        (f["width"], c.max_width, "width", "max_width"),
        (f["height"], c.max_height, "height", "max_height"),
        (f["bias_lanes"], c.max_bias_lanes, "bias lanes", "max_bias_lanes"),
        (lanes, c.max_fan_in, "fan-in (cin*k*k + bias lanes)", "max_fan_in"),
        (E.line_buffer_bytes_needed(f["cin"], f["width"], f["kernel"]), c.line_buffer_bytes,
         "line buffer bytes needed", "line_buffer_bytes"),
        # one output channel's weights, lanes per row, in each core's weight buffer
        (-(-f["cin"] * f["kernel"] ** 2 // c.lanes), c.weight_rows,
         "weight buffer rows of one output channel (ceil(cin*k*k / lanes))", "weight_rows",
         f" (weight_buffer_bytes={c.weight_buffer_bytes} // lanes={c.lanes})"),
        # one output row (INT32 for the head) in each core's output-row buffer
        (E.row_stride(f["width"], E.HEAD_ELEM_BYTES if f["head"] else 1), c.out_buffer_bytes,
         "output row bytes", "out_buffer_bytes"),
    ]
    for v, mx, what, name, *why in checks:
        if v > mx:
            raise CompileError(f"{where}: {what} {v} exceed the engine limit {name}={mx}{''.join(why)}")


# ------------------------------------------------------------------------- tensor I/O

def _view(image: CompiledImage, t: TensorPlacement) -> np.ndarray:
    dt = np.dtype("<i1" if t.elem_bytes == 1 else "<i4")
    raw = np.frombuffer(image.memory, np.uint8, count=t.nbytes, offset=t.offset)
    return raw.view(dt).reshape(t.channels, t.height, t.row_stride // t.elem_bytes)


def write_input(image: CompiledImage, codes) -> None:
    """Write INT8 input codes ``[C, H, W]`` (or ``[1, C, H, W]``) into the image's input
    tensor (padding bytes zeroed). ValueError on a wrong shape or codes outside int8."""
    x = np.asarray(codes)
    t = image.tensors[image.input]
    if x.ndim == 4 and x.shape[0] == 1:
        x = x[0]
    if x.shape != (t.channels, t.height, t.width):
        raise ValueError(f"input codes must have shape {(t.channels, t.height, t.width)} "
                         f"(or with a leading 1), not {np.asarray(codes).shape}")
    if x.dtype.kind not in "iu" and not (x.dtype.kind == "f" and np.array_equal(x, np.round(x))):
        raise ValueError(f"input codes must be integers, not {x.dtype}")
    if x.size and (x.min() < -128 or x.max() > 127):
        raise ValueError(f"input codes must lie in [-128, 127], got [{x.min()}, {x.max()}]")
    buf = np.zeros((t.channels, t.height, t.row_stride), np.int8)
    buf[:, :, :t.width] = x.astype(np.int8)
    image.memory[t.offset:t.offset + t.nbytes] = buf.tobytes()


def read_tensor(image: CompiledImage, name: str) -> np.ndarray:
    """Tensor ``name`` as a ``[C, H, W]`` numpy array (int8, or int32 for the head),
    padding columns dropped (a copy)."""
    if name not in image.tensors:
        raise KeyError(f"no tensor {name!r}; tensors: {sorted(image.tensors)}")
    t = image.tensors[name]
    return _view(image, t)[:, :, :t.width].copy()


# ------------------------------------------------------------------------- files

def image_to_bytes(image: CompiledImage) -> bytes:
    """Serialize: preamble (magic, version, header length), JSON header, zero padding to
    64 bytes, the memory image, then 32 bytes of SHA-256 over everything before them."""
    mem = bytes(image.memory)
    header = {
        "format": "msdf-unet compiled image",
        "format_version": E.FORMAT_VERSION,
        "engine_config": image.config.to_dict(),
        "engine_config_digest": image.config.digest,
        "cmd_offset": image.cmd_offset,
        "mem_size": len(mem),
        "mem_sha256": hashlib.sha256(mem).hexdigest(),
        "input": image.input, "output": image.output, "policy": image.policy,
        "regions": {k: list(v) for k, v in image.regions.items()},
        "commands": [{"index": c.index, "layer": c.layer, "offset": c.offset} for c in image.commands],
        "tensors": {n: asdict(t) for n, t in image.tensors.items()},
        "meta": image.meta,
    }
    h = json.dumps(header, indent=1, sort_keys=True).encode()
    head = _PREAMBLE.pack(MAGIC, E.FORMAT_VERSION, len(h)) + h
    body = head + bytes(_align(len(head)) - len(head)) + mem
    return body + hashlib.sha256(body).digest()


def image_from_bytes(data: bytes, *, expect_config: E.EngineConfig | None = None,
                     source: str = "<bytes>") -> CompiledImage:
    """Parse a compiled image; :class:`ImageFormatError` names what is wrong (bad magic,
    other version, truncated, checksum, another engine config than ``expect_config``)."""
    def fail(msg):
        raise ImageFormatError(f"{source}: {msg}")
    data = bytes(data)
    if len(data) < _PREAMBLE.size + 32:
        fail(f"truncated: {len(data)} bytes")
    magic, version, hlen = _PREAMBLE.unpack_from(data)
    if magic != MAGIC:
        fail(f"bad magic {magic!r}, expected {MAGIC!r} (not a compiled image)")
    if version != E.FORMAT_VERSION:
        fail(f"image format version {version}; this reader understands {E.FORMAT_VERSION}")
    body, tail = data[:-32], data[-32:]
    if hashlib.sha256(body).digest() != tail:
        fail("SHA-256 mismatch: the file is corrupt or truncated")
    try:
        header = json.loads(data[_PREAMBLE.size:_PREAMBLE.size + hlen].decode())
        config = E.EngineConfig.from_dict(header["engine_config"])
        if config.digest != header["engine_config_digest"]:
            fail("engine config digest does not match its JSON")
        start = _align(_PREAMBLE.size + hlen)
        mem = bytearray(body[start:])
        if len(mem) != header["mem_size"] or hashlib.sha256(mem).hexdigest() != header["mem_sha256"]:
            fail("memory image size or checksum mismatch")
        commands = []
        for c in header["commands"]:
            raw = mem[c["offset"]:c["offset"] + E.DESCRIPTOR_BYTES]
            commands.append(Command(c["index"], c["layer"], c["offset"], E.decode_descriptor(raw)))
        tensors = {n: TensorPlacement(**t) for n, t in header["tensors"].items()}
        img = CompiledImage(config=config, memory=mem, cmd_offset=header["cmd_offset"],
                            commands=commands, tensors=tensors, input=header["input"],
                            output=header["output"], policy=header["policy"],
                            regions={k: tuple(v) for k, v in header["regions"].items()},
                            meta=header["meta"])
    except ImageFormatError:
        raise
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as e:
        fail(f"malformed header: {type(e).__name__}: {e}")
    if expect_config is not None and expect_config.digest != config.digest:
        fail(f"compiled for engine config {config.digest[:16]}, but the engine is "
             f"{expect_config.digest[:16]}: recompile the program for this engine")
    return img


def save_image(path, image: CompiledImage) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(image_to_bytes(image))
    tmp.replace(path)
    return path


def load_image(path, *, expect_config: E.EngineConfig | None = None) -> CompiledImage:
    path = Path(path)
    return image_from_bytes(path.read_bytes(), expect_config=expect_config, source=str(path))


def main(argv=None) -> int:
    """``python -m msdf_unet.host.compiler PROGRAM.msdfp [--config C.json] [--policy P]
    [--out IMAGE] [--show]``: compile a program, print its layout."""
    import argparse
    ap = argparse.ArgumentParser(prog="msdf_unet.host.compiler", description=main.__doc__)
    ap.add_argument("program", type=Path)
    ap.add_argument("--config", type=Path, help="EngineConfig JSON (default: EngineConfig())")
    ap.add_argument("--policy", default="full")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--show", action="store_true", help="print the commands and tensors")
    a = ap.parse_args(argv)
    config = E.EngineConfig.from_json(a.config.read_text()) if a.config else E.EngineConfig()
    try:
        img = compile_program(load_program(a.program), config, policy=a.policy)
    except CompileError as e:
        print(f"error: {e}")
        return 2
    print(img.summary() if a.show else img.summary().splitlines()[0])
    if a.out:
        save_image(a.out, img)
        print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
