"""Small helpers shared by the benchmark scripts (scripts, not tests: they print ratios).

Every script that feeds a README figure takes ``--runs N`` (default 3): it measures ``N`` independent rounds and
reports each figure as the median and range over them, in its human-readable output and, at the end, as one
machine-readable line per figure (:func:`figure_line`), which ``benchmarks/figures.py`` (``make figures``) collects
into ``docs/figures.md``::

    FIGURE {"name": "...", "label": "...", "unit": "...", "median": 1.0, "min": 0.9, "max": 1.1, "runs": 3,
            "command": "python benchmarks/bench_x.py --runs 3"}
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

FIGURE_PREFIX = "FIGURE "
NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def best_time(fn: Callable[[], object], repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time in seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def seconds(fn: Callable[[], object]) -> float:
    """Wall time in seconds of one call of ``fn()``."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def positive_int(text: str) -> int:
    """``argparse`` type: an integer >= 1 (``--runs``, ``--repeat``)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_runs_argument(parser: argparse.ArgumentParser, default: int = 3) -> None:
    """Add the common ``--runs N`` option: independent rounds, each figure reported as median and range."""
    parser.add_argument("--runs", type=positive_int, default=default, metavar="N",
                        help=f"independent rounds; every figure is the median and range over them (default {default})")


def spread(values: Sequence[float], digits: int = 2) -> str:
    """``median [min, max]`` of ``values`` for the human-readable output."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"


def command_line(argv: Sequence[str] | None = None) -> str:
    """The command that reproduces this run from the repository root, e.g. ``python benchmarks/bench_x.py --runs 3``."""
    argv = list(sys.argv if argv is None else argv)
    return shlex.join(["python", f"benchmarks/{Path(argv[0]).name}", *argv[1:]])


def figure_line(name: str, label: str, unit: str, values: Sequence[float], command: str | None = None) -> str:
    """One machine-readable figure: ``FIGURE`` and the JSON of its median, range and number of runs.

    Args:
        name: short id, lower case (``[a-z0-9][a-z0-9_.-]*``), unique within the script's output.
        label: what was measured, for people (``"StyleAugment TextureTransfer, batch 32 at 224x224"``).
        unit: the unit of the values (``"x one resnet18 forward"``).
        values: one value per independent run (at least one, all finite).
        command: the command line that reproduces it (default: this process's, see :func:`command_line`).

    Returns:
        The line, ``FIGURE {...}`` (``json.dumps`` of name, label, unit, median, min, max, runs, command).
    """
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"figure_line: name must match {NAME_PATTERN.pattern}, got {name!r}")
    for argument, text in (("label", label), ("unit", unit)):
        if not isinstance(text, str) or not text.strip():
            raise ValueError(f"figure_line: {argument} must be a non-empty string, got {text!r}")
    numbers = [float(v) for v in values]
    if not numbers or not all(math.isfinite(v) for v in numbers):
        raise ValueError(f"figure_line: values must be one or more finite numbers, got {list(values)!r} for {name!r}")
    record = {"name": name, "label": label, "unit": unit, "median": statistics.median(numbers),
              "min": min(numbers), "max": max(numbers), "runs": len(numbers),
              "command": command if command is not None else command_line()}
    return FIGURE_PREFIX + json.dumps(record, ensure_ascii=False)
