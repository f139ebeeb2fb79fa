"""The engine's bit-parallel PE: whole INT8 activations, one DSP48E1 multiplier per lane.

Variant ``bitparallel-dsp`` of the engine (:data:`msdf_unet.spec.engine.VARIANTS`). It
implements the engine's PE contract (:mod:`.pe`) for whole activations instead of
activation planes:

* ``i``: *chunk beats* (:func:`byte_beat_layout`). An output's fan-in (``cin*k*k`` data
  lanes + bias lanes) is cut into chunks of ``lanes`` lanes; its chunks ``0 .. n-1`` follow
  each other (``chunk_first``/``chunk_last``), one beat each, carrying the chunk's INT8
  activations ``x`` and weights ``w`` (0 on unused lanes) and an opaque ``tag``. The
  chunks of different outputs do not interleave (one accumulator).
* ``cfg``: the layer's policy, TRUNCATE budget and online delay, with the plane PE's
  contract (:mod:`.pe`): it holds the layer's value from the handshake of the layer's
  first beat until ``idle``; the constants are registered from it
  (:func:`.pe_value.layer_constants`).
* ``o``: one result per output, in order, tagged, with the value the policy defines
  (:func:`.pe_value.policy_value`; identical to the plane PE's). TRUNCATE ``p < 8`` keeps
  the top ``p`` activation planes: each activation is shifted right (arithmetic) by
  ``8 - p`` before the multiply, which is exactly the prefix ``A_{p-1}``.
* ``stop``/``stop_seq``/``stop_slots``: always 0 (a bit-parallel PE has no data-dependent stop; RELU_END
  and SIGN_ONLY outputs cost all their beats). ``early`` is 0, ``planes`` is 1.

Pipeline: operand registers -> TRUNCATE shift (registered) -> product (DSP48E1 M register)
-> product (P register) -> the lane adder tree, registered every :data:`TREE_LEVELS` levels
-> the output's accumulator over its chunks -> value into the result FIFO. One beat per
cycle while ``i.ready`` (which depends only on the FIFO level).
"""
from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, fifo, stream, wiring
from amaranth.lib.wiring import In, Out

from ...spec.engine import ACT_BITS, BP_TREE_LEVELS, Policy, bit_parallel_pe_latency, bit_parallel_tree_stages
from .pe import ACC_BITS, SEQ_BITS, SLOTS, pe_config_layout, pe_result_layout
from .pe_value import layer_constants, policy_value

__all__ = ["byte_beat_layout", "BytePE", "TREE_LEVELS", "pipeline_depth"]

#: adder-tree levels between two registers of the lane tree (declared in the spec: the
#: cycle model needs the PE's latency)
TREE_LEVELS = BP_TREE_LEVELS


def byte_beat_layout(lanes: int, tag_bits: int = 1) -> data.StructLayout:
    """One chunk beat (see the module docstring)."""
    return data.StructLayout({
        "x": data.ArrayLayout(signed(8), lanes),   # INT8 activation codes
        "w": data.ArrayLayout(signed(8), lanes),   # weights, [-127, 127]; 0 on unused lanes
        "chunk_first": unsigned(1),
        "chunk_last": unsigned(1),
        "tag": unsigned(tag_bits),
    })


#: registers of the lane adder tree (declared in the spec with the latency)
tree_stages = bit_parallel_tree_stages


def pipeline_depth(lanes: int) -> int:
    """Cycles from a beat's handshake to its result entering the FIFO (operands, M, P,
    tree stages, accumulator, value register): :func:`~msdf_unet.spec.engine.bit_parallel_pe_latency`."""
    return bit_parallel_pe_latency(lanes)


