"""LRP cost on torchvision vgg16 and resnet50 (random weights), batch 8 at 64×64, and ViT-B/16 at 224×224 batch 2 (CPU).

Targets (issues 5 and 18): LRP with the α2β1 and EpsilonPlus composites (z^B first layer) at most 2 × one
forward+backward pass of the same model and at least 1.5 × faster than zennit with the same composite (zennit's
``SpecialFirstLayerMapComposite`` with its base layer map, its VGG/ResNet canonizers); ViT-B/16 at most 3 ×.
``LRPAlphaBeta`` (the α2β1 preset) is timed as well.

The reference forward+backward is ``model(x)[:, c].sum().backward()`` with the model's parameters requiring
gradients (a training step's cost); the ratio against a backward pass to the input only (parameters frozen) is printed
as well. The methods are timed in interleaved rounds (one call of each per round), and each ratio is taken within a
round, so that load from other processes on a shared machine hits all of them alike; the median and the range of the
per-round ratios are printed (``--runs`` rounds, default 3; ``--rounds`` is the older spelling).

Run: ``python benchmarks/bench_lrp.py [--runs 3] [--models vgg16 resnet50 vit_b_16] [--batch 8] [--no-zennit]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import figure_line, positive_int

from captum_wsam.attr import LRP, EpsilonAlpha2Beta1, EpsilonPlus, LRPAlphaBeta, ZBox

COMPOSITES = {"alpha2beta1": EpsilonAlpha2Beta1, "plus": EpsilonPlus}
_LABELS = {"alpha2beta1": "EpsilonAlpha2Beta1, z^B first layer", "plus": "EpsilonPlus, z^B first layer",
           "lrpalphabeta": "the alpha2beta1 preset"}


def forward_backward(model: nn.Module, x: torch.Tensor, target: int, weights: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(weights)
        p.grad = None
    x = x.detach().requires_grad_(True)
    model(x)[:, target].sum().backward()


def zennit_attribution(model: nn.Module, x: torch.Tensor, target: int, family: str, composite: str) -> torch.Tensor:
    from zennit.composites import SpecialFirstLayerMapComposite, layer_map_base
    from zennit.rules import AlphaBeta, Epsilon, ZBox, ZPlus
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    from zennit.types import Convolution

    conv = AlphaBeta(2.0, 1.0) if composite == "alpha2beta1" else ZPlus()
    layer_map = [*layer_map_base(), (Convolution, conv), (nn.Linear, Epsilon())]
    canonizers = [ResNetCanonizer()] if family == "resnet" else [VGGCanonizer()]
    zennit_composite = SpecialFirstLayerMapComposite(layer_map, [(Convolution, ZBox(0.0, 1.0))],
                                                     canonizers=canonizers)
    x = x.detach().requires_grad_(True)
    with zennit_composite.context(model) as modified:
        out = modified(x)
        grad = torch.zeros_like(out)
        grad[:, target] = out[:, target].detach()
        (relevance,) = torch.autograd.grad(out, x, grad)
    return relevance


def _seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _summary(ratios: list[float]) -> str:
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}, {max(ratios):.2f}]"


def bench(name: str, batch: int, size: int, rounds: int, zennit: bool) -> list[str]:
    torch.manual_seed(0)
    model = torchvision.models.get_model(name, weights=None, num_classes=1000).eval()
    x = torch.rand(batch, 3, size, size)
    family = "resnet" if name.startswith("resnet") else "vgg"
    methods: dict[str, Callable[[], object]] = {
        "fb": lambda: forward_backward(model, x, 1, True),
        "fb_input": lambda: forward_backward(model, x, 1, False),
    }
    for key, preset in COMPOSITES.items():
        lrp = LRP(model, composite=preset(first_layer=ZBox(0.0, 1.0)))
        methods[f"LRP {key}"] = lambda lrp=lrp: lrp.attribute(x, target=1)
        if zennit and not name.startswith("vit"):
            methods[f"zennit {key}"] = lambda key=key: zennit_attribution(model, x, 1, family, key)
    if not name.startswith("vit"):
        alpha_beta = LRPAlphaBeta(model)
        methods["LRPAlphaBeta"] = lambda: alpha_beta.attribute(x, target=1)
    for fn in methods.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {key: [] for key in methods}
    for _ in range(rounds):
        for key, fn in methods.items():
            times[key].append(_seconds(fn))
    for p in model.parameters():
        p.requires_grad_(True)
        p.grad = None
    limit = 3.0 if name.startswith("vit") else 2.0
    setting = f"{name} (weights=None), batch {batch} at {size}x{size}"
    figures = []
    print(f"{name}, batch {batch} at {size}x{size}: forward+backward {statistics.median(times['fb']) * 1e3:.0f} ms "
          f"(to the input only {statistics.median(times['fb_input']) * 1e3:.0f} ms); median [range] over {rounds} "
          "rounds")
    for key in methods:
        if key.startswith(("LRP", "LRPAlphaBeta")):
            ratios = [t / f for t, f in zip(times[key], times["fb"])]
            verdict = "OK" if statistics.median(ratios) <= limit else "MISSED"
            print(f"  {key}: {statistics.median(times[key]) * 1e3:.0f} ms = {_summary(ratios)} x forward+backward "
                  f"(target <= {limit:g}: {verdict})")
            short = key.replace("LRP ", "").lower()
            figures.append(figure_line(f"lrp_{name}_{short}", f"{key} ({_LABELS.get(short, short)}), {setting}",
                                       f"x one {name} forward+backward", ratios))
    for key in COMPOSITES:
        if f"zennit {key}" in times:
            speedups = [z / t for z, t in zip(times[f"zennit {key}"], times[f"LRP {key}"])]
            ours = LRP(model, composite=COMPOSITES[key](first_layer=ZBox(0.0, 1.0))).attribute(x, target=1)
            theirs = zennit_attribution(model, x, 1, family, key)
            agreement = float((ours - theirs).abs().max() / theirs.abs().max())
            verdict = "OK" if statistics.median(speedups) >= 1.5 else "MISSED"
            print(f"  zennit {key}: {statistics.median(times[f'zennit {key}']) * 1e3:.0f} ms -> LRP is "
                  f"{_summary(speedups)} x faster (target >= 1.5: {verdict}); max |difference| / max |relevance| = "
                  f"{agreement:.1e} (float32)")
            figures.append(figure_line(f"lrp_{name}_{key}_vs_zennit", f"LRP ({_LABELS[key]}) against zennit with the "
                                       f"same composite and canonizers, {setting}", "x faster than zennit", speedups))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", "--rounds", dest="runs", type=positive_int, default=3, metavar="N",
                        help="independent rounds; every figure is the median and range over them (default 3)")
    parser.add_argument("--batch", type=positive_int, default=8, help="batch of vgg16/resnet50 (default 8)")
    parser.add_argument("--models", nargs="+", default=["vgg16", "resnet50", "vit_b_16"])
    parser.add_argument("--no-zennit", action="store_true", help="skip the zennit comparison")
    args = parser.parse_args()
    print(f"torch threads: {torch.get_num_threads()}")
    figures = []
    for name in args.models:
        if name.startswith("vit"):
            figures += bench(name, 2, 224, args.runs, False)
        else:
            figures += bench(name, args.batch, 64, args.runs, not args.no_zennit)
    print("\n".join(figures))


if __name__ == "__main__":
    main()
