"""Cost of one training step of SAT, LP-A3 and PGD-10-AT as ratios to a standard training step (same run).

Targets of issue 7: SAT step <= 1.5x, LP-A3 step <= 2.5x a standard step; PGD-10-AT for reference. The SAT step is
timed with its defaults (the saliency cache, filled by one epoch first) and with on-the-fly saliency.

Run: ``python benchmarks/bench_trainers.py`` (SmallCNN width 16, 32x32 ShapesTextures, CPU, batch 64 and 128; 128
is the batch size of the official LP-A3 code). LP-A3 attacks only the ``ratio`` (0.1) most unstable samples, about 6
of 64 or 13 of 128: CPU kernels are least efficient on such small batches, so its ratio depends on the batch size.
Each kind is timed in interleaved rounds and the minimum is kept, which is robust to other processes on the machine.
"""

from __future__ import annotations

import argparse

import torch
import torchattacks
from _common import best_time
from torch.utils.data import DataLoader

from captum_wsam.attacks import functional as AF
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN
from captum_wsam.train import AdversarialTrainer, LPA3Trainer, SATTrainer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    for batch_size in args.batch_size:
        run(batch_size, args.repeat)
        print()


def run(batch_size: int, repeat: int) -> None:
    """Time every kind of step at one batch size, each against the standard step of the same run."""
    torch.manual_seed(0)
    data = ShapesTextures(n=256, size=32, seed=0, progress=False)
    images, labels, info = next(iter(DataLoader(data, batch_size=batch_size)))

    def trainer(kind: str) -> AdversarialTrainer:
        model = SmallCNN(width=16, depth=4)
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
        if kind == "lpa3":
            t = LPA3Trainer(model, optimizer, warmup=0, ratio=0.1, progress=False)
            t.fit(data, epochs=1, batch_size=batch_size)  # fills the instability memory
            t._threshold = AF.selection_threshold(t.lpa3_memory["instability"], t.lpa3_ratio)
            return t
        attack = torchattacks.PGD(model, eps=8 / 255, alpha=2 / 255, steps=10)
        return AdversarialTrainer(model, optimizer, attack, progress=False)

    trainers = {kind: trainer(kind) for kind in ("standard", "sat", "sat_online", "sat_masks", "lpa3", "pgd10")}
    memory = {k: v.clone() for k, v in trainers["lpa3"].lpa3_memory.items()}
    selected = (memory["instability"][info["index"]] >= trainers["lpa3"]._threshold).sum().item()

    def step(kind: str, t: AdversarialTrainer) -> None:
        if kind == "lpa3":  # every timed step sees the same selection (the memory moves with each step)
            for key, value in memory.items():
                t.lpa3_memory[key].copy_(value)
        t.train_step(images, labels, info, epoch=5)

    samples: dict[str, list[float]] = {kind: [] for kind in trainers}
    for _ in range(repeat):  # interleaved rounds, minimum per kind: robust on a shared (contended) machine
        for kind, t in trainers.items():
            t.model.train()
            samples[kind].append(best_time(lambda kind=kind, t=t: step(kind, t), repeat=1, warmup=0))
    times = {kind: min(values) for kind, values in samples.items()}
    base = times["standard"]
    print(f"standard step: {1000 * base:.1f} ms (batch {batch_size}, SmallCNN width 16, 32x32, "
          f"{torch.get_num_threads()} threads)")
    labels_ = {"sat": "SAT step (gradient saliency, cached) target <= 1.5x",
               "sat_online": "SAT step (gradient saliency, on the fly)", "sat_masks": "SAT step (weak saliency, masks)",
               "lpa3": f"LP-A3 step ({selected}/{batch_size} selected) target <= 2.5x",
               "pgd10": "PGD-10-AT step (reference)"}
    for kind, text in labels_.items():
        print(f"{text:52s}: {times[kind] / base:5.2f}x  ({1000 * times[kind]:.1f} ms)")


if __name__ == "__main__":
    main()
