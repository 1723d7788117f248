"""``benchmarks/figures.py`` (``make figures``): FIGURE-line parsing, the page and JSON it writes, clear failures.

The driver runs fake benchmark scripts written into ``tmp_path`` (never the real benchmarks); the real scripts are
only asked for ``--help`` (all in one interpreter, so torch is imported once).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
import figures  # noqa: E402
from _common import figure_line  # noqa: E402

FAKE = """
import argparse, json, sys
parser = argparse.ArgumentParser()
parser.add_argument("--runs", type=int, default=3)
parser.add_argument("--small", action="store_true")
args = parser.parse_args()
print("human-readable line: ratio 1.50 [1.00, 2.00]")
values = [1.0 + i * 0.5 for i in range(args.runs)]
record = {{"name": "fake_ratio", "label": "Fake ratio, batch 8 | at 64x64", "unit": "x one forward",
          "median": sorted(values)[len(values) // 2], "min": min(values), "max": max(values), "runs": args.runs,
          "command": "python fake.py --runs " + str(args.runs) + (" --small" if args.small else "")}}
print("FIGURE " + json.dumps(record))
print("FIGURE " + json.dumps({{**record, "name": "fake_seconds", "unit": "s", "median": 1234.5, "min": 1000.0,
                              "max": 1500.0}}))
{extra}
"""


def fake_script(tmp_path: Path, extra: str = "", name: str = "fake.py") -> figures.Script:
    path = tmp_path / name
    path.write_text(textwrap.dedent(FAKE.format(extra=extra)))
    return figures.Script(str(path), quick=("--small",))


def run_driver(tmp_path: Path, scripts: dict[str, figures.Script], *argv: str) -> int:
    return figures.main(["--out-md", str(tmp_path / "figures.md"), "--out-json", str(tmp_path / "figures.json"),
                         *argv], scripts=scripts)


def test_driver_writes_table_json_and_machine_header(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run_driver(tmp_path, {"fake": fake_script(tmp_path)}, "--runs", "3") == 0
    assert "human-readable line" in capsys.readouterr().out  # the script's own output is passed through
    data = json.loads((tmp_path / "figures.json").read_text())
    assert [f["name"] for f in data["figures"]] == ["fake_ratio", "fake_seconds"]
    ratio = data["figures"][0]
    assert (ratio["median"], ratio["min"], ratio["max"], ratio["runs"], ratio["script"]) == (1.5, 1.0, 2.0, 3, "fake")
    assert ratio["command"] == "python fake.py --runs 3"
    assert data["scripts"][0]["returncode"] == 0 and data["scripts"][0]["figures"] == 2
    machine = data["machine"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d UTC", machine["date_utc"])
    assert machine["logical_cores"] >= 1 and machine["torch_threads"] >= 1 and machine["cpu"]
    assert machine["torch"] == __import__("torch").__version__
    assert data["smoke"] is False and data["command"] == "python benchmarks/figures.py --runs 3"
    page = (tmp_path / "figures.md").read_text()
    assert page.startswith("# Performance figures")
    assert f"| date | {machine['date_utc']} |" in page
    assert f"{machine['logical_cores']} logical cores" in page and "| machine |" in page
    assert "load average (1, 5, 15 min) | before " in page and "after " in page
    assert f"torch {machine['torch']} ({machine['torch_threads']} threads" in page
    assert "| figure | median | range | runs | unit | command |" in page
    # the label's "|" is escaped so the row keeps its six cells; large values get thousands separators
    assert ("| Fake ratio, batch 8 \\| at 64x64 (`fake_ratio`) | 1.5 | 1–2 | 3 | x one forward | "
            "`python fake.py --runs 3` |") in page
    assert "| 1,234 | 1,000–1,500 | 3 | s |" in page or "| 1,235 | 1,000–1,500 | 3 | s |" in page
    assert "Smoke run" not in page


def test_quick_and_few_runs_are_marked_as_smoke(tmp_path: Path) -> None:
    assert run_driver(tmp_path, {"fake": fake_script(tmp_path)}, "--runs", "1", "--quick") == 0
    data = json.loads((tmp_path / "figures.json").read_text())
    assert data["smoke"] is True and data["quick"] is True
    assert data["figures"][0]["command"] == "python fake.py --runs 1 --small"  # the quick settings were passed
    assert "Smoke run" in (tmp_path / "figures.md").read_text()


def test_only_and_skip_select_scripts(tmp_path: Path) -> None:
    scripts = {"a": fake_script(tmp_path, name="a.py"), "b": fake_script(tmp_path, name="b.py")}
    assert run_driver(tmp_path, scripts, "--only", "b") == 0
    assert [s["name"] for s in json.loads((tmp_path / "figures.json").read_text())["scripts"]] == ["b"]
    assert run_driver(tmp_path, scripts, "--skip", "b") == 0
    assert [s["name"] for s in json.loads((tmp_path / "figures.json").read_text())["scripts"]] == ["a"]
    with pytest.raises(SystemExit):
        run_driver(tmp_path, scripts, "--only", "nope")
    with pytest.raises(SystemExit):
        run_driver(tmp_path, scripts, "--skip", "a", "b")


def test_failing_script_stops_the_driver_and_writes_nothing(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    scripts = {"bad": fake_script(tmp_path, 'print("about to fail"); sys.exit(3)', "bad.py"),
               "good": fake_script(tmp_path, name="good.py")}
    assert run_driver(tmp_path, scripts) == 1
    err = capsys.readouterr().err
    assert "bad: `python" in err and "exited with status 3" in err and "about to fail" in err
    assert not (tmp_path / "figures.md").exists() and not (tmp_path / "figures.json").exists()
    # --keep-going: the others still run, the page records the failure, the exit status is still 1
    assert run_driver(tmp_path, scripts, "--keep-going") == 1
    data = json.loads((tmp_path / "figures.json").read_text())
    assert [(s["name"], s["returncode"]) for s in data["scripts"]] == [("bad", 3), ("good", 0)]
    assert [f["script"] for f in data["figures"]] == ["good", "good"]
    assert "**failed**" in (tmp_path / "figures.md").read_text()


@pytest.mark.parametrize(("line", "reason"), [
    ('print("FIGURE not json")', "not JSON"),
    ('print("FIGURE[1, 2]")', "expected 'FIGURE ' followed by a JSON object"),
    ('print("FIGURE [1, 2]")', "expected a JSON object"),
    ('print("FIGURE " + json.dumps({k: v for k, v in record.items() if k != "runs"}))', "missing fields ['runs']"),
    ('print("FIGURE " + json.dumps({**record, "name": "x", "median": "1.5"}))', "field 'median'"),
    ('print("FIGURE " + json.dumps({**record, "name": "x", "min": 3.0}))', "min <= median <= max"),
    ('print("FIGURE " + json.dumps({**record, "name": "x", "runs": 0}))', "runs must be >= 1"),
    ('print("FIGURE " + json.dumps({**record, "name": "x", "label": " "}))', "field 'label' is empty"),
    ('print("FIGURE " + json.dumps(record))', "printed twice"),
])
def test_malformed_figure_line_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str,
                                             reason: str) -> None:
    assert run_driver(tmp_path, {"fake": fake_script(tmp_path, line)}) == 1
    err = capsys.readouterr().err
    assert "fake (`python" in err and "malformed FIGURE line" in err and reason in err
    assert not (tmp_path / "figures.json").exists()


def test_script_without_figures_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "silent.py"
    path.write_text("print('ratio 1.5, no machine-readable line')\n")
    assert run_driver(tmp_path, {"silent": figures.Script(str(path))}) == 1
    assert "printed no FIGURE line" in capsys.readouterr().err


def test_figure_line_round_trips_and_checks_its_arguments() -> None:
    line = figure_line("wsam_vs_floor", "WSAM, batch 8", "x the floor", [1.2, 0.9, 1.0, 1.4], command="python b.py")
    (record,) = figures.parse_figures(line, "test")
    assert record == {"name": "wsam_vs_floor", "label": "WSAM, batch 8", "unit": "x the floor", "median": 1.1,
                      "min": 0.9, "max": 1.4, "runs": 4, "command": "python b.py"}
    with pytest.raises(ValueError, match="name"):
        figure_line("Bad Name", "label", "unit", [1.0])
    with pytest.raises(ValueError, match="values"):
        figure_line("ok", "label", "unit", [])
    with pytest.raises(ValueError, match="values"):
        figure_line("ok", "label", "unit", [float("nan")])
    with pytest.raises(ValueError, match="unit"):
        figure_line("ok", "label", "", [1.0])


def readme_benchmark_scripts() -> set[str]:
    """The scripts named in the README's performance table (the ``## Measured`` section's table rows)."""
    text = (ROOT / "README.md").read_text()
    # the "## Measured" section, or the whole README if that section is renamed
    section = text.split("\n## Measured", 1)[1].split("\n## ", 1)[0] if "\n## Measured" in text else text
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return {match for row in rows for match in re.findall(r"benchmarks/\w+\.py", row)}


HELP_ALL = """
import contextlib, io, json, runpy, sys
results = {}
for path in sys.argv[1:]:
    sys.argv = [path, "--help"]
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
        try:
            runpy.run_path(path, run_name="__main__")
            code = 0
        except SystemExit as stop:
            code = stop.code or 0
    results[path] = [code, out.getvalue()]
