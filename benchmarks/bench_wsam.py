"""WSAM cost: S = 6 styles × A = 4 intensities on torchvision resnet18 (layer4), batch 8 at 64×64.

Two references, measured in the same run:

- the floor: the style transfer of all S·A copies (``StyleAugment.stylize_grid``) plus one ``LayerGradCam`` over the
  S·A·B batch, the least any implementation pays (target: WSAM ≤ 1.2 × the floor);
- the naive loop a user writes today: for each style and α, ``augment.stylize``, ``LayerGradCam.attribute`` and a
  separate forward pass for the probability (target: WSAM ≥ 1.5 × faster).

Run: ``python benchmarks/bench_wsam.py [--device cuda]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from captum.attr import LayerGradCam

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time

from captum_wsam.attr import WSAM
from captum_wsam.attr.sam import default_augment
from captum_wsam.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    device = torch.device(options.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    batch, size, num_styles, alphas = 8, 64, 6, (0.2, 0.4, 0.6, 0.8)
    model = create_model("resnet18", num_classes=10).eval().to(device)
    layer = model.layer4
    augment = default_augment().to(device)
    x = torch.rand(batch, 3, size, size, device=device)
    target = torch.arange(batch, device=device) % 10
    wsam = WSAM(model, layer, augment, alphas=alphas, styles=num_styles)
    styles = wsam.styles
    copies = num_styles * len(alphas)

    def run_wsam() -> None:
        wsam.attribute(x, target)
        sync()

    def run_floor() -> None:
        with torch.no_grad():
            grid = augment.stylize_grid(x, styles, alphas)
        LayerGradCam(model, layer).attribute(grid.flatten(0, 2), target.repeat(copies), relu_attributions=True)
        sync()

    def run_naive() -> None:
        grad_cam = LayerGradCam(model, layer)
        total = torch.zeros(())
        for style in styles:
            for alpha in alphas:
                with torch.no_grad():
                    styled = augment.stylize(x, style, alpha)
                sam = grad_cam.attribute(styled, target, relu_attributions=True)
                with torch.no_grad():
                    probability = torch.softmax(model(styled), dim=1)[torch.arange(batch), target]
                total = total + (probability[:, None, None, None] * sam).sum().cpu()
        sync()

    # Round-robin (one run of each in turn, medians at the end) so that load on a shared machine hits all three alike.
    runs = {"wsam": run_wsam, "floor": run_floor, "naive": run_naive}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for fn in runs.values():
        fn()
    for _ in range(options.repeat):
        for name, fn in runs.items():
            times[name].append(best_time(fn, repeat=1, warmup=0))
    seconds, floor, naive = (statistics.median(times[name]) for name in runs)
    ratio_floor, speedup = seconds / floor, naive / seconds
    print(f"WSAM S={num_styles} A={len(alphas)} resnet18 batch {batch} at {size}x{size} on {device.type}: "
          f"{seconds * 1e3:.0f} ms")
    print(f"  ratio to the floor (stylize_grid + one LayerGradCam over {copies * batch} images, "
          f"{floor * 1e3:.0f} ms): {ratio_floor:.2f} x; target <= 1.2: {'OK' if ratio_floor <= 1.2 else 'MISSED'}")
    print(f"  speed-up over the naive loop (stylize + LayerGradCam + forward per style and alpha, "
          f"{naive * 1e3:.0f} ms): {speedup:.2f} x; target >= 1.5: {'OK' if speedup >= 1.5 else 'MISSED'}")

if __name__ == "__main__":
    main()
