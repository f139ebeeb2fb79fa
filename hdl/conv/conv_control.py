"""Control of one convolution core: parameter load, line buffer, window build, PE feed,
result collection and output rows (see :class:`ConvControl`)."""
from __future__ import annotations

import math

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import (ACT_BITS, BIT_PARALLEL_VARIANTS, CHANNEL_RECORD, HEAD_ELEM_BYTES, MAX_WEIGHT,
                            Policy, beats_per_chunk)
from ..bus.axi_master import TRANSFER_BEATS_BITS, transfer_port
from .layout import record_offsets
from .pe import SEQ_BITS, SLOT_BITS, SLOTS, beat_layout, pe_config_layout, pe_result_layout
from .pe_dsp import byte_beat_layout
from .requant import requant_in_layout, requant_out_layout
from .sequencer import bit_length, job_layout

__all__ = ["ConvControl", "param_layout", "ConvGeometry"]


def param_layout(bias_lanes: int) -> data.StructLayout:
    """Per-output-channel parameters kept beside the weight rows."""
    return data.StructLayout({
        "bias_w": data.ArrayLayout(signed(8), bias_lanes),
        "bias_x": data.ArrayLayout(unsigned(8), bias_lanes),
        "mult": signed(32), "shift": unsigned(6), "wpos": signed(32), "wneg": signed(32),
    })