class BytePE(wiring.Component):
    """Bit-parallel PE over ``lanes`` lanes per beat (keyword-only ``lanes >= 1``,
    ``tag_bits >= 1``, ``fifo_depth``: results buffered at ``o``, at least
    ``pipeline_depth(lanes) + 2``; default that + 4).

    Members: ``i`` (``In(stream(byte_beat_layout(lanes, tag_bits)))``), ``cfg``
    (``In(pe_config_layout())``), ``o`` (``Out(stream(pe_result_layout(tag_bits)))``),
    ``stop``/``stop_seq``/``stop_slots`` (always 0), ``idle``.

    Bad input: beats out of the chunk order give an unspecified value (never a hang).
    """

    def __init__(self, *, lanes: int, tag_bits: int = 1, fifo_depth: int | None = None):
        if isinstance(lanes, bool) or not isinstance(lanes, int) or lanes < 1:
            raise ValueError(f"lanes must be a positive integer, not {lanes!r}")
        if isinstance(tag_bits, bool) or not isinstance(tag_bits, int) or tag_bits < 1:
            raise ValueError(f"tag_bits must be a positive integer, not {tag_bits!r}")
        depth = pipeline_depth(lanes)
        fifo_depth = depth + 4 if fifo_depth is None else fifo_depth
        if isinstance(fifo_depth, bool) or not isinstance(fifo_depth, int) or fifo_depth < depth + 2:
            raise ValueError(f"fifo_depth must be an integer >= {depth + 2}, not {fifo_depth!r}")
        self.lanes, self.tag_bits, self.fifo_depth, self.depth = lanes, tag_bits, fifo_depth, depth
        super().__init__({
            "i": In(stream.Signature(byte_beat_layout(lanes, tag_bits))),
            "cfg": In(pe_config_layout()),
            "o": Out(stream.Signature(pe_result_layout(tag_bits))),
            "stop": Out(1),
            "stop_seq": Out(SEQ_BITS),
            "stop_slots": Out(SLOTS),
            "idle": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        B, L, TB = ACT_BITS, self.lanes, self.tag_bits
        beat, cfg = self.i.payload, self.cfg
        m.submodules.results = results = fifo.SyncFIFO(
            width=len(self.o.payload.as_value()), depth=self.fifo_depth)
        # every beat in flight may end an output: keep room for all of them (+1: the level
        # is one cycle late)
        m.d.comb += self.i.ready.eq(results.level + self.depth + 1 <= self.fifo_depth)
        hs = Signal()
        m.d.comb += hs.eq(self.i.valid & self.i.ready)

        k = layer_constants(m, cfg, ACC_BITS)
        # the TRUNCATE shift (8 - p for p < 8, else 0), from the level-1 copy of cfg: the
        # first beat's operands are shifted one cycle after its handshake
        tsh = Signal(range(B))
        c1 = k.c1
        m.d.comb += tsh.eq(Mux((c1.policy == Policy.TRUNCATE) & (c1.digits >= 1) & (c1.digits < B),
                               B - c1.digits[:4], 0))

        # flags travel beside the data: (valid, chunk_first, chunk_last, tag) per stage
        valids = []

        def stage(prev, name):
            v, cf, cl, tag = (Signal(name=f"{name}_v"), Signal(name=f"{name}_cf"),
                              Signal(name=f"{name}_cl"), Signal(TB, name=f"{name}_tag"))
            m.d.sync += [v.eq(prev[0]), cf.eq(prev[1]), cl.eq(prev[2]), tag.eq(prev[3])]
            valids.append(v)
            return v, cf, cl, tag

        flags = stage((hs, beat.chunk_first, beat.chunk_last, beat.tag), "s0")
        x_in = [Signal(signed(8), name=f"x_in{j}", reset_less=True) for j in range(L)]
        w_in = [Signal(signed(8), name=f"w_in{j}", reset_less=True) for j in range(L)]
        m.d.sync += [x_in[j].eq(beat.x[j]) for j in range(L)]
        m.d.sync += [w_in[j].eq(beat.w[j]) for j in range(L)]
        flags = stage(flags, "sh")
        # operands (no reset: they pack into the DSP48E1's A/B registers)
        x_r = [Signal(signed(8), name=f"x_r{j}", reset_less=True) for j in range(L)]
        w_r = [Signal(signed(8), name=f"w_r{j}", reset_less=True) for j in range(L)]
        m.d.sync += [x_r[j].eq(x_in[j] >> tsh) for j in range(L)]
        m.d.sync += [w_r[j].eq(w_in[j]) for j in range(L)]
        # product: M then P register of the DSP48E1
        attrs = {"use_dsp": "yes"}
        prod_m = [Signal(signed(16), name=f"prod_m{j}", reset_less=True, attrs=attrs) for j in range(L)]
        prod_p = [Signal(signed(16), name=f"prod_p{j}", reset_less=True) for j in range(L)]
        m.d.sync += [prod_m[j].eq(x_r[j] * w_r[j]) for j in range(L)]
        m.d.sync += [prod_p[j].eq(prod_m[j]) for j in range(L)]
        flags = stage(stage(flags, "s1"), "s2")
        # the lane tree, a register every TREE_LEVELS levels (and after the last)
        terms, level, st = prod_p, 0, 0
        while True:
            if len(terms) > 1:
                terms = [terms[j] + terms[j + 1] for j in range(0, len(terms) - 1, 2)] + \
                    ([terms[-1]] if len(terms) % 2 else [])
                level += 1
            if len(terms) == 1 or level % TREE_LEVELS == 0:
                regs = [Signal(signed(ACC_BITS), name=f"t{st}_{j}", reset_less=True)
                        for j in range(len(terms))]
                m.d.sync += [r.eq(t) for r, t in zip(regs, terms)]
                terms, st = regs, st + 1
                flags = stage(flags, f"t{st}")
                if len(terms) == 1:
                    break
        assert st == tree_stages(L)
        chunk_sum = terms[0]
        # the output's accumulator over its chunks; on its last chunk, the prefix
        v, cf, cl, tag = flags
        acc = Signal(signed(ACC_BITS))
        acc_next = Signal(signed(ACC_BITS))
        m.d.comb += acc_next.eq(Mux(cf, 0, acc) + chunk_sum)
        a_v, a_A, a_tag = Signal(), Signal(signed(ACC_BITS)), Signal(TB)
        m.d.sync += a_v.eq(v & cl)
        with m.If(v):
            m.d.sync += acc.eq(acc_next)
            with m.If(cl):
                m.d.sync += [a_A.eq(acc_next), a_tag.eq(tag)]
        value, term = policy_value(m, k, a_A, ACC_BITS)
        res = Signal(pe_result_layout(TB))
        r_v = Signal()
        m.d.sync += r_v.eq(a_v)
        with m.If(a_v):
            m.d.sync += [res.value.eq(value), res.terminated.eq(term), res.tag.eq(a_tag),
                         res.planes.eq(1), res.early.eq(0)]
        m.d.comb += [
            results.w_data.eq(res.as_value()), results.w_en.eq(r_v),
            self.o.valid.eq(results.r_rdy), self.o.payload.eq(results.r_data),
            results.r_en.eq(self.o.ready),
            self.stop.eq(0), self.stop_seq.eq(0), self.stop_slots.eq(0),
        ]
        # idle: nothing between the handshake and the FIFO
        busy = a_v | r_v
        for sv in valids:
            busy = busy | sv
        m.d.comb += self.idle.eq(~busy)
        return m
