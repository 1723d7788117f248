"""Texture diagnostic: does a style backend replace texture, and does it keep shape? Every candidate, N runs.

Two oracles are trained without any stylizer, then read images stylized at α ∈ {1, 0.75, 0.5, 0.25, 0}:

- **texture oracle**: a SmallCNN trained to name the texture family on ``ShapesTextures(texture_shortcut=True,
  cue_conflict=True, label_by="texture")``: texture fills object and background, colours are random, and a shape of
  another class lies over the texture, so neither colour nor shape can name the family. Its held-out accuracy is
  printed on that setting and on full-frame swatches (``texture_swatches``), which it never saw.
- **shape oracle**: a SmallCNN trained to name the shape on ``ShapesTextures(cue_agreement=0)`` (object texture
  independent of the shape) under photometric augmentation (Kornia ColorJitter, RandomGrayscale). Held-out accuracy
  printed.

Content: 300 texture-shortcut test images (texture family = shape class). Each is stylized with a full-frame swatch
of *another* family. Per backend and α the script prints the fraction the texture oracle assigns to the **style's**
family (texture transferred), to the **content's** family (texture kept), and the shape oracle's accuracy (shape kept).

Each of the ``--runs`` runs (default 3) uses its own seed (0, 1, 2, ...: ``--seeds`` to choose) and trains its own
oracles; every fraction is reported as median and range over the runs.

Run: ``python benchmarks/bench_style_transfer.py [--runs 3 | --seeds 0 1 2] [--size 64] [--quick]``
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import kornia.augmentation as K
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, positive_int, spread

from captum_wsam.augment import LinearStyleTransfer, StyleAugment, TextureTransfer
from captum_wsam.data import ShapesTextures, texture_swatches
from captum_wsam.models import SmallCNN
from captum_wsam.train import accuracy, train_classifier

ALPHAS = (1.0, 0.75, 0.5, 0.25, 0.0)


def backends() -> dict[str, nn.Module]:
    return {
        "TextureTransfer (default)": TextureTransfer(),
        "TextureTransfer(edge_threshold=None)": TextureTransfer(edge_threshold=None),
        "TextureTransfer(texture_gain=1)": TextureTransfer(texture_gain=1.0),
        "TextureTransfer(copy_levels=0)": TextureTransfer(copy_levels=0),
        "LinearStyleTransfer": LinearStyleTransfer(),
    }


def train_oracle(data: ShapesTextures, epochs: int, seed: int, augment: nn.Module | None = None,
                 cache: Path | None = None) -> nn.Module:
    torch.manual_seed(seed)
    model = SmallCNN(num_classes=data.num_classes)
    if cache is not None and cache.exists():
        model.load_state_dict(torch.load(cache, weights_only=True))
        return model.eval()
    train_classifier(model, data, epochs=epochs, lr=5e-3, seed=seed, progress=False, augment=augment)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        torch.save(model.state_dict(), cache)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(chunk).argmax(1) for chunk in images.split(256)])


def run_seed(args: argparse.Namespace, seed: int) -> dict[str, float]:
    """One run: train both oracles with ``seed``, stylize the content set, return every measured fraction."""
    n_train, epochs, n_content = (800, 3, 60) if args.quick else (4000, 8, 300)
    size = args.size
    start = time.perf_counter()
    results: dict[str, float] = {}

    texture_train = ShapesTextures(n=n_train, size=size, texture_shortcut=True, cue_conflict=True,
                                   label_by="texture", seed=seed + 100)
    texture_test = ShapesTextures(n=500, size=size, texture_shortcut=True, cue_conflict=True, label_by="texture",
                                  seed=seed + 101)
    tag = f"{size}-{seed}-{n_train}-{epochs}"
    cache = {name: args.cache / f"{name}-{tag}.pt" if args.cache else None for name in ("texture", "shape")}
    texture_oracle = train_oracle(texture_train, epochs, seed, cache=cache["texture"])
    kinds = torch.randint(6, (500,), generator=torch.Generator().manual_seed(seed + 102))
    swatch_acc = (predict(texture_oracle, texture_swatches(kinds, size, seed + 103)) == kinds).float().mean()
    results["texture_oracle"] = accuracy(texture_oracle, texture_test)
    results["texture_oracle_swatches"] = float(swatch_acc)
    print(f"seed {seed}: texture oracle: held-out accuracy {results['texture_oracle']:.3f} (shape over texture), "
          f"{float(swatch_acc):.3f} (full-frame swatches, never seen)")

    photometric = nn.Sequential(K.ColorJitter(0.4, 0.4, 0.4, 0.1, p=1.0), K.RandomGrayscale(p=0.2))
    shape_train = ShapesTextures(n=n_train, size=size, cue_agreement=0.0, seed=seed + 200)
    shape_test = ShapesTextures(n=500, size=size, cue_agreement=0.0, seed=seed + 201)
    shape_oracle = train_oracle(shape_train, epochs, seed, augment=photometric, cache=cache["shape"])
    results["shape_oracle"] = accuracy(shape_oracle, shape_test)
    print(f"seed {seed}: shape oracle: held-out accuracy {results['shape_oracle']:.3f}")

    content_data = ShapesTextures(n=n_content, size=size, texture_shortcut=True, seed=seed + 300)
    content, _ = content_data.tensors()
    shape, own = content_data.shape_labels, content_data.texture_labels
    other = (own + 1 + torch.randint(5, own.shape, generator=torch.Generator().manual_seed(seed + 301))) % 6
    styles = texture_swatches(other, 128, seed + 302)
    print(f"\n{'backend':44s} {'alpha':>5s}  {'style texture':>13s}  {'own texture':>11s}  {'shape kept':>10s}")
    for name, transfer in chosen_backends(args).items():
        augment = StyleAugment(transfer=transfer, styles=styles)
        for alpha in ALPHAS:
            with torch.no_grad():
                stylized = torch.cat([augment.stylize(c, i, alpha) for c, i in
                                      zip(content.split(50), torch.arange(n_content).split(50))])
            texture = predict(texture_oracle, stylized)
            row = {"style": float((texture == other).float().mean()), "own": float((texture == own).float().mean()),
                   "shape": float((predict(shape_oracle, stylized) == shape).float().mean())}
            results.update({f"{name}|{alpha}|{key}": value for key, value in row.items()})
            print(f"{name:44s} {alpha:5.2f}  {row['style']:13.3f}  {row['own']:11.3f}  {row['shape']:10.3f}")
    print(f"\n(seed {seed}: chance 0.167; {time.perf_counter() - start:.0f} s)\n", flush=True)
    return results


def chosen_backends(args: argparse.Namespace) -> dict[str, nn.Module]:
    if not args.backend:
        return backends()
    return {f"TextureTransfer(**{text})": TextureTransfer(**json.loads(text)) for text in args.backend}


def figure_name(backend: str, alpha: float, key: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "_", backend.lower().replace("(default)", "")).strip("_")
    return f"style_transfer_{slug}_a{round(alpha * 100):03d}_{key}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_runs_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", default=None,
                        help="one run per seed, each training its own oracles (default: 0 .. runs - 1)")
    parser.add_argument("--seed", type=int, default=None, help="a single seed (the same as --seeds S)")
    parser.add_argument("--size", type=positive_int, default=64)
    parser.add_argument("--quick", action="store_true", help="smaller oracles and content set (a smoke run)")
    parser.add_argument("--cache", type=Path, default=None, help="folder to keep the two oracles in between runs")
    parser.add_argument("--backend", action="append", default=None, metavar="JSON",
                        help='only TextureTransfer(**JSON), e.g. \'{"noise_level": 0.2}\' (repeatable)')
    args = parser.parse_args()
    seeds = [args.seed] if args.seed is not None else args.seeds if args.seeds is not None else list(range(args.runs))
    runs = [run_seed(args, seed) for seed in seeds]
    print(f"median [min, max] over seeds {', '.join(map(str, seeds))}")
    print(f"{'backend':44s} {'alpha':>5s}  {'style texture':>18s}  {'own texture':>18s}  {'shape kept':>18s}")
    for name in chosen_backends(args):
        for alpha in ALPHAS:
            cells = [spread([r[f"{name}|{alpha}|{key}"] for r in runs]) for key in ("style", "own", "shape")]
            print(f"{name:44s} {alpha:5.2f}  {cells[0]:>18s}  {cells[1]:>18s}  {cells[2]:>18s}")
    setting = f"{300 if not args.quick else 60} texture-shortcut images at {args.size}x{args.size}, one seed per run"
    oracles = {"texture_oracle": "texture oracle, held-out accuracy (shape over texture)",
               "texture_oracle_swatches": "texture oracle, accuracy on full-frame swatches (never seen)",
               "shape_oracle": "shape oracle, held-out accuracy"}
    for key, label in oracles.items():
        print(figure_line(f"style_transfer_{key}", f"Texture diagnostic: {label}, {args.size}x{args.size}",
                          "accuracy", [r[key] for r in runs]))
    metrics = {"style": "style texture (oracle names the style's family)",
               "own": "own texture (oracle still names the content's family)",
               "shape": "shape kept (shape oracle's accuracy)"}
    for name in chosen_backends(args):
        for alpha in ALPHAS[1:]:  # at alpha = 1 every backend returns the input
            for key, what in metrics.items():
                print(figure_line(figure_name(name, alpha, key), f"{name}, alpha = {alpha:.2f}: {what}, {setting}",
                                  "fraction of images", [r[f"{name}|{alpha}|{key}"] for r in runs]))


if __name__ == "__main__":
    main()
