"""StyleAugment cost (default TextureTransfer, and LinearStyleTransfer) against one torchvision resnet18 forward.

Batch 32 at 224×224 on CPU, p=1 (every image stylized), no gradients; the reference is one ``resnet18`` forward
(eval, no gradients) on the same batch, measured in the same round. Target ratio: <= 0.5.
Also prints ``stylize_grid`` (4 styles × 3 α on 8 images) against 12 separate ``stylize`` calls.

Each of the ``--runs`` rounds times every call ``--repeat`` times (median) and takes the ratios within the round;
the figures are the median and range of the rounds' ratios.

Run: ``python benchmarks/bench_style_augment.py [--runs 3] [--repeat 3] [--batch 32] [--size 224]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, best_time, figure_line, positive_int, spread

from captum_wsam.augment import LinearStyleTransfer, StyleAugment


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runs_argument(parser)
    parser.add_argument("--repeat", type=positive_int, default=3, help="calls per round and kind (median; default 3)")
    parser.add_argument("--batch", type=positive_int, default=32)
    parser.add_argument("--size", type=positive_int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    batch, size = args.batch, args.size
    x = torch.rand(batch, 3, size, size)
    aug = StyleAugment(p=1.0)
    linear = StyleAugment(p=1.0, transfer=LinearStyleTransfer())
    model = torchvision.models.resnet18().eval()
    small = x[:8, :, :64, :64].contiguous()
    ratios: dict[str, list[float]] = {"texture": [], "linear": [], "grid": []}
    with torch.no_grad():
        for fn in (lambda: aug(x), lambda: model(x), lambda: linear(x)):
            fn()  # warm-up
        for _ in range(args.runs):
            style_s = best_time(lambda: aug(x), repeat=args.repeat, warmup=0)
            resnet_s = best_time(lambda: model(x), repeat=args.repeat, warmup=0)
            linear_s = best_time(lambda: linear(x), repeat=args.repeat, warmup=0)
            grid_s = best_time(lambda: aug.stylize_grid(small, [0, 1, 2, 3], [0.0, 0.5, 0.8]), repeat=args.repeat)
            loop_s = best_time(lambda: [aug.stylize(small, s, a) for s in range(4) for a in (0.0, 0.5, 0.8)],
                               repeat=args.repeat)
            ratios["texture"].append(style_s / resnet_s)
            ratios["linear"].append(linear_s / resnet_s)
            ratios["grid"].append(grid_s / loop_s)
            print(f"  round: TextureTransfer {style_s * 1e3:.0f} ms, resnet18 forward {resnet_s * 1e3:.0f} ms, "
                  f"LinearStyleTransfer {linear_s * 1e3:.0f} ms", flush=True)
    texture = statistics.median(ratios["texture"])
    print(f"StyleAugment (TextureTransfer) batch {batch} @{size}: {spread(ratios['texture'])} x one resnet18 forward "
          f"over {args.runs} runs (target <= 0.5: {'OK' if texture <= 0.5 else 'MISSED'})")
    print(f"StyleAugment (LinearStyleTransfer): {spread(ratios['linear'])} x")
    print(f"stylize_grid 4x3 on 8 images @64 vs 12 stylize calls: {spread(ratios['grid'])} x")
    where = f"batch {batch} at {size}x{size}, p = 1"
    print(figure_line("style_augment_texture_transfer", f"StyleAugment TextureTransfer (default), {where}",
                      "x one resnet18 forward", ratios["texture"]))
    print(figure_line("style_augment_linear", f"StyleAugment LinearStyleTransfer, {where}", "x one resnet18 forward",
                      ratios["linear"]))
    print(figure_line("style_augment_grid", "StyleAugment.stylize_grid, 4 styles x 3 alphas on 8 images at 64x64",
                      "x 12 stylize calls", ratios["grid"]))


if __name__ == "__main__":
    main()
