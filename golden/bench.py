"""Speed of the hardware-exact model against float PyTorch on the same CPU, same run.

``python -m msdf_unet.golden.bench [--preset paper] [--repeats 5] [--seed 0]``

Builds the preset U-Net with seeded random weights (BatchNorm statistics randomised so
the folding is not trivial), quantizes it with calibration on seeded random images,
and times one ``C x H x W`` input (the preset's nominal size; ``paper`` is 4 x 192 x 192):

* float: ``UNet.forward`` in float32, eval mode, ``torch.no_grad``;
* hw-exact FULL: :func:`msdf_unet.golden.hwexact.run` (integer results, requant, ...);
* hw-exact END with digit-cycle counting (per-bit-plane convs + MMA recurrence).

Prints the median of ``--repeats`` runs after one warm-up run, and the ratios (float and
hw-exact runs interleaved, so load from other processes hits both alike). The target
is hw-exact FULL within 3x of float. ``--threads`` sets torch's thread count.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch

from . import hwexact, quant
from .unet import UNet, UNetConfig

__all__ = ["bench", "build", "main", "random_model"]


def _median_times(fns, repeats: int) -> list[float]:
    """Median seconds of each function; the runs are interleaved (f0, f1, ..., f0, f1, ...)
    after one warm-up each, so that load from other processes hits all of them alike."""
    for fn in fns:
        fn()
    ts = [[] for _ in fns]
    for _ in range(repeats):
        for fn, t in zip(fns, ts):
            t0 = time.perf_counter()
            fn()
            t.append(time.perf_counter() - t0)
    return [statistics.median(t) for t in ts]


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

    t_float, t_full = _median_times([f_float, lambda: hwexact.run(program, xq, "full")], repeats)
    t_float2, t_end = _median_times([f_float, lambda: hwexact.run(program, xq, "end")],
                                    max(1, min(repeats, 3)))
    end = hwexact.run(program, xq, "end")
    summ = hwexact.cycle_summary(end.cycles)
    return {"preset": preset, "input": list(x.shape[1:]), "threads": torch.get_num_threads(),
            "float_s": t_float, "hw_full_s": t_full, "hw_end_s": t_end,
            "full_over_float": t_full / t_float, "end_over_float": t_end / t_float2,
            "end_saved_pct": summ["saved_pct"]}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m msdf_unet.golden.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="paper", help="U-Net preset (default: paper)")
    ap.add_argument("--repeats", type=int, default=5, help="timed runs, median reported (default 5)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be >= 1, not {args.threads}")
        torch.set_num_threads(args.threads)
    if args.repeats < 1:
        ap.error(f"--repeats must be >= 1, not {args.repeats}")
    r = bench(args.preset, args.repeats, args.seed)
    print(f"preset {r['preset']}, input {'x'.join(map(str, r['input']))}, "
          f"torch threads {r['threads']}, median of {args.repeats} runs")
    print(f"  float32 PyTorch          {r['float_s'] * 1e3:9.1f} ms")
    print(f"  hw-exact FULL            {r['hw_full_s'] * 1e3:9.1f} ms   {r['full_over_float']:5.2f}x float"
          f"  (target <= 3x: {'ok' if r['full_over_float'] <= 3 else 'MISSED'})")
    print(f"  hw-exact END + cycles    {r['hw_end_s'] * 1e3:9.1f} ms   {r['end_over_float']:5.2f}x float"
          f" of its own interleaved runs"
          f"\n{'':27}(END saves {r['end_saved_pct']:.2f} % of the digit cycles)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
