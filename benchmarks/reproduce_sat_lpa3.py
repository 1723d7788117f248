"""Reproduce the orderings of the SAT paper (Mangla et al. 2020) and LP-A3 (Yang et al. 2022) on ShapesTextures.

1. PGD robust accuracy (5-step PGD, alpha = eps / 2, eps = 1, 2, 4, 8 / 255) of SmallCNNs trained with: standard
   training (Original), SAT (gradient saliency of the model, cached between epochs by default; on the fly with
   ``--with-online-saliency``), SAT with weak saliency from the ShapesTextures masks,
   PGD-AT, PGD-SAT, TRADES and TRADES-SAT. The paper's orderings: Original < SAT, PGD-AT <= PGD-SAT,
   TRADES <= TRADES-SAT.
2. LP-A3 vs standard training under 80 % symmetric label noise (``ShapesTextures(label_noise=0.8)``; another rate
   with ``--label-noise``, this part alone with ``--only-lpa3``), accuracy on clean test labels. The paper's
   ordering: standard < LP-A3.

Small sizes (32x32, a few epochs, one seed) so that it runs in minutes on 2 CPU cores; differences of 1-2 points are
within seed noise. Run: ``python benchmarks/reproduce_sat_lpa3.py`` (``--epochs``, ``--n-train`` to change sizes).
"""

from __future__ import annotations

import argparse
import time

import torch
import torchattacks

from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import format_table, robust_accuracy
from captum_wsam.models import SmallCNN
from captum_wsam.train import AdversarialTrainer, LPA3Trainer, SATTrainer


def make_model(seed: int, width: int, depth: int) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(width=width, depth=depth)


