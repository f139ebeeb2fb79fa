"""Functional model of the convolution engine: runs a command list on a memory image.

It sees exactly what the RTL sees: a byte image (``bytearray``), ``CMD_OFFSET`` and
``MEM_SIZE`` and the :class:`~msdf_unet.spec.engine.EngineConfig` the engine was built
with; it decodes descriptors with :mod:`msdf_unet.spec.engine` (no compiler data
structures), checks each with the normative order (:func:`~msdf_unet.spec.engine.check_fetch`,
:func:`~msdf_unet.spec.engine.check_descriptor`), executes it and writes the output
tensor and the status record into the image, op by op, until ``END`` or an error.

Arithmetic: a conv command is evaluated by the very functions of
:mod:`msdf_unet.golden.hwexact` (``_conv_layer``: exact conv or plane sums + MMA
recurrence, requantization, the policies), so every tensor is bit-exact with hwexact by
construction. Status records carry what the RTL reports except ``cycles`` and
``stall_cycles`` (0 here; ``golden/conv/cycles.py`` predicts them): ``outputs``,
``terminated`` in the MMA's digit semantics; ``digits_used`` is 0 (reserved, as the
RTL writes it).

Errors: the engine stops on the first failing check, writes no status for that command
and reports ``(code, index)`` as the ``ERROR`` register does (:class:`RunResult`).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...spec import engine as E
from .. import hwexact
from ..program import Layer, Program, TensorInfo

__all__ = ["RunResult", "run_image", "read_fmap", "write_fmap"]


@dataclass
class RunResult:
    """Outcome of :func:`run_image`: what the registers show after done.

    ``error``/``code``/``index``: ``STATUS.error`` and ``ERROR`` (code and the failing
    command's index; ``index`` is the END command's on success). ``reason``: why, in
    words. ``statuses``: decoded status record of every command that completed.
    """

    error: bool
    code: E.ErrorCode
    index: int
    reason: str = ""
    statuses: list[dict] = field(default_factory=list)


def _mem_view(mem, offset: int, nbytes: int) -> np.ndarray:
    return np.frombuffer(mem, np.uint8, count=nbytes, offset=offset)


def read_fmap(mem, offset: int, c: int, h: int, w: int, elem_bytes: int = 1) -> np.ndarray:
    """``[c, h, w]`` tensor (int8 or int32) stored CHW with padded rows at ``offset``."""
    rs = E.row_stride(w, elem_bytes)
    dt = np.dtype("<i1" if elem_bytes == 1 else "<i4")
    raw = _mem_view(mem, offset, c * h * rs).view(dt).reshape(c, h, rs // elem_bytes)
    return raw[:, :, :w].astype(dt.newbyteorder("="))


def write_fmap(mem, offset: int, x: np.ndarray, elem_bytes: int = 1) -> None:
    """Store ``x`` ``[c, h, w]`` CHW with padded rows (padding bytes 0) at ``offset``."""
    c, h, w = x.shape
    rs = E.row_stride(w, elem_bytes)
    dt = np.dtype("<i1" if elem_bytes == 1 else "<i4")
    buf = np.zeros((c, h, rs // elem_bytes), dt)
    buf[:, :, :w] = x
    mem[offset:offset + buf.nbytes] = buf.tobytes()


def _params(mem, d: dict) -> dict:
    """Decode a conv parameter block into arrays as golden/program.py names them."""
    cin, k, nb, cout = d["cin"], d["kernel"], d["bias_lanes"], d["cout"]
    lay, rec = E.channel_record_layout(cin, k, nb)
    block = _mem_view(mem, d["param_offset"], cout * rec).reshape(cout, rec)
    out = {}
    for name, (off, dt, n) in lay.items():
        size = 1 if dt == "int8" else 4
        raw = np.ascontiguousarray(block[:, off:off + n * size])
        out[name] = raw.view("<i1" if size == 1 else "<i4").reshape(cout, n)
    w = out["weight"].reshape(cout, cin, k, k).astype(np.int8)
    bw, bx = out["bias_w"].astype(np.int8), out["bias_x"].astype(np.int8)
    bias = (bw.astype(np.int64) * bx).sum(axis=1).astype(np.int32)
    return {"weight": w, "bias": bias, "bias_w": bw, "bias_x": bx,
            "w_scale": np.ones(cout, np.float32),
            "mult": out["mult"][:, 0].astype(np.int32), "shift": out["shift"][:, 0].astype(np.int32)}


def _run_policy(d: dict) -> hwexact.RunPolicy:
    pol = E.Policy(d["policy"])
    if pol == E.Policy.FULL:
        return hwexact.RunPolicy("full", count_cycles=True)
    if pol == E.Policy.TRUNCATE:
        return hwexact.RunPolicy("truncate", d["digits"])
    # RELU_END (relu layer) and SIGN_ONLY (one-channel head) are what "end" picks
    return hwexact.RunPolicy("end", sign_head=True)


def _conv(mem, d: dict) -> tuple[np.ndarray, dict]:
    cin, cout, h, w, k = d["cin"], d["cout"], d["height"], d["width"], d["kernel"]
    x = read_fmap(mem, d["in_offset"], cin, h, w)
    a = _params(mem, d)
    layer = Layer("cmd", "conv", ["x"], "y", kernel=k, padding=d["padding"], relu=bool(d["relu"]),
                  head=bool(d["head"]), n_lanes=cin * k * k, bias_lanes=d["bias_lanes"])
    arrays = {f"cmd.{n}": v for n, v in a.items()}
    if layer.head:
        del arrays["cmd.mult"], arrays["cmd.shift"]
    prog = Program(layers=[layer], tensors={"x": TensorInfo((cin, h, w), 1.0),
                                            "y": TensorInfo((cout, h, w), 1.0)},
                   arrays=arrays, input="x", output="y", act_bits=E.ACT_BITS, act_signed=True)
    cycles: list[hwexact.LayerCycles] = []
    y = hwexact._conv_layer(prog, layer, torch.from_numpy(x.astype(np.float32))[None],
                            _run_policy(d), "float32", cycles)
    c = cycles[0]
    # digits_used stays 0 as the RTL writes it (reserved): every backend reports the same
    # record; the MMA digit cycles are hwexact's (LayerCycles.used)
    st = {"outputs": cout * h * w, "terminated": c.terminated, "digits_used": 0}
    return y[0].to(torch.int64).numpy(), st


def _execute(mem, d: dict) -> dict:
    """Run one checked command; returns the status fields it produced."""
    op = E.Op(d["op"])
    if op == E.Op.END:
        return {"outputs": 0}
    c, h, w = d["cin"], d["height"], d["width"]
    if op == E.Op.CONV:
        y, st = _conv(mem, d)
        write_fmap(mem, d["out_offset"], y.astype(np.int32 if d["head"] else np.int8),
                   E.HEAD_ELEM_BYTES if d["head"] else 1)
        return st
    x = read_fmap(mem, d["in_offset"], c, h, w)
    if op == E.Op.MAXPOOL:
        y = x.reshape(c, h // 2, 2, w // 2, 2).max(axis=(2, 4))
    else:
        y = x.repeat(2, axis=1).repeat(2, axis=2)
    write_fmap(mem, d["out_offset"], y)
    return {"outputs": int(y.size)}


def run_image(mem: bytearray, config: E.EngineConfig, cmd_offset: int = 0, *,
              mem_size: int | None = None, on_command=None) -> RunResult:
    """Run the command list at ``cmd_offset`` of ``mem`` in place (outputs and status
    records are written into ``mem``), as the engine built with ``config`` does.

    ``mem_size`` is the ``MEM_SIZE`` register (default ``len(mem)``). ``on_command(d, mem,
    index)`` is called for every valid command (``END`` included) before it runs, with
    the memory as that command reads it (how the cycle model follows a run).
    """
    if not isinstance(mem, bytearray):
        raise TypeError(f"mem must be a bytearray (the model writes into it), not {type(mem).__name__}")
    if not isinstance(config, E.EngineConfig):
        raise TypeError(f"config must be an EngineConfig, not {type(config).__name__}")
    size = len(mem) if mem_size is None else mem_size
    if not isinstance(size, int) or not 0 <= size <= len(mem):
        raise ValueError(f"mem_size must be an integer in [0, {len(mem)}], not {mem_size!r}")
    statuses = []
    index = 0
    while True:
        code, why = E.check_fetch(cmd_offset, index, size)
        if code == E.ErrorCode.NONE:
            off = cmd_offset + index * E.DESCRIPTOR_BYTES
            d = E.decode_descriptor(mem[off:off + E.DESCRIPTOR_BYTES])
            code, why = E.check_descriptor(d, config, size)
        if code != E.ErrorCode.NONE:
            return RunResult(True, code, index, f"command {index}: {why}", statuses)
        if on_command is not None:
            on_command(d, mem, index)
        st = _execute(mem, d)
        # the counters saturate at 32 bits
        rec = dict(done=1, op=d["op"], **{k: min(int(v), 0xFFFFFFFF) for k, v in st.items()})
        mem[d["status_offset"]:d["status_offset"] + E.STATUS_BYTES] = E.encode_status(**rec)
        statuses.append(E.decode_status(mem[d["status_offset"]:d["status_offset"] + E.STATUS_BYTES]))
        if d["op"] == E.Op.END:
            return RunResult(False, E.ErrorCode.NONE, index, "", statuses)
        index += 1
