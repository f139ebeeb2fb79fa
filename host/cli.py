"""The ``msdf-unet`` command line.

Build:       ``verilog``, ``synth-report``, ``bitstream``
Network:     ``train``, ``eval`` (``eval --input FILE`` segments one image; delegated to
             ``msdf_unet.golden``), ``segment`` (images and volumes, every backend)
Measure:     ``bench arith`` (dot-product units), ``bench golden`` (model speed),
             ``bench frame`` (the convolution engine per layer and per frame);
             ``msdf-unet bench WHICH -h`` lists each one's options
Try it:      ``demo`` (the bundled MRI slice through the whole chain)
"""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

__all__ = ["main"]

# subcommands implemented elsewhere: name -> (module, help); each module has cli(argv) -> int
DELEGATED = {
    "train": ("msdf_unet.golden.train", "train the float U-Net (seeded, CPU)"),
    "eval": ("msdf_unet.golden.evaluate", "Dice/IoU of float, INT8 and MSDF policies; plots"),
    "segment": ("msdf_unet.host.segment", "segment PNG images / NIfTI volumes (backends float..pynq)"),
}
BENCHES = {
    "arith": "msdf_unet.hdl.arith.bench",
    "golden": "msdf_unet.golden.bench",
    "frame": "msdf_unet.host.bench_frame",
}


def _add_config_args(p: argparse.ArgumentParser):
    from ..hdl.soc.config import VARIANTS
    p.add_argument("--config", type=Path, help="AccelConfig JSON (overrides the flags below)")
    p.add_argument("--variant", choices=VARIANTS, default="mma", help="arithmetic variant")
    p.add_argument("--data-lanes", type=int, default=9, help="dot-product terms per transaction")
    p.add_argument("--bias-lanes", type=int, default=2, help="lanes for bias pseudo-products")
    p.add_argument("--unsigned", action="store_true", help="unsigned activations (seed mode)")
    p.add_argument("--clk-mhz", type=float, default=100.0, help="PL clock (FCLK_CLK0)")
    p.add_argument("--top", choices=("engine", "dot"), default="engine",
                   help="board top: the convolution engine (default) or the dot-product skeleton")
    p.add_argument("--engine-config", type=Path,
                   help="EngineConfig JSON of the engine top (default spec.engine.BOARD_CONFIG)")


def _add_out_dir_args(p: argparse.ArgumentParser, default: str):
    p.add_argument("--out", type=Path, default=Path(default),
                   help=f"output folder (default {default}); refused when it holds files "
                        f"msdf-unet did not write")
    p.add_argument("--force", action="store_true", help="write into --out even when it holds other files")


def _claim_out(args, ours) -> None:
    from ..fileio import claim_out_dir
    claim_out_dir(args.out, ours=ours, force=args.force)


#: flags of the dot-product top only: (option, attribute, default)
_DOT_FLAGS = (("--variant", "variant", "mma"), ("--data-lanes", "data_lanes", 9),
              ("--bias-lanes", "bias_lanes", 2), ("--unsigned", "unsigned", False))


def _config(args):
    from ..hdl.soc.config import AccelConfig
    if getattr(args, "top", "dot") == "engine":
        used = [opt for opt, attr, default in _DOT_FLAGS if getattr(args, attr) != default]
        if used:
            raise ValueError(f"{', '.join(used)} apply to --top dot; the engine top takes its "
                             f"configuration from --engine-config (default spec.engine.BOARD_CONFIG)")
    if args.config:
        return AccelConfig.from_json(args.config.read_text())
    return AccelConfig(data_lanes=args.data_lanes, bias_lanes=args.bias_lanes,
                       signed_acts=not args.unsigned, variant=args.variant, clk_mhz=args.clk_mhz)


def _engine_config(args):
    """The EngineConfig of ``--engine-config`` (None: the board's; refused for ``--top dot``)."""
    if args.engine_config is None:
        return None
    if args.top != "engine":
        raise ValueError(f"--engine-config applies to --top engine, not --top {args.top}")
    from ..spec.engine import EngineConfig
    return EngineConfig.from_json(args.engine_config.read_text())


def cmd_verilog(args) -> int:
    from dataclasses import replace

    from ..hdl.arith.variants import make_dot_product
    from ..hdl.soc.config import VARIANTS
    from ..hdl.verilog import write_verilog
    config = _config(args)
    from ..hdl.soc.generate import CORE_NAME, WRAPPER_NAME, generate
    _claim_out(args, [f"{CORE_NAME}.v", f"{WRAPPER_NAME}.v", "regmap.json", "config.json", "units",
                      "engine_config.json"])
    gen = generate(config, args.out, top=args.top, engine_config=_engine_config(args))
    for p in (gen.core, gen.wrapper, gen.regmap, gen.config, gen.engine_config):
        if p is not None:
            print(p)
    if args.top != "dot":
        return 0
    # every arithmetic variant as a stand-alone unit with the same lane count
    for variant in VARIANTS:
        unit = make_dot_product(replace(config, variant=variant))
        name = f"dot_{variant.replace('-', '_')}"
        print(write_verilog(unit, name=name, path=args.out / "units" / f"{name}.v"))
    return 0


