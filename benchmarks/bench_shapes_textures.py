"""ShapesTextures generation speed: 10,000 images at 64×64 (target: under 10 s on 2 CPU cores).

Reference measured in the same run: the cost of ``torch.rand`` filling the same uint8 image tensor's worth of floats
(the least any generator writing that much data pays).

Run: ``python benchmarks/bench_shapes_textures.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time

from captum_wsam.data import ShapesTextures


def main() -> None:
    n, size = 10_000, 64
    seconds = best_time(lambda: ShapesTextures(n=n, size=size, seed=0), repeat=3)
    floor = best_time(lambda: (torch.rand(n, 3, size, size) * 255).to(torch.uint8), repeat=3)
    print(f"ShapesTextures n={n} size={size}: {seconds:.2f} s ({n / seconds:,.0f} images/s); target < 10 s: "
          f"{'OK' if seconds < 10 else 'MISSED'}")
    print(f"  = {seconds / floor:.1f} x filling the same tensor with torch.rand ({floor * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
