"""Cost of deletion/insertion (Petsiuk et al. 2018) with 20 steps, as a multiple of one forward pass.

Setting of issue 21: torchvision ``resnet18(weights=None)`` (random weights; the cost does not depend on them), a
batch of 32 images at 64x64, 20 steps, precomputed attribution maps. The reference is one forward pass of the same
batch through the same model (eval mode, no gradient), measured in the same run. The original batch is one pass
(shared by both curves). Deletion then needs steps 1..19 as batches and its last step, every pixel deleted, is the
constant substrate: one image. Insertion needs the blurred canvas and steps 1..19: 20 batches. So one curve costs at
least 20 (deletion, plus one image) or 21 (insertion) forwards, and both together at least 40 plus one image; both
curves with 20 steps cannot meet a 25x target together.

Each figure is the median and range over ``--runs`` rounds, each round timing the forward and the three modes back
to back (shared machine: only ratios within one round are compared).

Run: ``python benchmarks/bench_deletion_insertion.py [--runs 3] [--batch 32] [--steps 20]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torchvision.models import resnet18

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, positive_int

from captum_wsam.metrics import deletion_insertion


def _seconds(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_runs_argument(parser)
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--size", type=positive_int, default=64)
    parser.add_argument("--steps", type=positive_int, default=20)
    args = parser.parse_args()
    torch.manual_seed(0)
    model = resnet18(weights=None, num_classes=10).eval()
    inputs = torch.rand(args.batch, 3, args.size, args.size)
    maps = torch.rand(args.batch, args.size, args.size)
    target = torch.randint(0, 10, (args.batch,))

    def forward() -> None:
        with torch.no_grad():
            model(inputs)

    def curves(mode: str) -> None:
        deletion_insertion(model, inputs, maps, target=target, steps=args.steps, mode=mode, progress=False)

    forward()
    curves("deletion")  # warm-up
    ratios: dict[str, list[float]] = {"deletion": [], "insertion": [], "both": []}
    forwards = []
    for _ in range(args.runs):
        reference = min(_seconds(forward) for _ in range(3))
        forwards.append(reference)
        for mode in ratios:
            ratios[mode].append(_seconds(lambda m=mode: curves(m)) / reference)
    print(f"resnet18 (weights=None), batch {args.batch} at {args.size}x{args.size}, {args.steps} steps, "
          f"{args.runs} rounds; one forward: median {statistics.median(forwards) * 1e3:.1f} ms")
    floors = {"deletion": args.steps, "insertion": args.steps + 1, "both": 2 * args.steps}  # + 1 image (deletion)
    for mode, values in ratios.items():
        print(f"  {mode:9s}: median {statistics.median(values):5.1f}x one forward (range {min(values):.1f}-"
              f"{max(values):.1f}x; floor: {floors[mode]} batched passes)")
    setting = f"{args.steps} steps, resnet18 (weights=None), batch {args.batch} at {args.size}x{args.size}"
    labels = {"deletion": "Deletion curve alone", "insertion": "Insertion curve alone", "both": "Both curves"}
    for mode, values in ratios.items():
        print(figure_line(f"deletion_insertion_{mode}", f"{labels[mode]} (floor {floors[mode]} passes), {setting}",
                          "x one resnet18 forward", values))


if __name__ == "__main__":
    main()
