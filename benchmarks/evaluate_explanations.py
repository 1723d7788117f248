"""Which explanation is right? Ground-truth evaluation of attribution methods on ShapesTextures (issue 21, item 2).

Two SmallCNNs are trained on shape labels:

- a *shape* model on ``ShapesTextures(cue_agreement=0)``: object and background textures are drawn independently of
  the class, so only the object's outline is evidence;
- a *texture-shortcut* model on ``ShapesTextures(texture_shortcut=True)``: the object carries its class's texture
  family and the background carries the same family, so texture, all over the image, predicts the class.

Their shape bias on the matching cue-conflict sets shows which cue each one follows. Each method then explains the
true class of the first ``--n-eval`` correctly classified held-out images and is scored by
:func:`captum_wsam.metrics.evaluate_explanations`: localisation on the object mask and on its outline band
(pointing game, relevance mass / rank accuracy, energy pointing game), and faithfulness (deletion and insertion AUC,
ROAD combined). A uniform random map gives the chance level of every column; for RMA and RRA that level is about the
region's share of the image (printed under each table).

What to expect: localisation columns reward maps that sit on the object. For the shape model that is the evidence;
for the texture-shortcut model it is not (the background texture carries as much evidence as the object), so there a
method that scores high on the object is showing the object, not what the model uses, and the faithfulness columns
decide.

Every cell is the median [min, max] over ``--runs`` seeds (default 3: seeds 0, 1, 2; each trains its own models) of
the mean over the explained images. ``--no-road`` leaves out ROAD, which takes most of the time.

Run: ``python benchmarks/evaluate_explanations.py [--runs 3] [--no-road] [--quick] [--out table.md]``
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from captum.attr import IntegratedGradients, LayerGradCam, Saliency
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument

from captum_wsam.attr import LRP, SAM, WSAM, EpsilonPlus, LRPAlphaBeta, ZBox
from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import evaluate_explanations, outline_mask, shape_bias
from captum_wsam.metrics.explanation_evaluation import ExplanationEvaluation
from captum_wsam.models import SmallCNN
from captum_wsam.train import accuracy, predict, train_classifier


def _datasets(kind: str, n: int, size: int, seed: int, cue_conflict: bool = False) -> ShapesTextures:
    if kind == "texture-shortcut":
        return ShapesTextures(n=n, size=size, seed=seed, cue_conflict=cue_conflict, texture_shortcut=True)
    return ShapesTextures(n=n, size=size, seed=seed, cue_conflict=cue_conflict, cue_agreement=0.0)


def _upsampled(attribute: Callable[..., Tensor], size: tuple[int, int]) -> Callable[..., Tensor]:
    def call(inputs: Tensor, target: Tensor) -> Tensor:
        return torch.nn.functional.interpolate(attribute(inputs, target=target), size=size, mode="bilinear")

    return call


def methods_for(model: nn.Module, size: int, wsam_styles: int, seed: int) -> dict[str, Any]:
    """The compared methods, each a callable ``(inputs, target=...) -> attributions``."""
    layer = model.block3
    grid = (size, size)
    generator = torch.Generator().manual_seed(seed)

    def random_map(inputs: Tensor, target: Tensor) -> Tensor:
        return torch.rand(inputs.shape[0], *inputs.shape[2:], generator=generator)

    methods: dict[str, Any] = {
        "Random (chance)": random_map,
        "Saliency": functools.partial(Saliency(model).attribute, abs=True),
        "Integrated Gradients": functools.partial(IntegratedGradients(model).attribute, n_steps=32,
                                                  internal_batch_size=256),
        "Grad-CAM": _upsampled(functools.partial(LayerGradCam(model, layer).attribute, relu_attributions=True), grid),
        "SAM (α=0.5, style 0)": _upsampled(functools.partial(SAM(model, layer).attribute, alpha=0.5, style=0), grid),
        "WSAM": _upsampled(WSAM(model, layer, alphas=(0.2, 0.4, 0.6, 0.8), styles=wsam_styles, seed=seed).attribute,
                           grid),
        "LRP α1β0": LRPAlphaBeta(model, alpha=1.0, beta=0.0),
        "LRP α2β1": LRPAlphaBeta(model, alpha=2.0, beta=1.0),
        "LRP EpsilonPlus": LRP(model, composite=EpsilonPlus(first_layer=ZBox(0.0, 1.0))),
    }
    return methods


def evaluate_model(kind: str, args: argparse.Namespace, seed: int) -> tuple[dict[str, float], ExplanationEvaluation]:
    """Train one model with ``seed``, evaluate every method; the model's figures and the evaluation."""
    start = time.perf_counter()
    train = _datasets(kind, args.n_train, args.size, seed)
    test = _datasets(kind, args.n_test, args.size, seed + 1)
    conflict = _datasets(kind, args.n_test, args.size, seed + 2, cue_conflict=True)
    torch.manual_seed(seed)
    model = SmallCNN(num_classes=train.num_classes)
    train_classifier(model, train, epochs=args.epochs, lr=5e-3, seed=seed, progress=args.progress)
    model.eval()
    test_accuracy, bias = accuracy(model, test), shape_bias(model, conflict)
    images, labels = test.tensors()
    correct = (predict(model, images) == labels).nonzero().flatten()[: args.n_eval]
    x, y, masks = images[correct], labels[correct], test.masks[correct]
    regions = {"object": masks, "outline": outline_mask(masks, width=max(1, args.size // 32))}
    methods = methods_for(model, args.size, args.wsam_styles, seed)
    result = evaluate_explanations(model, x, regions, methods, target=y, steps=args.steps, road=args.road, seed=seed,
                                   progress=args.progress)
    figures = {"accuracy": test_accuracy, "shape bias": bias, "explained": float(len(correct)),
               "seconds": time.perf_counter() - start}
    return figures, result


def spread(values: list[float], digits: int = 3) -> str:
    """``median [min, max]`` (one value: itself)."""
    if len(values) == 1:
        return f"{values[0]:.{digits}f}"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def section(kind: str, args: argparse.Namespace, runs: list[tuple[dict[str, float], ExplanationEvaluation]]) -> str:
    """The Markdown section of one model: each cell the median [min, max] over seeds of the per-seed mean."""
    seeds = ", ".join(map(str, args.seeds))
    first = runs[0][1]
    columns = list(first.higher_is_better)
    means = [result.means() for _, result in runs]
    nans = [result.nan_counts() for _, result in runs]
    header = "| method | " + " | ".join(f"{c} {'↑' if first.higher_is_better[c] else '↓'}" for c in columns) + " |"
    lines = [header, "|" + "---|" * (len(columns) + 1)]
    for method in first.scores:
        cells = []
        for column in columns:
            cell = spread([m[method][column] for m in means])
            missing = sum(n[method][column] for n in nans)
            cells.append(cell + (f" ({missing} NaN)" if missing else ""))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    model = {key: [figures[key] for figures, _ in runs] for key in runs[0][0]}
    share = ", ".join(f"{name} {value:.3f}" for name, value in first.region_share.items())
    road_note = "; ROAD: mean (LeRF - MoRF)/2 over 10..90 % removed" if args.road else ""
    return (
        f"### {kind} model\n\n"
        f"SmallCNN, {args.n_train} training images at {args.size}x{args.size}, {args.epochs} epochs, seeds {seeds}: "
        f"test accuracy {spread(model['accuracy'])}, shape bias {spread(model['shape bias'])} on its cue-conflict "
        f"set; {spread(model['explained'], 0)} correctly classified test images per seed explained for their true "
        f"class. Each cell: the median [min, max] over the seeds of the mean over those images (NaN: undefined "
        f"scores left out, counted over all seeds).\n\n" + "\n".join(lines) + "\n\n"
        f"Region share of the image (RMA/RRA of an uninformative map, seed {args.seeds[0]}): {share}. PG: pointing "
        "game, RMA/RRA: relevance mass/rank accuracy, EPG: energy pointing game (bounding box); deletion/insertion: "
        f"AUC of the softmax probability over {args.steps} steps{road_note}.\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small data and few epochs (a smoke run)")
    add_runs_argument(parser)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--n-eval", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--wsam-styles", type=int, default=4)
    parser.add_argument("--seed", type=int, default=None, help="one seed instead of seeds 0 .. --runs - 1")
    parser.add_argument("--no-road", dest="road", action="store_false",
                        help="leave out ROAD (most of the run time: an imputation per removal fraction)")
    parser.add_argument("--models", nargs="+", default=["shape", "texture-shortcut"],
                        choices=["shape", "texture-shortcut"])
    parser.add_argument("--out", type=Path, default=None, help="also write the tables to this Markdown file")
    parser.add_argument("--progress", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.size, args.n_train, args.n_test, args.epochs, args.n_eval, args.steps, args.wsam_styles = (
            32, 400, 100, 2, 16, 10, 2)
    args.seeds = [args.seed] if args.seed is not None else list(range(args.runs))
    command = "python benchmarks/evaluate_explanations.py " + " ".join(sys.argv[1:] if argv is None else argv)
    sections = [f"## Ground-truth evaluation of explanations\n\nCommand: `{command.strip()}`\n"]
    for kind in args.models:
        runs = []
        for seed in args.seeds:
            runs.append(evaluate_model(kind, args, seed))
            print(f"{kind} model, seed {seed}: {runs[-1][0]['seconds']:.0f} s", flush=True)
        sections.append(section(kind, args, runs))
        print(sections[-1], flush=True)
    if args.out is not None:
        args.out.write_text("\n".join(sections))


if __name__ == "__main__":
    main()
