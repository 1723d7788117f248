"""Cost of a cascading model-randomization test (Adebayo et al. 2018) vs the attribution calls it cannot avoid.

A cascading test over :math:`L` layers needs at least :math:`L + 1` attribution calls (the original map and one per
step). Reference measured in the same run: those :math:`L + 1` plain ``attribute`` calls on one prepared model. The
ratio is the overhead of the test itself: deep copies, seeded re-initialization, map reduction and the similarity
measure. Grad-CAM and Saliency are single backward passes, the cheapest attributions, so this is the worst case for
the ratio.

Each figure is the median and range over ``--runs`` rounds (default 3); in each round the test and its plain calls
are timed back to back and the ratio is taken within the round (shared machines).

Run: ``python benchmarks/bench_randomization.py [--runs 3] [--similarities spearman ssim pearson_hog]``
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from captum.attr import LayerGradCam, Saliency

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, seconds, spread

from captum_wsam.metrics import model_randomization, parametrized_layers
from captum_wsam.models import SmallCNN

SIMILARITIES = ("spearman", "ssim", "pearson_hog")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runs_argument(parser)
    parser.add_argument("--similarities", nargs="+", choices=SIMILARITIES, default=list(SIMILARITIES))
    args = parser.parse_args()
    torch.manual_seed(0)
    model = SmallCNN(width=16, depth=4).eval()
    inputs = torch.rand(16, 3, 32, 32)
    target = torch.randint(0, 6, (16,))
    layers = len(parametrized_layers(model))
    factories = {"Saliency": Saliency, "LayerGradCam": lambda m: LayerGradCam(m, m.block4)}
    figures = []
    for name, factory in factories.items():
        for similarity in args.similarities:
            attribution = factory(model)

            def test(f=factory, s=similarity) -> None:
                model_randomization(f, model, inputs, target, similarity=s, progress=False)

            def floor(a=attribution) -> None:
                for _ in range(layers + 1):
                    a.attribute(inputs.requires_grad_(), target=target)

            test(), floor()  # warm-up
            ratios, test_ms = [], []
            for _ in range(args.runs):
                spent = seconds(test)
                ratios.append(spent / seconds(floor))
                test_ms.append(spent * 1e3)
            print(f"{name:13s} {similarity:11s} cascading over {layers} layers, batch 16 at 32x32: "
                  f"{spread(test_ms, 1)} ms = {spread(ratios)} x the {layers + 1} plain attribute calls")
            figures.append(figure_line(
                f"randomization_{name.lower()}_{similarity}",
                f"Cascading randomization test, {name}, {similarity} similarity, SmallCNN over {layers} layers, "
                "batch 16 at 32x32", f"x its {layers + 1} plain attribute calls", ratios))
    print("\n".join(figures))


if __name__ == "__main__":
    main()
