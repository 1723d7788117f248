"""The ``captum-wsam`` command line: plain-text help, bad settings refused before any work, the printed summary."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from captum_wsam import demo
from captum_wsam.cli import build_parser, main

RAW_MARKUP = re.compile(r"``|:math:|:class:|:func:|\.\. [a-z]+::")


@pytest.mark.parametrize("argv", [["--help"], ["demo", "--help"]])
def test_help_is_plain_text(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert RAW_MARKUP.search(text) is None, text
    assert text.startswith("usage: captum-wsam")
    if "demo" in argv:
        for option in ("--out DIR", "--size PIXELS", "--quick", "--seed SEED", "--no-progress", "--no-cache"):
            assert option in text
        assert "stage lines are still printed" in text and "examples:" in text


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the arguments were checked")


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--size", "16"], "size must lie in [32, 224], got 16"),
        (["--size", "300"], "size must lie in [32, 224], got 300"),
        (["--seed", "-3"], "seed must be a non-negative int, got -3"),
    ],
)
def test_bad_settings_exit_2_before_any_work(argv, words, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "run_demo", _no_work)
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path / "out"), *argv])
    assert exit_info.value.code == 2
    assert words in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_unusable_out_exits_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(demo, "run_demo", _no_work)
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(SystemExit) as exit_info:
        main(["demo", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    assert "did not write" in capsys.readouterr().err
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_prints_the_numbers_and_passes_the_options(tmp_path, monkeypatch, capsys):
    seen = {}

    def fake_run(config):
        seen["config"] = config
        return {"baseline_accuracy": 0.97, "style_shape_bias": 0.62, "seconds": 12.5}

    monkeypatch.setattr(demo, "run_demo", fake_run)
    assert main(["demo", "--quick", "--size", "40", "--seed", "3", "--out", str(tmp_path / "r"), "--no-progress",
                 "--no-cache"]) == 0
    config = seen["config"]
    settings = (config.quick, config.plan.size, config.seed, config.progress, config.cache_dir)
    assert settings == (True, 40, 3, False, None)
    assert config.out == (tmp_path / "r").resolve()
    out = capsys.readouterr().out
    numbers = {k: float(v) for k, v in re.findall(r"^  (\S+): (\S+)$", out, flags=re.M)}
    assert numbers == {"baseline_accuracy": 0.97, "style_shape_bias": 0.62, "seconds": 12.5}
    assert all(math.isfinite(v) for v in numbers.values())
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    main(["demo", "--out", str(tmp_path / "r2")])
    assert seen["config"].cache_dir == Path(tmp_path / "xdg" / "captum_wsam") and not seen["config"].quick


def test_parser_requires_a_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])
    with pytest.raises(SystemExit):
        main(["nope"])
