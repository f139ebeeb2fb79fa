"""The convolution engine's contract, declared once: configuration, commands, errors, memory.

Plain Python (no numpy, no Amaranth, no torch): the compiler (``host/compiler.py``), the
functional model (``golden/conv/model.py``), the RTL (``hdl/conv``), its register map
(``hdl/conv/regs.py``) and the board runtime all import the facts below.

Memory image
------------
Everything the engine touches lives in ONE relocatable memory image; every address in a
command is a byte offset from the ``MEM_BASE`` register (0 in simulation). The image holds
the command list (at ``CMD_OFFSET``), each conv layer's parameter block, every activation
tensor and the per-command status area; ``MEM_SIZE`` bounds every access.

Feature maps (:func:`row_stride`, :func:`plane_stride`): CHW, element ``(c, y, x)`` at
``base + c*plane_stride + y*row_stride + x*elem_bytes``; every row is padded with zero
bytes to a multiple of :data:`ROW_ALIGN` bytes; INT8 codes, except the head's output,
which is INT32 (:data:`HEAD_ELEM_BYTES`). Allocations are :data:`TENSOR_ALIGN`-aligned; a
tensor base in a command must be :data:`FMAP_ALIGN`-aligned (a channel range of a concat
allocation starts at ``c*plane_stride``, a multiple of the row alignment).

Commands
--------
Fixed :data:`DESCRIPTOR_BYTES`-byte descriptors (16 little-endian u32 words) laid out by
:data:`DESCRIPTOR_FIELDS`, one after the other from ``CMD_OFFSET``; the engine runs them in
order until an ``END`` command (or an error). See :class:`Op`, :func:`encode_descriptor`,
:func:`decode_descriptor` and :func:`check_descriptor` (the normative check order: the RTL
and the functional model report the same :class:`ErrorCode` for the same command).

``CONV`` (k x k, stride 1, zero padding ``padding``): input ``cin x height x width`` INT8
at ``in_offset``, output ``cout x height x width`` at ``out_offset`` (INT8 requantized, or
INT32 for the ``head``), parameters at ``param_offset``: ``cout`` channel records of
:func:`channel_record_bytes` bytes each (:data:`CHANNEL_RECORD`); the engine loads
``cout_tile`` records into its weight buffer at a time. ``MAXPOOL`` (2x2, stride 2) and
``UPSAMPLE`` (x2 nearest): ``cin`` channels of ``height x width`` INT8 in, ``cin``
channels out. ``END``: stop, raise done. Concatenation is not a command: the compiler
places the inputs at adjacent channel ranges of one allocation.

Each command writes a :data:`STATUS_BYTES`-byte status record at its ``status_offset``
(:data:`STATUS_FIELDS`) when it completes. On an error the engine stops at once: it
writes no status record for the failing command, sets ``STATUS.error`` and ``ERROR``
(code, command index), raises done (and the interrupt). Output row padding bytes are
written as 0 and never read as data. Activations are signed INT8 (two's complement).

Order of checks for command ``i``: the fetch (:func:`check_fetch`: ``CMD_OFFSET``
alignment, descriptor inside the image), then :func:`check_descriptor`; memory
responses (AXI errors) and the watchdog can fire while a command runs.
"""
from __future__ import annotations

import enum
import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from .arith import MAX_WEIGHT, Policy, online_delay, stream_digits

__all__ = [
    "FORMAT_VERSION", "ACT_BITS", "MAX_WEIGHT", "ROW_ALIGN", "FMAP_ALIGN", "TENSOR_ALIGN",
    "PARAM_ALIGN", "STATUS_ALIGN", "CMD_ALIGN", "HEAD_ELEM_BYTES", "DESCRIPTOR_BYTES",
    "DESCRIPTOR_WORDS", "STATUS_BYTES", "VARIANTS", "MAX_FAN_IN_LIMIT", "Op", "Policy", "ErrorCode", "ArrayConfig",
    "EngineConfig", "EngineConfigError", "DescriptorError", "DescField", "DESCRIPTOR_FIELDS",
    "STATUS_FIELDS", "CHANNEL_RECORD", "encode_descriptor", "decode_descriptor",
    "encode_status", "decode_status", "row_stride", "plane_stride", "tensor_bytes",
    "channel_record_bytes", "channel_record_layout", "line_buffer_bytes_needed",
    "online_delay", "stream_digits", "layer_policy", "check_descriptor", "command_extents",
    "check_fetch", "MAX_COMMANDS", "BOARD_CONFIG", "FIT_CONFIGS", "LANES_MULTIPLE", "BIT_PARALLEL_VARIANTS",
    "beats_per_chunk", "BP_TREE_LEVELS", "bit_parallel_tree_stages", "bit_parallel_pe_latency",
]

#: version of the compiled image format (host/compiler.py) and of this contract
FORMAT_VERSION = 1

#: activation width: INT8 codes
ACT_BITS = 8

#: every feature-map row is padded to a multiple of this many bytes (one AXI beat)
ROW_ALIGN = 8
#: a tensor base address in a command must be a multiple of this
FMAP_ALIGN = 8
#: the compiler aligns every allocation (tensors, parameter blocks) to this
TENSOR_ALIGN = 64
#: a conv parameter block (``param_offset``) must be a multiple of this
PARAM_ALIGN = 64
#: a status record (``status_offset``) must be a multiple of this
STATUS_ALIGN = 32
#: ``CMD_OFFSET`` and therefore every descriptor must be a multiple of this
CMD_ALIGN = 64
#: bytes of one element of the head's output (INT32 accumulators)
HEAD_ELEM_BYTES = 4

