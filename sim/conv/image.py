"""Small engine images for the testbenches, built with the contract's helpers
(``spec.engine``) and the compiler's parameter packing
(:func:`msdf_unet.host.compiler.pack_channel_records`), and their expected results from
the golden models (``golden.arith.mma`` for the policies, ``golden.quant.requantize``).
The compiler (``host/compiler.py``) builds the real images; this module builds hand-made
layers (odd sizes, every policy, errors)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from msdf_unet.golden.arith import mma
from msdf_unet.golden.quant import requantize
from msdf_unet.host.compiler import pack_channel_records
from msdf_unet.spec.engine import (CMD_ALIGN, DESCRIPTOR_BYTES, HEAD_ELEM_BYTES, STATUS_BYTES, TENSOR_ALIGN, Op,
                                   Policy, encode_descriptor, plane_stride,
                                   row_stride, stream_digits)

__all__ = ["check_against_hwexact", "Image", "ConvLayer", "conv_expected", "pool_expected", "upsample_expected",
           "write_tensor", "read_tensor"]


def _align(v, a):
    return -(-v // a) * a


def write_tensor(mem: bytearray, off: int, t: np.ndarray, elem_bytes: int = 1):
    c, h, w = t.shape
    rs, ps = row_stride(w, elem_bytes), plane_stride(h, w, elem_bytes)
    dt = "<i4" if elem_bytes == 4 else "i1"
    for ci in range(c):
        for yi in range(h):
            row = t[ci, yi].astype(dt).tobytes()
            mem[off + ci * ps + yi * rs: off + ci * ps + yi * rs + len(row)] = row


def read_tensor(data: bytes, off: int, shape, elem_bytes: int = 1) -> np.ndarray:
    c, h, w = shape
    rs, ps = row_stride(w, elem_bytes), plane_stride(h, w, elem_bytes)
    dt = "<i4" if elem_bytes == 4 else "i1"
    out = np.zeros(shape, np.int64)
    for ci in range(c):
        for yi in range(h):
            a = off + ci * ps + yi * rs
            out[ci, yi] = np.frombuffer(bytes(data[a:a + w * elem_bytes]), dt)
    return out


@dataclass
class ConvLayer:
    """One conv layer's integer parameters (weights [cout, cin, k, k], folded bias lanes,
    per-channel mult/shift) and settings."""

    w: np.ndarray
    bias_w: np.ndarray
    bias_x: np.ndarray
    mult: np.ndarray
    shift: np.ndarray
    relu: bool
    head: bool = False

    @property
    def kernel(self):
        return self.w.shape[2]

    @property
    def lanes(self):
        return self.w.shape[1] * self.kernel ** 2 + self.bias_w.shape[1]

    def params(self) -> bytes:
        """The layer's parameter block, packed by the compiler (``host/compiler.py``)."""
        return pack_channel_records(self.w, self.bias_w, self.bias_x, self.mult, self.shift)[0]

    @classmethod
    def random(cls, rng: np.random.Generator, cin, cout, kernel, bias_lanes, *, relu, head=False):
        w = rng.integers(-127, 128, (cout, cin, kernel, kernel))
        g, _ = mma.bias_range(bias_lanes, 8, True)
        bias = rng.integers(-g, g + 1, cout) if bias_lanes else np.zeros(cout, np.int64)
        bw, bx = mma.fold_bias_array(bias, bias_lanes, 8, signed_acts=True) if bias_lanes else \
            (np.zeros((cout, 0), np.int64), np.zeros((cout, 0), np.int64))
        mult = rng.integers(1 << 13, 1 << 15, cout)
        shift = rng.integers(17, 22, cout)
        return cls(w, np.asarray(bw), np.asarray(bx), mult, shift, relu, head)


