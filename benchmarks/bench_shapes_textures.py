"""ShapesTextures generation speed: 10,000 images at 64×64 (target: under 10 s on 2 CPU cores).

Reference measured in the same run: the cost of ``torch.rand`` filling the same uint8 image tensor's worth of floats
(the least any generator writing that much data pays). Each of the ``--runs`` rounds times one generation and one
fill; the seconds and the ratio are reported as median and range over the rounds.

Run: ``python benchmarks/bench_shapes_textures.py [--runs 3] [--n 10000] [--size 64]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, positive_int, seconds, spread

from captum_wsam.data import ShapesTextures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runs_argument(parser)
    parser.add_argument("--n", type=positive_int, default=10_000, help="images (default 10000)")
    parser.add_argument("--size", type=positive_int, default=64, help="image side (default 64)")
    args = parser.parse_args()
    n, size = args.n, args.size
    ShapesTextures(n=min(n, 100), size=size, seed=0)  # warm-up (imports, kernels)
    generation, ratios = [], []
    for _ in range(args.runs):
        spent = seconds(lambda: ShapesTextures(n=n, size=size, seed=0))
        floor = seconds(lambda: (torch.rand(n, 3, size, size) * 255).to(torch.uint8))
        generation.append(spent)
        ratios.append(spent / floor)
    median = statistics.median(generation)
    print(f"ShapesTextures n={n} size={size}: {spread(generation)} s over {args.runs} runs ({n / median:,.0f} "
          f"images/s); target < 10 s: {'OK' if median < 10 else 'MISSED'}")
    print(f"  = {spread(ratios, 1)} x filling the same tensor with torch.rand")
    print(figure_line("shapes_textures_seconds", f"ShapesTextures, {n:,} images at {size}x{size}", "s (wall)",
                      generation))
    print(figure_line("shapes_textures_vs_rand", f"ShapesTextures, {n:,} images at {size}x{size}, against torch.rand "
                      "filling the same tensor", "x torch.rand fill", ratios))


if __name__ == "__main__":
    main()
