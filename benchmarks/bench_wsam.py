"""WSAM cost: S = 6 styles × A = 4 intensities on torchvision resnet18 (layer4), batch 8 at 64×64.

Two references, measured in the same run:

- the floor: the style transfer of all S·A copies (``StyleAugment.stylize_grid``) plus one ``LayerGradCam`` over the
  S·A·B batch, the least any implementation pays (target: WSAM ≤ 1.2 × the floor);
- the naive loop a user writes today: for each style and α, ``augment.stylize``, ``LayerGradCam.attribute`` and a
  separate forward pass for the probability (target: WSAM ≥ 1.5 × faster).

Each of the ``--runs`` rounds calls the three in turn ``--repeat`` times (round-robin, so that load on a shared
machine hits all three alike) and takes the ratios of the round's medians; the figures are the median and range of
the rounds' ratios.

Run: ``python benchmarks/bench_wsam.py [--runs 3] [--repeat 2] [--batch 8] [--device cuda]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from captum.attr import LayerGradCam

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, positive_int, seconds, spread

from captum_wsam.attr import WSAM
from captum_wsam.attr.sam import default_augment
from captum_wsam.models import create_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    add_runs_argument(parser)
    parser.add_argument("--repeat", type=positive_int, default=2, help="calls of each per round (default 2)")
    parser.add_argument("--batch", type=positive_int, default=8)
    options = parser.parse_args()
    device = torch.device(options.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    torch.manual_seed(0)
    batch, size, num_styles, alphas = options.batch, 64, 6, (0.2, 0.4, 0.6, 0.8)
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

    # Round-robin (one call of each in turn, medians per round) so that load on a shared machine hits all three alike.
    runs = {"wsam": run_wsam, "floor": run_floor, "naive": run_naive}
    for fn in runs.values():
        fn()  # warm-up
    to_floor, speedups, wsam_ms = [], [], []
    for _ in range(options.runs):
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(options.repeat):
            for name, fn in runs.items():
                times[name].append(seconds(fn))
        wsam_s, floor, naive = (statistics.median(times[name]) for name in runs)
        to_floor.append(wsam_s / floor)
        speedups.append(naive / wsam_s)
        wsam_ms.append(wsam_s * 1e3)
    ratio_floor, speedup = statistics.median(to_floor), statistics.median(speedups)
    setting = f"WSAM S={num_styles} A={len(alphas)}, resnet18 (layer4), batch {batch} at {size}x{size}"
    print(f"{setting} on {device.type}: {spread(wsam_ms, 0)} ms over {options.runs} runs")
    print(f"  ratio to the floor (stylize_grid + one LayerGradCam over {copies * batch} images): {spread(to_floor)} x; "
          f"target <= 1.2: {'OK' if ratio_floor <= 1.2 else 'MISSED'}")
    print(f"  speed-up over the naive loop (stylize + LayerGradCam + forward per style and alpha): "
          f"{spread(speedups)} x; target >= 1.5: {'OK' if speedup >= 1.5 else 'MISSED'}")
    print(figure_line("wsam_vs_floor", f"{setting}, against stylize_grid + one LayerGradCam (the floor)",
                      "x the floor", to_floor))
    print(figure_line("wsam_speedup_vs_naive", f"{setting}, against the naive loop (stylize + LayerGradCam + forward "
                      "per style and alpha)", "x faster than the naive loop", speedups))


if __name__ == "__main__":
    main()