def optimizer_and_scheduler(model: SmallCNN, lr: float, steps: int) -> tuple:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n-train", type=int, default=2000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--noise-epochs", type=int, default=12)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--train-eps", type=float, default=4 / 255)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--train-steps", type=int, default=5, help="PGD/TRADES steps while training")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--with-masked-pgd-sat", action="store_true", help="also PGD-SAT with mask saliency")
    parser.add_argument("--with-online-saliency", action="store_true",
                        help="also SAT and PGD-SAT with on-the-fly saliency (saliency_cache=None) next to the default "
                             "saliency cache")
    parser.add_argument("--label-noise", type=float, default=0.8, help="symmetric label noise of the LP-A3 part")
    parser.add_argument("--only-lpa3", action="store_true", help="run only the LP-A3 label-noise part")
    parser.add_argument("--lpa3-target", choices=("pred", "label"), default="pred",
                        help="labels LP-A3 preserves and trains on (LPA3Trainer's target)")
    args = parser.parse_args()
    began = time.perf_counter()
    test = ShapesTextures(n=args.n_test, size=32, seed=1, progress=False)
    if not args.only_lpa3:
        train = ShapesTextures(n=args.n_train, size=32, seed=0, progress=False)
        steps = args.epochs * -(-args.n_train // args.batch_size)
        eps_values = (1, 2, 4, 8)

        def trainer_for(name: str, model: SmallCNN) -> AdversarialTrainer:
            optimizer, scheduler = optimizer_and_scheduler(model, args.lr, steps)
            common = {"scheduler": scheduler, "scheduler_step": "batch", "progress": False, "seed": args.seed}
            g = torch.Generator().manual_seed(args.seed)
            eps = args.train_eps
            if name == "Original":
                return AdversarialTrainer(model, optimizer, **common)
            if name == "SAT":
                return SATTrainer(model, optimizer, "sat", eps=eps, generator=g, **common)
            if name == "SAT (on-the-fly saliency)":
                return SATTrainer(model, optimizer, "sat", eps=eps, saliency_cache=None, generator=g, **common)
            if name == "SAT (weak saliency, masks)":
                return SATTrainer(model, optimizer, "sat", eps=eps, weak_saliency="mask", generator=g, **common)
            if name == "PGD-AT":
                attack = torchattacks.PGD(model, eps=eps, alpha=eps / 2, steps=args.train_steps)
                return AdversarialTrainer(model, optimizer, attack, **common)
            if name == "PGD-SAT":
                return SATTrainer(model, optimizer, "pgd", eps=eps, steps=args.train_steps, generator=g, **common)
            if name == "PGD-SAT (on-the-fly saliency)":
                return SATTrainer(model, optimizer, "pgd", eps=eps, steps=args.train_steps, saliency_cache=None,
                                  generator=g, **common)
            if name == "PGD-SAT (weak saliency, masks)":
                return SATTrainer(model, optimizer, "pgd", eps=eps, steps=args.train_steps, weak_saliency="mask",
                                  generator=g, **common)
            if name == "TRADES":
                attack = torchattacks.TPGD(model, eps=eps, alpha=eps / 2, steps=args.train_steps)
                return AdversarialTrainer(model, optimizer, attack, "trades", **common)
            if name == "TRADES-SAT":
                return SATTrainer(model, optimizer, "trades", eps=eps, steps=args.train_steps, generator=g, **common)
            raise ValueError(name)

        methods = ["Original", "SAT", "SAT (weak saliency, masks)", "PGD-AT", "PGD-SAT", "TRADES", "TRADES-SAT"]
        if args.with_masked_pgd_sat:
            methods.insert(5, "PGD-SAT (weak saliency, masks)")
        if args.with_online_saliency:
            methods.insert(methods.index("PGD-SAT") + 1, "PGD-SAT (on-the-fly saliency)")
            methods.insert(2, "SAT (on-the-fly saliency)")
        rows, times = {}, {}
        for name in methods:
            model = make_model(args.seed, args.width, args.depth)
            start = time.perf_counter()
            trainer_for(name, model).fit(train, epochs=args.epochs, batch_size=args.batch_size)
            times[name] = time.perf_counter() - start
            torch.manual_seed(1234)
            attacks = {f"PGD {e}/255": torchattacks.PGD(model, eps=e / 255, alpha=e / 510, steps=5) for e in eps_values}
            rows[name] = robust_accuracy(model, test, attacks)
            print(f"[{time.perf_counter() - began:6.0f} s] {name}: trained in {times[name]:.0f} s, "
                  + ", ".join(f"{k} {100 * v:.1f}" for k, v in rows[name].items()), flush=True)
        print()
        print(f"PGD-5 robust accuracy (%) on {args.n_test} ShapesTextures test images, SmallCNN(width={args.width}, "
              f"depth={args.depth}), {args.epochs} epochs on {args.n_train} images, "
              f"training eps = {255 * args.train_eps:.0f}/255, "
              f"{args.train_steps}-step PGD/TRADES while training:")
        print()
        print(format_table(rows))
        print()
        print("| Method | training time (s) | vs Original |\n|---|---|---|")
        for name in methods:
            print(f"| {name} | {times[name]:.0f} | {times[name] / times['Original']:.1f}x |")

        def check(label: str, low: str, high: str, strict: bool) -> None:
            verdicts = []
            for e in eps_values:
                key = f"PGD {e}/255"
                a, b = rows[low][key], rows[high][key]
                verdicts.append(f"{e}/255: {'holds' if (b > a if strict else b >= a) else 'FAILS'} "
                                f"({100 * a:.1f} vs {100 * b:.1f})")
            print(f"- {label}: " + "; ".join(verdicts))

        print("\nOrderings of the SAT paper:")
        check("Original < SAT", "Original", "SAT", True)
        check("Original < SAT (masks)", "Original", "SAT (weak saliency, masks)", True)
        check("PGD-AT <= PGD-SAT", "PGD-AT", "PGD-SAT", False)
        if args.with_masked_pgd_sat:
            check("PGD-AT <= PGD-SAT (masks)", "PGD-AT", "PGD-SAT (weak saliency, masks)", False)
        check("TRADES <= TRADES-SAT", "TRADES", "TRADES-SAT", False)

    # ---- LP-A3 under symmetric label noise (80 % by default)
    noisy = ShapesTextures(n=args.n_train, size=32, seed=0, label_noise=args.label_noise, progress=False)
    noise_steps = args.noise_epochs * -(-args.n_train // args.batch_size)
    results = {}
    for name in ("Standard", "LP-A3"):
        model = make_model(args.seed, args.width, args.depth)
        optimizer, scheduler = optimizer_and_scheduler(model, args.lr, noise_steps)
        common = {"scheduler": scheduler, "scheduler_step": "batch", "progress": False, "seed": args.seed}
        if name == "Standard":
            trainer = AdversarialTrainer(model, optimizer, **common)
        else:
            trainer = LPA3Trainer(model, optimizer, bound=0.1, lam=0.1, ratio=0.3, warmup=3, target=args.lpa3_target,
                                  generator=torch.Generator().manual_seed(args.seed), **common)
        start = time.perf_counter()
        trainer.fit(noisy, epochs=args.noise_epochs, batch_size=args.batch_size)
        results[name] = (robust_accuracy(model, test, {})["clean"], time.perf_counter() - start)
        print(f"[{time.perf_counter() - began:6.0f} s] {name} ({100 * args.label_noise:.0f} % noise): trained",
              flush=True)
    print(f"\nAccuracy (%) on clean test labels after training on {args.n_train} images with "
          f"{100 * args.label_noise:.0f} % symmetric label noise ({args.noise_epochs} epochs, seed {args.seed}):\n")
    print("| Method | clean-label test accuracy | training time (s) |\n|---|---|---|")
    for name, (acc, seconds) in results.items():
        print(f"| {name} | {100 * acc:.1f} | {seconds:.0f} |")
    holds = results["LP-A3"][0] > results["Standard"][0]
    print(f"\n- Standard < LP-A3 under {100 * args.label_noise:.0f} % noise: {'holds' if holds else 'FAILS'}")
    print(f"\nTotal time: {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
