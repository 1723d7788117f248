"""Regenerate the README's figures: run the benchmark scripts, collect their ``FIGURE`` lines, write the page.

Every benchmark script that feeds a README figure takes ``--runs N`` and ends with one machine-readable line per
figure (``FIGURE {json}``: name, label, unit, median, min, max, runs, command; see ``benchmarks/_common.py``). This
driver runs the selected scripts one after the other with the same ``--runs``, checks and collects those lines, and
writes ``docs/figures.md`` (date, machine, load, then a table per script: figure | median | range | runs | unit |
command) and ``benchmarks/figures.json`` (the same data). A script that fails, prints no figure or prints a malformed
one stops the driver with a message naming it (``--keep-going``: go on, record the failure, exit 1 at the end).

Run from the repository root (``make figures`` runs it on an idle machine)::

    python benchmarks/figures.py                      # every script, --runs 3
    python benchmarks/figures.py --skip demo          # all but the slow demo benchmark
    python benchmarks/figures.py --only lrp wsam --runs 5
    python benchmarks/figures.py --only lrp --update  # rerun one script, keep the others' figures (own dates)
    python benchmarks/figures.py --quick --runs 1     # smoke run with small settings (marked as such on the page)
    python benchmarks/figures.py --list
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIGURE_PREFIX = "FIGURE "
FIELDS: dict[str, type | tuple[type, ...]] = {"name": str, "label": str, "unit": str, "median": (int, float),
                                              "min": (int, float), "max": (int, float), "runs": int, "command": str}


@dataclass(frozen=True)
class Script:
    """A benchmark script feeding README figures: its path (relative to the repository root) and smoke settings."""

    path: str
    quick: tuple[str, ...] = ()
    about: str = ""


# In the order of the README. The quick settings only make a smoke run fast; their figures are not the README's.
SCRIPTS: dict[str, Script] = {
    "shapes_textures": Script("benchmarks/bench_shapes_textures.py", ("--n", "1000"), "ShapesTextures generation"),
    "style_augment": Script("benchmarks/bench_style_augment.py", ("--batch", "4", "--repeat", "1"),
                            "StyleAugment cost against a resnet18 forward"),
    "wsam": Script("benchmarks/bench_wsam.py", ("--batch", "2", "--repeat", "1"), "WSAM against its floor"),
    "lrp": Script("benchmarks/bench_lrp.py", ("--models", "resnet50", "--batch", "2"),
                  "LRP against forward+backward and zennit"),
    "deletion_insertion": Script("benchmarks/bench_deletion_insertion.py", ("--batch", "4", "--steps", "5"),
                                 "deletion/insertion against a forward"),
    "parameter_saliency": Script("benchmarks/bench_parameter_saliency.py",
                                 ("--models", "small_cnn", "--batch", "16", "--repeat", "1"),
                                 "ParameterSaliency against forward+backward"),
    "trainers": Script("benchmarks/bench_trainers.py", ("--model", "small_cnn", "--batch-size", "64", "--repeat", "1"),
                       "SAT, LP-A3, PGD-AT steps against a standard step"),
    "randomization": Script("benchmarks/bench_randomization.py", ("--similarities", "spearman"),
                            "cascading randomization test against its plain calls"),
    "shape_bias": Script("benchmarks/bench_shape_bias.py", ("--n", "300", "--epochs", "1", "--size", "32"),
                         "shape bias and WSAM variance, baseline against StyleAugment training"),
    "style_transfer": Script("benchmarks/bench_style_transfer.py", ("--quick", "--size", "32"),
                             "texture diagnostic of the style backends"),
    "demo": Script("benchmarks/bench_demo.py", ("--modes", "quick"), "demo time (slow: trains the demo's models)"),
    "reproduce_sat_lpa3": Script("benchmarks/reproduce_sat_lpa3.py", ("--quick",),
                                 "SAT and LP-A3 orderings over seeds (slow: trains 9 models per seed)"),
}


class FigureError(RuntimeError):
    """A benchmark script failed, printed no figure, or printed a malformed ``FIGURE`` line."""


@dataclass
class ScriptRun:
    """What one script run gave: its command, wall seconds, exit status, figures and (if any) the error."""

    name: str
    command: str
    seconds: float
    returncode: int
    figures: list[dict[str, object]]
    error: str | None = None
    date_utc: str = ""
    load_average_before: list[float] | None = None
    load_average_after: list[float] | None = None


def parse_figures(output: str, source: str) -> list[dict[str, object]]:
    """The figures in a script's output: every line starting with ``FIGURE``, checked field by field.

    Raises:
        FigureError: a ``FIGURE`` line that is not ``FIGURE {json}`` with exactly the fields name (str), label (str),
            unit (str), median, min, max (finite numbers, min <= median <= max), runs (int >= 1) and command (str),
            or a name used twice.
    """
    figures: list[dict[str, object]] = []
    for number, line in enumerate(output.splitlines(), start=1):
        if not line.startswith("FIGURE"):
            continue
        where = f"{source}: malformed FIGURE line (output line {number}: {line[:300]!r})"
        if not line.startswith(FIGURE_PREFIX):
            raise FigureError(f"{where}: expected 'FIGURE ' followed by a JSON object")
        try:
            record = json.loads(line[len(FIGURE_PREFIX):])
        except json.JSONDecodeError as error:
            raise FigureError(f"{where}: not JSON ({error})") from None
        if not isinstance(record, dict):
            raise FigureError(f"{where}: expected a JSON object, got {type(record).__name__}")
        missing, extra = sorted(set(FIELDS) - set(record)), sorted(set(record) - set(FIELDS))
        if missing or extra:
            raise FigureError(f"{where}: missing fields {missing}, unknown fields {extra}")
        for key, kind in FIELDS.items():
            value = record[key]
            if isinstance(value, bool) or not isinstance(value, kind):
                raise FigureError(f"{where}: field {key!r} must be {kind}, got {value!r}")
            if isinstance(value, str) and not value.strip():
                raise FigureError(f"{where}: field {key!r} is empty")
        values = [float(record[key]) for key in ("min", "median", "max")]  # type: ignore[arg-type]
        if not all(math.isfinite(v) for v in values) or not values[0] <= values[1] <= values[2]:
            raise FigureError(f"{where}: expected finite min <= median <= max, got {values}")
        if record["runs"] < 1:  # type: ignore[operator]
            raise FigureError(f"{where}: runs must be >= 1, got {record['runs']}")
        if any(f["name"] == record["name"] for f in figures):
            raise FigureError(f"{where}: figure name {record['name']!r} printed twice")
        figures.append(record)
    return figures


def run_script(name: str, script: Script, runs: int, quick: bool) -> ScriptRun:
    """Run one script (from the repository root, its output passed through) and collect its figures."""
    path = Path(script.path) if Path(script.path).is_absolute() else ROOT / script.path
    argv = [sys.executable, str(path), "--runs", str(runs), *(script.quick if quick else ())]
    command = shlex.join(["python", script.path, *argv[2:]])
    print(f"== {name}: {command}", flush=True)
    date, load_before = utc_now(), load_average()
    start = time.perf_counter()
    process = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONUNBUFFERED": "1"})
    lines = []
    assert process.stdout is not None
    for line in process.stdout:
        print(line, end="", flush=True)
        lines.append(line)
    returncode = process.wait()
    seconds = time.perf_counter() - start
    output = "".join(lines)
    result = ScriptRun(name, command, seconds, returncode, [], None, date, load_before, load_average())
    if returncode != 0:
        tail = "".join(lines[-20:])
        result.error = f"{name}: `{command}` exited with status {returncode}; its last lines:\n{tail}"
        return result
    try:
        result.figures = parse_figures(output, f"{name} (`{command}`)")
    except FigureError as error:
        result.error = str(error)
        return result
    if not result.figures:
        result.error = f"{name}: `{command}` printed no FIGURE line"
    return result


def cpu_model() -> str:
    """The CPU model from ``/proc/cpuinfo`` (Linux), else what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")) and ":" in line:
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def load_average() -> list[float] | None:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def machine_info() -> dict[str, object]:
    """Date (UTC), platform, CPU model, logical cores, python and torch versions, torch threads, OMP_NUM_THREADS."""
    import torch

    return {"date_utc": utc_now(),
            "platform": platform.platform(), "cpu": cpu_model(), "logical_cores": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
            "omp_num_threads": os.environ.get("OMP_NUM_THREADS", "unset"), "load_average_before": load_average()}


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(data: dict[str, object]) -> str:
    """The ``docs/figures.md`` page for the data :func:`main` writes to ``figures.json``."""
    machine: dict[str, object] = data["machine"]  # type: ignore[assignment]
    runs: list[dict[str, object]] = data["scripts"]  # type: ignore[assignment]
    figures: list[dict[str, object]] = data["figures"]  # type: ignore[assignment]

    def load(key: str) -> str:
        values = machine.get(key)
        return ", ".join(f"{v:.2f}" for v in values) if values else "unknown"  # type: ignore[union-attr]

    lines = ["# Performance figures", "",
             f"Generated by `{data['command']}` (`make figures`); do not edit this page, rerun the command. Every "
             "figure is the median and the range (min–max) over its runs (independent timing rounds, or one seed "
             "per run for accuracies); timing figures are mostly ratios taken within one run against the reference "
             "named in the unit, which carry over between machines better than seconds do.", ""]
    if data["smoke"]:
        lines += ["!!! warning \"Smoke run\"", "    Made with `--quick` or fewer than 3 runs to check the scripts: "
                  "these are not the README's figures.", ""]
    lines += ["| | |", "|---|---|",
              f"| date | {machine['date_utc']} |",
              f"| machine | {_cell(str(machine['platform']))} |",
              f"| CPU | {_cell(str(machine['cpu']))}, {machine['logical_cores']} logical cores |",
              f"| software | python {machine['python']}, torch {machine['torch']} ({machine['torch_threads']} threads; "
              f"OMP_NUM_THREADS {machine['omp_num_threads']}) |",
              f"| load average (1, 5, 15 min) | before {load('load_average_before')}; "
              f"after {load('load_average_after')} |",
              f"| wall time | {sum(float(r['seconds']) for r in runs):,.0f} s in all |", ""]  # type: ignore[arg-type]
    if data.get("updates"):
        lines += ["Scripts rerun since (`--update`): " + "; ".join(
            f"`{u['command']}` on {u['date_utc']}" for u in data["updates"]) + ". Each section says when its "  # type: ignore[union-attr, index]
            "script ran and the load average around it.", ""]
    for run in runs:
        before, after = run.get("load_average_before"), run.get("load_average_after")
        when = f", run {run.get('date_utc') or machine['date_utc']}" + (
            f" (load average {before[0]:.2f} before, {after[0]:.2f} after)" if before and after else "")  # type: ignore[index]
        lines += [f"## {run['name']}", "",
                  f"`{run['command']}`: {float(run['seconds']):,.0f} s wall{when}"  # type: ignore[arg-type]
                  + (f"; **failed**: {_cell(str(run['error']).splitlines()[0])}" if run.get("error") else "."), ""]
        own = [f for f in figures if f["script"] == run["name"]]
        if not own:
            continue
        lines += ["| figure | median | range | runs | unit | command |", "|---|---|---|---|---|---|"]
        for f in own:
            lines.append(f"| {_cell(str(f['label']))} (`{f['name']}`) | {_number(f['median'])} | "  # type: ignore[arg-type]
                         f"{_number(f['min'])}–{_number(f['max'])} | {f['runs']} | {_cell(str(f['unit']))} | "  # type: ignore[arg-type]
                         f"`{_cell(str(f['command']))}` |")
        lines.append("")
    return "\n".join(lines)


