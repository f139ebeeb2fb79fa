"""``msdf-unet bench frame``: one frame of a preset network on the convolution engine.

``msdf-unet bench frame --preset {edge,paper} [--variant V ...] [--json F]``

The network is compiled for the engine (``host/compiler.py``) and every command is
listed with its shapes, MACs, fan-in, digits ``T``, weight tiles and the compulsory
memory traffic (input read once, output written once, parameters read once). ``edge`` is
the shipped, trained MRI program; ``paper`` (4 x 192 x 192, widths 16..256) is the shipped
paper-preset MRI program (``golden/weights/mri_paper``, task ``mri4``) when present, else
random weights (:func:`msdf_unet.golden.conv.programs.random_program`); the report's
``weights`` key says which.

Cycles come from the engine's cycle model ``msdf_unet.golden.conv.cycles`` (owned by
the RTL side) and LUT/FF/BRAM/DSP from a Yosys run of the engine: while those are not
available the keys are written as ``null`` (never estimated here). For ``edge`` the
END saving in *digit* cycles of the MMA semantics (hwexact on real test slices, not
engine cycles) is reported as ``end_digits_saved_pct`` (also for the trained ``paper``
program, on its own ``mri4`` test slices).
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from ..spec import engine as E
from .compiler import CompiledImage, compile_program

__all__ = ["frame_rows", "frame_report", "main"]

PRESETS = ("edge", "paper")
DEFAULT_JSON = Path("build/bench/frame.json")


#: Task of the shipped model behind each preset (``paper``: only when its weights exist).
TASK = {"edge": "mri", "paper": "mri4"}


def _trained(preset: str) -> bool:
    from ..golden.train import PRETRAINED_TASKS, WEIGHTS_DIR
    return preset == "edge" or (WEIGHTS_DIR / PRETRAINED_TASKS[TASK[preset]] / "weights.npz").is_file()


def _program(preset: str, seed: int = 0, max_bias_lanes: int | None = None):
    if _trained(preset):
        from ..golden.evaluate import build_program
        program = build_program(TASK[preset])
        if max_bias_lanes is not None and any(l.bias_lanes > max_bias_lanes
                                              for l in program.conv_layers()):
            # The engine holds at most max_bias_lanes per conv (the trained paper model's
            # down.4.conv1 needs 9): requantize with that many on every conv, biases beyond
            # them saturate (counted in meta["bias_saturated"], reported).
            from ..golden.quant import QuantConfig
            program = build_program(TASK[preset], config=QuantConfig(bias_lanes=max_bias_lanes))
        return program
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


def _cycle_model():
    """The RTL side's cycle model module, or None while it does not exist."""
    if importlib.util.find_spec("msdf_unet.golden.conv.cycles") is None:
        return None
    return importlib.import_module("msdf_unet.golden.conv.cycles")


