"""Demo time (issue #20): ``captum-wsam demo --quick`` and ``captum-wsam demo`` end to end, as a user runs them.

Each round runs, in fresh processes, one reference training epoch and then the demo on an empty model cache
(everything trained); at the end, once per mode, the demo runs again on the first round's cache (models loaded).
Printed per mode: wall seconds and CPU seconds (median and range over the rounds), the demo's wall and CPU time as
multiples of the reference epoch's, measured just before it (the ratios carry over between machines and loads; on a
shared machine the CPU ratio is the steadier one), and the clean test accuracy of every model the demo explains.

Reference epoch: one epoch of ``train_classifier`` on ``SmallCNN()`` over 2000 ShapesTextures images of 64×64
(batch 64), the budget unit of the demo before #20. Targets (#20): quick < 60 s and full < 300 s wall on two CPU cores,
every explained model >= 90 % clean test accuracy in full mode.

At the end, one machine-readable ``FIGURE {json}`` line per figure (``benchmarks/_common.py``, collected by
``benchmarks/figures.py``): per mode the wall and CPU seconds and both as multiples of the reference epoch, and in full
mode the lowest clean test accuracy of the explained models (per run, then median and range over the runs).

    python benchmarks/bench_demo.py                 # 3 rounds of both modes
    python benchmarks/bench_demo.py --modes quick --runs 5
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, figure_line

REFERENCE = """
import time, torch
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN
from captum_wsam.train import train_classifier
data = ShapesTextures(n=2000, size=64, seed=0)
torch.manual_seed(0)
start, cpu = time.perf_counter(), time.process_time()
train_classifier(SmallCNN(), data, epochs=1, batch_size=64, progress=False)
print(time.perf_counter() - start, time.process_time() - cpu)
"""
TARGETS = {"quick": 60.0, "full": 300.0}
MODELS = ("baseline", "style", "sat")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def reference_epoch() -> tuple[float, float]:
    """Wall and CPU seconds of one reference epoch (in a fresh process, data generation excluded)."""
    result = subprocess.run([sys.executable, "-c", REFERENCE], capture_output=True, text=True, check=True)
    wall, cpu = map(float, result.stdout.split())
    return wall, cpu


def run_demo(mode: str, out: Path, cache: Path | None) -> dict[str, float]:
    """One ``captum-wsam demo`` run in a fresh process: wall and CPU seconds, and its printed numbers."""
    argv = [sys.executable, "-m", "captum_wsam", "demo", "--out", str(out), "--no-progress"]
    argv += ["--quick"] if mode == "quick" else []
    env = dict(os.environ)
    if cache is None:
        argv.append("--no-cache")
    else:
        env["XDG_CACHE_HOME"] = str(cache)
    cpu, start = _children_cpu(), time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
    wall, cpu = time.perf_counter() - start, _children_cpu() - cpu
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    numbers = {k: float(v) for k, v in re.findall(r"^  (\S+): (\S+)$", result.stdout, flags=re.M)}
    return {"wall": wall, "cpu": cpu, "cached": float(result.stdout.count("loaded from the cache")), **numbers}


def _summary(values: list[float], digits: int = 1) -> str:
    if len(values) == 1:
        return f"{values[0]:.{digits}f} (1 run)"
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_runs_argument(parser)
    parser.add_argument("--modes", default="quick,full", help="comma-separated: quick, full (default both)")
    parser.add_argument("--keep", type=Path, default=None, metavar="DIR",
                        help="copy each mode's first report folder to DIR/<mode> (default: keep nothing)")
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    if not set(modes) <= set(TARGETS) or args.runs < 1:
        parser.error(f"--modes must name quick and/or full and --runs be >= 1, got {args.modes!r}, {args.runs}")
    print(f"{time.strftime('%Y-%m-%d %H:%M %Z')}, {platform.processor() or platform.machine()}, {os.cpu_count()} "
          f"CPUs, load average {os.getloadavg()[0]:.1f}, python {platform.python_version()}", flush=True)
    results: dict[str, list[dict[str, float]]] = {m: [] for m in modes}
    warm: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for round_ in range(args.runs):
            for mode in modes:
                ref, ref_cpu = reference_epoch()
                # a fresh, empty cache: everything is trained (and the first round's cache serves the warm run)
                run = run_demo(mode, Path(tmp) / f"{mode}{round_}", Path(tmp) / f"cache-{mode}-{round_}")
                run.update(reference=ref, ratio=run["wall"] / ref, reference_cpu=ref_cpu,
                           ratio_cpu=run["cpu"] / ref_cpu)
                results[mode].append(run)
                if args.keep is not None and round_ == 0:
                    shutil.copytree(Path(tmp) / f"{mode}{round_}", args.keep / mode, dirs_exist_ok=True)
                print(f"round {round_ + 1}/{args.runs} {mode}: {run['wall']:.1f} s wall, {run['cpu']:.1f} s CPU; "
                      f"reference epoch {ref:.1f} s wall, {ref_cpu:.1f} s CPU -> {run['ratio']:.2f} reference epochs "
                      f"(wall), {run['ratio_cpu']:.2f} (CPU); accuracy "
                      + ", ".join(f"{m} {run[f'{m}_accuracy']:.3f}" for m in MODELS), flush=True)
        for mode in modes:  # a second run on the first round's cache: the models are loaded, not trained
            ref, ref_cpu = reference_epoch()
            warm[mode] = run_demo(mode, Path(tmp) / f"{mode}-warm", Path(tmp) / f"cache-{mode}-0")
            warm[mode].update(reference=ref, ratio=warm[mode]["wall"] / ref, ratio_cpu=warm[mode]["cpu"] / ref_cpu)
    print("\n| mode | wall s (median [range]) | CPU s | reference epochs (wall) | reference epochs (CPU) | warm cache: "
          "wall s, CPU s (ref. epochs CPU) | target (wall, 2 cores) | clean accuracy (min over runs) |")
    print("|---|---|---|---|---|---|---|---|")
    for mode in modes:
        runs = results[mode]
        accuracies = ", ".join(f"{m} {min(r[f'{m}_accuracy'] for r in runs):.3f}" for m in MODELS)
        print(f"| {mode} | {_summary([r['wall'] for r in runs])} | {_summary([r['cpu'] for r in runs])} | "
              f"{_summary([r['ratio'] for r in runs], 2)} | {_summary([r['ratio_cpu'] for r in runs], 2)} | "
              f"{warm[mode]['wall']:.1f}, {warm[mode]['cpu']:.1f} ({warm[mode]['ratio_cpu']:.2f}; "
              f"{warm[mode]['cached']:.0f}/3 models from the cache) | "
              f"< {TARGETS[mode]:.0f} s | {accuracies} |")
    print(f"\nreference epoch: {_summary([r['reference'] for m in modes for r in results[m]])} s wall, "
          f"{_summary([r['reference_cpu'] for m in modes for r in results[m]])} s CPU")
    if "full" in results:
        low = [m for m in MODELS if min(r[f"{m}_accuracy"] for r in results["full"]) < 0.9]
        print("full mode: every explained model >= 90 % clean test accuracy" if not low else
              f"full mode: below 90 % clean test accuracy: {', '.join(low)}")
    print()
    for line in figure_lines(results):
        print(line)


def figure_lines(results: dict[str, list[dict[str, float]]]) -> list[str]:
    """The ``FIGURE`` lines of the runs: per mode wall and CPU seconds, each also as multiples of the reference epoch
    measured just before the run; in full mode the lowest clean accuracy of the explained models (%)."""
    lines = []
    for mode, runs in results.items():
        command = "captum-wsam demo" + (" --quick" if mode == "quick" else "") + " --no-progress, empty model cache"
        for key, clock in (("wall", "wall"), ("cpu", "CPU")):
            lines.append(figure_line(f"demo_{mode}_{key}_s", f"{command}: {clock} seconds", "s",
                                     [r[key] for r in runs]))
            lines.append(figure_line(f"demo_{mode}_{key}_ref_epochs", f"{command}: {clock} time / one reference "
                                     "epoch's (SmallCNN, 2000 ShapesTextures images at 64x64)", "x reference epoch",
                                     [r["ratio" if key == "wall" else "ratio_cpu"] for r in runs]))
        if mode == "full":
            lines.append(figure_line("demo_full_min_accuracy", "captum-wsam demo: lowest clean test accuracy of the "
                                     "explained models (baseline, StyleAugment, SAT)", "%",
                                     [100 * min(r[f"{m}_accuracy"] for m in MODELS) for r in runs]))
    return lines


if __name__ == "__main__":
    main()