def conv_expected(x: np.ndarray, layer: ConvLayer, policy: Policy, digits: int = 0):
    """``(output tensor, terminated count)``: INT8 codes (or INT32 head values) of the layer
    on INT8 codes ``x`` [cin, H, W] under ``policy``; values from the MMA golden model."""
    cin, h, w_ = x.shape
    k = layer.kernel
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p)))
    cols = np.stack([xp[:, ky:ky + h, kx:kx + w_] for ky in range(k) for kx in range(k)], axis=1)
    cols = cols.reshape(cin * k * k, h * w_).T                     # [HW, fan] in (c, ky, kx) order
    cout = layer.w.shape[0]
    nb = layer.bias_w.shape[1]
    wm = layer.w.reshape(cout, -1)
    d = mma.plane_digits(cols, 8, True).astype(np.int64)             # [8, HW, fan]
    P = np.einsum("thf,of->toh", d, wm)                             # [8, cout, HW]
    if nb:
        bd = mma.plane_digits(layer.bias_x, 8, True).astype(np.int64)   # [8, cout, nb]
        P += (bd * layer.bias_w[None]).sum(-1)[:, :, None]
    r = mma.evaluate_planes(P, layer.lanes, policy, digits if policy == Policy.TRUNCATE else None)
    acc = r.values.reshape(cout, h, w_)
    if layer.head:
        return acc, int(r.terminated.sum())
    y = requantize(torch.from_numpy(acc)[None], torch.from_numpy(layer.mult), torch.from_numpy(layer.shift),
                   layer.relu)[0].numpy()
    return y, int(r.terminated.sum())


def pool_expected(x):
    c, h, w = x.shape
    return x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))


def upsample_expected(x):
    return x.repeat(2, axis=1).repeat(2, axis=2)


@dataclass
class Image:
    """A memory image under construction: allocations, commands, status records."""

    size: int = 1 << 20
    mem: bytearray = field(default_factory=bytearray)
    top: int = 0
    commands: list = field(default_factory=list)

    def __post_init__(self):
        self.mem = bytearray(self.size)
        self.cmd_offset = self.alloc(64 * DESCRIPTOR_BYTES, CMD_ALIGN)
        self.status = self.alloc(64 * STATUS_BYTES, TENSOR_ALIGN)

    def alloc(self, nbytes, align=TENSOR_ALIGN):
        self.top = _align(self.top, align)
        off = self.top
        self.top += nbytes
        assert self.top <= self.size
        return off

    def tensor(self, c, h, w, elem_bytes=1, data=None):
        off = self.alloc(c * plane_stride(h, w, elem_bytes))
        if data is not None:
            write_tensor(self.mem, off, data, elem_bytes)
        return off

    def command(self, **fields):
        """Append a descriptor; its status record follows the previous one's."""
        i = len(self.commands)
        fields.setdefault("status_offset", self.status + i * STATUS_BYTES)
        raw = encode_descriptor(**fields)
        a = self.cmd_offset + i * DESCRIPTOR_BYTES
        self.mem[a:a + DESCRIPTOR_BYTES] = raw
        self.commands.append(fields)
        return i

    def raw_command(self, raw: bytes, status_offset=None):
        i = len(self.commands)
        a = self.cmd_offset + i * DESCRIPTOR_BYTES
        self.mem[a:a + DESCRIPTOR_BYTES] = raw
        self.commands.append({"raw": raw})
        return i

    def conv(self, layer: ConvLayer, x_off, y_off, cin, h, w, policy=Policy.FULL, digits=0, cout_tile=None):
        params = layer.params()
        p_off = self.alloc(len(params))
        self.mem[p_off:p_off + len(params)] = params
        cout = layer.w.shape[0]
        return self.command(op=Op.CONV, policy=policy, relu=int(layer.relu), head=int(layer.head),
                            kernel=layer.kernel, padding=layer.kernel // 2, digits=digits, cin=cin,
                            cout=cout, height=h, width=w, bias_lanes=layer.bias_w.shape[1],
                            cout_tile=cout_tile or cout, in_offset=x_off, out_offset=y_off,
                            param_offset=p_off)

    def end(self):
        return self.command(op=Op.END)


def check_against_hwexact(image, program, x, policy):
    """Assert that every tensor of the run ``image`` (a compiled image after the engine or
    its model ran on input ``x``) and the labels equal ``golden.hwexact``'s; return its run."""
    from msdf_unet.golden import hwexact
    from msdf_unet.host.compiler import read_tensor as read_compiled
    from msdf_unet.host.engine_driver import labels_from_head

    ref = hwexact.run(program, torch.as_tensor(x)[None], policy, keep=True)
    for name in image.tensors:
        got = read_compiled(image, name)
        want = (ref.output if name == program.output else ref.tensors[name])[0].numpy()
        assert np.array_equal(got, want), f"{policy}: tensor {name} differs"
    assert np.array_equal(labels_from_head(read_compiled(image, program.output)), ref.pred[0].numpy())
    return ref
