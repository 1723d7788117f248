"""LRPAlphaBeta cost on torchvision vgg16 and resnet18 (random weights), batch 8 at 64×64 (CPU).

Targets (issue 5): at most 2 × one forward+backward pass of the same model, and at least 1.5 × faster than zennit's
``AlphaBeta`` with the same rules (α2β1 in Conv/Linear, z^B first layer, ``Pass`` for ReLU, ``Norm`` for average
pooling and residual sums, zennit's VGG/ResNet canonizers). All figures are measured in the same run.

The reference forward+backward is ``model(x)[:, c].sum().backward()`` with the model's parameters requiring
gradients (a training step's cost); the ratio against a backward pass to the input only (parameters frozen) is printed
as well. The methods are timed in interleaved rounds (one call of each per round, medians over rounds), so that load
from other processes on a shared machine hits all of them alike.

Run: ``python benchmarks/bench_lrp.py [--size 224] [--repeat 5]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
import torchvision
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time

from captum_wsam.attr import LRPAlphaBeta


def forward_backward(model: nn.Module, x: torch.Tensor, target: int, weights: bool) -> None:
    for p in model.parameters():
        p.requires_grad_(weights)
        p.grad = None
    x = x.detach().requires_grad_(True)
    model(x)[:, target].sum().backward()


def zennit_attribution(model: nn.Module, x: torch.Tensor, target: int, resnet: bool) -> torch.Tensor:
    from zennit.composites import SpecialFirstLayerMapComposite
    from zennit.layer import Sum
    from zennit.rules import AlphaBeta, Norm, Pass, ZBox
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer
    from zennit.types import Activation, AvgPool, Convolution, Linear

    eps = 1e-9
    layer_map = [(Activation, Pass()), (Sum, Norm(stabilizer=eps)), (AvgPool, Norm(stabilizer=eps)),
                 ((Convolution, Linear), AlphaBeta(2.0, 1.0, stabilizer=eps))]
    first_map = [((Convolution, Linear), ZBox(0.0, 1.0, stabilizer=eps))]
    canonizers = [ResNetCanonizer()] if resnet else [VGGCanonizer()]
    composite = SpecialFirstLayerMapComposite(layer_map, first_map, canonizers=canonizers)
    x = x.detach().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(x)
        grad = torch.zeros_like(out)
        grad[:, target] = out[:, target].detach()
        (relevance,) = torch.autograd.grad(out, x, grad)
    return relevance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--no-zennit", action="store_true", help="skip the zennit comparison")
    args = parser.parse_args()
    torch.manual_seed(0)
    print(f"torch threads: {torch.get_num_threads()}; batch {args.batch} at {args.size}x{args.size}; median of "
          f"{args.repeat} interleaved rounds")
    for name in ("vgg16", "resnet18"):
        model = getattr(torchvision.models, name)(num_classes=1000).eval()
        x = torch.rand(args.batch, 3, args.size, args.size)
        lrp = LRPAlphaBeta(model, alpha=2.0, beta=1.0, first_layer="zbox")
        resnet = name.startswith("resnet")
        methods = {
            "lrp": lambda lrp=lrp, x=x: lrp.attribute(x, target=1),
            "fb": lambda model=model, x=x: forward_backward(model, x, 1, True),
            "fb_input": lambda model=model, x=x: forward_backward(model, x, 1, False),
        }
        if not args.no_zennit:
            methods["zennit"] = lambda model=model, x=x, resnet=resnet: zennit_attribution(model, x, 1, resnet)
        times: dict[str, list[float]] = {key: [] for key in methods}
        for fn in methods.values():  # warm-up
            best_time(fn, repeat=1, warmup=0)
        for _ in range(args.repeat):
            for key, fn in methods.items():
                times[key].append(best_time(fn, repeat=1, warmup=0))
        for p in model.parameters():
            p.requires_grad_(True)
            p.grad = None
        t_lrp, t_fb, t_fb_input = (statistics.median(times[key]) for key in ("lrp", "fb", "fb_input"))
        print(f"{name}: LRPAlphaBeta {t_lrp * 1e3:.0f} ms = {t_lrp / t_fb:.2f} x forward+backward "
              f"({t_fb * 1e3:.0f} ms; target <= 2: {'OK' if t_lrp <= 2 * t_fb else 'MISSED'}), "
              f"{t_lrp / t_fb_input:.2f} x forward+backward to the input only ({t_fb_input * 1e3:.0f} ms)")
        if not args.no_zennit:
            t_zennit = statistics.median(times["zennit"])
            ours, theirs = lrp.attribute(x, target=1), zennit_attribution(model, x, 1, resnet)
            agreement = float((ours - theirs).abs().max() / theirs.abs().max())
            print(f"{name}: zennit AlphaBeta {t_zennit * 1e3:.0f} ms -> LRPAlphaBeta is {t_zennit / t_lrp:.2f} x "
                  f"faster (target >= 1.5: {'OK' if t_zennit >= 1.5 * t_lrp else 'MISSED'}); max |difference| / "
                  f"max |relevance| = {agreement:.1e} (float32)")


if __name__ == "__main__":
    main()