sys.stdout.write(json.dumps(results))
"""


def test_every_readme_benchmark_script_accepts_runs() -> None:
    in_readme = readme_benchmark_scripts()
    assert len(in_readme) >= 8, in_readme
    registered = {script.path for script in figures.SCRIPTS.values()}
    assert in_readme <= registered, f"README benchmarks missing from figures.SCRIPTS: {in_readme - registered}"
    paths = sorted(registered)
    result = subprocess.run([sys.executable, "-c", HELP_ALL, *paths], cwd=ROOT, capture_output=True, text=True,
                            timeout=120, env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    helps = json.loads(result.stdout)
    for name, script in figures.SCRIPTS.items():
        code, text = helps[script.path]
        assert code == 0, f"{script.path} --help exited {code}: {text[-500:]}"
        assert re.search(r"--runs\b", text), f"{script.path} does not accept --runs"
        for flag in (arg for arg in script.quick if arg.startswith("--")):  # the smoke settings exist too
            assert re.search(rf"{re.escape(flag)}\b", text), f"{name}: --quick passes {flag}, unknown to {script.path}"


def test_update_reruns_one_script_and_keeps_the_others(tmp_path: Path) -> None:
    scripts = {"first": fake_script(tmp_path, name="first.py"), "second": fake_script(tmp_path, name="second.py")}
    assert run_driver(tmp_path, scripts, "--runs", "3") == 0
    before = json.loads((tmp_path / "figures.json").read_text())
    (tmp_path / "second.py").write_text((tmp_path / "second.py").read_text().replace("1234.5", "1111.0"))
    assert run_driver(tmp_path, scripts, "--runs", "3", "--only", "second", "--update") == 0
    after = json.loads((tmp_path / "figures.json").read_text())
    assert [r["name"] for r in after["scripts"]] == ["first", "second"]
    assert after["scripts"][0] == before["scripts"][0]  # kept, with its own date and load
    assert [(f["script"], f["name"]) for f in after["figures"]] == [(f["script"], f["name"]) for f in before["figures"]]
    assert [f["median"] for f in after["figures"] if f["script"] == "second"] == [1.5, 1111.0]
    assert after["figures"][:2] == before["figures"][:2] and after["machine"] == before["machine"]
    assert after["updates"][0]["command"].startswith("python benchmarks/figures.py --update --runs 3 --only second")
    page = (tmp_path / "figures.md").read_text()
    assert "Scripts rerun since (`--update`)" in page and page.count(", run 20") == 2  # each section's own date


def test_update_needs_the_same_settings_and_an_existing_page(tmp_path: Path) -> None:
    scripts = {"fake": fake_script(tmp_path)}
    with pytest.raises(SystemExit):
        run_driver(tmp_path, scripts, "--update")  # nothing to update yet
    assert run_driver(tmp_path, scripts, "--runs", "3") == 0
    with pytest.raises(SystemExit):
        run_driver(tmp_path, scripts, "--runs", "5", "--update")  # other settings than the page's
