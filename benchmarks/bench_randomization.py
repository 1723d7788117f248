"""Cost of a cascading model-randomization test (Adebayo et al. 2018) vs the attribution calls it cannot avoid.

A cascading test over :math:`L` layers needs at least :math:`L + 1` attribution calls (the original map and one per
step). Reference measured in the same run: those :math:`L + 1` plain ``attribute`` calls on one prepared model. The
ratio is the overhead of the test itself: deep copies, seeded re-initialization, map reduction and the similarity
measure. Grad-CAM and Saliency are single backward passes, the cheapest attributions, so this is the worst case for
the ratio.

Each figure is the best of five interleaved runs (shared machines).

Run: ``python benchmarks/bench_randomization.py``
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from captum.attr import LayerGradCam, Saliency

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import best_time

from captum_wsam.metrics import model_randomization, parametrized_layers
from captum_wsam.models import SmallCNN


def main() -> None:
    torch.manual_seed(0)
    model = SmallCNN(width=16, depth=4).eval()
    inputs = torch.rand(16, 3, 32, 32)
    target = torch.randint(0, 6, (16,))
    layers = len(parametrized_layers(model))
    factories = {"Saliency": Saliency, "LayerGradCam": lambda m: LayerGradCam(m, m.block4)}
    for name, factory in factories.items():
        for similarity in ("spearman", "ssim", "pearson_hog"):
            attribution = factory(model)
            tests, floors = [], []
            for _ in range(5):  # interleaved, best of 5: robust to load from other processes on a shared machine
                tests.append(best_time(lambda f=factory, s=similarity: model_randomization(
                    f, model, inputs, target, similarity=s, progress=False), repeat=1, warmup=0))
                floors.append(best_time(lambda a=attribution: [a.attribute(inputs.requires_grad_(), target=target)
                                                               for _ in range(layers + 1)], repeat=1, warmup=0))
            test, floor = min(tests), min(floors)
            print(f"{name:13s} {similarity:11s} cascading over {layers} layers, batch 16 at 32x32: "
                  f"{test * 1e3:7.1f} ms = {test / floor:4.2f} x the {layers + 1} plain attribute calls "
                  f"({floor * 1e3:.1f} ms)")


if __name__ == "__main__":
    main()