DESCRIPTOR_WORDS = 16
DESCRIPTOR_BYTES = 4 * DESCRIPTOR_WORDS
STATUS_BYTES = 32

#: PE variants the engine RTL builds (a subset of :data:`msdf_unet.spec.arith.VARIANTS`;
#: the others are refused, never built silently as one of these): ``mma``, the MSDF plane
#: PE (``hdl/conv/pe.py``: activation planes MSB first, exact END); ``bitparallel-dsp``, the
#: bit-parallel PE (``hdl/conv/pe_dsp.py``: whole INT8 activations, one DSP48E1 multiplier
#: per lane, no early termination).
VARIANTS = ("mma", "bitparallel-dsp")

#: the variants whose PE takes whole activations (one beat per chunk of an output) instead
#: of activation planes (one beat per plane and chunk)
BIT_PARALLEL_VARIANTS = ("bitparallel-dsp",)


#: adder-tree levels between two registers of a bit-parallel PE's lane tree
BP_TREE_LEVELS = 2


def bit_parallel_tree_stages(lanes: int) -> int:
    """Registers of a bit-parallel PE's lane adder tree over ``lanes`` lanes (one every
    :data:`BP_TREE_LEVELS` levels and after the last)."""
    levels = max(0, (lanes - 1).bit_length())
    return max(1, -(-levels // BP_TREE_LEVELS))


def bit_parallel_pe_latency(lanes: int) -> int:
    """Cycles from a beat's handshake to its result in a bit-parallel PE's result FIFO
    (``hdl/conv/pe_dsp.py``): input, shifted operand, product (M and P) registers, the lane
    tree with a register every :data:`BP_TREE_LEVELS` levels and after the last, the
    accumulator and the value register."""
    return 4 + bit_parallel_tree_stages(lanes) + 2


def beats_per_chunk(variant: str) -> int:
    """Beats one chunk of an output costs when it runs to the end: ``ACT_BITS`` planes for
    the MSDF plane PE, 1 for a bit-parallel PE."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, not {variant!r}")
    return 1 if variant in BIT_PARALLEL_VARIANTS else ACT_BITS

#: ``ArrayConfig.lanes`` is a multiple of this (a 3x3 window row never straddles a chunk)
LANES_MULTIPLE = 3

#: the PE accumulates in 32 bits: ``fan_in * 127 * 128 < 2**31`` bounds every exact sum
MAX_FAN_IN_LIMIT = (2 ** 31 - 1) // (MAX_WEIGHT * 128)


class Op(enum.IntEnum):
    """Command op codes (descriptor field ``op``). Code 0 is deliberately not an op, so a
    zero-filled (never written) descriptor stops the engine with ``UNKNOWN_OP``."""

    #: k x k convolution + requantization (+ ReLU), or the INT32 head
    CONV = 1
    #: 2x2 max-pool, stride 2, on INT8 codes
    MAXPOOL = 2
    #: x2 nearest-neighbour upsampling on INT8 codes
    UPSAMPLE = 3
    #: end of the command list: the engine stops and raises done
    END = 4


class ErrorCode(enum.IntEnum):
    """What stopped the engine (register ``ERROR.code``, status record ``code``)."""

    #: no error
    NONE = 0
    #: the descriptor's op is not an :class:`Op`
    UNKNOWN_OP = 1
    #: a field has a value the op does not allow (reserved bits or an unused field
    #: nonzero, kernel/padding other than 3/1 or 1/0, odd maxpool size, truncate budget
    #: outside [1, T], sign-only head with cout != 1, relu on the head)
    BAD_FIELD = 2
    #: a size that must be positive is 0 (cin, cout, height, width, cout_tile)
    ZERO_SIZE = 3
    #: a size beyond a generation limit or buffer (channels, width, height, bias lanes,
    #: fan-in, line buffer, weight buffer bytes or rows, output-row buffer)
    SIZE_LIMIT = 4
    #: an offset is not a multiple of its alignment (descriptor, tensor, params, status)
    MISALIGNED = 5
    #: an access would reach beyond ``MEM_SIZE`` (descriptor, tensors, params, status)
    OUT_OF_IMAGE = 6
    #: AXI read answered SLVERR
    AXI_READ_SLVERR = 7
    #: AXI read answered DECERR
    AXI_READ_DECERR = 8
    #: AXI write answered SLVERR
    AXI_WRITE_SLVERR = 9
    #: AXI write answered DECERR
    AXI_WRITE_DECERR = 10
    #: no progress for ``WATCHDOG`` cycles
    WATCHDOG = 11


# ------------------------------------------------------------------------- configuration

class EngineConfigError(ValueError):
    """An :class:`EngineConfig` (or its JSON) is malformed."""


def _int(name, v, lo, hi=None):
    if isinstance(v, bool) or not isinstance(v, int) or v < lo or (hi is not None and v > hi):
        rng = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
        raise EngineConfigError(f"{name} must be an integer {rng}, not {v!r}")


@dataclass(frozen=True)
class ArrayConfig:
    """One array of kernel processing blocks (KPBs) built from one PE variant.

    Parameters
    ----------
    variant : str
        One of :data:`VARIANTS`.
    kpbs : int
        KPBs in the array (each computes one output at a time).
    lanes : int
        Dot-product lanes per KPB (fan-in processed per step; a wider fan-in is split into
        chunks, every chunk of plane t before plane t+1, so END stays exact). A multiple of
        :data:`LANES_MULTIPLE`; the PE has ``lanes + max_bias_lanes`` lanes.
    """

    variant: str = "mma"
    kpbs: int = 8
    lanes: int = 72

    def __post_init__(self):
        if self.variant not in VARIANTS:
            raise EngineConfigError(f"array variant must be one of {VARIANTS}, not {self.variant!r}")
        _int("kpbs", self.kpbs, 1, 1024)
        _int("lanes", self.lanes, LANES_MULTIPLE, 4096)
        if self.lanes % LANES_MULTIPLE:
            raise EngineConfigError(
                f"lanes must be a multiple of {LANES_MULTIPLE}, not {self.lanes!r}: the window "
                f"builder writes the 3 bytes of one (channel, kernel row) of a 3x3 window per "
                f"cycle into one chunk of `lanes` bytes, so a window row never straddles two chunks")


@dataclass(frozen=True)
class EngineConfig:
    """Generation parameters of the convolution engine (one build).

    Parameters
    ----------
    arrays : tuple of ArrayConfig
        The PE arrays (one build may hold arrays of different variants).
    line_buffer_bytes : int
        On-chip line buffer of each core; a conv needs :func:`line_buffer_bytes_needed` of it.
    weight_buffer_bytes : int
        On-chip weight buffer of each core: :attr:`weight_rows` rows of ``lanes`` weights;
        one output channel needs ``ceil(cin*k*k / lanes)`` rows, and ``cout_tile`` channel
        records must fit its bytes.
    out_buffer_bytes : int
        On-chip output-row buffer of each core (a multiple of 8: 64-bit words); one output
        row of a conv (``row_stride(width)``, 4 bytes per element for the head) must fit.
    param_table_depth : int
        Entries of each core's parameter table (requantization and END bounds): output
        channels loaded at once. A larger ``cout`` takes several loads, so it bounds the
        cycles, never a command.
    max_channels, max_width, max_height : int
        Largest cin/cout, input width and height of a command (<= 65535: u16 fields).
    max_bias_lanes : int
        Largest ``bias_lanes`` (>= 5: the MRI program needs 5; <= 255); every PE has
        ``lanes + max_bias_lanes`` lanes.
    max_fan_in : int
        Largest ``cin*k*k + bias_lanes`` of one output (sizes the accumulators).
    addr_bits : int
        Byte-offset bits: the image is at most ``2**addr_bits`` bytes (<= 32: u32 fields).
    axi_data_bits : int
        AXI4 master data width (64).
    max_burst_beats : int
        Longest INCR burst (16; bursts never cross 4 KiB).
    """

    arrays: tuple[ArrayConfig, ...] = (ArrayConfig(),)
    line_buffer_bytes: int = 65536
    weight_buffer_bytes: int = 65536
    out_buffer_bytes: int = 16384
    param_table_depth: int = 64
    max_channels: int = 1024
    max_width: int = 1024
    max_height: int = 1024
    max_bias_lanes: int = 8
    max_fan_in: int = 4096
    addr_bits: int = 32
    axi_data_bits: int = 64
    max_burst_beats: int = 16

    def __post_init__(self):
        arrays = self.arrays
        if isinstance(arrays, list):
            arrays = tuple(arrays)
            object.__setattr__(self, "arrays", arrays)
        if not isinstance(arrays, tuple) or not arrays or \
                not all(isinstance(a, ArrayConfig) for a in arrays):
            raise EngineConfigError(f"arrays must be a non-empty tuple of ArrayConfig, not {arrays!r}")
        if len(arrays) != 1:  # refused, not ignored: the RTL generates arrays[0] only
            raise EngineConfigError(f"the engine builds one array today, not {len(arrays)} "
                                    "(several arrays: docs/engine.md, 'Missing')")
        _int("line_buffer_bytes", self.line_buffer_bytes, 64, 1 << 24)
        _int("weight_buffer_bytes", self.weight_buffer_bytes, 64, 1 << 24)
        _int("out_buffer_bytes", self.out_buffer_bytes, 64, 1 << 24)
        if self.out_buffer_bytes % ROW_ALIGN:
            raise EngineConfigError(f"out_buffer_bytes must be a multiple of {ROW_ALIGN} (64-bit "
                                    f"words), not {self.out_buffer_bytes!r}")
        _int("param_table_depth", self.param_table_depth, 1, 4096)
        if self.weight_buffer_bytes < self.lanes:
            raise EngineConfigError(f"weight_buffer_bytes={self.weight_buffer_bytes} holds no row "
                                    f"of lanes={self.lanes} weights")
        _int("max_channels", self.max_channels, 1, 0xFFFF)
        _int("max_width", self.max_width, 1, 0xFFFF)
        _int("max_height", self.max_height, 1, 0xFFFF)
        _int("max_bias_lanes", self.max_bias_lanes, 5, 0xFF)
        _int("max_fan_in", self.max_fan_in, 1, MAX_FAN_IN_LIMIT)
        _int("addr_bits", self.addr_bits, 12, 32)
        if self.axi_data_bits != 64:
            raise EngineConfigError(f"axi_data_bits must be 64, not {self.axi_data_bits!r}")
        _int("max_burst_beats", self.max_burst_beats, 1, 16)

    # --- derived --------------------------------------------------------------------------
    @property
    def total_kpbs(self) -> int:
        return sum(a.kpbs for a in self.arrays)

    @property
    def total_lanes(self) -> int:
        return sum(a.kpbs * a.lanes for a in self.arrays)

    @property
    def max_image_bytes(self) -> int:
        return 1 << self.addr_bits

    @property
    def lanes(self) -> int:
        """Data lanes of each core's PE (``arrays[0].lanes``: one array is built)."""
        return self.arrays[0].lanes

    @property
    def weight_rows(self) -> int:
        """Rows of :attr:`lanes` weights in each core's weight buffer."""
        return self.weight_buffer_bytes // self.lanes

    @property
    def out_buffer_words(self) -> int:
        """64-bit words of each core's output-row buffer."""
        return self.out_buffer_bytes // 8

    # --- JSON -----------------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = asdict(self)
        d["arrays"] = [asdict(a) for a in self.arrays]
        return d

    def to_json(self) -> str:
        """Canonical JSON (sorted keys, no whitespace): the digest is taken over it."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d) -> "EngineConfig":
        if not isinstance(d, dict):
            raise EngineConfigError(f"an engine config must be a JSON object, not {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise EngineConfigError(f"unknown engine config keys {sorted(unknown)}; known: {sorted(known)}")
        d = dict(d)
        if "arrays" in d:
            arr = d["arrays"]
            if not isinstance(arr, list) or not all(isinstance(a, dict) for a in arr):
                raise EngineConfigError(f"arrays must be a list of objects, not {arr!r}")
            akeys = {f.name for f in fields(ArrayConfig)}
            for a in arr:
                if set(a) - akeys:
                    raise EngineConfigError(f"unknown array keys {sorted(set(a) - akeys)}; known: {sorted(akeys)}")
            d["arrays"] = tuple(ArrayConfig(**a) for a in arr)
        return cls(**d)

    @classmethod
    def from_json(cls, text: str) -> "EngineConfig":
        try:
            d = json.loads(text)
        except json.JSONDecodeError as e:
            raise EngineConfigError(f"engine config is not valid JSON: {e}") from e
        return cls.from_dict(d)

    @property
    def digest(self) -> str:
        """SHA-256 (hex) of :meth:`to_json`: a compiled image records it."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    @property
    def digest32(self) -> int:
        """First 32 bits of :attr:`digest` (register ``CONFIG_DIGEST``)."""
        return int(self.digest[:8], 16)


# ------------------------------------------------------------------------- descriptors

#: The engine built for the board (``make bitstream``, ``make synth-report``) and the default of
#: the frame benchmark and the ``msdf`` backend: 3 conv cores of 72 data lanes (docs/engine.md,
#: fits the xc7z020 by Yosys) and 14 bias lanes per PE, the most any shipped program needs
#: (the paper model ``mri_paper``: ``up.3.conv1``; ``tests/host/test_compiler_shipped.py``
#: derives the number from the shipped programs), so every shipped program runs as trained.
#: Declared here once; everything else imports it.
BOARD_CONFIG = EngineConfig(arrays=(ArrayConfig("mma", 3, 72),), max_bias_lanes=14)

#: The best configuration of each engine variant that fits the xc7z020 by Yosys (the frame
#: benchmark's default per ``--variant``; docs/engine.md "Resources"): the MSDF plane PE is
#: :data:`BOARD_CONFIG`; the bit-parallel PE is bounded by the DSP48E1 (one per lane, bias
#: lanes included: 2 x (72 + 14) = 172 of 220).
FIT_CONFIGS = {
    "mma": BOARD_CONFIG,
    "bitparallel-dsp": EngineConfig(arrays=(ArrayConfig("bitparallel-dsp", 2, 72),), max_bias_lanes=14),
}


class DescriptorError(ValueError):
    """A descriptor field value does not fit, or a field name is unknown."""


@dataclass(frozen=True)
class DescField:
    """``width`` bits at bit ``lsb`` of little-endian u32 word ``word``."""

    name: str
    word: int
    lsb: int
    width: int
    doc: str = ""

    @property
    def max(self) -> int:
        return (1 << self.width) - 1


def _enum_bits(e) -> int:
    return max(int(m) for m in e).bit_length()


#: The 64-byte command descriptor, declared once. Words 8..15 are reserved (must be 0).
DESCRIPTOR_FIELDS: tuple[DescField, ...] = (
    DescField("op", 0, 0, 8, "Op code (0 is invalid)"),
    DescField("policy", 0, 8, _enum_bits(Policy), "Policy of a CONV"),
    DescField("relu", 0, 10, 1, "CONV: saturate to [0, 127] (else [-128, 127])"),
    DescField("head", 0, 11, 1, "CONV: keep INT32 accumulators, no requantization"),
    DescField("kernel", 0, 12, 4, "CONV: kernel size k (1 or 3)"),
    DescField("padding", 0, 16, 4, "CONV: zero padding (k // 2)"),
    DescField("digits", 0, 24, 8, "CONV TRUNCATE: digit budget p in [1, T]"),
    DescField("cin", 1, 0, 16, "input channels"),
    DescField("cout", 1, 16, 16, "CONV: output channels (0 for the other ops)"),
    DescField("height", 2, 0, 16, "input height"),
    DescField("width", 2, 16, 16, "input width"),
    DescField("bias_lanes", 3, 0, 8, "CONV: bias pseudo-product lanes per output"),
    DescField("cout_tile", 3, 16, 16, "CONV: channel records per weight-buffer load"),
    DescField("in_offset", 4, 0, 32, "input tensor byte offset"),
    DescField("out_offset", 5, 0, 32, "output tensor byte offset"),
    DescField("param_offset", 6, 0, 32, "CONV: parameter block byte offset"),
    DescField("status_offset", 7, 0, 32, "status record byte offset"),
)

_DESC_BY_NAME = {f.name: f for f in DESCRIPTOR_FIELDS}
#: bits of each word used by a field (the rest are reserved and must be 0)
DESCRIPTOR_USED_MASKS: tuple[int, ...] = tuple(
    sum(((1 << f.width) - 1) << f.lsb for f in DESCRIPTOR_FIELDS if f.word == w)
    for w in range(DESCRIPTOR_WORDS))


def _check_layout(fields_, n_words, what):
    used = [0] * n_words
    for f in fields_:
        mask = ((1 << f.width) - 1) << f.lsb
        assert 0 <= f.word < n_words and f.lsb + f.width <= 32, f"{what}: {f} does not fit"
        assert not used[f.word] & mask, f"{what}: {f.name} overlaps"
        used[f.word] |= mask


_check_layout(DESCRIPTOR_FIELDS, DESCRIPTOR_WORDS, "descriptor")


def _pack(fields_by_name, n_words, values: dict, what: str) -> bytes:
    words = [0] * n_words
    for name, v in values.items():
        f = fields_by_name.get(name)
        if f is None:
            raise DescriptorError(f"{what} has no field {name!r}; fields: {list(fields_by_name)}")
        if isinstance(v, enum.Enum):
            v = int(v.value)
        if isinstance(v, bool):
            v = int(v)
        if not isinstance(v, int) or not 0 <= v <= f.max:
            raise DescriptorError(f"{what} field {name!r} holds integers in [0, {f.max}] "
                                  f"({f.width} bits), not {v!r}")
        words[f.word] |= v << f.lsb
    return b"".join(w.to_bytes(4, "little") for w in words)


def _unpack(fields_, n_words, data, what: str) -> dict:
    data = bytes(data)
    if len(data) != 4 * n_words:
        raise DescriptorError(f"a {what} is {4 * n_words} bytes, not {len(data)}")
    words = [int.from_bytes(data[4 * i:4 * i + 4], "little") for i in range(n_words)]
    return {f.name: (words[f.word] >> f.lsb) & f.max for f in fields_}


def encode_descriptor(**values) -> bytes:
    """64 bytes of a command; missing fields are 0. ``op``/``policy`` accept the enums.

    Raises :class:`DescriptorError` for an unknown field, a value that does not fit its
    field, or an ``op`` that is not an :class:`Op`.
    """
    op = values.get("op")
    if op is None:
        raise DescriptorError("a descriptor needs an op")
    try:
        Op(int(op))
    except ValueError:
        raise DescriptorError(f"unknown op {op!r}; ops: {[f'{o.name}={o.value}' for o in Op]}") from None
    if "policy" in values:
        try:
            Policy(int(values["policy"]))
        except ValueError:
            raise DescriptorError(f"unknown policy {values['policy']!r}; "
                                  f"policies: {[p.name for p in Policy]}") from None
    return _pack(_DESC_BY_NAME, DESCRIPTOR_WORDS, values, "descriptor")


def decode_descriptor(data) -> dict:
    """Field values of a 64-byte descriptor (raw integers, no validation: see
    :func:`check_descriptor`), plus ``reserved``: True when a reserved bit is set."""
    d = _unpack(DESCRIPTOR_FIELDS, DESCRIPTOR_WORDS, data, "descriptor")
    data = bytes(data)
    d["reserved"] = any(int.from_bytes(data[4 * w:4 * w + 4], "little") & ~DESCRIPTOR_USED_MASKS[w]
                        for w in range(DESCRIPTOR_WORDS))
    return d


# ------------------------------------------------------------------------- status records

#: The 32-byte status record a command writes at its ``status_offset``.
STATUS_FIELDS: tuple[DescField, ...] = (
    DescField("done", 0, 0, 1, "1 once the command finished (or failed)"),
    DescField("error", 0, 1, 1, "1 when the command failed"),
    DescField("code", 0, 8, _enum_bits(ErrorCode), "ErrorCode of the failure (0 if none)"),
    DescField("op", 0, 16, 8, "op code of the command as read"),
    DescField("cycles", 1, 0, 32, "clock cycles of the command (from the cycle counter)"),
    DescField("outputs", 2, 0, 32, "output elements written"),
    DescField("terminated", 3, 0, 32, "CONV: outputs the policy stopped early"),
    DescField("digits_used", 4, 0, 32, "reserved, 0: the RTL does not count MMA digit cycles yet (hwexact reports them)"),
    DescField("stall_cycles", 5, 0, 32, "cycles waiting for memory (0 if not counted)"),
)
STATUS_WORDS = STATUS_BYTES // 4
_STATUS_BY_NAME = {f.name: f for f in STATUS_FIELDS}
_check_layout(STATUS_FIELDS, STATUS_WORDS, "status")


def encode_status(**values) -> bytes:
    """32 bytes of a status record; missing fields are 0."""
    return _pack(_STATUS_BY_NAME, STATUS_WORDS, values, "status record")


def decode_status(data) -> dict:
    return _unpack(STATUS_FIELDS, STATUS_WORDS, data, "status record")


# ------------------------------------------------------------------------- memory layout

def _pos(name, v):
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"{name} must be a positive integer, not {v!r}")


def row_stride(width: int, elem_bytes: int = 1) -> int:
    """Bytes of one stored row: ``width*elem_bytes`` rounded up to :data:`ROW_ALIGN`."""
    _pos("width", width)
    return -(-width * elem_bytes // ROW_ALIGN) * ROW_ALIGN


def plane_stride(height: int, width: int, elem_bytes: int = 1) -> int:
    """Bytes of one channel plane: ``height * row_stride``."""
    _pos("height", height)
    return height * row_stride(width, elem_bytes)


def tensor_bytes(channels: int, height: int, width: int, elem_bytes: int = 1) -> int:
    _pos("channels", channels)
    return channels * plane_stride(height, width, elem_bytes)


#: One output channel's record in a conv parameter block, in order: (name, dtype, count)
#: where count is an expression of ``fan`` (= cin*k*k) and ``nb`` (= bias_lanes). The
#: record is padded to a multiple of 8 bytes; int32 fields start 4-byte aligned.
CHANNEL_RECORD: tuple[tuple[str, str, str], ...] = (
    ("weight", "int8", "fan"),         # w[o, c, ky, kx] in (c, ky, kx) order
    ("bias_w", "int8", "nb"),          # bias-lane weights
    ("bias_x", "int8", "nb"),          # bias-lane activations
    ("mult", "int32", "1"),            # requantization multiplier (0 for the head)
    ("shift", "int32", "1"),           # requantization shift (0 for the head)
    ("wpos", "int32", "1"),            # sum of positive weights over all lanes (END bound)
    ("wneg", "int32", "1"),            # sum of negative weights over all lanes
)


def channel_record_layout(cin: int, kernel: int, bias_lanes: int) -> tuple[dict, int]:
    """``({name: (byte_offset, dtype, count)}, record_bytes)`` of one channel record."""
    fan, nb = cin * kernel * kernel, bias_lanes
    off, out = 0, {}
    for name, dt, cnt in CHANNEL_RECORD:
        n = {"fan": fan, "nb": nb, "1": 1}[cnt]
        size = 4 if dt == "int32" else 1
        off = -(-off // size) * size
        out[name] = (off, dt, n)
        off += n * size
    return out, -(-off // 8) * 8


def channel_record_bytes(cin: int, kernel: int, bias_lanes: int) -> int:
    """Bytes of one output channel's parameter record (see :data:`CHANNEL_RECORD`)."""
    return channel_record_layout(cin, kernel, bias_lanes)[1]


def line_buffer_bytes_needed(cin: int, width: int, kernel: int) -> int:
    """Line buffer a conv needs: ``kernel + 1`` rows (one being refilled) of every input
    channel, each row :func:`row_stride` bytes."""
    return (kernel + 1) * cin * row_stride(width)


# ------------------------------------------------------------------------- arithmetic facts

def layer_policy(*, relu: bool, head: bool, cout: int, mode: str, digits: int | None = None,
                 sign_head: bool = True, lanes: int) -> tuple[Policy, int]:
    """``(policy, digits field)`` of a conv layer under a run policy (mode ``full``,
    ``end`` or ``truncate``), exactly as ``golden.hwexact`` chooses it."""
    if mode == "full":
        return Policy.FULL, 0
    if mode == "truncate":
        if isinstance(digits, bool) or not isinstance(digits, int) or digits < 1:
            raise ValueError(f"truncate needs an integer digit budget >= 1, not {digits!r}")
        return Policy.TRUNCATE, min(digits, stream_digits(lanes))
    if mode != "end":
        raise ValueError(f"mode must be 'full', 'end' or 'truncate', not {mode!r}")
    if relu:
        return Policy.RELU_END, 0
    if head and sign_head and cout == 1:
        return Policy.SIGN_ONLY, 0
    return Policy.FULL, 0


# ------------------------------------------------------------------------- checking

#: commands in one list at most (ERROR.index and LAYER.index are 16 bits): fetching
#: command ``MAX_COMMANDS`` fails with SIZE_LIMIT
MAX_COMMANDS = 1 << 16


def check_fetch(cmd_offset: int, index: int, mem_size: int) -> tuple[ErrorCode, str]:
    """May descriptor ``index`` of the list at ``cmd_offset`` be fetched?"""
    if cmd_offset % CMD_ALIGN:
        return ErrorCode.MISALIGNED, f"CMD_OFFSET {cmd_offset:#x} is not a multiple of {CMD_ALIGN}"
    if index >= MAX_COMMANDS:
        return ErrorCode.SIZE_LIMIT, f"more than {MAX_COMMANDS} commands without END"
    end = cmd_offset + (index + 1) * DESCRIPTOR_BYTES
    if end > mem_size:
        return ErrorCode.OUT_OF_IMAGE, (f"descriptor {index} at {end - DESCRIPTOR_BYTES:#x} reaches "
                                        f"beyond the {mem_size}-byte image")
    return ErrorCode.NONE, ""


def command_extents(d: dict) -> list[tuple[str, int, int, int]]:
    """``(what, offset, nbytes, alignment)`` of every memory range a decoded, field-valid
    command touches (status record included)."""
    op = d["op"]
    out = []
    if op in (Op.CONV, Op.MAXPOOL, Op.UPSAMPLE):
        h, w, c = d["height"], d["width"], d["cin"]
        out.append(("input", d["in_offset"], tensor_bytes(c, h, w), FMAP_ALIGN))
        if op == Op.CONV:
            e = HEAD_ELEM_BYTES if d["head"] else 1
            out.append(("output", d["out_offset"], tensor_bytes(d["cout"], h, w, e), FMAP_ALIGN))
            rec = channel_record_bytes(c, d["kernel"], d["bias_lanes"])
            out.append(("params", d["param_offset"], d["cout"] * rec, PARAM_ALIGN))
        elif op == Op.MAXPOOL:
            out.append(("output", d["out_offset"], tensor_bytes(c, h // 2, w // 2), FMAP_ALIGN))
        else:
            out.append(("output", d["out_offset"], tensor_bytes(c, 2 * h, 2 * w), FMAP_ALIGN))
    out.append(("status", d["status_offset"], STATUS_BYTES, STATUS_ALIGN))
    return out


def check_descriptor(d: dict, config: EngineConfig, mem_size: int) -> tuple[ErrorCode, str]:
    """The normative validation of a decoded descriptor, in the order the engine checks:
    op, fields, zero sizes, limits, alignment, image bounds. Returns ``(code, reason)``;
    ``ErrorCode.NONE`` when the command may run."""
    try:
        op = Op(d["op"])
    except ValueError:
        return ErrorCode.UNKNOWN_OP, f"op {d['op']} is not one of {[f'{o.name}={o.value}' for o in Op]}"
    if d.get("reserved"):
        return ErrorCode.BAD_FIELD, "a reserved descriptor bit is set"
    conv_only = ("policy", "relu", "head", "kernel", "padding", "digits", "bias_lanes",
                 "cout_tile", "param_offset", "cout")
    if op == Op.END:
        bad = [k for k in _DESC_BY_NAME if k not in ("op", "status_offset") and d[k]]
        if bad:
            return ErrorCode.BAD_FIELD, f"END uses only op and status_offset; set: {bad}"
    elif op != Op.CONV:
        bad = [k for k in conv_only if d[k]]
        if bad:
            return ErrorCode.BAD_FIELD, f"{op.name} does not use fields {bad}"
        if op == Op.MAXPOOL and (d["height"] % 2 or d["width"] % 2):
            return ErrorCode.BAD_FIELD, f"MAXPOOL needs even height/width, got {d['height']}x{d['width']}"
    else:
        if (d["kernel"], d["padding"]) not in ((1, 0), (3, 1)):
            return ErrorCode.BAD_FIELD, f"kernel/padding {d['kernel']}/{d['padding']} (need 3/1 or 1/0)"
        if d["head"] and d["relu"]:
            return ErrorCode.BAD_FIELD, "the head has no ReLU"
        pol = Policy(d["policy"])
        lanes = d["cin"] * d["kernel"] ** 2 + d["bias_lanes"]
        if pol == Policy.TRUNCATE:
            if not 1 <= d["digits"] <= stream_digits(max(lanes, 1)):
                return ErrorCode.BAD_FIELD, f"TRUNCATE digits {d['digits']} not in [1, T={stream_digits(max(lanes, 1))}]"
        elif d["digits"]:
            return ErrorCode.BAD_FIELD, f"digits {d['digits']} set for policy {pol.name}"
        if pol == Policy.SIGN_ONLY and not (d["head"] and d["cout"] == 1):
            return ErrorCode.BAD_FIELD, "SIGN_ONLY is only for a one-channel head"
        if pol == Policy.RELU_END and not d["relu"]:
            return ErrorCode.BAD_FIELD, "RELU_END needs relu"
    if op == Op.END:
        sizes = {}
    elif op == Op.CONV:
        sizes = {k: d[k] for k in ("cin", "cout", "height", "width", "cout_tile")}
    else:
        sizes = {k: d[k] for k in ("cin", "height", "width")}
    zero = [k for k, v in sizes.items() if v == 0]
    if zero:
        return ErrorCode.ZERO_SIZE, f"{op.name}: zero {zero}"
    if op != Op.END:
        c = config
        lim = [("cin", d["cin"], c.max_channels), ("height", d["height"], c.max_height),
               ("width", d["width"], c.max_width)]
        if op == Op.UPSAMPLE:
            lim += [("output height", 2 * d["height"], c.max_height),
                    ("output width", 2 * d["width"], c.max_width)]
        if op == Op.CONV:
            k = d["kernel"]
            rec = channel_record_bytes(d["cin"], k, d["bias_lanes"])
            lim += [("cout", d["cout"], c.max_channels),
                    ("bias_lanes", d["bias_lanes"], c.max_bias_lanes),
                    ("fan-in", d["cin"] * k * k + d["bias_lanes"], c.max_fan_in),
                    ("line buffer bytes", line_buffer_bytes_needed(d["cin"], d["width"], k),
                     c.line_buffer_bytes),
                    ("weight buffer bytes", d["cout_tile"] * rec, c.weight_buffer_bytes),
                    ("weight buffer rows of one channel", -(-d["cin"] * k * k // c.lanes),
                     c.weight_rows),
                    ("output row bytes", row_stride(d["width"], HEAD_ELEM_BYTES if d["head"] else 1),
                     c.out_buffer_bytes)]
        for what, v, mx in lim:
            if v > mx:
                return ErrorCode.SIZE_LIMIT, f"{op.name}: {what} {v} exceeds the limit {mx}"
    ext = command_extents(d)
    for what, off, _, al in ext:
        if off % al:
            return ErrorCode.MISALIGNED, f"{what} offset {off:#x} is not a multiple of {al}"
    for what, off, n, _ in ext:
        if off + n > mem_size:
            return ErrorCode.OUT_OF_IMAGE, (f"{what} bytes [{off:#x}, {off + n:#x}) reach beyond "
                                            f"the {mem_size}-byte image")
    return ErrorCode.NONE, ""


# ------------------------------------------------------------------------- documentation

def markdown_tables() -> str:
    """The descriptor, status-record, channel-record and error-code tables in Markdown,
    generated from the declarations (``docs/compiler.md`` embeds this text; a test keeps
    them equal)."""
    def ftable(title, fs):
        rows = [f"### {title}", "", "| field | word | bits | doc |", "|---|---|---|---|"]
        for f in fs:
            rows.append(f"| `{f.name}` | {f.word} | {f.lsb + f.width - 1}..{f.lsb} | {f.doc} |")
        return rows
    out = ftable(f"Command descriptor ({DESCRIPTOR_BYTES} bytes, words 8..15 reserved = 0)",
                 DESCRIPTOR_FIELDS)
    out += [""] + ftable(f"Status record ({STATUS_BYTES} bytes)", STATUS_FIELDS)
    out += ["", "### Op codes", "", "| op | code | doc |", "|---|---|---|"]
    docs = _member_docs(Op)
    out += [f"| `{m.name}` | {m.value} | {docs.get(m.name, '')} |" for m in Op]
    out += ["", "### Policies", "", "| policy | code | doc |", "|---|---|---|"]
    docs = _member_docs(Policy)
    out += [f"| `{m.name}` | {m.value} | {docs.get(m.name, '')} |" for m in Policy]
    out += ["", "### Error codes", "", "| error | code | meaning |", "|---|---|---|"]
    docs = _member_docs(ErrorCode)
    out += [f"| `{m.name}` | {m.value} | {docs.get(m.name, '')} |" for m in ErrorCode]
    out += ["", "### Engine configuration (`EngineConfig`; sizes of buffers are per core)", "",
            "| field | default | `BOARD_CONFIG` | meaning |", "|---|---|---|---|"]
    docs = _param_docs(EngineConfig)
    show = lambda v: (", ".join(f"{a.kpbs} x {a.variant} KPBs of {a.lanes} lanes" for a in v)  # noqa: E731
                      if isinstance(v, tuple) else str(v))
    default = EngineConfig()
    for f in fields(EngineConfig):
        out.append(f"| `{f.name}` | {show(getattr(default, f.name))} | "
                   f"{show(getattr(BOARD_CONFIG, f.name))} | {docs[f.name]} |")
    out += ["", "### Channel record (one per output channel of a conv parameter block)", "",
            "| field | type | count |", "|---|---|---|"]
    out += [f"| `{n}` | {dt} | {c} |" for n, dt, c in CHANNEL_RECORD]
    return "\n".join(out) + "\n"


def _param_docs(cls) -> dict[str, str]:
    """``{name: text}`` of the numpydoc ``Parameters`` section of ``cls`` (one line each)."""
    import inspect
    lines = inspect.getdoc(cls).splitlines()
    start = lines.index("Parameters") + 2
    docs, names = {}, []
    for line in lines[start:]:
        if not line.strip():
            break
        if not line.startswith(" "):
            names = [n.strip() for n in line.split(":")[0].split(",")]
            for n in names:
                docs[n] = ""
        else:
            for n in names:
                docs[n] = (docs[n] + " " + line.strip()).strip()
    def md(t):   # Sphinx roles and double backquotes -> Markdown code
        for role in (":func:", ":attr:", ":data:", ":class:", ":meth:"):
            t = t.replace(role, "")
        return t.replace("``", "`")
    return {n: md(t) for n, t in docs.items()}


def _member_docs(e) -> dict[str, str]:
    """The ``#:`` comment above each member of an enum declared in this file."""
    import inspect
    src = inspect.getsource(e).splitlines()
    docs, pending = {}, []
    for line in src:
        s = line.strip()
        if s.startswith("#:"):
            pending.append(s[2:].strip())
        elif s.startswith("#") and pending:
            pending.append(s[1:].strip())
        elif "=" in s and pending:
            docs[s.split("=")[0].strip()] = " ".join(pending)
            pending = []
        else:
            pending = []
    return docs