def cmd_synth_report(args) -> int:
    from ..fileio import prepare_out_dir, prepare_out_file, write_text
    from ..hdl.soc.generate import generate
    from ..hdl.soc.report import FIT_BUDGET, synth_report
    from ..hdl.soc.synth import XC7Z020, print_timing
    from ..spec.engine import BOARD_CONFIG
    config = _config(args)
    ecfg = _engine_config(args) or (BOARD_CONFIG if args.top == "engine" else None)
    prepare_out_file(args.out)
    prepare_out_dir(args.workdir, what="--workdir")
    gen = generate(config, args.workdir / "verilog", top=args.top, engine_config=ecfg)
    report = synth_report(gen, args.workdir, accel_config=config, engine_config=ecfg,
                          use_cache=not args.no_cache)
    write_text(args.out, json.dumps(report, indent=2))
    what = (f"convolution engine {ecfg.arrays[0].kpbs} cores x {ecfg.arrays[0].lanes} lanes"
            if args.top == "engine" else f"dot-product top ({config.variant}, {config.n_lanes} lanes)")
    how = ("cached report" if report["cached"] else
           "reused a finished run" if report["seconds"] is None else f"Yosys ran {report['seconds']} s")
    print(f"board top: {what}; Yosys synth_xilinx -family xc7 ({how})")
    pct = report["percent_of_xc7z020"]
    print(f"{'resource':<10}{'used':>10}{'of':>10}{'%':>8}{'budget':>10}")
    for k, total in XC7Z020.items():
        b = report["budget"].get(k)
        lim = f"{b['limit']:g}" if b else ""
        print(f"{k:<10}{report[k]:>10g}{total:>10}{pct[k]:>8.2f}{lim:>10}")
    rule = ", ".join(f"{k} <= {v:.0%}" if isinstance(v, float) else f"{k} <= {v}"
                     for k, v in FIT_BUDGET.items())
    print(f"fits the budget ({rule}): {'yes' if report['fits_budget'] else 'NO'}")
    print_timing(report["timing_estimate"])
    print(f"written {args.out}")
    if not report["fits"] or not report["fits_budget"]:
        over = [k for k, v in report["budget"].items() if k != "fits" and not v["ok"]] or \
            [k for k in XC7Z020 if report[k] > XC7Z020[k]]
        print(f"error: the design does not fit the xc7z020 budget ({', '.join(over)})", file=sys.stderr)
        return 1
    return 0


def cmd_bitstream(args) -> int:
    from ..hdl.soc.vivado import VivadoNotFound, run_vivado, write_tree
    config = _config(args)
    _claim_out(args, ["src", "regmap.json", "config.json", "build.tcl", "README.txt", "out",
                      "project", "vivado.log", "vivado.jou", ".Xil", "overlay_README.md", "programs"])
    programs = list(args.program)
    if args.top == "engine":  # the shipped models (+ --program), compiled for the engine
        from ..golden.program import load_program
        from ..spec.engine import BOARD_CONFIG
        from .api import MODELS, load_model
        from .pynq_ip import ship_programs
        ecfg = _engine_config(args) or BOARD_CONFIG
        progs = {} if args.program else {n: load_model(n).program for n in MODELS}
        progs.update({p.stem: load_program(p) for p in args.program})
        programs = ship_programs(progs, ecfg, args.out / "programs")
    tree = write_tree(config, args.out, top=args.top, engine_config=_engine_config(args),
                      programs=programs)
    print(f"Vivado build tree written to {tree.root}/ ({len(tree.sources)} sources, {tree.tcl.name}; "
          f"top: {tree.top}; overlay files: {', '.join(p.name for p in programs) or 'none'})")
    try:
        bit = run_vivado(tree)
    except VivadoNotFound as e:
        print(f"msdf-unet bitstream: {e}", file=sys.stderr)
        return 3
    print(f"bitstream: {bit}\nhardware handoff: {bit.with_suffix('.hwh')}")
    return 0


def cmd_bench(args, rest) -> int:
    return importlib.import_module(BENCHES[args.which]).main(rest)


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(out=args.out, rtl=not args.no_rtl)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="msdf-unet", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("verilog", help="generate the accelerator's Verilog and register map")
    _add_config_args(p)
    _add_out_dir_args(p, "build/verilog")
    p.set_defaults(func=cmd_verilog)

    p = sub.add_parser("synth-report", help="Yosys xc7 resource estimate (JSON); fails if it does not fit")
    _add_config_args(p)
    p.add_argument("--out", type=Path, default=Path("build/reports/utilization.json"))
    p.add_argument("--workdir", type=Path, default=Path("build/synth"))
    p.add_argument("--no-cache", action="store_true",
                   help="run Yosys even when a report of the same Verilog is cached")
    p.set_defaults(func=cmd_synth_report)

    p = sub.add_parser("bitstream", help="write the Vivado tree; run Vivado when installed")
    _add_config_args(p)
    _add_out_dir_args(p, "build/vivado")
    p.add_argument("--program", type=Path, action="append", default=[],
                   help="quantized .msdfp to ship (compiled for the engine) in the overlay "
                        "(default: the shipped models)")
    p.set_defaults(func=cmd_bitstream)

    p = sub.add_parser("bench", help="benchmarks: arith (variants, Yosys) or golden (model speed)")
    p.add_argument("which", choices=sorted(BENCHES))
    p.set_defaults(func=None)

    p = sub.add_parser("demo", help="segment the bundled MRI slice; run the accelerator in RTL simulation")
    p.add_argument("--out", type=Path, default=Path("build/demo"))
    p.add_argument("--no-rtl", action="store_true", help="skip the RTL simulation part")
    p.set_defaults(func=cmd_demo)

    for name, (_, help_) in DELEGATED.items():
        sub.add_parser(name, help=help_, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        module = importlib.import_module(DELEGATED[argv[0]][0])
        return module.cli(argv[1:])
    if len(argv) >= 2 and argv[0] == "bench" and argv[1] in BENCHES:  # its own options and -h
        return importlib.import_module(BENCHES[argv[1]]).main(argv[2:])
    parser = build_parser()
    if argv and argv[0] == "bench":
        args, rest = parser.parse_known_args(argv)
        return cmd_bench(args, rest)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:  # bad settings or inputs: say which, no traceback
        print(f"msdf-unet {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
