"""Reproduce the orderings of the SAT paper (Mangla et al. 2020) and LP-A3 (Yang et al. 2022) on ShapesTextures.

1. SAT family (P. Mangla, V. Singh, V. N. Balasubramanian, "On Saliency Maps and Adversarial Robustness", ECML-PKDD
   2020, arXiv:2006.07828). SmallCNNs trained with: standard training (Original), SAT (the model's gradient saliency,
   cached between epochs), SAT with weak saliency from the ShapesTextures masks, PGD-AT, PGD-SAT, TRADES and
   TRADES-SAT (``--with-official`` adds PGD-SAT and TRADES-SAT with ``official=True``). Columns:
   clean accuracy, 5-step PGD (alpha = eps / 2) at eps = 1, 2, 4, 8 / 255, and AutoAttack (Croce & Hein 2020,
   arXiv:2003.01690: per-sample worst case over APGD-CE, APGD-T, FAB-T, Square) at the training eps 4/255 on the
   first 100 test images, with the gradient-masking check of :func:`captum_wsam.metrics.robust_accuracy` there
   (``--aa-eps 4 8`` adds columns). The paper's orderings:
   Original < SAT, Original < SAT (masks), PGD-AT <= PGD-SAT, TRADES <= TRADES-SAT.
2. LP-A3 (K. Yang, Y. Sun, J. Su, F. He, X. Tian, F. Huang, T. Zhou, D. Tao, "Adversarial Auto-Augment with Label
   Preservation: A Representation Learning Principle Guided Approach", NeurIPS 2022, arXiv:2211.00824) against
   standard training under symmetric label noise (``ShapesTextures(label_noise=r)``), :class:`LPA3Trainer` with its
   defaults (the official ones), accuracy on clean test labels. The paper's ordering: standard < LP-A3.

Every configuration runs for each seed (``--runs N``: seeds 0..N-1, default 3; model init, data order and attack
draws change with it); tables give the median [min, max] over seeds, training time as a multiple of the baseline's
(Original, Standard) in the same seed, and each ordering says in how many seeds it held; the script ends with one
``FIGURE`` line per table cell (``make figures``). The AutoAttack here
is the standard composition at a reduced budget (``--aa-steps`` iterations, ``--aa-queries`` Square queries; the
standard is 100 and 5,000) so that the whole script stays within 30 min on 2 CPU cores (``--quick``: one seed, small
sizes, a few minutes; a smoke test, not a result).

Run: ``python benchmarks/reproduce_sat_lpa3.py [--quick] [--json results.json]``; in parallel, one process per seed
and part (``--seeds 0 --only sat --json s0.json`` ..., ``--only lpa3 --json l.json``), then
``--combine s0.json s1.json s2.json l.json`` prints the same tables.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torchattacks

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line

from captum_wsam.attacks import PGDSAT, TRADESSAT
from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import robust_accuracy
from captum_wsam.models import SmallCNN
from captum_wsam.train import AdversarialTrainer, LPA3Trainer, SATTrainer

METHODS = ("Original", "SAT", "SAT (masks)", "PGD-AT", "PGD-SAT", "PGD-SAT (official)", "TRADES", "TRADES-SAT",
           "TRADES-SAT (official)")
# (lower, higher, strict): the paper claims higher > lower (strict) or higher >= lower
ORDERINGS = (("Original", "SAT", True), ("Original", "SAT (masks)", True), ("PGD-AT", "PGD-SAT", False),
             ("PGD-AT", "PGD-SAT (official)", False), ("TRADES", "TRADES-SAT", False),
             ("TRADES", "TRADES-SAT (official)", False))
PGD_EPS = (1, 2, 4, 8)


def make_model(seed: int, width: int, depth: int) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(width=width, depth=depth)


def optimizer_and_scheduler(model: SmallCNN, lr: float, steps: int) -> tuple[Any, Any]:
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    return optimizer, torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=steps)


def sat_trainer(name: str, model: SmallCNN, optimizer: Any, seed: int, eps: float, steps: int,
                common: dict[str, Any]) -> AdversarialTrainer:
    g = torch.Generator().manual_seed(seed)
    if name == "Original":
        return AdversarialTrainer(model, optimizer, **common)
    if name == "SAT":
        return SATTrainer(model, optimizer, "sat", eps=eps, generator=g, **common)
    if name == "SAT (masks)":
        return SATTrainer(model, optimizer, "sat", eps=eps, weak_saliency="mask", generator=g, **common)
    if name == "PGD-AT":
        return AdversarialTrainer(model, optimizer, torchattacks.PGD(model, eps=eps, alpha=eps / 2, steps=steps),
                                  **common)
    if name == "PGD-SAT":
        return SATTrainer(model, optimizer, "pgd", eps=eps, steps=steps, generator=g, **common)
    if name == "PGD-SAT (official)":  # the same attack as SATTrainer builds, with the official branch magnitudes
        attack = PGDSAT(model, eps=eps, alpha=eps / 2, steps=steps, generator=g, official=True)
        return AdversarialTrainer(model, optimizer, attack, saliency_cache="log_prob", **common)
    if name == "TRADES":
        attack = torchattacks.TPGD(model, eps=eps, alpha=eps / 2, steps=steps)
        return AdversarialTrainer(model, optimizer, attack, "trades", **common)
    if name == "TRADES-SAT":
        return SATTrainer(model, optimizer, "trades", eps=eps, steps=steps, generator=g, **common)
    if name == "TRADES-SAT (official)":
        attack = TRADESSAT(model, eps=eps, alpha=eps / 2, steps=steps, generator=g, official=True)
        return AdversarialTrainer(model, optimizer, attack, "trades", saliency_cache="logit", **common)
    raise ValueError(name)


def spread(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
    """``median [min, max]`` over seeds (accuracies as percentages)."""
    v = [scale * x for x in values]
    return f"{statistics.median(v):.{digits}f} [{min(v):.{digits}f}, {max(v):.{digits}f}]"


def time_ratios(times: dict[str, list[float]], reference: str) -> dict[str, list[float]]:
    """Each method's training time over the reference method's, seed by seed (ratios within one run)."""
    return {name: [t / r for t, r in zip(values, times[reference])] for name, values in times.items()}


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def table(rows: dict[str, dict[str, list[float]]], columns: Sequence[str], extra: dict[str, str] | None = None,
          extra_title: str = "training time") -> str:
    head = "| method | " + " | ".join(columns) + (f" | {extra_title} |" if extra else " |")
    lines = [head, "|" + "---|" * (len(columns) + 1 + bool(extra))]
    for name, row in rows.items():
        cells = [spread(row[c]) for c in columns] + ([extra[name]] if extra else [])
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdict(low: list[float], high: list[float], strict: bool) -> tuple[int, str]:
    held = sum((h > lo) if strict else (h >= lo) for lo, h in zip(low, high))
    word = "holds" if held == len(low) else "fails" if held == 0 else "mixed"
    return held, word


def run_sat_family(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    train = ShapesTextures(n=args.n_train, size=32, seed=0, progress=False)
    test = ShapesTextures(n=args.n_test, size=32, seed=1, progress=False)
    aa_test = torch.utils.data.Subset(test, range(min(args.n_aa, args.n_test)))
    batches = -(-args.n_train // args.batch_size)
    rows: dict[str, dict[str, list[float]]] = {name: {} for name in args.methods}
    times: dict[str, list[float]] = {name: [] for name in args.methods}
    masking: dict[str, list[list[str]]] = {name: [] for name in args.methods}
    for seed in args.seeds:
        for name in args.methods:
            model = make_model(seed, args.width, args.depth)
            optimizer, scheduler = optimizer_and_scheduler(model, args.lr, args.epochs * batches)
            common = {"scheduler": scheduler, "scheduler_step": "batch", "progress": False, "seed": seed}
            trainer = sat_trainer(name, model, optimizer, seed, args.train_eps, args.train_steps, common)
            start = time.perf_counter()
            trainer.fit(train, epochs=args.epochs, batch_size=args.batch_size)
            times[name].append(time.perf_counter() - start)
            torch.manual_seed(1234 + seed)
            pgd = {f"PGD {e}/255": torchattacks.PGD(model, eps=e / 255, alpha=e / 510, steps=5) for e in PGD_EPS}
            result = dict(robust_accuracy(model, test, pgd))
            for e in args.aa_eps:
                aa = robust_accuracy(model, aa_test, "autoattack", eps=e / 255, steps=args.aa_steps,
                                     n_queries=args.aa_queries, seed=seed, masking_check=e == args.aa_eps[0],
                                     eps_multiples=(1, 16), masking_steps=(5, 20))
                result[f"AA {e}/255"] = aa.robust
                if aa.masking is not None:
                    masking[name].append(list(aa.masking.flags))
                    result["AA white-box"] = aa.masking.white_box
            for column, value in result.items():
                rows[name].setdefault(column, []).append(value)
            log(f"seed {seed} {name}: trained in {times[name][-1]:.0f} s; "
                + ", ".join(f"{k} {100 * v:.1f}" for k, v in result.items())
                + (f"; masking flags: {masking[name][-1]}" if masking[name][-1] else ""))
    return {"rows": rows, "times": times, "masking": masking}


def run_lpa3(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    test = ShapesTextures(n=args.n_test, size=32, seed=1, progress=False)
    batches = -(-args.n_train // args.batch_size)
    results: dict[str, dict[str, list[float]]] = {}
    for rate in args.label_noise:
        noisy = ShapesTextures(n=args.n_train, size=32, seed=0, label_noise=rate, progress=False)
        for seed in args.seeds:
            for name in ("Standard", "LP-A3"):
                model = make_model(seed, args.width, args.depth)
                optimizer, scheduler = optimizer_and_scheduler(model, args.lr, args.noise_epochs * batches)
                common = {"scheduler": scheduler, "scheduler_step": "batch", "progress": False, "seed": seed}
                if name == "Standard":
                    trainer = AdversarialTrainer(model, optimizer, **common)
                else:  # the official defaults: bound, lam, steps, ratio, warm-up, confidence mask, BatchNorm
                    trainer = LPA3Trainer(model, optimizer, generator=torch.Generator().manual_seed(seed), **common)
                start = time.perf_counter()
                trainer.fit(noisy, epochs=args.noise_epochs, batch_size=args.batch_size)
                seconds = time.perf_counter() - start
                accuracy = robust_accuracy(model, test, {})["clean"]
                key = f"{100 * rate:.0f} % noise"
                results.setdefault(name, {}).setdefault(key, []).append(accuracy)
                results.setdefault(name, {}).setdefault("time", []).append(seconds)
                log(f"seed {seed} {name} at {key}: clean-label test accuracy {100 * accuracy:.1f} % "
                    f"(trained in {seconds:.0f} s)")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one seed, small sizes: checks the script runs")
    add_runs_argument(parser)
    parser.add_argument("--seeds", type=int, nargs="+", help="explicit seeds (default: 0 .. --runs - 1; --quick: 0)")
    parser.add_argument("--n-train", type=int, default=1000)
    parser.add_argument("--n-test", type=int, default=200)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--noise-epochs", type=int, default=10)
    parser.add_argument("--width", type=int, default=16)
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--train-eps", type=float, default=4 / 255)
    parser.add_argument("--train-steps", type=int, default=5, help="PGD/TRADES steps while training")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--aa-eps", type=int, nargs="+", default=[4], help="AutoAttack radii (/255); the first "
                        "also gets the gradient-masking check")
    parser.add_argument("--n-aa", type=int, default=100, help="AutoAttack on the first N test images")
    parser.add_argument("--aa-steps", type=int, default=10, help="APGD/FAB iterations of AutoAttack (standard 100)")
    parser.add_argument("--aa-queries", type=int, default=200, help="Square queries of AutoAttack (standard 5000)")
    parser.add_argument("--label-noise", type=float, nargs="+", default=[0.6], help="symmetric label-noise rates")
    parser.add_argument("--only", choices=("sat", "lpa3"), help="run one part only")
    parser.add_argument("--methods", nargs="+", choices=METHODS, help="SAT-family rows to run (default: all but the "
                        "official=True rows)")
    parser.add_argument("--with-official", action="store_true", help="add the PGD-SAT/TRADES-SAT official=True rows")
    parser.add_argument("--json", help="also write every per-seed figure to this JSON file")
    parser.add_argument("--combine", nargs="+", metavar="JSON", help="print the tables of earlier --json runs over "
                        "disjoint seeds (e.g. one process per seed) instead of running")
    args = parser.parse_args()
    if args.methods is None:
        args.methods = [m for m in METHODS if args.with_official or "official" not in m]
    if args.seeds is None:
        args.seeds = [0] if args.quick else list(range(args.runs))
    if args.quick:
        args.n_train, args.n_test, args.epochs, args.noise_epochs = 500, 50, 3, 4
        args.aa_steps, args.aa_queries, args.width, args.n_aa = 5, 50, 8, 50
    began, cpu_began = time.perf_counter(), time.process_time()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - began:6.0f} s] {message}", flush=True)

    if args.combine:
        out = combine(args.combine)
    else:
        out = {"args": vars(args)}
        if args.only in (None, "sat"):
            out["sat"] = run_sat_family(args, log)
        if args.only in (None, "lpa3"):
            out["lpa3"] = run_lpa3(args, log)
        out["cpu_s"] = time.process_time() - cpu_began
        out["wall_s"] = time.perf_counter() - began
        if args.json:
            with open(args.json, "w") as handle:
                json.dump(out, handle, indent=1)
    report(out)
    print("\n" + "\n".join(figure_lines(out)))
    print(f"\nTotal time: {out['wall_s']:.0f} s wall, {out['cpu_s']:.0f} s CPU (all threads; summed over processes "
          "when combined)")


def combine(paths: Sequence[str]) -> dict[str, Any]:
    """Merge the ``--json`` files of runs over disjoint seeds (e.g. one process per seed) into one result."""
    parts = []
    for path in paths:
        with open(path) as handle:
            parts.append(json.load(handle))
    out: dict[str, Any] = {"args": dict(parts[0]["args"]), "wall_s": max(p["wall_s"] for p in parts),
                           "cpu_s": sum(p["cpu_s"] for p in parts)}
    out["args"]["seeds"] = sorted({s for p in parts for s in p["args"]["seeds"]})
    for key in ("sat", "lpa3"):
        found = [p[key] for p in parts if key in p]
        if not found:
            continue
        own = [p for p in parts if key in p]  # the arguments of the runs of this part (sizes may differ per part)
        out[f"{key}_args"] = dict(own[0]["args"], seeds=sorted({s for p in own for s in p["args"]["seeds"]}))
        merged: dict[str, Any] = {}
        for part in found:
            for field, table_ in part.items():
                target = merged.setdefault(field, {})
                for name, value in table_.items():
                    if isinstance(value, dict):
                        for column, values in value.items():
                            target.setdefault(name, {}).setdefault(column, []).extend(values)
                    else:
                        target.setdefault(name, []).extend(value)
        out[key] = merged
    return out


def report(out: dict[str, Any]) -> None:
    """Print the tables and the orderings of ``out`` (a run's or :func:`combine`'s result)."""
    if "sat" in out:
        args = argparse.Namespace(**out.get("sat_args", out["args"]))
        seeds = ", ".join(map(str, args.seeds))
        sat = out["sat"]
        rows = sat["rows"]
        methods = [m for m in METHODS if m in rows]
        columns = ["clean", *(f"PGD {e}/255" for e in PGD_EPS), *(f"AA {e}/255" for e in args.aa_eps)]
        ratios = time_ratios({n: sat["times"][n] for n in methods}, "Original") if "Original" in methods else {}
        extra = {n: spread(ratios[n], 1.0, 2) + " ×" for n in methods} if ratios else None
        print(f"\nSAT family: accuracy (%) on {args.n_test} ShapesTextures test images, median [min, max] over seeds "
              f"{seeds}; training time as a multiple of Original's in the same seed; "
              f"SmallCNN(width={args.width}, depth={args.depth}), {args.epochs} epochs on {args.n_train} images, "
              f"training eps = {255 * args.train_eps:.0f}/255 with {args.train_steps}-step PGD/TRADES; PGD: 5 steps, "
              f"alpha = eps/2; AA: AutoAttack (APGD-CE, APGD-T, FAB-T, Square; {args.aa_steps} iterations, "
              f"{args.aa_queries} queries) on the first {min(args.n_aa, args.n_test)} test images:\n")
        print(table({n: rows[n] for n in methods}, columns, extra, "training time × Original"))
        e = args.aa_eps[0]
        print(f"\nGradient-masking check at {e}/255 on the AutoAttack images (AutoAttack's white-box attacks vs all "
              f"four; 20-step PGD at {e} and {16 * e}/255; PGD with 5 vs 20 steps):\n")
        for name in methods:
            flagged = sum(bool(f) for f in sat["masking"][name])
            gap = [w - a for w, a in zip(rows[name]["AA white-box"], rows[name][f"AA {e}/255"])]
            print(f"- {name}: white-box {spread(rows[name]['AA white-box'])}, Square gap {spread(gap)}; "
                  f"flagged in {flagged}/{len(args.seeds)} seeds"
                  + (f" ({'; '.join(sorted({x for f in sat['masking'][name] for x in f}))})" if flagged else ""))
        print("\nOrderings of the SAT paper (seeds in which they held, per column):\n")
        for low, high, strict in ORDERINGS:
            if low not in rows or high not in rows:
                continue
            cells = []
            for column in columns[1:]:
                held, word = verdict(rows[low][column], rows[high][column], strict)
                cells.append(f"{column} {word} ({held}/{len(rows[low][column])})")
            print(f"- {low} {'<' if strict else '<='} {high}: " + "; ".join(cells))
    if "lpa3" in out:
        args = argparse.Namespace(**out.get("lpa3_args", out["args"]))
        seeds = ", ".join(map(str, args.seeds))
        lpa3 = out["lpa3"]
        keys = [f"{100 * r:.0f} % noise" for r in args.label_noise]
        print(f"\nLP-A3 (LPA3Trainer defaults = the official ones) vs standard training: accuracy (%) on clean test "
              f"labels, median [min, max] over seeds {seeds}; {args.noise_epochs} epochs on {args.n_train} images with "
              "symmetric label noise; training time as a multiple of Standard's in the same seed:\n")
        lpa3_ratios = time_ratios({n: lpa3[n]["time"] for n in lpa3}, "Standard")
        extra = {n: spread(lpa3_ratios[n], 1.0, 2) + " ×" for n in lpa3}
        print(table({n: {k: lpa3[n][k] for k in keys} for n in lpa3}, keys, extra, "training time × Standard"))
        print()
        for key in keys:
            held, word = verdict(lpa3["Standard"][key], lpa3["LP-A3"][key], True)
            print(f"- Standard < LP-A3 at {key}: {word} ({held}/{len(lpa3['Standard'][key])} seeds)")


def figure_lines(out: dict[str, Any]) -> list[str]:
    """One ``FIGURE`` line per table cell: accuracies in %, training time as a multiple of the baseline's."""
    lines = []
    if "sat" in out:
        args = argparse.Namespace(**out.get("sat_args", out["args"]))
        rows, times = out["sat"]["rows"], out["sat"]["times"]
        setting = (f"SmallCNN(width={args.width}, depth={args.depth}), {args.epochs} epochs on {args.n_train} "
                   f"ShapesTextures images at 32x32, training eps {255 * args.train_eps:.0f}/255, one seed per run")
        for name in (m for m in METHODS if m in rows):
            for column, values in rows[name].items():
                lines.append(figure_line(f"sat_{slug(name)}_{slug(column)}", f"{name}: accuracy, {column}, {setting}",
                                         f"% of {args.n_test} test images", [100 * v for v in values]))
        if "Original" in times:
            for name, values in time_ratios({m: times[m] for m in METHODS if m in times}, "Original").items():
                lines.append(figure_line(f"sat_{slug(name)}_training_time", f"{name}: training time, {setting}",
                                         "x Original's training time", values))
    if "lpa3" in out:
        args = argparse.Namespace(**out.get("lpa3_args", out["args"]))
        lpa3 = out["lpa3"]
        setting = f"{args.noise_epochs} epochs on {args.n_train} ShapesTextures images, one seed per run"
        for name, row in lpa3.items():
            for key in (f"{100 * r:.0f} % noise" for r in args.label_noise):
                lines.append(figure_line(f"lpa3_{slug(name)}_{slug(key)}", f"{name}: clean test accuracy, {key}, "
                                         f"{setting}", f"% of {args.n_test} test images",
                                         [100 * v for v in row[key]]))
        if "Standard" in lpa3:
            for name, values in time_ratios({n: lpa3[n]["time"] for n in lpa3}, "Standard").items():
                lines.append(figure_line(f"lpa3_{slug(name)}_training_time", f"{name}: training time, {setting}",
                                         "x Standard's training time", values))
    return lines


if __name__ == "__main__":
    main()
