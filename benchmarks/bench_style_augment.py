"""StyleAugment cost (default TextureTransfer, and LinearStyleTransfer) against one torchvision resnet18 forward.

Batch 32 at 224×224 on CPU, p=1 (every image stylized), no gradients; the reference is one ``resnet18`` forward
(eval, no gradients) on the same batch, measured in the same run. Target ratio: <= 0.5.
Also prints ``stylize_grid`` (4 styles × 3 α on 8 images) against 12 separate ``stylize`` calls.

Run: ``python benchmarks/bench_style_augment.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import torchvision

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time

from captum_wsam.augment import LinearStyleTransfer, StyleAugment


def main() -> None:
    torch.manual_seed(0)
    x = torch.rand(32, 3, 224, 224)
    aug = StyleAugment(p=1.0)
    linear = StyleAugment(p=1.0, transfer=LinearStyleTransfer())
    model = torchvision.models.resnet18().eval()
    with torch.no_grad():
        style_s = best_time(lambda: aug(x), repeat=5)
        resnet_s = best_time(lambda: model(x), repeat=5)
        linear_s = best_time(lambda: linear(x), repeat=3)
    ratio = style_s / resnet_s
    print(f"StyleAugment (TextureTransfer) batch 32 @224: {style_s * 1e3:.0f} ms; resnet18 forward: "
          f"{resnet_s * 1e3:.0f} ms; ratio {ratio:.2f} (target <= 0.5: {'OK' if ratio <= 0.5 else 'MISSED'})")
    print(f"StyleAugment (LinearStyleTransfer): ratio {linear_s / resnet_s:.2f}")
    small = x[:8, :, :64, :64].contiguous()
    with torch.no_grad():
        grid_s = best_time(lambda: aug.stylize_grid(small, [0, 1, 2, 3], [0.0, 0.5, 0.8]), repeat=3)
        loop_s = best_time(lambda: [aug.stylize(small, s, a) for s in range(4) for a in (0.0, 0.5, 0.8)], repeat=3)
    print(f"stylize_grid 4x3 on 8 images @64: {grid_s * 1e3:.0f} ms vs 12 stylize calls {loop_s * 1e3:.0f} ms; "
          f"ratio {grid_s / loop_s:.2f}")


if __name__ == "__main__":
    main()
