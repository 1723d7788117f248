"""The seeds' claim end to end: on texture-shortcut data, StyleAugment training raises shape bias and lowers WSAM
variance. Median and range over seeds (one run per seed; ``--runs N``: seeds 0 .. N-1).

For each seed, two SmallCNNs train on the same ``ShapesTextures(texture_shortcut=True)`` images (texture family =
shape class, texture on object and background: texture is the easier cue, as on ImageNet) with the same epochs and
learning rate: the **baseline** and one with ``augment=StyleAugment(p=0.5)`` (default backend, ``TextureTransfer``).
Printed per model: clean test accuracy (texture-shortcut test set), shape bias on the texture-shortcut cue-conflict set
(Geirhos et al. 2019: shape decisions among shape-or-texture decisions), and the mean per-class WSAM variance
(Moreno-Vera et al.: how much stylization moves the explanation) on 60 test images.
Targets (issue): baseline shape bias <= 0.35; StyleAugment >= 0.3 higher; clean accuracy within 10 points.

Run: ``python benchmarks/bench_shape_bias.py [--runs 3 | --seeds 0 1 2] [--size 64] [--n 2000] [--epochs 10]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Subset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, positive_int

from captum_wsam.attr import WSAM
from captum_wsam.augment import StyleAugment
from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import shape_bias, wsam_variance
from captum_wsam.models import SmallCNN
from captum_wsam.train import accuracy, train_classifier


def run(seed: int, size: int, n: int, epochs: int, styled: bool) -> dict[str, float]:
    train = ShapesTextures(n=n, size=size, texture_shortcut=True, seed=10 * seed)
    test = ShapesTextures(n=500, size=size, texture_shortcut=True, seed=10 * seed + 1)
    conflict = ShapesTextures(n=500, size=size, texture_shortcut=True, cue_conflict=True, seed=10 * seed + 2)
    torch.manual_seed(seed)
    model = SmallCNN(num_classes=train.num_classes)
    augment = StyleAugment(p=0.5) if styled else None
    start = time.perf_counter()
    train_classifier(model, train, epochs=epochs, lr=5e-3, seed=seed, progress=False, augment=augment)
    seconds = time.perf_counter() - start
    variance = wsam_variance(WSAM(model, model.block3), DataLoader(Subset(test, range(60)), batch_size=20),
                             progress=False)
    return {"accuracy": accuracy(model, test), "shape_bias": shape_bias(model, conflict),
            "wsam_variance": float(torch.as_tensor(variance.variance).nanmean()), "seconds": seconds}


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} [{min(values):.3f}, {max(values):.3f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_runs_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 .. runs - 1)")
    parser.add_argument("--size", type=positive_int, default=64)
    parser.add_argument("--n", type=positive_int, default=2000)
    parser.add_argument("--epochs", type=positive_int, default=10)
    args = parser.parse_args()
    if args.seeds is None:
        args.seeds = list(range(args.runs))
    rows: dict[str, list[dict[str, float]]] = {"baseline": [], "StyleAugment": []}
    print(f"{'seed':>4s} {'model':14s} {'clean acc':>9s} {'shape bias':>10s} {'WSAM var':>9s} {'train s':>8s}")
    for seed in args.seeds:
        for name in rows:
            result = run(seed, args.size, args.n, args.epochs, styled=name == "StyleAugment")
            rows[name].append(result)
            print(f"{seed:4d} {name:14s} {result['accuracy']:9.3f} {result['shape_bias']:10.3f} "
                  f"{result['wsam_variance']:9.5f} {result['seconds']:8.1f}")
    print("\nmedian [min, max] over seeds")
    for name, results in rows.items():
        print(f"{name:14s} clean acc {spread([r['accuracy'] for r in results])}  "
              f"shape bias {spread([r['shape_bias'] for r in results])}  "
              f"WSAM variance {spread([r['wsam_variance'] for r in results])}")
    gain = [s["shape_bias"] - b["shape_bias"] for b, s in zip(rows["baseline"], rows["StyleAugment"])]
    drop = [b["accuracy"] - s["accuracy"] for b, s in zip(rows["baseline"], rows["StyleAugment"])]
    lower = sum(s["wsam_variance"] < b["wsam_variance"] for b, s in zip(rows["baseline"], rows["StyleAugment"]))
    baseline_bias = max(r["shape_bias"] for r in rows["baseline"])
    print(f"\nshape-bias gain {spread(gain)} (target >= 0.3: {'OK' if min(gain) >= 0.3 else 'MISSED'}); "
          f"baseline shape bias <= 0.35: {'OK' if baseline_bias <= 0.35 else 'MISSED'}; "
          f"clean-accuracy drop {spread(drop)} (target <= 0.10: {'OK' if max(drop) <= 0.10 else 'MISSED'}); "
          f"WSAM variance lower with StyleAugment in {lower}/{len(gain)} seeds")
    setting = (f"SmallCNN, {args.n} texture-shortcut images at {args.size}x{args.size}, {args.epochs} epoch(s), "
               "one seed per run")
    metrics = {"accuracy": ("clean test accuracy", "fraction of 500 test images"),
               "shape_bias": ("shape bias", "shape decisions / (shape or texture) on 500 cue-conflict images"),
               "wsam_variance": ("mean per-class WSAM variance on 60 test images", "WSAM variance")}
    for name, results in rows.items():
        model = "baseline" if name == "baseline" else "StyleAugment (p = 0.5)"
        for key, (what, unit) in metrics.items():
            print(figure_line(f"shape_bias_{name.lower()}_{key}", f"{model}: {what}, {setting}", unit,
                              [r[key] for r in results]))
    print(figure_line("shape_bias_gain", f"Shape-bias gain of StyleAugment training over the baseline, {setting}",
                      "shape bias (difference)", gain))
    print(figure_line("shape_bias_accuracy_drop", f"Clean-accuracy drop of StyleAugment training, {setting}",
                      "accuracy (difference)", drop))


if __name__ == "__main__":
    main()
