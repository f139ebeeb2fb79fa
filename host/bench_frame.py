"""``msdf-unet bench frame``: one frame of a preset network on the convolution engine.

``msdf-unet bench frame --preset {edge,paper} [--variant V ...] [--json F] [--input-hw H W]
[--memory {pynq-z2,testbench}] [--synth]``

The network is compiled for the engine (``host/compiler.py``) and every command is
listed with its shapes, MACs, fan-in, digits ``T``, weight tiles and the compulsory
memory traffic (input read once, output written once, parameters read once). ``edge`` is
the shipped, trained MRI program; ``paper`` (4 x 192 x 192, widths 16..256) is the shipped
paper-preset MRI program (``golden/weights/mri_paper``, task ``mri4``) when present, else
random weights (:func:`msdf_unet.golden.conv.programs.random_program`); the report's
``weights`` key says which. The network runs as shipped, every conv with the bias lanes
its quantization needs (``bias_lanes_max`` in the report): an engine configuration with
fewer (``--config``) is refused with the compiler's error naming the layer and
``max_bias_lanes`` (exit status 2), never run with clipped biases.

Cycles are *engine clock cycles* of the engine's cycle model
(:func:`msdf_unet.golden.conv.cycles.image_cycles`, PYNQ-Z2 memory model by default) on
the compiled image with a real input in it: the middle test slice of the preset's task
(center-cropped to ``--input-hw`` when given). The frame runs the ``end`` policy
(``frame_cycles``); the same image compiled with ``full`` gives ``end_saved_pct`` and the
per-layer ``end_cycles_saved``. ``gops`` = 2 x MAC / frame time at 100 MHz. The default
engine of each ``--variant`` (:data:`msdf_unet.spec.engine.VARIANTS`: ``mma``, the MSDF
plane PE; ``bitparallel-dsp``, the bit-parallel DSP48 PE) is its configuration that fits
(:data:`msdf_unet.spec.engine.FIT_CONFIGS`: 3 MSDF cores x 72 lanes; 2 DSP cores x 72
lanes); ``--config`` gives one configuration for every variant (its arrays' variant
replaced). A bit-parallel PE has no early termination: its END and FULL frames are equal.

LUT/FF/BRAM/DSP come from the engine's Yosys run (``python -m msdf_unet.hdl.conv.synth``,
about 10 minutes per core): ``--synth`` runs it into ``build/reports/engine-<digest16>/``;
without it a ``utilization.json`` already under ``build/reports/`` written for the same
EngineConfig is read, else the keys are ``null`` and ``resources_note`` says why (never
estimated here). The END saving in *digit* cycles of the MMA semantics (hwexact on real
test slices, not engine cycles) is reported as ``end_digits_saved_pct`` for trained
programs.
"""
from __future__ import annotations

import argparse
import functools
import json
import sys
from pathlib import Path

from ..spec import engine as E
from .compiler import CompiledImage, CompileError, compile_program, write_input
from .engine_model import CLOCK_HZ, FIT_CONFIG, FIT_CONFIG_NOTE, engine_cycles

__all__ = ["frame_rows", "frame_report", "frame_cycles", "input_slice", "resources", "main"]

PRESETS = ("edge", "paper")
DEFAULT_JSON = Path("build/bench/frame.json")
REPORTS = Path("build/reports")
MEMORY_MODELS = ("pynq-z2", "testbench")


#: Task of the shipped model behind each preset (``paper``: only when its weights exist).
TASK = {"edge": "mri", "paper": "mri4"}


def _trained(preset: str) -> bool:
    from ..golden.train import PRETRAINED_TASKS, WEIGHTS_DIR
    return preset == "edge" or (WEIGHTS_DIR / PRETRAINED_TASKS[TASK[preset]] / "weights.npz").is_file()


@functools.lru_cache(maxsize=4)  # building the trained paper program takes ~40 s
def _program(preset: str, seed: int = 0):
    """The preset's network exactly as shipped (quantized with every bias lane it needs:
    an engine with fewer bias lanes is refused by the compiler, never given a network with
    clipped biases)."""
    if _trained(preset):
        from ..golden.evaluate import build_program
        return build_program(TASK[preset])
    from ..golden.conv.programs import random_program
    from ..golden.unet import PRESETS as UNET
    c = UNET["paper"]
    return random_program(seed, in_channels=c.in_channels, out_channels=c.out_channels,
                          depth=c.depth, base_width=c.base_width, hw=tuple(c.input_size))