def _end_digits(program, n_slices: int = 4, task: str = "mri") -> dict:
    """END digit savings (MMA digit semantics) per conv layer on real test slices of ``task``."""
    from ..golden import hwexact
    from ..golden.data import load_dataset
    from ..golden.quant import quantize_input
    imgs = load_dataset(task, "test").images
    mid = len(imgs) // 2
    x = quantize_input(program, imgs[mid - n_slices // 2: mid - n_slices // 2 + n_slices])
    r = hwexact.run(program, x, "end")
    out = {c.name: c.saved_pct for c in r.cycles}
    full = sum(c.full for c in r.cycles)
    out["_total"] = 100.0 * (1 - sum(c.used for c in r.cycles) / full) if full else 0.0
    return out


def frame_report(preset: str, variants=("mma",), *, config: E.EngineConfig | None = None,
                 end_digits: bool = True) -> dict:
    """The benchmark report: ``{"preset", "layers", "results": [one object per variant]}``."""
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {PRESETS}, not {preset!r}")
    base = config or E.EngineConfig()
    program = _program(preset, max_bias_lanes=base.max_bias_lanes)
    model = _cycle_model()
    results, layers = [], None
    trained = _trained(preset)
    ed = _end_digits(program, task=TASK[preset]) if (end_digits and trained) else {}
    for v in variants:
        arrays = tuple(E.ArrayConfig(v, a.kpbs, a.lanes) for a in base.arrays)
        cfg = E.EngineConfig(**{**base.__dict__, "arrays": arrays})
        img = compile_program(program, cfg, policy="end")
        rows = frame_rows(img)
        for r in rows:
            if r["layer"] in ed:
                r["end_digits_saved_pct"] = round(ed[r["layer"]], 3)
            r.update(cycles=None, mac_per_cycle=None, end_cycles_saved=None)
        layers = layers or rows
        macs = sum(r["macs"] for r in rows)
        results.append({
            "variant": v, "preset": preset, "engine_config": cfg.to_dict(),
            "weights": f"trained ({TASK[preset]})" if trained else "random",
            "quant_bias_lanes": program.meta.get("quant", {}).get("bias_lanes"),
            "bias_saturated": program.meta.get("bias_saturated", {}),
            "engine_config_digest": cfg.digest, "image_bytes": img.mem_size,
            "macs": macs, "conv_layers": sum(r["op"] == "CONV" for r in rows),
            "bytes_compulsory": sum(r["bytes_in"] + r["bytes_out"] + r["bytes_params"] for r in rows),
            "frame_cycles": None, "frame_ms_at_100mhz": None, "gops": None,
            "lut": None, "ff": None, "bram36": None, "dsp": None, "fits": None,
            "end_saved_pct": None,
            "end_digits_saved_pct": round(ed["_total"], 3) if ed else None,
            "cycle_model": None if model is None else model.__name__,
            "layers": rows,
            "note": ("cycles and resources not available: golden/conv/cycles.py (cycle model) "
                     "and the engine's Yosys report are not in this tree"
                     if model is None else "cycle model present but not wired into this bench yet"),
        })
    return {"preset": preset, "results": results}


def format_table(report: dict) -> str:
    res = report["results"][0]
    lines = [f"preset {report['preset']}: {res['macs'] / 1e6:.2f} MMAC in {res['conv_layers']} conv "
             f"layers, image {res['image_bytes']} bytes, compulsory traffic "
             f"{res['bytes_compulsory'] / 1e6:.2f} MB"]
    lines.append(f"{'#':>3} {'layer':16s} {'op':8s} {'cin':>4} {'cout':>4} {'HxW':>9} {'MMAC':>8} "
                 f"{'fan-in':>6} {'T':>3} {'tiles':>5} {'END dig%':>8} {'cycles':>8}")
    for r in res["layers"]:
        lines.append(f"{r['index']:3d} {r['layer']:16s} {r['op']:8s} {r['cin']:4d} {r['cout']:4d} "
                     f"{'x'.join(map(str, r['in_hw'])):>9} {r['macs'] / 1e6:8.3f} "
                     f"{r.get('fan_in', ''):>6} {r.get('digits_T', ''):>3} {r.get('weight_tiles', ''):>5} "
                     f"{r.get('end_digits_saved_pct', ''):>8} {'-' if r['cycles'] is None else r['cycles']:>8}")
    for v in report["results"]:
        lines.append(f"variant {v['variant']}: frame_cycles {v['frame_cycles']}, "
                     f"frame_ms_at_100mhz {v['frame_ms_at_100mhz']}, gops {v['gops']}, "
                     f"END digits saved {v['end_digits_saved_pct']}%  ({v['note']})")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="msdf-unet bench frame", description=__doc__.split("\n")[0])
    p.add_argument("--preset", choices=PRESETS, default="edge")
    p.add_argument("--variant", nargs="+", default=["mma"], choices=E.VARIANTS)
    p.add_argument("--config", type=Path, help="EngineConfig JSON (arrays' variant replaced per --variant)")
    p.add_argument("--json", type=Path, default=DEFAULT_JSON)
    p.add_argument("--no-end", action="store_true", help="skip the END digit count on MRI slices")
    a = p.parse_args(argv)
    cfg = E.EngineConfig.from_json(a.config.read_text()) if a.config else None
    rep = frame_report(a.preset, tuple(a.variant), config=cfg, end_digits=not a.no_end)
    print(format_table(rep))
    a.json.parent.mkdir(parents=True, exist_ok=True)
    a.json.write_text(json.dumps(rep, indent=2))
    print(f"wrote {a.json}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
