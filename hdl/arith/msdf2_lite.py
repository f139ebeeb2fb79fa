"""MSDF v2 lite (``msdf-v2-lite``): ``msdf-v2`` with its fixed cost cut; same streams,
policies, values and cycles.

Golden model: :mod:`msdf_unet.golden.arith.msdf2`. This unit is cycle for cycle
``MSDF2CycleModel(pipelined=unit.pipelined)``: flat (``msdf-v2-flat``'s timing) up to
:data:`LITE_GROUP_SIZE` lanes, above that (by default) pipelined like ``msdf-v2``, so every
result, accept cycle and output cycle equals that unit's. What differs is how the arithmetic
is laid out (derivation and a bit-level model:
:func:`msdf_unet.golden.arith.msdf2.lite_accumulate`):

* **END comparison shared with the accumulator add.** The register holds
  ``D_t = C_t - J_t`` (``J_t = floor(Wp 2**t / 2**(B-1)) - Wp``, msdf-v2's END threshold)
  instead of ``C_t``. ``D_t = 2 D_{t-1} + X_t - Wp - bit_{B-1-t}(Wp)`` (plane 0: ``X_0 + Wp
  - (Wp >> (B-1))``): the constant enters as one more term after the lane tree (``~Wp``, and
  ``~bit`` in that adder's carry slot), and the stop ``C_t < J_t`` is the sign bit of the
  accumulator's sum. ``J_{B-1} = 0``, so after the last plane ``D = C``. No threshold
  shifter, no subtractor per plane, no comparator.
* **No first-plane mux on the accumulator.** The register is cleared when a transaction
  finishes (its value goes into the finish register), so plane 0 starts from ``2 * 0``:
  the adder's operand ``2 D`` comes straight from the flip-flops.
* **TRUNCATE without decoders over the accumulator.** The rounding half ``h = 2**(T-p-1)``
  enters where a bit is free: for ``p <= B`` as ``2**wb = 2**(F-1)`` (the bound term's top
  bits) on the last live plane ``p - 1``; for ``p > B`` as bit 0 of ``2 D`` on plane
  ``p - F``, or bit ``T - p - B`` of the all-zero plane-0 operand. Plane flags are one
  table of ``(t, p)``; the mask of the low ``T - p`` bits is applied when the result is
  registered, over the low ``F`` bits only: for ``p <= B`` the accumulator's low ``F`` bits
  are cleared after the rounding plane (a synchronous reset). TRUNCATE runs without the
  END offset (``D = C``). RELU_END's zero and SIGN_ONLY's 0/1 are a synchronous reset of
  the result register and SIGN_ONLY's -1 a synchronous set of the output register.
* **``digits_used = t + 1``** after an early stop at plane ``t`` and after the last plane
  alike; activations and the bound's low bits are stored bit-reversed, so plane ``t``
  selects bit ``t``.
* **Sized from N**: accumulator ``T + 1`` bits (``|C|, |D| < 2**T``), ``p`` in
  ``T.bit_length()`` bits (clamped when accepted), the bound ``wpos_bits(N)`` bits.
* **Adder tree**: ``tree="ripple"`` (default) builds the lane tree from two-input adders
  kept apart from each other (each one CARRY4 chain, one LUT per bit); ``tree="macc"`` is
  :func:`~.tree.tree_sum` as every other unit uses it, which Yosys merges into one
  multi-operand ``$macc`` mapped as a carry-save tree (more LUTs at small fan-ins).
* **Pipelined** (``pipelined=True``; by default above :data:`LITE_GROUP_SIZE` lanes): ripple
  trees chain their carries, so a flat unit has 16 LUT levels at 9 lanes and 21 at 144.
  The pipelined unit registers what the accumulator needs of plane ``t`` (``s1``): the sums
  of groups of ``group_size`` lanes, the bound term and its carry, the plane's flags, and
  the accumulator stage's control (``vm``/``vl``/``cs``: a plane that is not the last, the
  last one, one that may stop early). The accumulator then adds the tree of the largest
  power-of-two number of group sums to a register side (``2 D``, the bound term and the
  other group sums, added while that tree settles); signed plane 0 is negated around that
  add (``base + ~X = ~(~base + X + 1)``) instead of between the tree and the adder; and
  SIGN_ONLY's ``S != 0`` is split into ORs of 6 bits (registered with the result) and their
  OR at the output register. As in ``msdf-v2``, the plane formed in the cycle of an early
  stop is dropped, so a stop after plane ``t`` occupies ``t + 2`` cycles, and the latency
  is ``B + 4``.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from ...golden.arith.msdf2 import latency_cycles, wpos_bits
from ...golden.arith.mma import stream_digits
from .bitserial import check_unit_params
from .iface import Policy
from .msdf2 import checked_group_size, msdf2_io
from .tree import tree_sum

__all__ = ["MSDF2LiteDotProduct", "add_carry", "ripple_tree", "TREES", "LITE_GROUP_SIZE",
           "lite_pipelined"]

#: adder-tree mappings of :class:`MSDF2LiteDotProduct`
TREES = ("ripple", "macc")

#: lanes per registered group sum of a pipelined unit; a unit of at most this many lanes
#: is flat by default (its lane tree is one group: nothing to cut)
LITE_GROUP_SIZE = 16


def lite_pipelined(n_lanes: int) -> bool:
    """The default ``pipelined`` of a :class:`MSDF2LiteDotProduct` of ``n_lanes`` lanes:
    registered group sums once the lanes form more than one group."""
    return n_lanes > LITE_GROUP_SIZE


def add_carry(a: Value, b: Value, cin=0) -> Value:
    """``a + b + cin`` (signed) as one two-operand add: ``cin`` and a constant 1 ride in an
    extra low bit. Written plainly, ``a + b + cin`` becomes a three-operand ``$macc`` in
    Yosys (a carry-save layer, two LUTs per bit); and the concatenation keeps ``alumacc``
    from merging this add with the adds that feed it."""
    a, b = Value.cast(a).as_signed(), Value.cast(b).as_signed()
    return (Cat(Value.cast(cin), a).as_signed() + Cat(Const(1, 1), b).as_signed())[1:].as_signed()


def ripple_tree(terms, cin=0) -> Value:
    """Balanced tree of :func:`add_carry` adds (pairs ``(0,1), (2,3), ...``; an odd last
    term passes up), each its own carry chain; ``cin`` (one bit) enters the root add (at
    least two terms)."""
    terms = [Value.cast(t).as_signed() for t in terms]
    if not terms:
        raise ValueError("ripple_tree needs at least one term")
    if len(terms) == 1 and not (isinstance(cin, int) and cin == 0):
        raise ValueError("ripple_tree needs two terms for a carry-in")
    while len(terms) > 1:
        root = len(terms) == 2
        nxt = [add_carry(terms[k], terms[k + 1], cin if root else 0)
               for k in range(0, len(terms) - 1, 2)]
        if len(terms) % 2:
            nxt.append(terms[-1])
        terms = nxt
    return terms[0]


def _table(m: Module, sel: Value, fn, width: int, name: str) -> Signal:
    """``fn(v)`` for every value ``v`` of the unsigned ``sel`` as a constant table (a
    ``Switch``): comparisons and offsets of small counters become LUT logic instead of
    carry-chain comparators (Yosys maps ``<``, ``>=``, ``+`` onto CARRY4 cells, which ABC
    cannot merge with the logic around them)."""
    out = Signal(width, name=name)
    with m.Switch(sel):
        for v in range(1 << len(sel)):
            r = fn(v)
            if r:
                with m.Case(v):
                    m.d.comb += out.eq(r)
    return out


class MSDF2LiteDotProduct(wiring.Component):
    """Online dot product ``S = sum_i x_i * w_i`` with exact early END, small fixed cost.

    Parameters (keyword-only)
    -------------------------
    n_lanes : int >= 1 -- ``L``, lanes including bias lanes.
    act_bits : int in [2, 16] -- ``B``.
    signed_acts : bool -- two's-complement activations (plane 0 counts negative).
    tree : ``"ripple"`` or ``"macc"`` -- how the lane adder tree is written (see the module
        docstring); results and cycles do not depend on it.
    pipelined : bool or None -- register the group sums between the lanes and the
        accumulator (bounded logic depth; an early stop then costs one more plane cycle);
        ``None``: :func:`lite_pipelined` (``n_lanes > LITE_GROUP_SIZE``).
    group_size : int or None -- lanes per registered group (pipelined only; ``None``:
        ``min(n_lanes, LITE_GROUP_SIZE)``).

    Members
    -------
    i : ``In(stream)`` -- :func:`~.msdf2.msdf2_io` (``dot_product_io`` plus ``wpos``).
    o : ``Out(stream)`` -- one result per transaction, in order.

    Contract
    --------
    Exactly :class:`~msdf_unet.golden.arith.msdf2.MSDF2CycleModel` with
    ``pipelined=self.pipelined`` (:class:`~.msdf2.MSDF2DotProduct` with the same flag):
    values FULL ``S``, RELU_END ``max(S, 0)``, SIGN_ONLY ``sign(S)``, TRUNCATE ``p`` the
    MMA's prefix ``Z_p``; ``i.ready = not nx.valid`` (the next transaction is accepted while
    this one runs and starts in the cycle after its last plane or its stop); a transaction
    occupies ``B`` plane cycles, or ``t + 1 + pipelined`` after an END stop at plane ``t``
    (back to back ``max(digits_used, 2)``); latency ``B + 3 + pipelined``; TRUNCATE with
    ``digits`` 0 or above ``T`` runs as ``p = T``. The END decision is exact iff
    ``wpos >= sum max(w, 0)``.
    """

    #: the ``pipelined`` a unit of ``n_lanes`` lanes gets by default
    default_pipelined = staticmethod(lite_pipelined)

    def __init__(self, *, n_lanes: int, act_bits: int = 8, signed_acts: bool = True,
                 tree: str = "ripple", pipelined: bool | None = None,
                 group_size: int | None = None):
        check_unit_params(n_lanes, act_bits, signed_acts)
        if tree not in TREES:
            raise ValueError(f"tree must be one of {TREES}, not {tree!r}")
        if pipelined is None:
            pipelined = lite_pipelined(n_lanes)
        if not isinstance(pipelined, bool):
            raise TypeError(f"pipelined must be a bool or None, not {pipelined!r}")
        group_size = checked_group_size(group_size, n_lanes, LITE_GROUP_SIZE)
        self.n_lanes, self.act_bits, self.signed_acts = n_lanes, act_bits, signed_acts
        self.tree = tree
        #: the cycle model's pipelining flag (``MSDF2CycleModel(pipelined=...)``)
        self.pipelined, self.group_size = pipelined, group_size
        self.n_digits = stream_digits(n_lanes, act_bits)
        self.latency_cycles = latency_cycles(act_bits, pipelined)
        i, o = msdf2_io(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts)
        super().__init__({"i": In(i), "o": Out(o)})

    def elaborate(self, platform):
        m = Module()
        L, B, T = self.n_lanes, self.act_bits, self.n_digits
        wb = wpos_bits(L)
        F = T - B                       # = wb + 1
        W = T + 1                       # accumulator: |C|, |D| < 2**T
        vw = len(self.o.payload.value)
        assert vw == W, (vw, W)
        pay = self.i.payload
        sgn = self.signed_acts
        lag = int(self.pipelined)
        M = self.group_size
        G = -(-L // M)

        # ---------------- output register and stall ----------------------------------------
        fin_valid = Signal()
        stall = Signal()
        m.d.comb += stall.eq(fin_valid & self.o.valid & ~self.o.ready)

        # ---------------- one-transaction buffer (prepared at accept) -------------------------
        nx_valid = Signal()
        # data registers have no reset (only the valid flags do)
        nx_x = Signal(data.ArrayLayout(unsigned(B), L), reset_less=True)   # bit t = plane t
        nx_w = Signal(data.ArrayLayout(signed(8), L), reset_less=True)
        nx_pol = Signal(Policy, reset_less=True)
        nx_p = Signal(range(T + 1), reset_less=True)   # TRUNCATE p in [1, T]; T otherwise
        nx_wp = Signal(unsigned(wb), reset_less=True)
        nx_c0 = Signal(unsigned(wb), reset_less=True)  # plane 0: Wp - (Wp >> (B-1)) (signed: ~)
        m.d.comb += self.i.ready.eq(~nx_valid)
        in_range = _table(m, pay.digits, lambda d: int(1 <= d <= T), 1, "p_in_range")
        p_in = Signal.like(nx_p)
        m.d.comb += p_in.eq(Mux((pay.policy == Policy.TRUNCATE) & in_range, pay.digits, T))
        k0_in = pay.wpos[B - 1:] if wb > B - 1 else Const(0, 1)
        c0_in = Signal(unsigned(wb))
        m.d.comb += c0_in.eq(pay.wpos - k0_in)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [nx_valid.eq(1), nx_w.eq(pay.w), nx_pol.eq(pay.policy), nx_p.eq(p_in),
                         nx_wp.eq(pay.wpos), nx_c0.eq(~c0_in if sgn else c0_in)]
            m.d.sync += [nx_x[k].eq(Cat(*[Value.cast(pay.x[k])[B - 1 - j] for j in range(B)]))
                         for k in range(L)]

        # ---------------- feeder: current transaction, plane t --------------------------------
        act = Signal()
        t = Signal(range(B))
        t1 = _table(m, t, lambda v: v + 1, len(t) + 1, "t1")      # t + 1 (digits_used)
        x_r = Signal.like(nx_x)
        w_r = Signal.like(nx_w)
        relu_like = Signal(reset_less=True)
        is_trunc = Signal(reset_less=True)
        is_relu = Signal(reset_less=True)
        is_sign = Signal(reset_less=True)
        p_r = Signal.like(nx_p)
        wp = Signal.like(nx_wp)
        c0 = Signal.like(nx_c0)
        wp_rev = Signal(B, reset_less=True)                        # bit t = bit B-1-t of Wp
        first, last, early, done, swap = Signal(), Signal(), Signal(), Signal(), Signal()
        m.d.comb += [first.eq(t == 0), last.eq(t == B - 1),
                     swap.eq(nx_valid & ~stall & (~act | last | early))]
        live_at_load = _table(m, nx_p, lambda pv: sum(int(tp < pv) << tp for tp in range(B)),
                              B, "live_at_load")
        with m.If(swap):                 # never together with an accept (i.ready = ~nx_valid)
            m.d.sync += [nx_valid.eq(0), act.eq(1), t.eq(0), w_r.eq(nx_w),
                         is_relu.eq(nx_pol == Policy.RELU_END),
                         is_sign.eq(nx_pol == Policy.SIGN_ONLY),
                         is_trunc.eq(nx_pol == Policy.TRUNCATE),
                         relu_like.eq((nx_pol == Policy.RELU_END) | (nx_pol == Policy.SIGN_ONLY)),
                         p_r.eq(nx_p), wp.eq(nx_wp), c0.eq(nx_c0),
                         wp_rev.eq(Cat(*[nx_wp[B - 1 - k] if B - 1 - k < wb else Const(0, 1)
                                         for k in range(B)]))]
            # TRUNCATE: the planes t >= p of every lane are loaded as 0 (a synchronous reset
            # per plane, shared by the lanes)
            for tp in range(B):
                with m.If(live_at_load[tp]):
                    m.d.sync += [x_r[k][tp].eq(nx_x[k][tp]) for k in range(L)]
                with m.Else():
                    m.d.sync += [x_r[k][tp].eq(0) for k in range(L)]
        with m.Elif(act & ~stall):
            with m.If(last | early):
                m.d.sync += act.eq(0)
            with m.Else():
                m.d.sync += t.eq(t1)

        # ---------------- plane t: TRUNCATE flags, lanes, bound term -------------------------
        n_init = max(0, F - 1 - B)       # p in [B+1, F-1]: bit T-p-B of the plane-0 operand

        def plane_flags(v):
            tv, pv = v & ((1 << len(t)) - 1), v >> len(t)
            rnd = tv + 1 == pv and pv <= B                # p <= B: + 2**wb on plane p - 1
            tr = tv + F == pv and pv > B                  # p > B: + 1 on plane p - F
            init = [tv == 0 and pv == F - k for k in range(1, n_init + 1)]
            return sum(int(f) << k for k, f in enumerate([rnd, tr] + init))
        flags = _table(m, Cat(t, p_r), plane_flags, 2 + n_init, "plane_flags")
        rnd = flags[0]
        contrib = [Mux(x_r[k].bit_select(t, 1), w_r[k], 0) for k in range(L)]
        # bound term (wb + 2 bits): plane 0 c0 (signed: ~(Wp - K0), negated below with the
        # planes), later planes ~Wp with ~bit_{B-1-t}(Wp) as carry. TRUNCATE has no END
        # offset (D = C); its p <= B rounding is 2**wb on plane p - 1 (signed plane 0:
        # -1 - 2**wb, negated below).
        lo = Signal(wb)
        top = Signal(2)
        with m.If(first):
            m.d.comb += [lo.eq(Mux(is_trunc, (1 << wb) - 1 if sgn else 0, c0)),
                         top.eq(Cat(~rnd, Const(1, 1)) if sgn else Cat(rnd, Const(0, 1)))]
        with m.Else():
            m.d.comb += [lo.eq(Mux(is_trunc, 0, ~wp)),
                         top.eq(Mux(is_trunc, Cat(rnd, Const(0, 1)), 0b11))]
        term = Signal(signed(wb + 2))
        m.d.comb += term.eq(Cat(lo, top))
        cin = Signal()
        m.d.comb += cin.eq(~first & ~is_trunc & ~wp_rev.bit_select(t, 1))
        # TRUNCATE keeps bits >= T - p. With p <= B the low F bits were cleared after the
        # last live plane (and the planes after it only double D), so only bits < F need it.
        keep_f = _table(m, p_r, lambda pv: sum(int(j >= T - pv) << j for j in range(F)), F,
                        "keep_mask")
        # digits_used after this plane: t + 1 (+ 1 pipelined: the plane after an early stop
        # was already formed), B after the last plane
        used_f = _table(m, t, lambda v: min(v + 2, B), len(t) + 1, "used") if lag else t1
        # what the accumulator stage needs of plane t (registered when pipelined)
        tags = dict(first=first, last=last, rnd=rnd, tr=flags[1], init=flags[2:], keep=keep_f,
                    used=used_f, relu_like=relu_like, is_trunc=is_trunc, is_relu=is_relu,
                    is_sign=is_sign)
        if not self.pipelined:
            v = act
            u = add_carry(ripple_tree(contrib) if self.tree == "ripple" else tree_sum(contrib),
                          term, cin)
            a = tags
        else:
            # group sums of M lanes and the bound term are registered (s1); the accumulator
            # stage adds them (+ the carry) and works on the plane formed last cycle
            tree = ripple_tree if self.tree == "ripple" else tree_sum
            groups = [tree(contrib[g * M:(g + 1) * M]) for g in range(G)]
            s1_sum = [Signal(signed(len(g)), name=f"s1_sum{k}", reset_less=True)
                      for k, g in enumerate(groups)]
            s1_term = Signal.like(term, name="s1_term", reset_less=True)
            s1_cin = Signal(name="s1_cin", reset_less=True)
            a = {name: Signal.like(val, name=f"s1_{name}", reset_less=True)
                 for name, val in tags.items()}
            # the accumulator stage's control, registered (its valid flags): a plane that is
            # not the last (vm), the last plane (vl), and a plane that may stop early (cs: not
            # the last, RELU_END/SIGN_ONLY). The plane formed in the cycle of a stop is dropped.
            kept = Signal()
            m.d.comb += kept.eq(act & ~early)
            s1_vm, s1_vl, s1_cs = Signal(), Signal(), Signal()
            with m.If(~stall):
                m.d.sync += [s1_term.eq(term), s1_cin.eq(cin),
                             s1_vm.eq(kept & ~last), s1_vl.eq(kept & last),
                             s1_cs.eq(kept & ~last & relu_like)]
                m.d.sync += [s.eq(g) for s, g in zip(s1_sum, groups)]
                m.d.sync += [a[name].eq(val) for name, val in tags.items()]
            # the accumulator adds the tree of the largest power-of-two number of group sums
            # (u); the rest and the bound term join the register side (``side`` below), whose
            # adds run while the tree settles
            n_main = 1 << (G.bit_length() - 1)
            u = (ripple_tree if self.tree == "ripple" else tree_sum)(s1_sum[:n_main])
            side_terms = [s1_term] + s1_sum[n_main:]
        if not self.pipelined:
            px = Signal(signed(len(u)))
            m.d.comb += px.eq(Mux(a["first"], ~u, u) if sgn else u)

        # ---------------- accumulator D = C - J; END decision = its sign ----------------------
        D = Signal(signed(W), reset_less=True)     # cleared while idle and when a result leaves
        base = Signal(signed(W))
        m.d.comb += base.eq(Cat(a["tr"], *[D[k - 1] | (a["init"][k - 1] if k <= n_init else 0)
                                           for k in range(1, W)]))
        d_new = Signal(signed(W))
        neg_now, nz_now = Signal(), Signal()
        keep_d = Signal()                          # D takes d_new (else it is cleared)
        if not self.pipelined:
            m.d.comb += d_new.eq(base + px)
            m.d.comb += [neg_now.eq(d_new[W - 1]), nz_now.eq(d_new != 0),
                         early.eq(v & ~a["last"] & a["relu_like"] & neg_now),
                         done.eq(v & (a["last"] | early)), keep_d.eq(v & ~done)]
        else:
            # D_t = base + X (X = u + side terms + carry; signed plane 0: ~X, carry 0), and
            # base + ~X = ~(~base + X + 1): the inversion sits on the register side of the
            # adder and after it, not between the tree and the adder
            f = a["first"] if sgn else Const(0, 1)
            side = ripple_tree([Mux(f, ~base, base)] + side_terms)
            acc = add_carry(side, u, f | s1_cin)[:W]
            m.d.comb += d_new.eq(Mux(f, ~acc, acc))
            m.d.comb += [neg_now.eq(d_new[W - 1]), early.eq(s1_cs & neg_now),
                         done.eq(s1_vl | early), keep_d.eq(s1_vm & ~early)]
        rnd_a, is_relu_a, is_sign_a = a["rnd"], a["is_relu"], a["is_sign"]
        keep = a["keep"]

        # ---------------- finish register: the policy's value, masked -------------------------
        mask = Cat(keep, Const(-1, W - F))
        # data registers without reset: no reset input competes with the clear/set below
        fin_C = Signal(signed(W), reset_less=True)
        fin_set = Signal(reset_less=True)          # SIGN_ONLY and S < 0: value -1
        fin_used = Signal(range(B + 1), reset_less=True)
        fin_term = Signal(reset_less=True)
        if not self.pipelined:
            ne_now = Signal()
            m.d.comb += ne_now.eq(early | neg_now)
            term_now = Signal()
            m.d.comb += term_now.eq(Mux(is_relu_a, ne_now, Mux(is_sign_a, early | nz_now,
                                                               ~keep[0])))
        else:
            # an early stop implies S < 0; SIGN_ONLY's S != 0 is split: ORs of 6 bits of the
            # sum registered here (fin_nz), their OR at the output register
            ne_now = neg_now
            term_now = Signal()
            m.d.comb += term_now.eq(Mux(a["relu_like"], neg_now, ~keep[0]))
            nz_parts = Cat(*[d_new[k:k + 6].any() for k in range(0, W, 6)])
            fin_nz = Signal(len(nz_parts), reset_less=True)
            fin_sgn = Signal(reset_less=True)       # SIGN_ONLY and S >= 0: value = (S != 0)
        with m.If(~stall):
            m.d.sync += fin_valid.eq(done)
            # cleared while idle and after the last plane; TRUNCATE p <= B: the low F bits
            # also after the last live plane p - 1 (rounding half added there)
            m.d.sync += [D[F:].eq(Mux(keep_d, d_new[F:], 0)),
                         D[:F].eq(Mux(keep_d & ~rnd_a, d_new[:F], 0))]
            with m.If(done):
                m.d.sync += [fin_set.eq(is_sign_a & ne_now), fin_used.eq(a["used"]),
                             fin_term.eq(term_now)]
                if self.pipelined:
                    m.d.sync += [fin_sgn.eq(is_sign_a & ~neg_now), fin_nz.eq(nz_parts)]
                    # RELU_END and S < 0, and SIGN_ONLY: 0 (the sign is set at o)
                    with m.If(is_relu_a & neg_now | is_sign_a):
                        m.d.sync += fin_C.eq(0)
                    with m.Else():
                        m.d.sync += fin_C.eq(d_new & mask)
                else:
                    # RELU_END and S < 0: 0; SIGN_ONLY: bit 0 = (S != 0) (the -1 is set at o)
                    with m.If(is_relu_a & ne_now | is_sign_a):
                        m.d.sync += fin_C[1:].eq(0)
                    with m.Else():
                        m.d.sync += fin_C[1:].eq((d_new & mask)[1:])
                    with m.If(is_relu_a & ne_now):
                        m.d.sync += fin_C[0].eq(0)
                    with m.Else():
                        m.d.sync += fin_C[0].eq(Mux(is_sign_a, nz_now, d_new[0] & mask[0]))

        # ---------------- output register --------------------------------------------------------
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        o_value = Signal(signed(W), reset_less=True)
        o_used = Signal.like(fin_used)
        o_term = Signal(reset_less=True)
        sgn_nz = (fin_sgn & fin_nz.any()) if self.pipelined else 0
        with m.If(fin_valid & ~stall):
            m.d.sync += [self.o.valid.eq(1), o_used.eq(fin_used), o_term.eq(fin_term | sgn_nz)]
            with m.If(fin_set):
                m.d.sync += o_value.eq(-1)
            with m.Else():
                m.d.sync += o_value.eq(fin_C | sgn_nz)
        m.d.comb += [self.o.payload.value.eq(o_value), self.o.payload.digits_used.eq(o_used),
                     self.o.payload.terminated.eq(o_term)]
        return m