def frame_rows(image: CompiledImage) -> list[dict]:
    """Per-command facts of a compiled frame (no cycles)."""
    rows = []
    for c in image.commands:
        f = c.fields
        if c.op == E.Op.END:
            continue
        h, w, cin = f["height"], f["width"], f["cin"]
        row = {"index": c.index, "layer": c.layer, "op": c.op.name, "cin": cin,
               "in_hw": [h, w]}
        in_b = E.tensor_bytes(cin, h, w)
        if c.op == E.Op.CONV:
            k, cout, nb = f["kernel"], f["cout"], f["bias_lanes"]
            lanes = cin * k * k + nb
            rec = E.channel_record_bytes(cin, k, nb)
            out_b = E.tensor_bytes(cout, h, w, E.HEAD_ELEM_BYTES if f["head"] else 1)
            row.update(cout=cout, out_hw=[h, w], kernel=k, bias_lanes=nb, fan_in=lanes,
                       digits_T=E.stream_digits(lanes), policy=E.Policy(f["policy"]).name,
                       macs=cout * cin * k * k * h * w, outputs=cout * h * w,
                       cout_tile=f["cout_tile"], weight_tiles=-(-cout // f["cout_tile"]),
                       bytes_params=cout * rec)
        else:
            oh, ow = (h // 2, w // 2) if c.op == E.Op.MAXPOOL else (2 * h, 2 * w)
            out_b = E.tensor_bytes(cin, oh, ow)
            row.update(cout=cin, out_hw=[oh, ow], macs=0, outputs=cin * oh * ow, bytes_params=0)
        row.update(bytes_in=in_b, bytes_out=out_b)
        rows.append(row)
    return rows


def _memory(name: str):
    from ..golden.conv import cycles as C
    if name not in MEMORY_MODELS:
        raise ValueError(f"memory must be one of {MEMORY_MODELS}, not {name!r}")
    return C.PYNQ_Z2 if name == "pynq-z2" else C.TESTBENCH


def _crop(images, input_hw):
    """Center crop ``[N, C, H, W]`` to ``input_hw`` (None: unchanged)."""
    if input_hw is None:
        return images
    h, w = images.shape[-2:]
    th, tw = input_hw
    if not (0 < th <= h and 0 < tw <= w):
        raise ValueError(f"input_hw must lie within the slice size {(h, w)}, not {tuple(input_hw)}")
    y, x = (h - th) // 2, (w - tw) // 2
    return images[..., y:y + th, x:x + tw]


def input_slice(program, preset: str, input_hw=None):
    """INT8 codes ``[C, H, W]`` of the middle test slice of the preset's task (cropped)."""
    from ..golden.data import load_dataset
    from ..golden.quant import quantize_input
    imgs = load_dataset(TASK[preset], "test").images
    x = _crop(imgs[len(imgs) // 2][None], input_hw)
    return quantize_input(program, x).numpy()[0]


def _end_digits(program, n_slices: int = 4, task: str = "mri", input_hw=None) -> dict:
    """END digit savings (MMA digit semantics) per conv layer on real test slices of ``task``."""
    from ..golden import hwexact
    from ..golden.data import load_dataset
    from ..golden.quant import quantize_input
    imgs = load_dataset(task, "test").images
    mid = len(imgs) // 2
    x = quantize_input(program, _crop(imgs[mid - n_slices // 2: mid - n_slices // 2 + n_slices], input_hw))
    r = hwexact.run(program, x, "end")
    out = {c.name: c.saved_pct for c in r.cycles}
    full = sum(c.full for c in r.cycles)
    out["_total"] = 100.0 * (1 - sum(c.used for c in r.cycles) / full) if full else 0.0
    return out


def frame_cycles(program, config: E.EngineConfig, codes, *, input_hw=None, memory="pynq-z2") -> dict:
    """Engine cycles of one frame: ``{"end": [CommandCycles], "full": [CommandCycles]}``,
    the program compiled for ``config`` with each policy, ``codes`` written as input."""
    out = {}
    for pol in ("end", "full"):
        img = compile_program(program, config, policy=pol, input_hw=input_hw)
        write_input(img, codes)
        out[pol] = engine_cycles(img.memory, config, img.cmd_offset, _memory(memory))
    return out


def synth_dir(config: E.EngineConfig) -> Path:
    return REPORTS / f"engine-{config.digest[:16]}"


def resources(config: E.EngineConfig, synth: bool = False) -> tuple[dict | None, str]:
    """(``{"lut", "ff", "bram36", "dsp", "fits"}`` or None, where from / why not)."""
    if synth:
        import subprocess
        out = synth_dir(config)
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(config.to_json())
        print(f"running Yosys on the engine ({config.arrays[0].kpbs} cores; ~10 min per core) "
              f"into {out}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "msdf_unet.hdl.conv.synth", "--config",
                        str(out / "config.json"), "--out", str(out)], check=True)
    for f in sorted(REPORTS.glob("**/utilization.json")) if REPORTS.is_dir() else []:
        try:
            d = json.loads(f.read_text())
            same = E.EngineConfig.from_dict(d["config"]).digest == config.digest
        except Exception:  # noqa: BLE001 -- other reports' formats: not ours
            continue
        if same:
            return ({"lut": d["LUT"], "ff": d["FF"], "bram36": d["BRAM36"], "dsp": d["DSP48E1"],
                     "fits": d["fits"]}, f"Yosys report {f}")
    return None, (f"no Yosys report for engine config {config.digest[:16]} under {REPORTS}/ "
                  f"(run with --synth, ~10 min per core)")


def _fit_note(cfg: E.EngineConfig) -> str:
    a = cfg.arrays[0]
    return (f"{a.kpbs} cores x {a.lanes} data lanes of {a.variant} (+{cfg.max_bias_lanes} bias "
            f"lanes per PE; the configuration of this variant that fits the xc7z020, docs/engine.md)")


def frame_report(preset: str, variants=("mma",), *, config: E.EngineConfig | None = None,
                 end_digits: bool = True, input_hw=None, memory: str = "pynq-z2",
                 synth: bool = False) -> dict:
    """The benchmark report: ``{"preset", "layers", "results": [one object per variant]}``."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, not {preset!r}")
    base = config or FIT_CONFIG
    fit_configs = {} if config else E.FIT_CONFIGS
    program = _program(preset)
    input_hw = None if input_hw is None else tuple(int(v) for v in input_hw)
    codes = input_slice(program, preset, input_hw)
    hw = tuple(codes.shape[1:])
    results, layers = [], None
    trained = _trained(preset)
    # refused before any cycle is counted when the network does not fit the engine
    compile_program(program, base, policy="end", input_hw=hw)
    ed = _end_digits(program, task=TASK[preset], input_hw=input_hw) if (end_digits and trained) else {}
    cache = {}
    for v in variants:
        if v in fit_configs:
            cfg = fit_configs[v]
        else:
            arrays = tuple(E.ArrayConfig(v, a.kpbs, a.lanes) for a in base.arrays)
            cfg = E.EngineConfig(**{**base.__dict__, "arrays": arrays})
        img = compile_program(program, cfg, policy="end", input_hw=hw)
        rows = frame_rows(img)
        key = cfg.digest
        if key not in cache:
            cache[key] = frame_cycles(program, cfg, codes, input_hw=hw, memory=memory)
        cyc = cache[key]
        end = {c.index: c for c in cyc["end"]}
        full = {c.index: c for c in cyc["full"]}
        for r in rows:
            if r["layer"] in ed:
                r["end_digits_saved_pct"] = round(ed[r["layer"]], 3)
            e, f = end[r["index"]], full[r["index"]]
            r.update(cycles=e.cycles, full_cycles=f.cycles, end_cycles_saved=f.cycles - e.cycles,
                     mac_per_cycle=round(r["macs"] / e.cycles, 3),
                     compute_cycles=e.compute, memory_cycles=e.memory, control_cycles=e.control)
        layers = layers or rows
        macs = sum(r["macs"] for r in rows)
        t_end = sum(c.cycles for c in cyc["end"])
        t_full = sum(c.cycles for c in cyc["full"])
        seconds = t_end / CLOCK_HZ
        res, res_note = resources(cfg, synth)
        results.append({
            "variant": v, "preset": preset, "engine_config": cfg.to_dict(),
            "engine": (FIT_CONFIG_NOTE if cfg == FIT_CONFIG else _fit_note(cfg)) if config is None
            else "given by --config",
            "weights": f"trained ({TASK[preset]})" if trained else "random",
            "bias_lanes_max": max(l.bias_lanes for l in program.conv_layers()),
            "engine_config_digest": cfg.digest, "image_bytes": img.mem_size,
            "input_hw": list(hw), "input": f"middle {TASK[preset]} test slice",
            "memory_model": memory, "policy": "end",
            "macs": macs, "conv_layers": sum(r["op"] == "CONV" for r in rows),
            "bytes_compulsory": sum(r["bytes_in"] + r["bytes_out"] + r["bytes_params"] for r in rows),
            "frame_cycles": t_end, "frame_cycles_full": t_full,
            "frame_ms_at_100mhz": round(seconds * 1e3, 4),
            "gops": round(2 * macs / seconds / 1e9, 3),
            "end_saved_pct": round(100.0 * (1 - t_end / t_full), 3),
            "compute_cycles": sum(c.compute for c in cyc["end"]),
            "memory_cycles": sum(c.memory for c in cyc["end"]),
            "control_cycles": sum(c.control for c in cyc["end"]),
            "lut": None, "ff": None, "bram36": None, "dsp": None, "fits": None,
            **(res or {}), "resources_note": res_note,
            "end_digits_saved_pct": round(ed["_total"], 3) if ed else None,
            "cycle_model": "msdf_unet.golden.conv.cycles.image_cycles",
            "layers": rows,
            "note": ("engine cycles of the cycle model (several cores: bands of output rows, "
                     "parameter loads one core after the other, the rest overlapped; 2 and 3 "
                     "cores on mri 16x16 within 3% of the RTL per layer)"),
        })
    return {"preset": preset, "results": results}


def format_table(report: dict) -> str:
    res = report["results"][0]
    lines = [f"preset {report['preset']}: {res['macs'] / 1e6:.2f} MMAC in {res['conv_layers']} conv "
             f"layers, input {'x'.join(map(str, res['input_hw']))} ({res['input']}), image "
             f"{res['image_bytes']} bytes, compulsory traffic {res['bytes_compulsory'] / 1e6:.2f} MB",
             f"engine {res['engine']}, memory model {res['memory_model']}, policy END "
             f"(END saved vs the same image compiled FULL)"]
    lines.append(f"{'#':>3} {'layer':16s} {'op':8s} {'cin':>4} {'cout':>4} {'HxW':>9} {'MMAC':>8} "
                 f"{'fan-in':>6} {'T':>3} {'tiles':>5} {'END dig%':>8} {'cycles':>10} {'MAC/cyc':>7} "
                 f"{'END saved':>9}")
    for r in res["layers"]:
        lines.append(f"{r['index']:3d} {r['layer']:16s} {r['op']:8s} {r['cin']:4d} {r['cout']:4d} "
                     f"{'x'.join(map(str, r['in_hw'])):>9} {r['macs'] / 1e6:8.3f} "
                     f"{r.get('fan_in', ''):>6} {r.get('digits_T', ''):>3} {r.get('weight_tiles', ''):>5} "
                     f"{r.get('end_digits_saved_pct', ''):>8} {r['cycles']:>10} "
                     f"{r['mac_per_cycle']:>7.2f} {r['end_cycles_saved']:>9}")
    for v in report["results"]:
        lines.append(f"variant {v['variant']}: frame_cycles {v['frame_cycles']} (FULL "
                     f"{v['frame_cycles_full']}), frame_ms_at_100mhz {v['frame_ms_at_100mhz']}, "
                     f"gops {v['gops']}, end_saved_pct {v['end_saved_pct']}%, "
                     f"END digits saved {v['end_digits_saved_pct']}%; time: compute "
                     f"{v['compute_cycles']}, memory {v['memory_cycles']}, control {v['control_cycles']}")
        lines.append(f"  resources: lut {v['lut']}, ff {v['ff']}, bram36 {v['bram36']}, dsp {v['dsp']}, "
                     f"fits {v['fits']}  ({v['resources_note']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="msdf-unet bench frame", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=PRESETS, default="edge")
    p.add_argument("--variant", nargs="+", default=["mma"], choices=E.VARIANTS)
    p.add_argument("--config", type=Path, help="EngineConfig JSON (arrays' variant replaced per --variant)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--no-end", action="store_true", help="skip the END digit count on MRI slices")
    p.add_argument("--input-hw", type=int, nargs=2, metavar=("H", "W"),
                   help="center-crop the input slice (default: the preset's full size)")
    p.add_argument("--memory", choices=MEMORY_MODELS, default="pynq-z2", help="cycle model memory")
    p.add_argument("--synth", action="store_true",
                   help="run Yosys on the engine for LUT/FF/BRAM/DSP (~10 min per core)")
    a = p.parse_args(argv)
    cfg = E.EngineConfig.from_json(a.config.read_text()) if a.config else None
    try:
        rep = frame_report(a.preset, tuple(a.variant), config=cfg, end_digits=not a.no_end,
                           input_hw=a.input_hw, memory=a.memory, synth=a.synth)
    except CompileError as e:   # e.g. an engine with fewer bias lanes than the network needs
        print(f"error: the {a.preset} network does not fit this engine: {e}", file=sys.stderr)
        return 2
    print(format_table(rep))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(rep, indent=2))
    print(f"wrote {a.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