def merged(previous: dict[str, Any], rerun: dict[str, Any], command: str, date: str) -> dict[str, Any]:
    """``previous`` with the scripts of ``rerun`` (and their figures) replaced in place, new ones appended."""
    names = {run["name"] for run in rerun["scripts"]}
    scripts = [next(r for r in rerun["scripts"] if r["name"] == run["name"]) if run["name"] in names else run
               for run in previous["scripts"]]
    scripts += [run for run in rerun["scripts"] if run["name"] not in {r["name"] for r in previous["scripts"]}]
    order = [run["name"] for run in scripts]
    figures = [f for f in previous["figures"] if f["script"] not in names] + rerun["figures"]
    figures.sort(key=lambda f: order.index(f["script"]))  # stable: each script's own order is kept
    return {**previous, "scripts": scripts, "figures": figures,
            "updates": [*previous.get("updates", []), {"command": command, "date_utc": date}]}


def main(argv: Sequence[str] | None = None, scripts: dict[str, Script] | None = None) -> int:
    """Run the selected scripts, write the page and the JSON; 0 if every script gave its figures, 1 otherwise."""
    scripts = SCRIPTS if scripts is None else scripts
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="scripts: " + ", ".join(scripts))
    parser.add_argument("--runs", type=int, default=3, metavar="N", help="--runs passed to every script (default 3)")
    parser.add_argument("--only", nargs="+", default=None, metavar="NAME", help="run only these scripts")
    parser.add_argument("--skip", nargs="+", default=[], metavar="NAME", help="leave these scripts out (e.g. demo)")
    parser.add_argument("--quick", action="store_true", help="small settings where the scripts have them (smoke run)")
    parser.add_argument("--keep-going", action="store_true", help="after a failing script, run the others")
    parser.add_argument("--list", action="store_true", help="list the scripts and their smoke settings, run nothing")
    parser.add_argument("--update", action="store_true",
                        help="rerun the selected scripts only and replace their figures in the existing JSON and page "
                             "(same machine; the others are kept with their own date)")
    parser.add_argument("--out-md", type=Path, default=ROOT / "docs" / "figures.md")
    parser.add_argument("--out-json", type=Path, default=ROOT / "benchmarks" / "figures.json")
    args = parser.parse_args(argv)
    unknown = sorted(name for name in {*(args.only or []), *args.skip} if name not in scripts)
    if unknown:
        parser.error(f"unknown script name(s) {unknown}; choose from {list(scripts)}")
    if args.runs < 1:
        parser.error(f"--runs must be >= 1, got {args.runs}")
    selected = [name for name in scripts if (args.only is None or name in args.only) and name not in args.skip]
    if not selected:
        parser.error("--only/--skip leave no script to run")
    if args.list:
        for name, script in scripts.items():
            print(f"{name:20s} {script.path}  {script.about}  (--quick: {shlex.join(script.quick) or 'none'})")
        return 0

    previous = None
    if args.update:
        if not args.out_json.is_file():
            parser.error(f"--update needs an existing {args.out_json}; run without --update first")
        previous = json.loads(args.out_json.read_text())
        if previous.get("quick") != args.quick or previous.get("runs") != args.runs:
            parser.error(f"--update must use the settings of {args.out_json} (--runs {previous.get('runs')}"
                         f"{', --quick' if previous.get('quick') else ''})")
    machine = machine_info()
    if previous is not None:
        here = {k: machine[k] for k in ("platform", "cpu", "logical_cores", "torch", "torch_threads")}
        there = {k: previous["machine"].get(k) for k in here}
        if here != there:
            parser.error(f"--update on another machine or setup ({here} against {there}); run everything again")
    results: list[ScriptRun] = []
    for name in selected:
        result = run_script(name, scripts[name], args.runs, args.quick)
        results.append(result)
        if result.error:
            print(f"\nfigures.py: {result.error}", file=sys.stderr, flush=True)
            if not args.keep_going:
                print("figures.py: stopped; nothing written (--keep-going runs the other scripts)", file=sys.stderr)
                return 1
    machine["load_average_after"] = load_average()
    command = shlex.join(["python", "benchmarks/figures.py", "--runs", str(args.runs),
                          *(["--only", *args.only] if args.only else []),
                          *(["--skip", *args.skip] if args.skip else []), *(["--quick"] if args.quick else [])])
    data = {"command": command, "runs": args.runs, "quick": args.quick,
            "smoke": args.quick or args.runs < 3, "machine": machine,
            "scripts": [{"name": r.name, "command": r.command, "seconds": round(r.seconds, 1),
                         "returncode": r.returncode, "figures": len(r.figures), "error": r.error,
                         "date_utc": r.date_utc, "load_average_before": r.load_average_before,
                         "load_average_after": r.load_average_after} for r in results],
            "figures": [{"script": r.name, **f} for r in results for f in r.figures]}
    if previous is not None:
        data = merged(previous, data, command.replace("figures.py", "figures.py --update", 1), machine["date_utc"])
    args.out_json.parent.mkdir(parents=True, exist_ok=True)
    args.out_json.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    args.out_md.parent.mkdir(parents=True, exist_ok=True)
    args.out_md.write_text(render_markdown(data) + "\n")
    failed = [r.name for r in results if r.error]
    print(f"\nfigures.py: {sum(len(r.figures) for r in results)} figures from {len(results) - len(failed)} scripts "
          f"({len(data['figures'])} on the page) written to "
          f"{args.out_md} and {args.out_json}" + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