class ConvGeometry:
    """Sizes of one core's buffers, derived from the EngineConfig and the PE width.

    ``lanes`` data lanes per beat (the PE has ``lanes + bias_lanes`` lanes: the bias lanes
    enter on each plane's first chunk); ``weight_rows`` rows of ``lanes`` weights
    (``weight_buffer_bytes // lanes``); ``window_chunks`` chunks of the widest fan-in
    (rounded up to a power of two: the window address is ``plane * window_chunks + chunk``);
    ``line_words`` 64-bit words of line buffer (two banks of even/odd words, so the
    builder reads two neighbouring words per cycle); ``lanes`` must be a multiple of 3; ``out_words`` 64-bit words of output rows;
    ``param_depth`` output channels per weight load.
    """

    def __init__(self, config, *, lanes: int | None = None):
        lanes = config.lanes if lanes is None else lanes  # EngineConfig validates the multiple of 3
        self.lanes = lanes
        #: the PE kind: the MSDF plane PE (a window chunk is stored as ``ACT_BITS`` plane
        #: words of ``2 * lanes`` bits: plane bits and ``rest`` flags) or a bit-parallel PE
        #: (one word of ``8 * lanes`` bits: the bytes)
        self.variant = config.arrays[0].variant
        self.bit_parallel = self.variant in BIT_PARALLEL_VARIANTS
        #: window words (and PE beats) per chunk of an output that runs to the end
        self.beats = beats_per_chunk(self.variant)
        self.win_bits = (8 if self.bit_parallel else 2) * lanes
        self.bias_lanes = config.max_bias_lanes
        self.weight_rows = config.weight_buffer_bytes // lanes
        chunks = -(-config.max_fan_in // lanes)
        self.window_chunks = 1 << max(0, (chunks - 1).bit_length())
        if lanes % 3:
            raise ValueError(f"lanes must be a multiple of 3 (a 3x3 window row never straddles "
                             f"a chunk), not {lanes!r}")
        self.line_words = config.line_buffer_bytes // 8
        #: the line buffer is two banks of 64-bit words (even / odd word addresses)
        self.line_bank_words = -(-self.line_words // 2)
        self.out_words = config.out_buffer_words
        self.param_depth = config.param_table_depth
        self.max_width = config.max_width
        self.max_height = config.max_height


class ConvControl(wiring.Component):
    """The control of one conv core (a leaf: every FSM of the core lives here).

    Core ``core`` of ``cores`` computes every output channel of its band of output rows
    ``[core*qr, min(H, (core+1)*qr))``, ``qr = ceil(H / cores)`` (counted in SPLIT,
    ``qr + 1`` cycles); a core whose band is empty (``H < cores``) finishes at once. The
    cores share nothing but the memory master: each loads every channel record and the
    input rows of its band (``p`` halo rows above and below included). Work order of a
    CONV job (plane-major inside each output, see :mod:`.pe`):

    * for each group of output channels that fits the weight/parameter/output buffers
      (``n`` channels): one read transfer of their ``n`` channel records, parsed into
      weight rows (``lanes`` weights per row, ``ceil(fan/lanes)`` rows per channel;
      ``gcd(lanes, 8)`` weight bytes per cycle) and one parameter entry per channel (the
      bias lanes one byte, the 4-byte fields one field per cycle);
    * for each output row ``y`` of the band: read the input rows it needs that the line
      buffer (``k+1`` row slots per input channel, row ``r`` in slot ``r mod (k+1)``) does
      not hold, one transfer per (row, channel);
    * for each pixel ``x``: the *builder* gathers the window ``x[c, y+ky-p, x+kx-p]`` in
      ``(c, ky, kx)`` order (the ``k`` bytes of one ``(c, ky)`` per cycle from two
      line-buffer banks, zero outside the image) into ``lanes``-byte chunks and writes each chunk as 8 plane words (8 cycles,
      overlapped with the next chunk) into one of two window banks; the *feeder* sends
      the other bank's pixel to the PE with up to SLOTS (5) of its outputs in flight (the PE's
      slots): one plane (all chunks) of one slot per turn, round-robin, a slot taking the
      pixel's next output channel when its output sent its last plane or the PE stopped it
      (so END stops cost no beat while SLOTS outputs are in flight);
    * the *collector* passes each PE result (completion order, tagged with its channel
      and output-row word) with its channel's ``mult``/``shift`` to the requantizer and
      writes the code (or INT32) into the output row buffer at the tagged address;
    * when the row's ``n * W`` results are in, one write transfer per channel row.

    Members: ``job``/``start``/``done`` (from the sequencer), ``outputs``/``terminated``
    (counts of the job), ``progress`` (for the watchdog), ``mem`` (memory client), the
    buffer ports (``lb_*``, ``win_*``, ``wgt_*``, ``par_*``, ``ob_*``) and the PE and
    requantizer streams.
    """

    def __init__(self, geometry: ConvGeometry, *, core: int = 0, cores: int = 1):
        if not (isinstance(cores, int) and cores >= 1 and isinstance(core, int) and 0 <= core < cores):
            raise ValueError(f"core must be in [0, cores) and cores >= 1, not {core!r}, {cores!r}")
        self.core, self.cores = core, cores
        g = self.g = geometry
        L, NB = g.lanes, g.bias_lanes
        self.par_shape = param_layout(NB)
        aw = lambda depth: max(1, (depth - 1).bit_length())  # noqa: E731
        self.win_depth = 2 * g.beats * g.window_chunks
        #: the PE's result tag: the output's channel in the group and its output row's
        #: first word; the requantizer's 16-bit tag carries the result's byte address
        self.o_bits, self.ob_bits = aw(g.param_depth), aw(g.out_words)
        if self.ob_bits + 3 > 16:
            raise ValueError(f"out_words must be at most 8192 (the requantizer's 16-bit tag "
                             f"holds an output-row byte address), not {g.out_words}")
        self.pe_tag_bits = self.o_bits + self.ob_bits
        super().__init__({
            "job": In(job_layout()), "start": In(1), "done": Out(1),
            "outputs": Out(32), "terminated": Out(32), "progress": Out(1),
            "mem": Out(transfer_port()),
            "lb0_w": In(memory.WritePort.Signature(addr_width=aw(g.line_bank_words), shape=64)),
            "lb0_r": In(memory.ReadPort.Signature(addr_width=aw(g.line_bank_words), shape=64)),
            "lb1_w": In(memory.WritePort.Signature(addr_width=aw(g.line_bank_words), shape=64)),
            "lb1_r": In(memory.ReadPort.Signature(addr_width=aw(g.line_bank_words), shape=64)),
            "win_w": In(memory.WritePort.Signature(addr_width=aw(self.win_depth), shape=g.win_bits)),
            "win_r": In(memory.ReadPort.Signature(addr_width=aw(self.win_depth), shape=g.win_bits)),
            "wgt_w": In(memory.WritePort.Signature(addr_width=aw(g.weight_rows), shape=8 * L)),
            "wgt_r": In(memory.ReadPort.Signature(addr_width=aw(g.weight_rows), shape=8 * L)),
            "par_w": In(memory.WritePort.Signature(addr_width=aw(g.param_depth), shape=self.par_shape)),
            "par_feed_addr": Out(aw(g.param_depth)), "par_feed_data": In(self.par_shape),
            "par_coll_addr": Out(aw(g.param_depth)), "par_coll_data": In(self.par_shape),
            "ob_w": In(memory.WritePort.Signature(addr_width=aw(g.out_words), shape=64, granularity=8)),
            "ob_r": In(memory.ReadPort.Signature(addr_width=aw(g.out_words), shape=64)),
            "pe_i": Out(stream.Signature((byte_beat_layout if g.bit_parallel else beat_layout)(
                L + NB, self.pe_tag_bits))),
            "pe_cfg": Out(pe_config_layout()),
            "pe_o": In(stream.Signature(pe_result_layout(self.pe_tag_bits))),
            "pe_stop": In(1), "pe_stop_seq": In(SEQ_BITS), "pe_stop_slots": In(SLOTS),
            "rq_i": Out(stream.Signature(requant_in_layout())),
            "rq_o": In(stream.Signature(requant_out_layout())),
        })

    def elaborate(self, platform):
        m = Module()
        g = self.g
        L, NB = g.lanes, g.bias_lanes
        MC = g.window_chunks
        job = Signal(job_layout())
        cmd = job.cmd
        rd, rdd, wr, wrd = self.mem.rd_cmd, self.mem.rd_data, self.mem.wr_cmd, self.mem.wr_data

        # ---------------- derived sizes (INIT states) ---------------------------------------
        k3 = Signal()
        pad = Signal(2)
        fan = Signal(20)
        nch = Signal(range(g.weight_rows + 2))        # chunks (= weight rows) per channel
        rs_in, rw_in = Signal(17), Signal(14)
        elem4 = Signal()
        rs_out, rw_out = Signal(20), Signal(17)
        last_bytes = Signal(3)     # valid bytes of an output row's last word (0: all 8)
        # plane strides of a command within the limits (H <= max_height, W <= max_width):
        # narrow enough that each product is one DSP48E1
        plane_in = Signal(max(1, (g.max_height * (-(-g.max_width // 8) * 8)).bit_length()))
        plane_out = Signal(max(1, (g.max_height * (-(-4 * g.max_width // 8) * 8)).bit_length()))
        cin_m1, rw_in_m1, rw_out_m1, H_m1 = Signal(16), Signal(14), Signal(17), Signal(16)
        slot_stride = Signal(24)   # words of one row slot (all input channels)
        lt127 = Signal(32)         # (fan + bias lanes) * 127
        rec = Signal(24)
        F = Signal(5)
        H, W, CIN, COUT = Signal(16), Signal(16), Signal(16), Signal(16)
        nbl = Signal(range(NB + 1))
        offs, _ = record_offsets(fan, nbl)
        m.d.comb += [
            self.pe_cfg.policy.eq(cmd.policy), self.pe_cfg.digits.eq(cmd.digits),
            self.pe_cfg.online_delay.eq(F),
        ]

        # ---------------- counters shared by the phases -------------------------------------
        t0 = Signal(16)            # first output channel of the group
        qr = Signal(16)            # output rows per core
        qc, qc1 = Signal(17), Signal(17)   # qr * core, qr * (core + 1)
        y0, y1 = Signal(16), Signal(17)    # this core's output rows [y0, y1)
        r0 = Signal(16)            # the band's first input row: max(y0 - p, 0)
        ch_hi = Signal(17)         # end of the output channels (0: the band is empty)
        n = Signal(range(g.param_depth + 1))   # channels in the group
        y = Signal(16)
        next_row = Signal(17)      # first input row not in the line buffer
        results = Signal(32)       # results of the row collected
        row_go = Signal()          # pulse: builder and feeder start row y
        build_done, feed_done = Signal(), Signal()
        outputs, terminated = Signal(32), Signal(32)
        m.d.comb += [self.outputs.eq(outputs), self.terminated.eq(terminated)]

        def slot_base(r):
            s = Signal(24)
            sl = Mux(k3, r[:2], r[:1])
            m.d.comb += s.eq(Mux(sl[1], slot_stride << 1, 0) + Mux(sl[0], slot_stride, 0))
            return s

        # ---------------- parameter load: record parser ------------------------------------
        # A record (8-byte aligned, so it starts a beat) is parsed in three modes, each a
        # registered flag: FAST, G = gcd(lanes, 8) weight bytes per cycle into G lanes of
        # the row (a one-hot lane group: lane l takes byte l % G, no crossbar; rows end on a
        # group, G divides lanes) while G or more weight bytes are left; BYTE, one byte per
        # cycle (the fan % G last weight bytes, the bias lanes, the padding before the
        # 4-byte fields); WORD, one 4-byte field per cycle (mult, shift, wpos, wneg and the
        # record's padding word), a one-hot field index, the record ending on its last word.
        # Every decision comes from a register or one narrow comparison with a constant (no
        # adder before a compare, no barrel shift): down counters of the weight bytes and
        # of the bytes before the first 4-byte field, the registered field offsets.
        G = math.gcd(L, 8)
        rec_names = [r[0] for r in CHANNEL_RECORD]
        WORDS = rec_names[rec_names.index("mult"):]            # the 4-byte fields, in order
        pj = Signal(range(g.param_depth + 1))      # channel being parsed
        pj_left = Signal(range(g.param_depth + 1)) # records still to parse, this one included
        pos = Signal(24)                            # byte position in its record
        wleft = Signal(20)                          # weight bytes of the record still to come
        tleft = Signal(24)                          # bytes before the record's first 4-byte field
        m_fast, m_word = Signal(), Signal()         # the mode (BYTE: neither)
        fan_ge_g = Signal()                         # fan >= G: a record starts in FAST
        wi = Signal(len(WORDS) + 1, init=1)         # one-hot WORD index (the last: padding)
        pj_last = Signal()                          # pj_left == 1 (registered)
        sh = Signal(64)                             # bytes of the current beat
        sh_n = Signal(4)                            # bytes left in sh
        wword = Signal(8 * L)
        wl_oh = Signal(L, init=1)                   # one-hot lane of the next weight byte
        wrow = Signal(range(g.weight_rows + 1))     # weight row being filled
        par = Signal(self.par_shape)
        commit = Signal()
        byte, word = sh[:8], sh[:32]
        parse = Signal()
        parse_done = Signal()
        offr = {name: Signal(24, name=f"off_{name}") for name in ("bias_w", "bias_x", "mult")}
        # the record ends on a padding word when its 4-byte fields end off a beat boundary
        pad_word = Signal()
        m.d.comb += pad_word.eq(offr["mult"][2] ^ (len(WORDS) % 2))
        r_end = Signal()                            # the record's last word (in WORD)
        beat_end = Signal()                         # this cycle takes the beat's last bytes
        m.d.comb += [
            parse.eq(sh_n != 0),
            r_end.eq(m_word & Mux(pad_word, wi[len(WORDS)], wi[len(WORDS) - 1])),
            beat_end.eq(Mux(m_fast, sh_n == G, Mux(m_word, sh_n == 4, sh_n == 1))),
        ]
        rel = {name: Signal(24, name=f"rel_{name}") for name in ("bias_w", "bias_x")}
        m.d.comb += [rel[name].eq(pos - offr[name]) for name in rel]
        m.d.comb += [self.wgt_w.addr.eq(wrow), self.wgt_w.data.eq(wword),
                     self.par_w.addr.eq(pj - 1), self.par_w.data.eq(par)]
        with m.If(parse):
            with m.If(m_fast):
                m.d.sync += [sh.eq(sh >> (8 * G)), sh_n.eq(sh_n - G), pos.eq(pos + G),
                             tleft.eq(tleft - G)]
            with m.Elif(m_word):
                m.d.sync += [sh.eq(sh >> 32), sh_n.eq(sh_n - 4)]
            with m.Else():
                m.d.sync += [sh.eq(sh >> 8), sh_n.eq(sh_n - 1), pos.eq(pos + 1),
                             tleft.eq(tleft - 1)]
            # weights: FAST writes lanes l of the group wl_oh[l - l % G] with byte l % G,
            # BYTE lane wl_oh[l] with byte 0; a row is written on its last lane
            with m.If(m_fast | (~m_word & (wleft != 0))):
                src = [byte] + [Mux(m_fast, sh.word_select(i, 8), byte) for i in range(1, G)]
                wnext = Signal(8 * L)
                m.d.comb += wnext.eq(Cat(*[Mux(Mux(m_fast, wl_oh[j - j % G], wl_oh[j]), src[j % G],
                                               wword[8 * j:8 * j + 8]) for j in range(L)]))
                m.d.sync += wleft.eq(wleft - Mux(m_fast, G, 1))
                with m.If(Mux(m_fast, wl_oh[L - G] | (wleft == G), wl_oh[L - 1] | (wleft == 1))):
                    m.d.comb += [self.wgt_w.en.eq(1), self.wgt_w.data.eq(wnext)]
                    m.d.sync += [wword.eq(0), wl_oh.eq(1), wrow.eq(wrow + 1)]
                with m.Else():
                    m.d.sync += [wword.eq(wnext),
                                 wl_oh.eq(Mux(m_fast, Cat(Const(0, G), wl_oh[:-G]), Cat(0, wl_oh[:-1])))]
            with m.If(~m_fast & ~m_word):
                for j in range(NB):
                    with m.If((j < nbl) & (rel["bias_w"] == j)):
                        m.d.sync += par.bias_w[j].eq(byte)
                    with m.If((j < nbl) & (rel["bias_x"] == j)):
                        m.d.sync += par.bias_x[j].eq(byte)
            # mode changes: FAST -> BYTE/WORD after the last whole group of weights, BYTE ->
            # WORD at the first 4-byte field (tleft reaches 0), WORD -> FAST/BYTE at the
            # next record
            with m.If(m_fast):
                with m.If(wleft < 2 * G):
                    m.d.sync += [m_fast.eq(0), m_word.eq(tleft == G)]
            with m.Elif(~m_word):
                with m.If(tleft == 1):
                    m.d.sync += m_word.eq(1)
            with m.Else():
                for k, name in enumerate(WORDS):
                    with m.If(wi[k]):
                        f = Value.cast(getattr(par, name))
                        m.d.sync += f.eq(word[:len(f)])
                m.d.sync += wi.eq(Cat(0, wi[:-1]))
                with m.If(r_end):
                    # the record's last word: its entry is written next cycle, complete
                    m.d.sync += [pos.eq(0), pj.eq(pj + 1), commit.eq(1), pj_left.eq(pj_left - 1),
                                 wleft.eq(fan), tleft.eq(offr["mult"]), wi.eq(1), m_word.eq(0),
                                 m_fast.eq(fan_ge_g), pj_last.eq(pj_left == 2)]
                    m.d.comb += parse_done.eq(pj_last)
        with m.If(commit):
            m.d.comb += self.par_w.en.eq(1)
            m.d.sync += [commit.eq(0), par.eq(0)]

        # ---------------- line loader ------------------------------------------------------
        # Addresses are counters, not products: rows are loaded in order, so the next row's
        # address (ll_addr) and line-buffer word (ld_a: k+1 row slots of cin channels x
        # rw_in words, filled in order, wrapping after the last slot) carry over. The loader
        # runs beside the main FSM (ld_act): ROWS starts it for the rows output row y needs,
        # and again when row y starts for the row y + 1 needs beyond them (prefetch: the
        # slot it fills, (y + p + 1) mod (k+1), holds row y - p - 1, which row y no longer
        # reads), so that load overlaps row y's pixel pipeline and output writes.
        ld_act = Signal()                            # transfers or data of a load outstanding
        ll_r, ll_c = Signal(17), Signal(16)          # command issue counters
        ll_addr = Signal(32)                         # address of input row ll_r, channel 0
        ll_caddr = Signal(32)                        # ... channel ll_c
        ll_last_r = Signal(17)
        ld_r, ld_c, ld_w = Signal(17), Signal(16), Signal(14)   # data counters
        ld_a = Signal(25)
        ld_row_end = Signal()
        m.d.comb += [ld_row_end.eq((ld_w == rw_in_m1) & (ld_c == cin_m1)),
                     self.lb0_w.addr.eq(ld_a >> 1), self.lb1_w.addr.eq(ld_a >> 1),
                     self.lb0_w.data.eq(rdd.payload.data), self.lb1_w.data.eq(rdd.payload.data)]

        # ---------------- output row writer ------------------------------------------------
        wo = Signal(range(g.param_depth + 1))
        wo_addr = Signal(32)
        row_addr = Signal(32)        # output row y of channel t0
        # per-group products, registered (t0, n stay put for the group's FIT .. RUN states)
        nrec = Signal(32)            # n * rec, counted in FIT
        p_addr, grp_out = Signal(32), Signal(32)
        # the transfer requests, registered (short arbiter paths): rd_v is set only in LOADP
        # and by the line loader (rd_l), wr_v only in WCMD
        rd_v, rd_l, wr_v = Signal(), Signal(), Signal()
        m.d.comb += [rd.valid.eq(rd_v), rd.payload.addr.eq(Mux(rd_l, ll_caddr, p_addr)),
                     rd.payload.beats.eq(Mux(rd_l, rw_in, nrec >> 3)),
                     wr.valid.eq(wr_v), wr.payload.addr.eq(wo_addr), wr.payload.beats.eq(rw_out)]
        ob_need = Signal(24)         # (n + 1) * rw_out in FIT
        hi = Signal(17)              # last input row output row y needs: min(y + p, H - 1)
        hi1 = Signal(17)             # ... output row y + 1 needs: min(y + 1 + p, H - 1)
        wq_v = Signal()
        wq_w = Signal(17)            # words read for the current channel row
        ob_rbase = Signal(24)
        wq_sent = Signal(17)
        # row padding bytes are written as 0 (spec.engine)
        keep = Signal(8)
        with m.If((wq_sent == rw_out_m1) & (last_bytes != 0)):
            m.d.comb += keep.eq((Const(1, 9) << last_bytes) - 1)
        with m.Else():
            m.d.comb += keep.eq(0xFF)
        m.d.comb += [wrd.payload.strb.eq(0xFF),
                     wrd.payload.data.eq(self.ob_r.data & Cat(*[b.replicate(8) for b in keep]))]

        # Products of registers, computed every cycle, each one DSP48E1 registered twice (Yosys
        # packs MREG and PREG): valid two cycles after their operands. H, W, CIN, rs_in, rw_in
        # are set in INIT1, rs_out in INIT2, y0/r0 in SPLIT, t0 in INIT1/ROWS (then GROUP and at
        # least two FIT cycles pass before LOADP reads p_addr; the band's addresses are read
        # when LOADP_DATA ends), n in FIT.
        def product(a, b, width, name):
            p_m, p_ = Signal(width, name=f"{name}_m"), Signal(width, name=name)
            m.d.sync += [p_m.eq(a * b), p_.eq(p_m)]
            return p_
        m.d.sync += [plane_in.eq(product(H, rs_in, len(plane_in), "plane_in_p")),
                     slot_stride.eq(product(CIN, rw_in, len(slot_stride), "slot_stride_p")),
                     plane_out.eq(product(H, rs_out, len(plane_out), "plane_out_p"))]
        t0_rec = product(t0, rec, 32, "t0_rec")
        t0_plane = product(t0, plane_out, 32, "t0_plane")
        n_w = product(n, W, 24, "n_w")
        m.d.sync += [p_addr.eq(job.param_addr + t0_rec), grp_out.eq(job.out_addr + t0_plane)]
        # the core's band: its first output row of channel t0, its first input row (channel 0)
        y0_out = product(y0, rs_out, 32, "y0_out")
        r0_in = product(r0, rs_in, 32, "r0_in")
        band_out, band_in = Signal(32), Signal(32)
        m.d.sync += [band_out.eq(grp_out + y0_out), band_in.eq(job.in_addr + r0_in)]

        # the loader: transfers (row, channel) in order; data follows in the same order
        def load_rows(last):
            m.d.sync += [ll_r.eq(next_row), ll_c.eq(0), ll_last_r.eq(last), ll_caddr.eq(ll_addr),
                         rd_v.eq(1), rd_l.eq(1), ld_r.eq(next_row), ld_c.eq(0), ld_w.eq(0),
                         next_row.eq(last + 1), ld_act.eq(1)]
        with m.If(ld_act):
            with m.If(rd.valid & rd.ready):
                with m.If(ll_c == cin_m1):
                    m.d.sync += [ll_c.eq(0), ll_r.eq(ll_r + 1), ll_addr.eq(ll_addr + rs_in),
                                 ll_caddr.eq(ll_addr + rs_in), rd_v.eq(ll_r != ll_last_r)]
                with m.Else():
                    m.d.sync += [ll_c.eq(ll_c + 1), ll_caddr.eq(ll_caddr + plane_in)]
            m.d.comb += rdd.ready.eq(1)
            with m.If(rdd.valid):
                m.d.comb += [self.lb0_w.en.eq(~ld_a[0]), self.lb1_w.en.eq(ld_a[0])]
                m.d.sync += ld_a.eq(Mux(ld_row_end & Mux(k3, ld_r[:2] == 3, ld_r[0]), 0, ld_a + 1))
                with m.If(ld_w == rw_in_m1):
                    m.d.sync += ld_w.eq(0)
                    with m.If(ld_c == cin_m1):
                        m.d.sync += [ld_c.eq(0), ld_r.eq(ld_r + 1)]
                    with m.Else():
                        m.d.sync += ld_c.eq(ld_c + 1)
                with m.Else():
                    m.d.sync += ld_w.eq(ld_w + 1)
                with m.If(ld_row_end & (ld_r == ll_last_r)):
                    m.d.sync += ld_act.eq(0)

        # ---------------- main FSM ---------------------------------------------------------
        cnt = Signal(24)
        with m.FSM():
            with m.State("IDLE"):
                m.d.sync += self.done.eq(0)
                with m.If(self.start):
                    m.d.sync += [job.eq(self.job), outputs.eq(0), terminated.eq(0)]
                    m.next = "INIT1"
            with m.State("INIT1"):
                m.d.sync += [
                    k3.eq(cmd.kernel == 3), pad.eq(cmd.padding),
                    fan.eq(Mux(cmd.kernel == 3, (cmd.cin << 3) + cmd.cin, cmd.cin)),
                    H.eq(cmd.height), W.eq(cmd.width), CIN.eq(cmd.cin), COUT.eq(cmd.cout),
                    nbl.eq(cmd.bias_lanes), elem4.eq(cmd.head),
                    rs_in.eq(((cmd.width + 7) >> 3) << 3), rw_in.eq((cmd.width + 7) >> 3),
                    t0.eq(0), nch.eq(0), cnt.eq(0),
                ]
                m.next = "INIT2"
            with m.State("INIT2"):
                wbytes = Mux(elem4, W << 2, W)
                m.d.sync += [
                    rs_out.eq(((wbytes + 7) >> 3) << 3), rw_out.eq((wbytes + 7) >> 3),
                    last_bytes.eq(wbytes[:3]),
                    cin_m1.eq(CIN - 1), rw_in_m1.eq(rw_in - 1), H_m1.eq(H - 1),
                ]
                # the record's field offsets: up to "mult" here, the rest from it in INIT3
                m.d.sync += [offr[name].eq(offs[name][0]) for name in ("bias_w", "bias_x", "mult")]
                # the online delay F = bitlen(L * 127) + 1 of the layer's lanes (in INIT3)
                lanes_total = Signal(21)
                m.d.comb += lanes_total.eq(fan + nbl)
                assert MAX_WEIGHT == 127        # L * 127 = (L << 7) - L: no multiplier
                m.d.sync += lt127.eq((lanes_total << 7) - lanes_total)
                m.next = "INIT3"
            with m.State("INIT3"):
                _, rec_tail = record_offsets(fan, nbl, start=("mult", offr["mult"]))
                m.d.sync += [rw_out_m1.eq(rw_out - 1), rec.eq(rec_tail), F.eq(bit_length(m, lt127, plus=1))]
                m.d.sync += fan_ge_g.eq(fan >= G)
                # nch = ceil(fan / lanes) by counting (at most max_fan_in / lanes cycles)
                with m.If(cnt < fan):
                    m.d.sync += [cnt.eq(cnt + L), nch.eq(nch + 1)]
                with m.Else():
                    m.d.sync += [cnt.eq(0), qr.eq(0), qc.eq(0), qc1.eq(0)]
                    m.next = "SPLIT"
            with m.State("SPLIT"):
                # this core's output rows: [core*qr, min(H, (core+1)*qr)), qr = ceil(H/cores),
                # all output channels (qr * core and qr * (core + 1) counted alongside: qc,
                # qc1); an empty band (H < cores) has no channel to compute
                with m.If(cnt < H):
                    m.d.sync += [cnt.eq(cnt + self.cores), qr.eq(qr + 1),
                                 qc.eq(qc + self.core), qc1.eq(qc1 + self.core + 1)]
                with m.Else():
                    m.d.sync += [y0.eq(qc), y1.eq(Mux(qc1 > H, H, qc1)),
                                 r0.eq(Mux(qc > pad, qc - pad, 0)),
                                 ch_hi.eq(Mux(qc >= H, 0, COUT))]
                    m.next = "GROUP"
            with m.State("GROUP"):
                with m.If(t0 >= ch_hi):
                    m.next = "FINISH"
                with m.Else():
                    m.d.sync += [n.eq(0), cnt.eq(nch), ob_need.eq(rw_out), nrec.eq(0)]
                    m.next = "FIT"
            with m.State("FIT"):
                # one more channel fits the parameter, weight and output-row buffers?
                fits = ((n < g.param_depth) & (t0 + n < ch_hi) & (cnt <= g.weight_rows) &
                        (ob_need <= g.out_words))
                with m.If(fits):
                    m.d.sync += [n.eq(n + 1), cnt.eq(cnt + nch), ob_need.eq(ob_need + rw_out),
                                 nrec.eq(nrec + rec)]
                with m.Else():
                    m.d.sync += [pj.eq(0), pos.eq(0), wrow.eq(0), wl_oh.eq(1), wword.eq(0), par.eq(0), rd_v.eq(1),
                                 pj_left.eq(n), wleft.eq(fan), tleft.eq(offr["mult"]), wi.eq(1),
                                 m_fast.eq(fan_ge_g), m_word.eq(0), pj_last.eq(n == 1), rd_l.eq(0)]
                    m.next = "LOADP"
            with m.State("LOADP"):
                with m.If(rd.ready):
                    m.d.sync += rd_v.eq(0)
                    m.next = "LOADP_DATA"
            with m.State("LOADP_DATA"):
                m.d.comb += rdd.ready.eq(~parse | (beat_end & ~parse_done))
                with m.If(rdd.valid & rdd.ready):
                    m.d.sync += [sh.eq(rdd.payload.data), sh_n.eq(8)]
                with m.If(parse_done):
                    m.d.sync += sh_n.eq(0)
                    m.next = "ROWS"
                    # the band's first row; its input rows from r0 (line-buffer slot r0 mod k+1)
                    m.d.sync += [y.eq(y0), next_row.eq(r0), row_addr.eq(band_out),
                                 hi.eq(Mux(y0 + pad > H_m1, H_m1, y0 + pad)),
                                 hi1.eq(Mux(y0 + 1 + pad > H_m1, H_m1, y0 + 1 + pad)),
                                 ll_addr.eq(band_in), ld_a.eq(slot_base(r0))]
            with m.State("ROWS"):
                # input rows y-p .. y+p must be in the line buffer (the last row of the band
                # prefetches nothing, so the loader is idle when the band is done)
                with m.If(y >= y1):
                    m.d.sync += t0.eq(t0 + n)
                    m.next = "GROUP"
                with m.Elif(ld_act):
                    pass                                # a load (prefetch) still running
                with m.Elif(next_row <= hi):
                    load_rows(hi)
                with m.Else():
                    m.d.comb += row_go.eq(1)
                    m.d.sync += results.eq(0)
                    with m.If((y + 1 < y1) & (next_row <= hi1)):
                        load_rows(hi1)                  # prefetch for row y + 1
                    m.next = "RUN"
            with m.State("RUN"):
                with m.If(build_done & feed_done & (results == n_w)):
                    m.d.sync += [wo.eq(0), wo_addr.eq(row_addr), ob_rbase.eq(0), wr_v.eq(1)]
                    m.next = "WCMD"
            with m.State("WCMD"):
                with m.If(wo == n):
                    m.d.sync += [y.eq(y + 1), row_addr.eq(row_addr + rs_out),
                                 hi.eq(Mux(y + 1 + pad > H_m1, H_m1, y + 1 + pad)),
                                 hi1.eq(Mux(y + 2 + pad > H_m1, H_m1, y + 2 + pad))]
                    m.next = "ROWS"
                with m.Else():
                    with m.If(wr.ready):
                        m.d.sync += [wq_v.eq(0), wq_w.eq(0), wq_sent.eq(0), wr_v.eq(0)]
                        m.next = "WDATA"
            with m.State("WDATA"):
                # ob read (1 cycle) -> wr_data; the read port holds its data while en is 0
                adv = Signal()
                m.d.comb += [adv.eq(~wq_v | wrd.ready),
                             self.ob_r.addr.eq(ob_rbase + wq_w), self.ob_r.en.eq(adv & (wq_w < rw_out)),
                             wrd.valid.eq(wq_v)]
                with m.If(adv):
                    m.d.sync += wq_v.eq(wq_w < rw_out)
                    with m.If(wq_w < rw_out):
                        m.d.sync += wq_w.eq(wq_w + 1)
                with m.If(wrd.valid & wrd.ready):
                    m.d.sync += wq_sent.eq(wq_sent + 1)
                    with m.If(wq_sent == rw_out_m1):
                        m.d.sync += [wo.eq(wo + 1), wo_addr.eq(wo_addr + plane_out),
                                     ob_rbase.eq(ob_rbase + rw_out), wq_v.eq(0), wr_v.eq(wo + 1 != n)]
                        m.next = "WCMD"
            with m.State("FINISH"):
                with m.If(self.mem.wr_idle & self.mem.rd_idle):
                    m.d.sync += self.done.eq(1)
                    m.next = "IDLE"

        # ---------------- builder: window of pixel bx into bank bb --------------------------
        full = Signal(2)            # window bank holds a built pixel
        set_full, clr_full = Signal(2), Signal(2)
        m.d.sync += full.eq((full | set_full) & ~clr_full)
        b_act = Signal()
        bx = Signal(16)
        bb = Signal()
        b_c, b_ky = Signal(16), Signal(2)
        b_lane = Signal(L, init=1)  # one-hot: the lane of the element's first byte
        b_chunk = Signal(range(MC))
        b_issue_done = Signal()     # every element of the pixel issued
        # one element per cycle: the k bytes x[c, y+ky-p, x-p .. x-p+k-1] (fan indices
        # c*k*k + ky*k + kx are consecutive); they lie in line-buffer words w0, w0+1, which
        # are in different banks (even/odd word address), so both are read in one cycle
        e_v, e_lane, e_end, e_last = Signal(), Signal(L), Signal(), Signal()
        e_ok = Signal(3)            # byte kx of the element is inside the image (registered)
        e_col = Signal(signed(18))
        e_odd = Signal()
        e_chunk = Signal(range(MC))
        gather = Signal(8 * L)
        # plane writer
        pw_busy = Signal()
        pw_t = Signal(3)
        pw_word = Signal(8 * L)
        pw_chunk = Signal(range(MC))
        pw_bank = Signal()
        pw_last = Signal()
        # line-buffer word of an element = slot base of input row y+ky-p (registered per row,
        # with its in-image flag) + cbw = c*rw_in + (x-p)>>3 (a register kept per pixel and
        # channel): one adder before the block RAM address
        sb = [Signal(24, name=f"sb{j}") for j in range(3)]
        rin_ok = Signal(3)
        for j in range(3):
            r_j = Signal(signed(18), name=f"r_in{j}")
            m.d.comb += r_j.eq(y + j - pad)
            m.d.sync += [sb[j].eq(slot_base(r_j[:17])), rin_ok[j].eq((r_j >= 0) & (r_j < H))]
        c0 = Signal(signed(18))     # column of the element's first byte: bx - p
        c0n = Signal(signed(18))
        c0_row = Signal(signed(18))  # c0 of the row's first pixel: -p
        m.d.comb += [c0n.eq(c0 + 1), c0_row.eq(0 - pad)]
        cbw, cbw1 = Signal(signed(26)), Signal(signed(26))      # c*rw_in + (c0 >> 3), + 1
        last_elem = (b_c == cin_m1) & (b_ky == Mux(k3, 2, 0))
        elem_end = Mux(k3, b_lane[L - 3], b_lane[L - 1]) | last_elem
        stall = elem_end & (pw_busy | (e_v & e_end))
        issue = Signal()
        m.d.comb += issue.eq(b_act & ~b_issue_done & ~full.bit_select(bb, 1) & ~stall)
        a0, a1 = Signal(signed(26)), Signal(signed(26))
        sb_sel = Mux(b_ky[1], sb[2], Mux(b_ky[0], sb[1], sb[0]))
        m.d.comb += [a0.eq(sb_sel + cbw), a1.eq(sb_sel + cbw1)]
        m.d.comb += [self.lb0_r.addr.eq(a1 >> 1), self.lb1_r.addr.eq(a0 >> 1),
                     self.lb0_r.en.eq(issue), self.lb1_r.en.eq(issue)]
        m.d.sync += e_v.eq(issue)
        with m.If(issue):
            m.d.sync += [e_col.eq(c0), e_odd.eq(a0[0]),
                         e_lane.eq(b_lane), e_end.eq(elem_end), e_chunk.eq(b_chunk), e_last.eq(last_elem)]
            with m.If(elem_end):
                m.d.sync += [b_lane.eq(1), b_chunk.eq(b_chunk + 1)]
            with m.Else():
                m.d.sync += b_lane.eq(Mux(k3, b_lane << 3, b_lane << 1))
            for kx in range(3):
                c_kx = c0 + kx
                m.d.sync += e_ok[kx].eq(rin_ok.bit_select(b_ky, 1) & (c_kx >= 0) & (c_kx < W) &
                                        ((kx == 0) | k3))
            # (c, ky) order
            with m.If(b_ky == Mux(k3, 2, 0)):
                m.d.sync += [b_ky.eq(0), b_c.eq(b_c + 1), cbw.eq(cbw + rw_in), cbw1.eq(cbw1 + rw_in)]
            with m.Else():
                m.d.sync += b_ky.eq(b_ky + 1)
            with m.If(last_elem):
                m.d.sync += b_issue_done.eq(1)
        pair = Signal(128)          # words w0, w0+1
        m.d.comb += pair.eq(Mux(e_odd, Cat(self.lb1_r.data, self.lb0_r.data),
                                Cat(self.lb0_r.data, self.lb1_r.data)))
        g_next = Signal(8 * L)
        new_bytes = []
        for kx in range(3):
            b_ = Signal(8, name=f"e_byte{kx}")
            m.d.comb += b_.eq(Mux(e_ok[kx], pair.word_select((e_col[:3] + kx)[:4], 8), 0))
            new_bytes.append(b_)
        # byte kx lands in lane e_lane + kx (e_lane one-hot: an AND-OR, no barrel shift)
        lanes_new = []
        for j in range(L):
            v = Const(0, 8)
            for kx in range(min(3, j + 1)):
                v = v | (new_bytes[kx] & e_lane[j - kx].replicate(8))
            lanes_new.append(v)
        m.d.comb += g_next.eq(gather | Cat(*lanes_new))
        with m.If(e_v):
            with m.If(e_end):
                m.d.sync += [gather.eq(0), pw_word.eq(g_next), pw_busy.eq(1), pw_t.eq(0),
                             pw_chunk.eq(e_chunk), pw_bank.eq(bb), pw_last.eq(e_last)]
            with m.Else():
                m.d.sync += gather.eq(g_next)
        # plane t word: bit (7 - t) of every lane's byte, and (for END) whether the lane's
        # bits below it are not all zero
        plane_bits = Signal(L)
        rest_bits = Signal(L)
        with m.Switch(pw_t):
            for t in range(ACT_BITS):
                with m.Case(t):
                    m.d.comb += plane_bits.eq(Cat(*[pw_word[8 * j + ACT_BITS - 1 - t] for j in range(L)]))
                    if t < ACT_BITS - 1:
                        m.d.comb += rest_bits.eq(Cat(*[pw_word[8 * j:8 * j + ACT_BITS - 1 - t].any()
                                                       for j in range(L)]))
        if g.bit_parallel:
            # a bit-parallel PE takes the bytes: one window word per chunk
            m.d.comb += [self.win_w.addr.eq(Cat(pw_chunk, pw_bank)), self.win_w.data.eq(pw_word)]
        else:
            m.d.comb += [self.win_w.addr.eq(Cat(pw_chunk, pw_t, pw_bank)),
                         self.win_w.data.eq(Cat(plane_bits, rest_bits))]
        m.d.comb += self.win_w.en.eq(pw_busy)
        with m.If(pw_busy):
            m.d.sync += pw_t.eq(pw_t + 1)
            with m.If(pw_t == g.beats - 1):
                m.d.sync += pw_busy.eq(0)
                with m.If(pw_last):
                    m.d.comb += set_full.eq(Mux(pw_bank, 0b10, 0b01))
        pixel_built = Signal()
        m.d.comb += pixel_built.eq(pw_busy & (pw_t == g.beats - 1) & pw_last)
        with m.If(row_go):
            m.d.sync += [b_act.eq(1), bx.eq(0), build_done.eq(0), b_c.eq(0), b_ky.eq(0),
                         c0.eq(c0_row), cbw.eq(c0_row >> 3), cbw1.eq((c0_row >> 3) + 1),
                         b_lane.eq(1), b_chunk.eq(0), b_issue_done.eq(0)]
        with m.Elif(pixel_built):
            m.d.sync += [bb.eq(~bb), b_c.eq(0), b_ky.eq(0), b_lane.eq(1),
                         c0.eq(c0n), cbw.eq(c0n >> 3), cbw1.eq((c0n >> 3) + 1),
                         b_chunk.eq(0), b_issue_done.eq(0), bx.eq(bx + 1)]
            with m.If(bx == W - 1):
                m.d.sync += [b_act.eq(0), build_done.eq(1)]

        # ---------------- feeder: bank fb -> PE beats, SLOTS outputs interleaved -------------
        # The pixel's outputs run in the PE's SLOTS slots at once. Each turn one slot sends
        # one plane of its output (all its chunks); the next turn goes to the next slot that
        # has work (round-robin), so with SLOTS slots of one chunk an output's next plane comes
        # exactly when the PE's decision on its previous plane is out (STOP_LATENCY + the
        # beat register): END stops cost nothing. With fewer outputs left the slots send
        # their next planes before the decision (beats of a stopped output are dropped by
        # the PE). A stop frees the slot, which takes the pixel's next output at once (in
        # the same cycle when it is the slot being sent). The pixel is done when every
        # output was sent or stopped.
        S = SLOTS
        f_act = Signal()
        fx = Signal(16)
        fb = Signal()
        planes = Signal(4)
        if g.bit_parallel:
            m.d.comb += planes.eq(1)        # one beat per chunk, every policy
        else:
            m.d.comb += planes.eq(Mux((cmd.policy == Policy.TRUNCATE) & (cmd.digits < ACT_BITS),
                                      cmd.digits, ACT_BITS))
        OB = self.ob_bits
        nx_o = Signal(range(g.param_depth + 1))     # the pixel's next output to start
        nx_wb = Signal(range(g.weight_rows + 1))    # its first weight row
        nx_ob = Signal(OB + 1)                      # its output row's first word
        avail = Signal()
        m.d.comb += avail.eq(nx_o < n)
        s_busy = Signal(S)                          # the slot has an output to send
        s_gen = Signal(S)                           # generation bit of the slot's output
        s_o = Array(Signal(range(g.param_depth + 1), name=f"s{s}_o") for s in range(S))
        s_wb = Array(Signal(range(g.weight_rows + 1), name=f"s{s}_wb") for s in range(S))
        # the weight row of the slot's next beat (kept, so no adder lies between the PE's
        # stop and the weight memory's address)
        s_wr = Array(Signal(range(g.weight_rows + 1), name=f"s{s}_wr") for s in range(S))
        s_ob = Array(Signal(OB + 1, name=f"s{s}_ob") for s in range(S))
        s_t = Array(Signal(3, name=f"s{s}_t") for s in range(S))    # its next plane
        mid = Signal()                              # inside a plane of several chunks
        cur = Signal(SLOT_BITS)                     # the slot being sent while mid
        fc = Signal(range(MC))                      # its next chunk
        rr = Signal(SLOT_BITS)                      # the slot after the last turn
        # stage 2: the beat (memory data + registered tags)
        q_v = Signal()
        q_t, q_c_first, q_c_last, q_seq = Signal(3), Signal(), Signal(), Signal(SEQ_BITS)
        q_o = Signal(range(g.param_depth + 1))
        q_ob = Signal(OB)
        pe_hs = Signal()
        m.d.comb += pe_hs.eq(self.pe_i.valid & self.pe_i.ready)
        adv = Signal()
        m.d.comb += adv.eq(~q_v | pe_hs)
        stop_now = Signal(S)                        # the PE stopped the slot's output
        for s in range(S):
            # the PE's one-hot slot of the stop and the generation bit of its seq
            m.d.comb += stop_now[s].eq(self.pe_stop_slots[s] & s_busy[s] &
                                       (self.pe_stop_seq[SLOT_BITS] == s_gen[s]))
        live = Signal(S)
        cand = Signal(S)
        m.d.comb += [live.eq(s_busy & ~stop_now), cand.eq(live | Mux(avail, (1 << S) - 1, 0))]
        pick = Signal(SLOT_BITS)
        have = Signal()
        with m.If(mid):
            m.d.comb += [pick.eq(cur), have.eq(live.bit_select(cur, 1) | avail)]
        with m.Else():
            with m.Switch(rr):
                for r0 in range(S):
                    with m.Case(r0):
                        for i in reversed(range(S)):       # the first candidate from rr wins
                            with m.If(cand[(r0 + i) % S]):
                                m.d.comb += [pick.eq((r0 + i) % S), have.eq(1)]
        new = Signal()                              # the picked slot starts the next output
        m.d.comb += new.eq(~live.bit_select(pick, 1))
        sel_o = Signal(range(g.param_depth + 1))
        sel_wb = Signal(range(g.weight_rows + 1))
        sel_wr = Signal(range(g.weight_rows + 1))
        sel_ob = Signal(OB + 1)
        sel_t, sel_gen = Signal(3), Signal()
        sel_c = Signal(range(MC))
        m.d.comb += [sel_o.eq(Mux(new, nx_o, s_o[pick])), sel_wb.eq(Mux(new, nx_wb, s_wb[pick])),
                     sel_wr.eq(Mux(new, nx_wb, s_wr[pick])),
                     sel_ob.eq(Mux(new, nx_ob, s_ob[pick])), sel_t.eq(Mux(new, 0, s_t[pick])),
                     sel_gen.eq(s_gen.bit_select(pick, 1) ^ new), sel_c.eq(Mux(new, 0, fc))]
        f_issue = Signal()
        m.d.comb += f_issue.eq(f_act & full.bit_select(fb, 1) & adv & have)
        m.d.comb += [self.win_r.addr.eq(Cat(sel_c, fb) if g.bit_parallel else Cat(sel_c, sel_t, fb)),
                     self.win_r.en.eq(f_issue),
                     self.wgt_r.addr.eq(sel_wr), self.wgt_r.en.eq(f_issue)]
        plane_end = Signal()
        m.d.comb += plane_end.eq(sel_c == nch - 1)
        # whether the picked slot's beat ends its output, from registers only, per slot (no
        # mux by `pick` before the test; a new output ends on its first beat with 1 plane of
        # 1 chunk)
        fc_last, first_last = Signal(), Signal()
        t_last = Signal(S)
        m.d.comb += [fc_last.eq(fc == nch - 1), first_last.eq((nch == 1) & (planes == 1))]
        for s in range(S):
            m.d.comb += t_last[s].eq(s_t[s] == planes - 1)
        busy_next = Signal(S)
        for s in range(S):
            ends_s = Mux(live[s], fc_last & t_last[s], first_last)
            m.d.comb += busy_next[s].eq(Mux(f_issue & (pick == s), ~ends_s, live[s]))
        # the pixel is done: no output left to start and no slot live after this cycle, i.e.
        # none is live, or one is and this beat (it is the picked one) is its output's last
        live_one = Signal()
        m.d.comb += live_one.eq(Cat(*[live == (1 << s) for s in range(S)]).any())
        pix_done = Signal()
        m.d.comb += pix_done.eq(f_act & full.bit_select(fb, 1) & ~avail &
                                ((live == 0) | (live_one & adv & fc_last & (live & t_last).any() &
                                                (~mid | live.bit_select(cur, 1)))))
        with m.If(adv):
            m.d.sync += q_v.eq(f_issue)
        with m.If(mid & ~have):
            m.d.sync += [mid.eq(0), fc.eq(0)]       # the slot stopped and nothing is left
        with m.If(f_issue):
            m.d.sync += [q_t.eq(sel_t), q_c_first.eq(sel_c == 0), q_c_last.eq(plane_end),
                         q_seq.eq(Cat(pick, sel_gen)), q_o.eq(sel_o), q_ob.eq(sel_ob)]
            with m.If(new):
                m.d.sync += [s_o[pick].eq(nx_o), s_wb[pick].eq(nx_wb), s_ob[pick].eq(nx_ob),
                             s_gen.bit_select(pick, 1).eq(sel_gen),
                             nx_o.eq(nx_o + 1), nx_wb.eq(nx_wb + nch), nx_ob.eq(nx_ob + rw_out)]
            with m.If(plane_end):
                m.d.sync += [mid.eq(0), fc.eq(0), rr.eq(Mux(pick == S - 1, 0, pick + 1)), s_t[pick].eq(sel_t + 1),
                             s_wr[pick].eq(sel_wb)]
            with m.Else():
                m.d.sync += [mid.eq(1), cur.eq(pick), fc.eq(sel_c + 1), s_t[pick].eq(sel_t),
                             s_wr[pick].eq(sel_wr + 1)]
        m.d.sync += s_busy.eq(busy_next)
        with m.If(pix_done):
            # every output of the pixel was sent or stopped
            m.d.comb += clr_full.eq(Mux(fb, 0b10, 0b01))
            m.d.sync += [fb.eq(~fb), nx_o.eq(0), nx_wb.eq(0), nx_ob.eq(0), mid.eq(0), fc.eq(0),
                         fx.eq(fx + 1)]
            with m.If(fx == W - 1):
                m.d.sync += [f_act.eq(0), feed_done.eq(1)]
        with m.If(row_go):
            m.d.sync += [f_act.eq(1), fx.eq(0), feed_done.eq(0), nx_o.eq(0), nx_wb.eq(0),
                         nx_ob.eq(0), mid.eq(0), fc.eq(0), rr.eq(0), s_busy.eq(0)]
        # the beat: data lanes from the window/weights, bias lanes on each plane's first chunk
        # (the plane's bit and lower-bits masks are a table on q_t and the command's bias
        # lanes a register: no adder between the beat registers and the PE's first stage)
        m.d.comb += self.par_feed_addr.eq(q_o)
        pf = self.par_feed_data
        bias_on = Signal(NB)                        # j < nbl (nbl is set in INIT)
        m.d.sync += bias_on.eq(Cat(*[j < nbl for j in range(NB)]))
        q_bias = Signal(NB)
        m.d.comb += q_bias.eq(Mux(q_c_first, bias_on, 0))
        low = Signal(ACT_BITS)                      # the bits below plane q_t
        with m.Switch(q_t):
            for t in range(ACT_BITS):
                with m.Case(t):
                    m.d.comb += low.eq((1 << (ACT_BITS - 1 - t)) - 1)
        # bit ACT_BITS-1-q_t of each bias lane's code
        bias_bits = Cat(*[Cat(*[pf.bias_x[j][ACT_BITS - 1 - i] for i in range(ACT_BITS)]).bit_select(q_t, 1)
                          & q_bias[j] for j in range(NB)])
        bias_rest = Cat(*[(pf.bias_x[j] & low).any() & q_bias[j] for j in range(NB)])
        beat = self.pe_i.payload
        m.d.comb += [
            self.pe_i.valid.eq(q_v), beat.chunk_first.eq(q_c_first), beat.chunk_last.eq(q_c_last),
            beat.tag.eq(Cat(q_o[:self.o_bits], q_ob)),
        ]
        if g.bit_parallel:
            bias_bytes = Cat(*[Mux(q_bias[j], pf.bias_x[j], 0) for j in range(NB)])
            m.d.comb += beat.x.as_value().eq(Cat(self.win_r.data, bias_bytes))
        else:
            m.d.comb += [
                beat.bits.eq(Cat(self.win_r.data[:L], bias_bits)),
                beat.rest.eq(Cat(self.win_r.data[L:], bias_rest)),
                beat.plane.eq(q_t), beat.seq.eq(q_seq), beat.wneg.eq(pf.wneg),
            ]
        for j in range(L):
            m.d.comb += beat.w[j].eq(self.wgt_r.data[8 * j:8 * j + 8])
        for j in range(NB):
            m.d.comb += beat.w[L + j].eq(Mux(q_bias[j], pf.bias_w[j], 0))

        # ---------------- collector: PE -> requantizer -> output rows ------------------------
        # results come in completion order, each tagged with its channel and the first word
        # of its output row; a pixel's results all come before the next pixel's (its
        # outputs' beats all precede them), so the collector counts n results per pixel
        r_o = self.pe_o.payload.tag[:self.o_bits]
        r_ob = self.pe_o.payload.tag[self.o_bits:]
        cx = Signal(16)                             # pixel of the results being collected
        cn = Signal(range(g.param_depth + 1))       # its results collected
        c_byte = Signal(19)
        m.d.comb += c_byte.eq(Mux(elem4, cx << 2, cx))
        m.d.comb += [self.par_coll_addr.eq(r_o),
                     self.rq_i.valid.eq(self.pe_o.valid), self.pe_o.ready.eq(self.rq_i.ready),
                     self.rq_i.payload.acc.eq(self.pe_o.payload.value),
                     self.rq_i.payload.mult.eq(self.par_coll_data.mult),
                     self.rq_i.payload.shift.eq(self.par_coll_data.shift),
                     self.rq_i.payload.relu.eq(cmd.relu), self.rq_i.payload.head.eq(cmd.head),
                     # the result's output-row byte: word (tag) + byte in the word
                     self.rq_i.payload.tag.eq(Cat(c_byte[:3], r_ob + (c_byte >> 3)))]
        with m.If(self.pe_o.valid & self.pe_o.ready):
            m.d.sync += terminated.eq(terminated + self.pe_o.payload.terminated)
            with m.If(cn == n - 1):
                m.d.sync += [cn.eq(0), cx.eq(cx + 1)]
            with m.Else():
                m.d.sync += cn.eq(cn + 1)
        m.d.comb += self.rq_o.ready.eq(1)
        v = self.rq_o.payload.value
        rq_word = self.rq_o.payload.tag[3:3 + OB]
        rq_lane = self.rq_o.payload.tag[:3]
        m.d.comb += [self.ob_w.addr.eq(rq_word),
                     self.ob_w.data.eq(Mux(elem4, Cat(v[:32], v[:32]), Cat(*[v[:8]] * 8)))]
        with m.If(self.rq_o.valid):
            m.d.comb += self.ob_w.en.eq(Mux(elem4, Mux(rq_lane[2], 0xF0, 0x0F),
                                            Const(1, 8) << rq_lane))
            m.d.sync += [results.eq(results + 1), outputs.eq(outputs + 1)]
        with m.If(row_go):
            m.d.sync += [cn.eq(0), cx.eq(0)]

        m.d.comb += self.progress.eq((rdd.valid & rdd.ready) | (wrd.valid & wrd.ready) | pe_hs |
                                     self.rq_o.valid | parse)
        return m
