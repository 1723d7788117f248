"""Cost of one training step of SAT, LP-A3 and PGD-10-AT as ratios to a standard training step (same run).

Targets of issue 7: SAT step <= 1.5x, LP-A3 step <= 2.5x a standard step; PGD-10-AT for reference. The SAT step is
timed with its defaults (the saliency cache, filled by one epoch first) and with on-the-fly saliency.

Two models, 32x32 ShapesTextures, CPU, batch 64 and 128 (128 is the batch size of the official LP-A3 code):

- ``small_cnn``: the package's SmallCNN (width 16). A forward of 64 images takes about 15 ms, so fixed
  per-operation costs weigh heavily;
- ``resnet18``: torchvision's ResNet-18, the architecture family of the LP-A3 and SAT papers, with LP-A3 features
  from ``layer1`` ... ``layer4`` as in the official code. Only the steps with targets are timed (PGD-10 would take
  minutes per round).

LP-A3 attacks only the ``ratio`` (0.1) most unstable samples, with 12 forward and 5 input-backward passes each. How
many fall in one batch varies (3 to 10 of 64 here), so every kind is timed over a whole epoch of the 256-image set
(4 batches of 64, 2 of 128), of which 25 are selected (the official rule: N - int((1 - r) N) - 1 samples, read
from ``trainer.selection``): the ratio of epoch times is the mean cost of a step. CPU kernels are least efficient
on the small selected batches, so the LP-A3 ratio is highest on the smallest model. In each round every kind's epoch
(after one warm-up step) directly follows a standard epoch. Each of the ``--runs`` runs (default 3) takes the
median of ``--repeat`` such paired ratios (default 3 for small_cnn, 1 for resnet18); the figures are the median and
range over the runs.

Run: ``python benchmarks/bench_trainers.py [--runs 3] [--repeat R] [--model small_cnn resnet18] [--batch-size 64 128]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
import torchattacks
from torch import Tensor, nn
from torch.utils.data import DataLoader

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line, positive_int

from captum_wsam import _state
from captum_wsam._compat import BatchNorm
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN, create_model
from captum_wsam.train import AdversarialTrainer, LPA3Trainer, SATTrainer

KINDS = {"small_cnn": ("standard", "sat", "sat_online", "sat_masks", "lpa3", "lpa3_passes", "pgd10"),
         "resnet18": ("standard", "sat", "lpa3", "lpa3_passes")}
LABELS = {"sat": "SAT step (gradient saliency, cached) target <= 1.5x",
          "sat_online": "SAT step (gradient saliency, on the fly)", "sat_masks": "SAT step (weak saliency, masks)",
          "lpa3": "LP-A3 step ({selected:.1f}/{batch} selected) target <= 2.5x",
          "lpa3_passes": "  its model passes alone (floor, see lpa3_passes)", "pgd10": "PGD-10-AT step (reference)"}
FIGURE_LABELS = {"sat": "SAT step (gradient saliency, cached)",
                 "sat_online": "SAT step (gradient saliency, on the fly)",
                 "sat_masks": "SAT step (weak saliency, masks)",
                 "lpa3": "LP-A3 step ({selected:.1f}/{batch} selected)",
                 "lpa3_passes": "LP-A3's model passes alone (the floor)", "pgd10": "PGD-10-AT step"}


def lpa3_passes(t: AdversarialTrainer, images: Tensor, labels: Tensor, chosen: Tensor, steps: int = 5) -> None:
    """A standard step plus only the model passes an LP-A3 step needs on the ``chosen`` samples: the floor.

    The official fast-Lagrangian attack makes 1 + 2N forward passes (reference, then per step one with gradient and one
    probe) and N input-gradient backward passes; ``LPA3Trainer`` returns the last iterate (``feasible=False``, as the
    official code), so no certification pass; the training loss adds a forward and backward of the augmented
    samples. No feature
    distance, hooks or bookkeeping: whatever an implementation adds shows as the gap between this row and the LP-A3
    row.
    """
    model, x = t.model, images[chosen]
    loss = F.cross_entropy(model(images), labels)
    count = x.shape[0]  # the trainer's rule: no LP-A3 term without samples, or one under training-mode BatchNorm
    if count == 0 or (count == 1 and any(isinstance(m, BatchNorm) and m.training for m in model.modules())):
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        return
    with _state.eval_mode(model):
        with torch.no_grad():
            targets = model(x).argmax(1)  # reference pass
        for _ in range(steps):
            x = x.detach().requires_grad_(True)
            gradient = torch.autograd.grad(F.cross_entropy(model(x), targets), x)[0]
            with torch.no_grad():
                model(x - 0.1 * gradient)  # probe pass
            x = (x.detach() + 0.01 * gradient.sign()).clamp(0, 1)
    loss = loss + F.cross_entropy(model(x), targets)
    t.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    t.optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--model", nargs="+", choices=sorted(KINDS), default=["small_cnn", "resnet18"])
    parser.add_argument("--batch-size", type=positive_int, nargs="+", default=[64, 128])
    add_runs_argument(parser)
    parser.add_argument("--repeat", type=positive_int, default=None,
                        help="paired epochs per run and kind (median; default: 3 for small_cnn, 1 for resnet18)")
    args = parser.parse_args()
    figures = []
    for name in args.model:
        for batch_size in args.batch_size:
            figures += run(name, batch_size, args.runs, args.repeat or (3 if name == "small_cnn" else 1))
            print()
    print("\n".join(figures))


def build(name: str) -> tuple[nn.Module, list[nn.Module] | None]:
    """A freshly initialized model and its LP-A3 feature layers (``None``: the attack's default)."""
    if name == "small_cnn":
        return SmallCNN(width=16, depth=4), None
    model = create_model(name, num_classes=6)
    return model, [model.layer1, model.layer2, model.layer3, model.layer4]


def run(name: str, batch_size: int, runs: int, repeat: int) -> list[str]:
    """Time an epoch of each kind of step for one model and batch size against the standard epoch of the round."""
    torch.manual_seed(0)
    data = ShapesTextures(n=256, size=32, seed=0, progress=False)
    batches = list(DataLoader(data, batch_size=batch_size))

    def trainer(kind: str) -> AdversarialTrainer:
        model, layers = build(name)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        if kind == "standard":
            return AdversarialTrainer(model, optimizer, progress=False)
        if kind == "sat":  # default: saliency cache, filled by one epoch (as after epoch 0 of a real run)
            t = SATTrainer(model, optimizer, progress=False)
            t.fit(data, epochs=1, batch_size=batch_size)
            return t
        if kind == "sat_online":
            return SATTrainer(model, optimizer, saliency_cache=None, progress=False)
        if kind == "sat_masks":
            return SATTrainer(model, optimizer, weak_saliency="mask", progress=False)
        if kind == "lpa3_passes":
            return AdversarialTrainer(model, optimizer, progress=False)
        if kind == "lpa3":
            t = LPA3Trainer(model, optimizer, layers=layers, warmup=0, ratio=0.1, progress=False)
            t.fit(data, epochs=1, batch_size=batch_size)  # fills the instability memory
            t.selection.start_epoch()  # the threshold of the next epoch (the official selection rule)
            return t
        attack = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10)
        return AdversarialTrainer(model, optimizer, attack, progress=False)

    trainers = {kind: trainer(kind) for kind in KINDS[name]}
    selection = trainers["lpa3"].selection
    memory = {key: value.clone() for key, value in selection.state_dict().items()}
    chosen = [memory["instability"][info["index"]] > selection.threshold for _, _, info in batches]  # the memory's rule
    selected = [int(c.sum()) for c in chosen]

    def epoch(kind: str, t: AdversarialTrainer) -> None:
        if kind == "lpa3":  # every timed epoch starts from the same memory (threshold kept): the same samples
            t.selection.load_state_dict(memory, t.device)
        for (images, labels, info), mask in zip(batches, chosen, strict=True):
            if kind == "lpa3_passes":
                lpa3_passes(t, images, labels, mask)
            else:
                t.train_step(images, labels, info, epoch=5)

    def timed_epoch(kind: str) -> float:
        t = trainers[kind]
        t.model.train()
        images, labels, info = batches[0]
        t.train_step(images, labels, info, epoch=5)  # warm-up step: caches and allocator as in an ongoing run
        start = time.perf_counter()
        epoch(kind, t)
        return time.perf_counter() - start

    # each kind's epoch right after a standard epoch, the ratio of the pair, the median over rounds: the machine's
    # speed drifts (a shared VM: the standard step alone moves by 1.5x within a minute), a pair seconds apart sees the
    # same speed, and the median drops rounds a burst of load hit on one side only
    samples: dict[str, list[float]] = {kind: [] for kind in trainers}
    ratios: dict[str, list[float]] = {kind: [] for kind in trainers}  # one per run: the median of its pairs
    for _ in range(runs):
        pairs: dict[str, list[float]] = {kind: [] for kind in trainers}
        for _ in range(repeat):
            for kind in KINDS[name][1:]:
                base = timed_epoch("standard")
                seconds = timed_epoch(kind)
                samples["standard"].append(base)
                samples[kind].append(seconds)
                pairs[kind].append(seconds / base)
        for kind in KINDS[name][1:]:
            ratios[kind].append(statistics.median(pairs[kind]))
    base = statistics.median(samples["standard"]) / len(batches)
    print(f"{name}, batch {batch_size}, 32x32, {torch.get_num_threads()} threads: standard step {1000 * base:.1f} ms "
          f"(mean over an epoch of {len(batches)} batches; {runs} runs of {repeat} paired epochs); LP-A3 selects "
          f"{'+'.join(map(str, selected))} = {sum(selected)} of {len(data)} samples")
    figures = []
    for kind in KINDS[name][1:]:
        text = LABELS[kind].format(selected=sum(selected) / len(batches), batch=batch_size)
        print(f"{text:52s}: {statistics.median(ratios[kind]):5.2f}x  (runs {min(ratios[kind]):.2f}-"
              f"{max(ratios[kind]):.2f}x, {1000 * statistics.median(samples[kind]) / len(batches):.1f} ms)")
        label = FIGURE_LABELS[kind].format(selected=sum(selected) / len(batches), batch=batch_size)
        figures.append(figure_line(f"trainers_{name}_{batch_size}_{kind}", f"{label}, {name}, batch {batch_size} "
                                   "at 32x32 (mean step over an epoch of 256 images)", "x a standard step",
                                   ratios[kind]))
    return figures


if __name__ == "__main__":
    main()
