"""Speed of the hardware-exact model against float PyTorch on the same CPU, same run.

``python -m msdf_unet.golden.bench [--preset paper] [--repeats 5] [--seed 0]``

Builds the preset U-Net with seeded random weights (BatchNorm statistics randomised so
the folding is not trivial), quantizes it with calibration on seeded random images,
and times one ``C x H x W`` input (the preset's nominal size; ``paper`` is 4 x 192 x 192):

* float: ``UNet.forward`` in float32, eval mode, ``torch.no_grad``;
* hw-exact FULL: :func:`msdf_unet.golden.hwexact.run` (integer results, requant, ...);
* hw-exact END with digit-cycle counting (per-bit-plane convs + MMA recurrence).

Prints the median of ``--repeats`` runs after one warm-up run, and the ratios. The
target is hw-exact FULL within 3x of float.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np
import torch

from . import hwexact, quant
from .unet import UNet, UNetConfig

__all__ = ["bench", "build", "main", "random_model"]


def _median_time(fn, repeats: int) -> float:
    fn()
    ts = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def random_model(config: UNetConfig, seed: int = 0) -> UNet:
    """A seeded random ``UNet`` in eval mode with randomised BatchNorm statistics and
    affine parameters (so that folding them is not the identity)."""
    torch.manual_seed(seed)
    model = UNet(config).eval()
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1, generator=g)
                m.running_var.uniform_(0.5, 2.0, generator=g)
                m.weight.uniform_(0.5, 1.5, generator=g)
                m.bias.uniform_(-0.1, 0.1, generator=g)
    return model


def build(preset: str = "paper", seed: int = 0, n_calib: int = 2):
    """(float model, program, float input [1, C, H, W]) for the benchmark."""
    cfg = UNetConfig.preset(preset)
    model = random_model(cfg, seed)
    g = torch.Generator().manual_seed(seed + 1)
    h, w = cfg.input_size
    calib = torch.rand((n_calib, cfg.in_channels, h, w), generator=g).numpy()
    program = quant.quantize_model(model, calib, quant.QuantConfig(calibration="max"))
    x = torch.rand((1, cfg.in_channels, h, w), generator=g)
    return model, program, x


def bench(preset: str = "paper", repeats: int = 5, seed: int = 0) -> dict:
    """Median seconds of float, hw-exact FULL and hw-exact END (+cycles); ratios."""
    model, program, x = build(preset, seed)
    xq = quant.quantize_input(program, x.numpy())

    def f_float():
        with torch.no_grad():
            model(x)

    t_float = _median_time(f_float, repeats)
    t_full = _median_time(lambda: hwexact.run(program, xq, "full"), repeats)
    t_end = _median_time(lambda: hwexact.run(program, xq, "end"), max(1, min(repeats, 3)))
    end = hwexact.run(program, xq, "end")
    summ = hwexact.cycle_summary(end.cycles)
    return {"preset": preset, "input": list(x.shape[1:]), "threads": torch.get_num_threads(),
            "float_s": t_float, "hw_full_s": t_full, "hw_end_s": t_end,
            "full_over_float": t_full / t_float, "end_over_float": t_end / t_float,
            "end_saved_pct": summ["saved_pct"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m msdf_unet.golden.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper", help="U-Net preset (default: paper)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs, median reported (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, not {args.repeats}")
    r = bench(args.preset, args.repeats, args.seed)
    print(f"preset {r['preset']}, input {'x'.join(map(str, r['input']))}, "
          f"torch threads {r['threads']}, median of {args.repeats} runs")
    print(f"  float32 PyTorch          {r['float_s'] * 1e3:9.1f} ms")
    print(f"  hw-exact FULL            {r['hw_full_s'] * 1e3:9.1f} ms   {r['full_over_float']:5.2f}x float"
          f"  (target <= 3x: {'ok' if r['full_over_float'] <= 3 else 'MISSED'})")
    print(f"  hw-exact END + cycles    {r['hw_end_s'] * 1e3:9.1f} ms   {r['end_over_float']:5.2f}x float"
          f"  (END saves {r['end_saved_pct']:.2f} % of digit cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
