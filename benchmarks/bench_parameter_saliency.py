"""ParameterSaliency cost (Levin et al. 2021): per-sample filter saliency of a batch of 64 images at 64×64 on the CPU.

Two references, measured in the same run for each model (SmallCNN and resnet18):

- one batched forward + backward of the same model (eval mode, cross-entropy, all parameter gradients): per-sample
  gradients cost at least the weight-gradient work of that backward; target ``<= 1.5 x``;
- the per-sample loop of the reference code (one forward + backward per sample, mean of |grad| per filter): the
  batched pass must not be slower.

The ``unfold`` and ``grouped`` rows force one contraction for every layer (``auto`` picks per layer by spatial size).
On a CUDA machine the same comparisons run on the GPU too.

Each figure is the median and range over ``--runs`` rounds (default 3); in each round both kinds are timed back to
back (median of ``--repeat`` calls) and the ratio is taken within the round.

Run: ``python benchmarks/bench_parameter_saliency.py [--runs 3] [--repeat 3] [--models small_cnn resnet18]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from unittest import mock

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import add_runs_argument, best_time, figure_line, positive_int, spread

from captum_wsam.attr import ParameterSaliency
from captum_wsam.attr import parameter_saliency_pass as module
from captum_wsam.attr.parameter_saliency_functional import conv2d_filter_saliency
from captum_wsam.models import create_model


def batched_forward_backward(model: nn.Module, x: Tensor, y: Tensor) -> None:
    model.zero_grad(set_to_none=True)
    F.cross_entropy(model(x), y).backward()
    model.zero_grad(set_to_none=True)


def per_sample_loop(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
    weights = [m.weight for m in model.modules() if isinstance(m, nn.Conv2d)]
    rows = []
    for b in range(len(x)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[b : b + 1]), y[b : b + 1]), weights)
        rows.append(torch.cat([g.abs().mean((1, 2, 3)) for g in grads]))
    return torch.stack(rows)


def with_method(method: str, run: Callable[[], object]) -> Callable[[], object]:
    def call() -> object:
        with mock.patch.object(module, "conv2d_filter_saliency", partial(conv2d_filter_saliency, method=method)):
            return run()
    return call


def bench(name: str, device: str, runs: int, repeat: int, batch: int = 64, size: int = 64) -> list[str]:
    torch.manual_seed(0)
    model = create_model(name, num_classes=6).to(device).eval()
    x = torch.rand(batch, 3, size, size, device=device)
    y = torch.randint(0, 6, (batch,), device=device)
    saliency = ParameterSaliency(model, mode="raw")
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def timed(fn: Callable[[], object], n: int = repeat) -> float:
        return best_time(lambda: (fn(), sync()), repeat=n)

    ours = saliency.attribute_detailed(x, y).raw
    reference = per_sample_loop(model, x, y)
    error = ((ours - reference).abs().max() / reference.abs().max()).item()
    # This ratio moves with what ran just before (allocator and cache state), so the order of the two kinds alternates
    # from round to round; each is timed back to back (median of `repeat` calls after a warm-up call).
    # Timed: Captum's entry `attribute` ((B, F) scores; the same single pass as `attribute_detailed`).
    kinds = {"base": lambda: batched_forward_backward(model, x, y), "fast": lambda: saliency.attribute(x, y)}
    ratios, speedups, base_ms, fast_ms, loop_ms = [], [], [], [], []
    for round_ in range(runs):
        order = list(kinds) if round_ % 2 == 0 else list(reversed(kinds))
        times = {kind: timed(kinds[kind]) for kind in order}
        loop = timed(lambda: per_sample_loop(model, x, y), n=1)
        ratios.append(times["fast"] / times["base"])
        speedups.append(loop / times["fast"])
        base_ms.append(times["base"] * 1e3)
        fast_ms.append(times["fast"] * 1e3)
        loop_ms.append(loop * 1e3)
    ratio = statistics.median(ratios)
    print(f"{name} on {device}, batch {batch} at {size}x{size} ({saliency.num_filters} filters in "
          f"{len(saliency.layers)} conv layers; max |ours - loop| / max |loop| = {error:.1e}); median [range] over "
          f"{runs} runs:")
    print(f"  batched forward+backward {spread(base_ms, 1)} ms")
    print(f"  per-sample loop          {spread(loop_ms, 1)} ms")
    print(f"  ParameterSaliency (auto) {spread(fast_ms, 1)} ms = {spread(ratios)} x forward+backward "
          f"(target <= 1.5: {'OK' if ratio <= 1.5 else 'MISSED'}), {spread(speedups, 1)} x faster than the loop "
          f"({'OK' if min(speedups) >= 1 else 'SLOWER'})")
    base = statistics.median(base_ms) / 1e3
    for method in ("unfold", "grouped"):
        forced = timed(with_method(method, lambda: saliency.attribute(x, y)), n=1)
        print(f"    all layers {method:8s}   {forced * 1e3:8.1f} ms = {forced / base:.2f} x forward+backward (1 call)")
    setting = f"ParameterSaliency, {name} on {device}, batch {batch} at {size}x{size}"
    suffix = "" if device == "cpu" else f"_{device}"
    return [figure_line(f"parameter_saliency_{name}{suffix}", setting, f"x one {name} forward+backward", ratios),
            figure_line(f"parameter_saliency_{name}{suffix}_vs_loop", f"{setting}, against the per-sample loop",
                        "x faster than the per-sample loop", speedups)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_runs_argument(parser)
    parser.add_argument("--repeat", type=positive_int, default=3, help="calls per round and kind (median; default 3)")
    parser.add_argument("--models", nargs="+", choices=["small_cnn", "resnet18"], default=["small_cnn", "resnet18"])
    parser.add_argument("--batch", type=positive_int, default=64)
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    figures = [line for name in args.models for line in bench(name, "cpu", args.runs, args.repeat, args.batch)]
    if torch.cuda.is_available():
        for name in args.models:
            figures += bench(name, "cuda", args.runs, 20, args.batch)
    print("\n".join(figures))


if __name__ == "__main__":
    main()
