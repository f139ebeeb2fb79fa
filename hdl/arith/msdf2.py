"""MSDF v2 dot-product unit (``msdf-v2``): MSB-first planes, plain-binary prefix, exact early
END decision from a bound, parallel finish.

Golden model: :mod:`msdf_unet.golden.arith.msdf2` (arithmetic, proofs and
:class:`~msdf_unet.golden.arith.msdf2.MSDF2CycleModel`, which this RTL matches cycle for
cycle). Two components:

* :class:`MSDF2Core`: the plane accumulation, END decision and finish; takes one plane
  sum (or one chunk of a plane) per cycle. A convolution engine that splits a wide
  fan-in into chunks reuses it unchanged (see its docstring).
* :class:`MSDF2DotProduct`: the ``i``/``o`` stream unit (lanes, adder tree, feeder, one
  transaction buffer, output register) around the core.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ...golden.arith.msdf2 import latency_cycles, wpos_bits
from ...golden.arith.mma import stream_digits
from .iface import Policy, dot_product_io, value_width
from .tree import tree_sum

__all__ = ["MSDF2Core", "MSDF2DotProduct", "msdf2_io", "checked_group_size"]


def checked_group_size(group_size, n_lanes: int, default: int) -> int:
    """The lanes of one registered group sum: ``group_size``, or ``min(n_lanes, default)``
    when it is None; anything but an integer in ``[1, n_lanes]`` is refused (ValueError)."""
    if group_size is None:
        return min(n_lanes, default)
    if isinstance(group_size, bool) or not isinstance(group_size, int) or not 1 <= group_size <= n_lanes:
        raise ValueError(f"group_size must be an integer in [1, n_lanes={n_lanes}] or None, "
                         f"not {group_size!r}")
    return group_size


def msdf2_io(*, n_lanes: int, act_bits: int = 8, signed_acts: bool = True):
    """``(i, o)`` signatures: :func:`~.iface.dot_product_io` with one more ``i`` payload
    field, ``wpos`` (``unsigned(wpos_bits(n_lanes))``): an upper bound of the sum of the
    transaction's positive weights (bias lanes included). The END decision is exact only
    when ``wpos >= sum_i max(w_i, 0)``; the tightest bound stops earliest. A per-channel
    constant, known when the weights are compiled."""
    i, o = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
    fields = {name: f.shape for name, f in i.members["payload"].shape}
    fields["wpos"] = unsigned(wpos_bits(n_lanes))
    return stream.Signature(data.StructLayout(fields)), o


class MSDF2Core(wiring.Component):
    """Plane accumulator, exact END decision and finish of the MSDF v2 unit.

    Consumes one input per cycle (``valid``; everything holds while ``stall``): the sum
    ``psum`` of one plane (or of one chunk of a plane) of one transaction, with its tags,
    into one adder: ``C <- (first ? init : plane_start ? 2C : C) + (sign_plane ? -psum :
    live ? psum : 0) + cin``. Feed it like this (golden :mod:`msdf_unet.golden.arith.msdf2`):

    * planes MSB first; with a chunked fan-in, every chunk of plane ``t`` before plane
      ``t + 1`` (the END decision needs the whole prefix); ``plane_start``/``plane_end``
      on the first/last chunk of a plane (both 1 without chunking), ``first`` on the first
      input of a transaction, ``last`` on its final input (last chunk of plane ``B - 1``);
    * ``psum = sum_i bit_{B-1-t}(x_i) * w_i`` over the chunk's lanes (unsigned bits;
      ``sign_plane`` on plane 0 of signed activations negates it);
    * ``live`` 0 on planes ``t >= p`` of a TRUNCATE ``p`` (1 otherwise); ``p`` the
      budget (``T`` for the other policies); TRUNCATE's rounding half ``2**(T-p-1)``
      enters as ``init = 2**(F-p)`` when ``p <= F`` or as ``cin = 1`` on (one chunk of)
      plane ``p - F`` when ``F < p < T`` (``init = cin = 0`` otherwise);
    * ``j = floor(Wp * 2**t / 2**(B-1)) - Wp`` with ``Wp >= sum max(w, 0)`` over *all*
      lanes of the transaction; ``t`` the plane index; ``policy``.

    Then ``C = A_t`` after plane ``t`` (the MSB-first Horner prefix), and after the last
    input ``C = S`` (or the TRUNCATE prefix plus its rounding half).

    Outputs
    -------
    early : comb -- RELU_END/SIGN_ONLY, on ``plane_end`` of a plane ``t < B-1``:
        ``C_new < j``, i.e. ``S < 0`` is certain. The transaction is over: feed none of
        its remaining inputs (:class:`MSDF2DotProduct` drops the plane its lanes formed
        in the same cycle and starts the next transaction).
    done : comb -- ``valid & (last | early)``: the transaction's result follows.
    res_valid, res : the finished result (``value``, ``digits_used``, ``terminated`` of
        the ``o`` payload), valid the cycle after ``done`` (registered tags and ``C``;
        the finish -- policy, TRUNCATE mask -- is one step of logic on them) and held
        while ``stall``. ``digits_used`` is ``B``, or ``t + 1 + lag`` after an early stop
        at plane ``t`` (``lag``: planes the feeder formed after the stopping one).
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 psum_width: int | None = None, lag: int = 1):
        self.n_lanes, self.act_bits, self.signed_acts, self.lag = n_lanes, act_bits, signed_acts, lag
        self.T = stream_digits(n_lanes, act_bits)
        self.wb = wpos_bits(n_lanes)
        vw = value_width(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        self.acc_bits = vw + 2
        self.F = self.T - act_bits
        pw = psum_width if psum_width is not None else self.wb + 1
        _, o = dot_product_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({
            "valid": In(1), "stall": In(1),
            "psum": In(signed(pw)), "init": In(unsigned(self.F)), "cin": In(1),
            "first": In(1), "plane_start": In(1), "plane_end": In(1), "last": In(1),
            "live": In(1), "sign_plane": In(1), "j": In(signed(self.wb + 1)),
            "t": In(range(act_bits)), "policy": In(Policy), "p": In(unsigned(8)),
            "early": Out(1), "done": Out(1),
            "res_valid": Out(1), "res": Out(o.members["payload"].shape),
        })

    def elaborate(self, platform):
        m = Module()
        B, T, W = self.act_bits, self.T, self.acc_bits
        C = Signal(signed(W))
        # +-psum as (psum ^ s) + s: the +s is the carry-in of the accumulator's adder
        pw = len(self.psum)
        px = Signal(signed(pw))
        m.d.comb += px.eq(Mux(self.live | self.sign_plane, self.psum, 0) ^ self.sign_plane.replicate(pw))
        base = Signal(signed(W))
        m.d.comb += base.eq(Mux(self.first, self.init, Mux(self.plane_start, C * 2, C)))
        c_new = Signal(signed(W))
        m.d.comb += c_new.eq(base + px + (self.sign_plane | self.cin))
        relu_like = Signal()
        m.d.comb += relu_like.eq((self.policy == Policy.RELU_END) | (self.policy == Policy.SIGN_ONLY))
        m.d.comb += [
            self.early.eq(self.valid & self.plane_end & ~self.last & relu_like & (c_new < self.j)),
            self.done.eq(self.valid & (self.last | self.early)),
        ]
        # finish stage: registered tags, C holds the finished value
        fin_pol = Signal(Policy)
        fin_early = Signal()
        fin_t = Signal(range(B))
        fin_p = Signal(8)
        with m.If(~self.stall):
            m.d.sync += self.res_valid.eq(self.done)
            with m.If(self.valid):
                m.d.sync += C.eq(c_new)
            with m.If(self.done):
                m.d.sync += [fin_pol.eq(self.policy), fin_early.eq(self.early), fin_t.eq(self.t),
                             fin_p.eq(self.p)]
        neg = C < 0
        vw = len(self.res.value)
        mask = Cat(*[(fin_p >= T - j) if j < T else Const(1) for j in range(vw)])
        value = Signal(signed(vw))
        term = Signal()
        with m.Switch(fin_pol):
            with m.Case(Policy.RELU_END):
                m.d.comb += [value.eq(Mux(fin_early | neg, 0, C)), term.eq(fin_early | neg)]
            with m.Case(Policy.SIGN_ONLY):
                m.d.comb += [value.eq(Mux(fin_early | neg, -1, Mux(C == 0, 0, 1))),
                             term.eq(fin_early | (C != 0))]
            with m.Case(Policy.TRUNCATE):
                m.d.comb += [value.eq(C[:vw] & mask), term.eq(fin_p != T)]
            with m.Default():
                m.d.comb += value.eq(C)
        m.d.comb += [
            self.res.value.eq(value),
            self.res.digits_used.eq(Mux(fin_early, fin_t + 1 + self.lag, B)),
            self.res.terminated.eq(term),
        ]
        return m


class MSDF2DotProduct(wiring.Component):
    """Online dot product ``S = sum_i x_i * w_i``: MSB-first bit-planes into an adder tree,
    a plain-binary prefix, an exact early END decision and a one-step finish.

    Parameters (keyword-only)
    -------------------------
    n_lanes : int >= 1 -- ``L``, lanes including bias lanes.
    act_bits : int in [2, 16] -- ``B``.
    signed_acts : bool -- two's-complement activations (plane 0 counts negative).
    pipelined : bool -- register the group sums between the lanes and the accumulator
        (bounded logic depth; an early stop then costs one more plane cycle).
    group_size : int or None -- lanes per registered group (pipelined only; default 16).

    Members
    -------
    i : ``In(stream)`` -- :func:`msdf2_io`: the payload of :func:`~.iface.dot_product_io`
        plus ``wpos`` (bound of the positive weights; the END decision is exact iff
        ``wpos >= sum max(w, 0)``).
    o : ``Out(stream)`` -- one result per transaction, in order (``value``,
        ``digits_used``, ``terminated`` as :mod:`.iface`).

    Contract (exactly :class:`~msdf_unet.golden.arith.msdf2.MSDF2CycleModel`)
    ---------------------------------------------------------------------------
    * values: FULL ``S``; RELU_END ``max(S, 0)``; SIGN_ONLY ``sign(S)``; TRUNCATE ``p``
      the MMA's prefix value ``Z_p`` (``T = B + F`` digit stream of
      :mod:`~msdf_unet.golden.arith.mma`), bit-exact.
    * ``i.ready = not nx.valid`` (a one-transaction buffer; registers only). A transaction
      occupies the lanes ``B`` cycles, or ``t + 1 + pipelined`` when RELU_END/SIGN_ONLY
      decide ``S < 0`` after plane ``t``; back to back it occupies
      ``max(digits_used, 2)`` cycles (the buffer refills one cycle after a start).
      Latency accept -> ``o.valid`` ``B + 3 + pipelined`` on an idle unit.
    * ``o`` is one output register; while it is full and not read, the finished result
      waits and everything but the buffer stalls.
    * TRUNCATE with ``digits`` 0 or above ``T`` runs as ``p = T`` (value ``S``).
    * Planes are selected per lane by a ``B``:1 bit mux (no shifting register).
    """

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 pipelined: bool = True, group_size: int | None = None):
        if isinstance(n_lanes, bool) or not isinstance(n_lanes, int) or n_lanes < 1:
            raise ValueError(f"n_lanes must be a positive integer, not {n_lanes!r}")
        if isinstance(act_bits, bool) or not isinstance(act_bits, int) or not 2 <= act_bits <= 16:
            raise ValueError(f"act_bits must be an integer in [2, 16], not {act_bits!r}")
        if not isinstance(signed_acts, bool):
            raise TypeError(f"signed_acts must be a bool, not {signed_acts!r}")
        if not isinstance(pipelined, bool):
            raise TypeError(f"pipelined must be a bool, not {pipelined!r}")
        group_size = checked_group_size(group_size, n_lanes, 16)
        self.n_lanes, self.act_bits, self.signed_acts = n_lanes, act_bits, signed_acts
        self.pipelined, self.group_size = pipelined, group_size
        self.n_digits = stream_digits(n_lanes, act_bits)
        self.latency_cycles = latency_cycles(act_bits, pipelined)
        i, o = msdf2_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({"i": In(i), "o": Out(o)})

    def elaborate(self, platform):
        m = Module()
        L, B, T = self.n_lanes, self.act_bits, self.n_digits
        M = self.group_size if self.pipelined else L
        G = -(-L // M)
        wb = wpos_bits(L)
        m.submodules.core = core = MSDF2Core(n_lanes=L, act_bits=B, signed_acts=self.signed_acts,
                                             lag=int(self.pipelined))
        stall = Signal()
        m.d.comb += stall.eq(core.res_valid & self.o.valid & ~self.o.ready)

        # ---------------- one-transaction buffer ---------------------------------------------
        pay = self.i.payload
        nx_valid = Signal()
        nx = Signal(pay.shape())
        m.d.comb += self.i.ready.eq(~nx_valid)
        # ---------------- feeder: current transaction, plane t ------------------------------
        act = Signal()
        t = Signal(range(B))
        sel = Signal(range(B))
        x_r = Signal(data.ArrayLayout(pay.x.shape().elem_shape, L))
        w_r = Signal(data.ArrayLayout(signed(8), L))
        pol = Signal(Policy)
        p_r = Signal(8)
        wp = Signal(unsigned(wb))
        ks = Signal(unsigned(wb + B - 1))        # Wp << t
        f_last = Signal()
        swap = Signal()
        m.d.comb += [
            f_last.eq(act & (t == B - 1)),
            swap.eq(nx_valid & ~stall & (~act | f_last | core.early)),
        ]
        nx_p = Signal(8)
        with m.If((nx.policy == Policy.TRUNCATE) & (nx.digits >= 1) & (nx.digits <= T)):
            m.d.comb += nx_p.eq(nx.digits)
        with m.Else():
            m.d.comb += nx_p.eq(T)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [nx_valid.eq(1), nx.eq(pay)]
        with m.Elif(swap):
            m.d.sync += nx_valid.eq(0)
        with m.If(swap):
            m.d.sync += [act.eq(1), t.eq(0), sel.eq(B - 1), x_r.eq(nx.x), w_r.eq(nx.w), pol.eq(nx.policy),
                         p_r.eq(nx_p), wp.eq(nx.wpos), ks.eq(nx.wpos)]
        with m.Elif(act & ~stall):
            with m.If(f_last | core.early):
                m.d.sync += act.eq(0)
            with m.Else():
                m.d.sync += [t.eq(t + 1), sel.eq(sel - 1), ks.eq(ks << 1)]

        # plane t of every lane: bit sel = B-1-t of x selects w (sel is its own down-counting
        # register, so the B:1 bit muxes hang directly off flip-flops)
        contrib = []
        for lane in range(L):
            c = Signal(signed(8), name=f"c{lane}")
            m.d.comb += c.eq(Mux(Value.cast(x_r[lane]).bit_select(sel, 1), w_r[lane], 0))
            contrib.append(c)
        groups = [tree_sum(contrib[g * M:(g + 1) * M]) for g in range(G)]
        first, last = Signal(), Signal()
        m.d.comb += [first.eq(t == 0), last.eq(t == B - 1)]
        F = T - B
        init = Signal(unsigned(F))       # TRUNCATE p <= F: 2**(F-p) at plane 0
        cin = Signal()                   # TRUNCATE F < p < T: +1 at plane p - F
        m.d.comb += [init.eq(Cat(*[p_r == F - j for j in range(F)])),
                     cin.eq((p_r > F) & (p_r < T) & (t + F == p_r))]
        live, sign_plane, j = Signal(), Signal(), Signal(signed(wb + 1))
        m.d.comb += [live.eq(t < p_r), sign_plane.eq(first & int(self.signed_acts)),
                     j.eq(ks[B - 1:] - wp)]
        tags = dict(first=first, last=last, live=live, sign_plane=sign_plane, j=j, t=t,
                    policy=pol, p=p_r, init=init, cin=cin)

        if self.pipelined:
            gbits = (M * 128).bit_length() + 1
            s1_valid = Signal()
            s1_sum = [Signal(signed(gbits), name=f"s1_sum{g}") for g in range(G)]
            s1 = {name: Signal.like(v, name=f"s1_{name}") for name, v in tags.items()}
            with m.If(~stall):
                m.d.sync += s1_valid.eq(act & ~core.early)
                m.d.sync += [s.eq(v) for s, v in zip(s1_sum, groups)]
                m.d.sync += [s1[name].eq(v) for name, v in tags.items()]
            valid, psum, src = s1_valid, tree_sum(s1_sum), s1
        else:
            valid, psum, src = act, groups[0], tags

        m.d.comb += [
            core.valid.eq(valid), core.stall.eq(stall), core.psum.eq(psum),
            core.plane_start.eq(1), core.plane_end.eq(1),
        ]
        m.d.comb += [getattr(core, name).eq(v) for name, v in src.items()]

        # ---------------- output register -----------------------------------------------------
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(core.res_valid & ~stall):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(core.res)]
        return m
