"""Command sequencer of the convolution engine: fetch, decode, check, dispatch, status, errors.

Runs the command list from ``CMD_OFFSET`` after a ``START`` write: fetches each 64-byte
descriptor through its memory client, decodes it with the declared field layout
(:mod:`.layout`), checks it in the normative order of
:func:`msdf_unet.spec.engine.check_descriptor` (op, fields, zero sizes, limits, alignment,
image bounds), hands a valid CONV/MAXPOOL/UPSAMPLE to its unit (``job``), and writes the
command's status record. ``END`` or an error stops the list and raises ``done``.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import (CMD_ALIGN, DESCRIPTOR_BYTES, FMAP_ALIGN, FORMAT_VERSION,
                            HEAD_ELEM_BYTES, PARAM_ALIGN, STATUS_ALIGN, STATUS_BYTES, ErrorCode,
                            EngineConfig, Op, Policy, ACT_BITS, MAX_WEIGHT)
from ..bus.axi4 import RESP_DECERR
from ..bus.axi_lite import registers_signature
from ..bus.axi_master import transfer_port
from .layout import decode_fields, descriptor_layout, record_offsets, reserved_mask_bits, status_words
from .regs import ID_MAGIC, config_word, engine_map

__all__ = ["Sequencer", "job_layout", "UNIT_CONV", "UNIT_POOL", "N_CLIENTS", "CHECK_CYCLES",
           "bit_length"]

#: memory clients of the transfer mux (the sequencer itself is client 0)
UNIT_SEQ, UNIT_CONV, UNIT_POOL = 0, 1, 2
N_CLIENTS = 3


def job_layout(addr_bits: int = 32) -> data.StructLayout:
    """A checked command for a unit: the decoded fields plus absolute byte addresses
    (``MEM_BASE`` + offsets)."""
    return data.StructLayout({
        "cmd": descriptor_layout(),
        "in_addr": unsigned(addr_bits), "out_addr": unsigned(addr_bits),
        "param_addr": unsigned(addr_bits),
    })


#: cycles between the descriptor's last beat (FETCH_WAIT) and DECIDE: the check pipeline
CHECK_CYCLES = 5


def bit_length(m, x, plus=0):
    """``x.bit_length() + plus`` of an unsigned value ``x != 0`` (0 for ``x = 0``): a
    binary tree of (any bit set, index of the highest) pairs, ``log2(len(x))`` muxes deep,
    then the position encoded with ``plus`` folded in (no adder, no priority chain)."""
    n = 1 << max(0, (len(x) - 1).bit_length())
    bits = [x[b] if b < len(x) else Const(0, 1) for b in range(n)]
    level = [(b, Const(0, 1)) for b in bits]          # (any, index within the group)
    width = 0
    while len(level) > 1:
        nxt = []
        for lo, hi in zip(level[0::2], level[1::2]):
            nxt.append((lo[0] | hi[0], Mux(hi[0], Cat(hi[1][:width], Const(1, 1)),
                                           Cat(lo[1][:width], Const(0, 1)))))
        level, width = nxt, width + 1
    any_, idx = level[0]
    out = Signal(range(n + plus + 1))
    with m.Switch(idx[:width] if width else Const(0, 1)):
        for b in range(n):
            with m.Case(b):
                m.d.comb += out.eq(Mux(any_, b + 1 + plus, 0))
    return out


def _ceil8(v):
    return ((v + 7) >> 3) << 3


class Sequencer(wiring.Component):
    """The command FSM (see the module docstring).

    Members
    -------
    regs : ``In(registers_signature(engine_map()))``
    mem : ``Out(transfer_port)`` -- descriptor reads and status-record writes
    sel : ``Out(range(N_CLIENTS))`` -- which client owns the AXI master
    job : ``Out(job_layout)``, ``conv_start``/``pool_start`` : ``Out(1)`` pulses
    conv_done, pool_done : ``In(1)`` -- pulses when a unit finished its job
    outputs, terminated : ``In(32)`` -- counts of the job just finished (status record)
    rd_resp, wr_resp : ``In(2)`` -- the master's sticky error responses
    resp_clear : ``Out(1)``
    progress : ``In(1)`` -- any data beat or result this cycle (feeds the watchdog)
    abort : ``Out(1)`` -- resets the units (watchdog)
    irq : ``Out(1)``

    Errors: the first error stops the list at once; ``ERROR.code``/``index`` name it and
    the failing command writes no status record (``spec.engine``). AXI error responses are checked after each
    transfer phase; a unit always completes its transfers (data with an error response
    still arrives), so only the watchdog aborts a unit. After a watchdog error, outstanding
    AXI transfers may remain: reset the engine before the next START.
    """

    def __init__(self, config: EngineConfig, *, out_buffer_words: int, weight_rows: int,
                 lanes: int):
        if not isinstance(config, EngineConfig):
            raise TypeError(f"config must be an EngineConfig, not {config!r}")
        self.config = config
        self.regmap = engine_map()
        self.out_buffer_words = out_buffer_words
        self.weight_rows = weight_rows
        self.lanes = lanes
        super().__init__({
            "regs": In(registers_signature(self.regmap)),
            "mem": Out(transfer_port()),
            "sel": Out(range(N_CLIENTS)),
            "job": Out(job_layout()),
            "conv_start": Out(1), "pool_start": Out(1),
            "conv_done": In(1), "pool_done": In(1),
            "outputs": In(32), "terminated": In(32),
            "rd_resp": In(2), "wr_resp": In(2), "resp_clear": Out(1),
            "progress": In(1),
            "abort": Out(1),
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        regs, cfg = self.regs, self.config
        busy, done, error = Signal(), Signal(), Signal()
        code = Signal(range(max(ErrorCode) + 1))
        index = Signal(16)
        index_hi = Signal()         # MAX_COMMANDS commands without END
        cycles = Signal(32)
        cw = config_word(cfg)
        m.d.comb += [
            regs.ID.magic.eq(ID_MAGIC),
            regs.VERSION.format.eq(FORMAT_VERSION),
            regs.MAP_DIGEST.digest.eq(self.regmap.digest32),
            regs.CONFIG_DIGEST.digest.eq(cfg.digest32),
            regs.CONFIG.arrays.eq(cw["arrays"]), regs.CONFIG.kpbs.eq(cw["kpbs"]),
            regs.CONFIG.max_bias_lanes.eq(cw["max_bias_lanes"]),
            regs.CONFIG.addr_bits.eq(cw["addr_bits"]),
            regs.STATUS.busy.eq(busy), regs.STATUS.done.eq(done), regs.STATUS.error.eq(error),
            regs.ERROR.code.eq(code), regs.ERROR.index.eq(index),
            regs.CYCLES.count.eq(cycles),
            regs.LAYER.index.eq(index),
            self.irq.eq(done & regs.CTRL.irq_en),
        ]
        with m.If(busy):
            m.d.sync += cycles.eq(cycles + 1)

        base = Signal(32)
        mem_size = Signal(32)
        cmd_addr = Signal(32)       # offset of the current descriptor
        raw = Signal(DESCRIPTOR_BYTES * 8)
        d = Signal(descriptor_layout())
        fields = decode_fields(raw)
        m.d.comb += [getattr(d, name).eq(v) for name, v in fields.items()]
        reserved = Signal()
        m.d.comb += reserved.eq(reserved_mask_bits(raw))
        m.d.comb += regs.LAYER.op.eq(d.op)

        # ---------------- the check, a pipeline of registered stages --------------------
        # raw (final in FETCH_WAIT) -> A: derived sizes, field flags -> products (each one
        # DSP48E1, registered twice), record size, T -> limit/bounds flags -> DECIDE (priority).
        # Each stage is registered so that no path holds more than one DSP48E1 or one wide
        # adder/comparator (docs/engine.md "Timing"); CHECK waits CHECK_CYCLES for them.
        # Multiplicands are cut to the config's limits (bits of max_channels, ...): a field
        # beyond its limit fails with SIZE_LIMIT before the products are looked at.
        def bits(v):
            return max(1, int(v).bit_length())
        cb, hb, wb = bits(cfg.max_channels), bits(cfg.max_height), bits(cfg.max_width)
        k = d.kernel
        is_conv = d.op == Op.CONV
        is_end = d.op == Op.END
        is_pu = (d.op == Op.MAXPOOL) | (d.op == Op.UPSAMPLE)
        known = is_conv | is_end | is_pu
        # stage A
        fan = Signal(20)
        rs_in = Signal(wb + 1)          # ceil8(width), width <= max_width
        rs_out = Signal(wb + 3)         # ceil8(output row bytes) <= ceil8(4 max_width)
        h_out = Signal(hb)
        c_out = Signal(cb)
        cin_t, h_t = Signal(cb), Signal(hb)
        lb_rows_cin = Signal(cb + 2)     # (k + 1) * cin, k in {1, 3}
        a_flags = Signal(data.StructLayout({
            "unknown": 1, "bad": 1, "zero": 1, "lim": 1, "misal": 1, "st_oob": 1, "trunc": 1}))
        end_extra = Cat(*[getattr(d, f) for f in
                          ("policy", "relu", "head", "kernel", "padding", "digits", "cin",
                           "cout", "height", "width", "bias_lanes", "cout_tile",
                           "in_offset", "out_offset", "param_offset")]).any()
        conv_only = Cat(*[getattr(d, f) for f in
                          ("policy", "relu", "head", "kernel", "padding", "digits",
                           "bias_lanes", "cout_tile", "param_offset", "cout")]).any()
        kp_ok = ((d.kernel == 1) & (d.padding == 0)) | ((d.kernel == 3) & (d.padding == 1))
        pol = d.policy
        # the field checks of a CONV except TRUNCATE's digits <= T (stage D)
        bad_conv = Signal()
        with m.If(~kp_ok):
            m.d.comb += bad_conv.eq(1)
        with m.Elif(d.head & d.relu):
            m.d.comb += bad_conv.eq(1)
        with m.Elif(pol == Policy.TRUNCATE):
            m.d.comb += bad_conv.eq(d.digits < 1)
        with m.Elif(d.digits != 0):
            m.d.comb += bad_conv.eq(1)
        with m.Elif((pol == Policy.SIGN_ONLY) & ~(d.head & (d.cout == 1))):
            m.d.comb += bad_conv.eq(1)
        with m.Elif((pol == Policy.RELU_END) & ~d.relu):
            m.d.comb += bad_conv.eq(1)
        zero = Signal()
        with m.If(is_conv):
            m.d.comb += zero.eq((d.cin == 0) | (d.cout == 0) | (d.height == 0) | (d.width == 0) |
                                (d.cout_tile == 0))
        with m.Elif(is_pu):
            m.d.comb += zero.eq((d.cin == 0) | (d.height == 0) | (d.width == 0))
        lim_pu = (d.cin > cfg.max_channels) | (d.height > cfg.max_height) | (d.width > cfg.max_width)
        lim_up = (d.op == Op.UPSAMPLE) & (((d.height << 1) > cfg.max_height) |
                                           ((d.width << 1) > cfg.max_width))
        lim_conv_a = ((d.cout > cfg.max_channels) | (d.bias_lanes > cfg.max_bias_lanes))
        m.d.sync += [
            a_flags.unknown.eq(~known),
            a_flags.bad.eq(reserved | (is_end & end_extra) | (is_pu & conv_only) |
                           (is_conv & bad_conv) |
                           ((d.op == Op.MAXPOOL) & (d.height[0] | d.width[0]))),
            a_flags.trunc.eq(is_conv & kp_ok & ~(d.head & d.relu) & (pol == Policy.TRUNCATE)),
            a_flags.zero.eq(zero),
            a_flags.lim.eq(~is_end & (lim_pu | lim_up | (is_conv & lim_conv_a))),
            a_flags.misal.eq(
                (d.status_offset & (STATUS_ALIGN - 1)).any() |
                (~is_end & ((d.in_offset & (FMAP_ALIGN - 1)).any() | (d.out_offset & (FMAP_ALIGN - 1)).any())) |
                (is_conv & (d.param_offset & (PARAM_ALIGN - 1)).any())),
            a_flags.st_oob.eq((d.status_offset + STATUS_BYTES) > mem_size),
            fan.eq(Mux(k == 3, (d.cin << 3) + d.cin, d.cin)),
            rs_in.eq(_ceil8(d.width[:wb])),
            c_out.eq(Mux(is_conv, d.cout, d.cin)[:cb]),
            cin_t.eq(d.cin[:cb]), h_t.eq(d.height[:hb]),
            lb_rows_cin.eq(Mux(k == 3, d.cin[:cb] << 2, d.cin[:cb] << 1)),
        ]
        with m.Switch(d.op):
            with m.Case(Op.CONV):
                m.d.sync += rs_out.eq(_ceil8(Mux(d.head, d.width[:wb] << 2, d.width[:wb])))
            with m.Case(Op.MAXPOOL):
                m.d.sync += rs_out.eq(_ceil8(d.width[:wb] >> 1))
            with m.Default():
                m.d.sync += rs_out.eq(_ceil8(d.width[:wb] << 1))
        with m.Switch(d.op):
            with m.Case(Op.MAXPOOL):
                m.d.sync += h_out.eq(d.height[:hb] >> 1)
            with m.Case(Op.UPSAMPLE):
                m.d.sync += h_out.eq(d.height[:hb] << 1)
            with m.Default():
                m.d.sync += h_out.eq(d.height[:hb])
        def product(a, b, width, name):
            # one DSP48E1 with its result registered twice (Yosys packs MREG and PREG):
            # valid two cycles after its operands
            p_m, p_ = Signal(width, name=f"{name}_m"), Signal(width, name=name)
            m.d.sync += [p_m.eq(a * b), p_.eq(p_m)]
            return p_
        # stage B (cycle 2)
        lanes_total = Signal(21)
        # a record of a command within the limits (fan-in <= max_fan_in) is at most rec_max bytes
        nbm = cfg.max_bias_lanes
        rec_max = (((cfg.max_fan_in + 2 * nbm + 3) // 4 * 4 + 16) + 7) // 8 * 8
        rec_bytes = Signal(bits(rec_max))
        _, rec = record_offsets(fan, d.bias_lanes)
        lim_fan = Signal()
        m.d.sync += [
            lanes_total.eq(fan + d.bias_lanes), rec_bytes.eq(rec),
            lim_fan.eq(fan > self.weight_rows * self.lanes),
        ]
        in_p1 = product(cin_t, h_t, cb + hb, "in_p1")                 # cycle 3
        out_p1 = product(c_out, h_out, cb + hb, "out_p1")
        lb_need = product(lb_rows_cin, rs_in, len(lb_rows_cin) + len(rs_in), "lb_need")
        # stage C (cycle 3): L*127 and the limits on sizes
        lim_c = Signal()
        prod = Signal(32)
        lt1 = Signal(21)
        m.d.comb += lt1.eq(Mux(lanes_total == 0, 1, lanes_total))
        assert MAX_WEIGHT == 127        # L * 127 = (L << 7) - L: no multiplier
        m.d.sync += [prod.eq((lt1 << 7) - lt1),
                     lim_c.eq(lim_fan | (lanes_total > cfg.max_fan_in) |
                              ((rs_out >> 3) > self.out_buffer_words))]
        # stage D (cycle 4): the online delay of the layer's lanes (TRUNCATE budget):
        # T = 8 + bitlen(L*127) + 1
        T = Signal(7)
        m.d.sync += T.eq(bit_length(m, prod, plus=ACT_BITS + 1))
        par_bytes = product(d.cout[:cb], rec_bytes, cb + len(rec_bytes), "par_bytes")   # cycle 4
        wb_need = product(d.cout_tile, rec_bytes, 16 + len(rec_bytes), "wb_need")
        in_bytes = product(in_p1, rs_in, len(in_p1) + len(rs_in), "in_bytes")         # cycle 5
        out_bytes = product(out_p1, rs_out, len(out_p1) + len(rs_out), "out_bytes")
        # stage E (cycle 5), F (cycle 6): the flags DECIDE reads
        f = a_flags
        bad_t, lim_e, oob_p, oob_io = Signal(), Signal(), Signal(), Signal()
        m.d.sync += [
            bad_t.eq(f.trunc & (d.digits > T)),
            lim_e.eq(is_conv & (lim_c | (lb_need > cfg.line_buffer_bytes) |
                                (wb_need > cfg.weight_buffer_bytes))),
            oob_p.eq(is_conv & ((d.param_offset + par_bytes) > mem_size)),
            oob_io.eq(~is_end & (((d.in_offset + in_bytes) > mem_size) |
                                 ((d.out_offset + out_bytes) > mem_size))),
        ]
        # DECIDE: in the order of spec.engine.check_descriptor
        chk = Signal(range(max(ErrorCode) + 1))
        with m.If(f.unknown):
            m.d.comb += chk.eq(ErrorCode.UNKNOWN_OP)
        with m.Elif(f.bad | bad_t):
            m.d.comb += chk.eq(ErrorCode.BAD_FIELD)
        with m.Elif(f.zero):
            m.d.comb += chk.eq(ErrorCode.ZERO_SIZE)
        with m.Elif(f.lim | lim_e):
            m.d.comb += chk.eq(ErrorCode.SIZE_LIMIT)
        with m.Elif(f.misal):
            m.d.comb += chk.eq(ErrorCode.MISALIGNED)
        with m.Elif(f.st_oob | oob_p | oob_io):
            m.d.comb += chk.eq(ErrorCode.OUT_OF_IMAGE)
        m.d.comb += [self.job.cmd.eq(d),
                     self.job.in_addr.eq(base + d.in_offset),
                     self.job.out_addr.eq(base + d.out_offset),
                     self.job.param_addr.eq(base + d.param_offset)]

        # ---------------- watchdog ---------------------------------------------------------
        idle_count = Signal(32)
        wd_fire = Signal()
        running_unit = Signal()
        m.d.comb += running_unit.eq(busy)
        with m.If(self.progress | ~running_unit):
            m.d.sync += idle_count.eq(0)
        with m.Else():
            m.d.sync += idle_count.eq(idle_count + 1)
        m.d.comb += wd_fire.eq(running_unit & (regs.WATCHDOG.cycles != 0) &
                               (idle_count >= regs.WATCHDOG.cycles))

        # ---------------- the FSM ----------------------------------------------------------
        beat = Signal(range(DESCRIPTOR_BYTES // 8 + 1))
        chk_wait = Signal(range(CHECK_CYCLES))
        cmd_cycles = Signal(32)
        st_code = Signal.like(code)
        st_outputs = Signal(32)
        st_term = Signal(32)
        st_words = status_words({"done": Const(1, 1), "error": st_code != 0, "code": st_code,
                                 "op": d.op, "cycles": cmd_cycles, "outputs": st_outputs,
                                 "terminated": st_term})
        st_beat = Signal(range(STATUS_BYTES // 8 + 1))
        write_status = Signal()
        with m.If(busy):
            m.d.sync += cmd_cycles.eq(cmd_cycles + 1)

        rd, wr = self.mem.rd_cmd, self.mem.wr_cmd
        # transfer requests, registered (short arbiter paths): set on entering FETCH/STATUS,
        # cleared by the handshake (or the watchdog)
        rd_v, wr_v, rd_addr, wr_addr = Signal(), Signal(), Signal(32), Signal(32)
        m.d.comb += [rd.valid.eq(rd_v), rd.payload.addr.eq(rd_addr),
                     rd.payload.beats.eq(DESCRIPTOR_BYTES // 8),
                     wr.valid.eq(wr_v), wr.payload.addr.eq(wr_addr),
                     wr.payload.beats.eq(STATUS_BYTES // 8)]
        m.d.comb += self.resp_clear.eq(regs.START_stb & regs.START.go & ~busy)

        def fail(c):
            m.d.sync += [st_code.eq(c), code.eq(c), error.eq(1)]

        def watchdog():
            # last in a state: overrides its transition
            with m.If(wd_fire):
                fail(ErrorCode.WATCHDOG)
                m.d.sync += [rd_v.eq(0), wr_v.eq(0)]
                m.d.comb += self.abort.eq(1)
                m.next = "STOP"

        with m.FSM():
            with m.State("IDLE"):
                with m.If(regs.START_stb & regs.START.go):
                    m.d.sync += [busy.eq(1), done.eq(0), error.eq(0), code.eq(0), index.eq(0), index_hi.eq(0),
                                 cycles.eq(0), base.eq(regs.MEM_BASE_LO.addr),
                                 mem_size.eq(regs.MEM_SIZE.bytes),
                                 cmd_addr.eq(regs.CMD_OFFSET.offset)]
                    m.next = "FIRST"
            with m.State("FIRST"):
                # CMD_OFFSET itself: aligned and inside the image, else the first command fails
                with m.If((cmd_addr & (CMD_ALIGN - 1)).any()):
                    m.d.sync += [code.eq(ErrorCode.MISALIGNED), error.eq(1)]
                    m.next = "STOP"
                with m.Elif(index_hi):
                    m.d.sync += [code.eq(ErrorCode.SIZE_LIMIT), error.eq(1)]
                    m.next = "STOP"
                with m.Elif(cmd_addr + DESCRIPTOR_BYTES > mem_size):
                    m.d.sync += [code.eq(ErrorCode.OUT_OF_IMAGE), error.eq(1)]
                    m.next = "STOP"
                with m.Else():
                    m.d.sync += [rd_v.eq(1), rd_addr.eq(base + cmd_addr)]
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.sync += [cmd_cycles.eq(0), st_outputs.eq(0), st_term.eq(0), st_code.eq(0), beat.eq(0)]
                m.d.comb += self.sel.eq(UNIT_SEQ)
                with m.If(rd.ready):
                    m.d.sync += rd_v.eq(0)
                    m.next = "FETCH_DATA"
                watchdog()
            with m.State("FETCH_DATA"):
                m.d.comb += [self.sel.eq(UNIT_SEQ), self.mem.rd_data.ready.eq(1)]
                with m.If(self.mem.rd_data.valid):
                    m.d.sync += [raw.eq(Cat(raw[64:], self.mem.rd_data.payload.data)),
                                 beat.eq(beat + 1)]
                    with m.If(self.mem.rd_data.payload.last):
                        m.next = "FETCH_WAIT"
                watchdog()
            with m.State("FETCH_WAIT"):
                m.d.comb += self.sel.eq(UNIT_SEQ)
                with m.If(self.rd_resp != 0):
                    m.d.sync += [code.eq(Mux(self.rd_resp == RESP_DECERR, ErrorCode.AXI_READ_DECERR,
                                             ErrorCode.AXI_READ_SLVERR)), error.eq(1)]
                    m.next = "STOP"
                with m.Else():
                    m.d.sync += chk_wait.eq(CHECK_CYCLES - 1)
                    m.next = "CHECK"        # stage A registers this cycle
            with m.State("CHECK"):
                m.d.sync += chk_wait.eq(chk_wait - 1)
                with m.If(chk_wait == 0):
                    m.next = "DECIDE"
            with m.State("DECIDE"):
                with m.If(chk != ErrorCode.NONE):
                    # no status record for a failing command (spec.engine)
                    fail(chk)
                    m.next = "STOP"
                with m.Elif(is_end):
                    m.d.sync += [wr_v.eq(1), wr_addr.eq(base + d.status_offset)]
                    m.next = "STATUS"
                with m.Elif(is_conv):
                    m.d.comb += self.conv_start.eq(1)
                    m.next = "RUN_CONV"
                with m.Else():
                    m.d.comb += self.pool_start.eq(1)
                    m.next = "RUN_POOL"
            with m.State("RUN_CONV"):
                m.d.comb += self.sel.eq(UNIT_CONV)
                with m.If(self.conv_done):
                    m.d.sync += [st_outputs.eq(self.outputs), st_term.eq(self.terminated)]
                    m.next = "UNIT_RESP"
                watchdog()
            with m.State("RUN_POOL"):
                m.d.comb += self.sel.eq(UNIT_POOL)
                with m.If(self.pool_done):
                    m.d.sync += [st_outputs.eq(self.outputs), st_term.eq(0)]
                    m.next = "UNIT_RESP"
                watchdog()
            with m.State("UNIT_RESP"):
                m.d.sync += [wr_v.eq(1), wr_addr.eq(base + d.status_offset)]
                m.next = "STATUS"
                with m.If(self.rd_resp != 0):
                    fail(Mux(self.rd_resp == RESP_DECERR, ErrorCode.AXI_READ_DECERR, ErrorCode.AXI_READ_SLVERR))
                    m.d.sync += wr_v.eq(0)
                    m.next = "STOP"
                with m.Elif(self.wr_resp != 0):
                    fail(Mux(self.wr_resp == RESP_DECERR, ErrorCode.AXI_WRITE_DECERR, ErrorCode.AXI_WRITE_SLVERR))
                    m.d.sync += wr_v.eq(0)
                    m.next = "STOP"
            with m.State("STATUS"):
                m.d.comb += self.sel.eq(UNIT_SEQ)
                m.d.sync += st_beat.eq(0)
                with m.If(wr.ready):
                    m.d.sync += wr_v.eq(0)
                    m.next = "STATUS_DATA"
                watchdog()
            with m.State("STATUS_DATA"):
                m.d.comb += [self.sel.eq(UNIT_SEQ), self.mem.wr_data.valid.eq(1),
                             self.mem.wr_data.payload.strb.eq(0xFF)]
                with m.Switch(st_beat):
                    for j in range(STATUS_BYTES // 8):
                        with m.Case(j):
                            m.d.comb += self.mem.wr_data.payload.data.eq(Cat(st_words[2 * j], st_words[2 * j + 1]))
                with m.If(self.mem.wr_data.ready):
                    m.d.sync += st_beat.eq(st_beat + 1)
                    with m.If(st_beat == STATUS_BYTES // 8 - 1):
                        m.next = "STATUS_WAIT"
                watchdog()
            with m.State("STATUS_WAIT"):
                m.d.comb += self.sel.eq(UNIT_SEQ)
                with m.If(self.mem.wr_idle):
                    with m.If((self.wr_resp != 0) & ~error):
                        m.d.sync += [code.eq(Mux(self.wr_resp == RESP_DECERR, ErrorCode.AXI_WRITE_DECERR,
                                                 ErrorCode.AXI_WRITE_SLVERR)), error.eq(1)]
                        m.next = "STOP"
                    with m.Elif(error | is_end):
                        m.next = "STOP"
                    with m.Else():
                        m.d.sync += [cmd_addr.eq(cmd_addr + DESCRIPTOR_BYTES), index.eq(index + 1),
                                     index_hi.eq(index == (1 << 16) - 1)]
                        m.next = "FIRST"
                watchdog()
            with m.State("STOP"):
                m.d.sync += [busy.eq(0), done.eq(1)]
                m.next = "IDLE"
        return m
