"""The demo (captum_wsam/demo/): argument and folder checks before any work, atomic files, whole-folder replacement,
stage lines with and without progress bars, the findings section and the figures, the trained-model cache."""

from __future__ import annotations

import os
import re
from dataclasses import replace
from pathlib import Path

import pytest

from captum_wsam import demo
from captum_wsam.demo import (
    DemoBudget,
    DemoConfig,
    atomic_write,
    check_config,
    run_demo,
    staged_folder,
    trained_model,
)
from captum_wsam.train import accuracy

TINY = DemoBudget(size=32, n_train=96, n_test=48, epochs=1, n_eval=12, wsam_styles=2, pgd_steps=1)
FIGURES = ("shape_bias", "sam_alpha", "wsam", "wsam_variance", "lrp", "parameter_saliency")
SECTIONS = ("Findings", "Accuracy and shape bias", "SAM across α", "WSAM, one sample per class",
            "WSAM variance per class", "LRP αβ and Grad-CAM", "Parameter saliency", "Robust accuracy")


def _no_work(*args, **kwargs):
    raise AssertionError("work started before the arguments were checked")


@pytest.mark.parametrize(
    ("changes", "error", "words"),
    [
        ({"size": 31}, ValueError, "size must lie in [32, 224], got 31"),
        ({"size": 32.0}, TypeError, "size must be an int, got float"),
        ({"seed": -1}, ValueError, "seed must be a non-negative int, got -1"),
        ({"budget": DemoBudget(32, 0, 8, 1, 4, 1, 1)}, ValueError, "budget.n_train must be a positive int, got 0"),
        ({"data": "texture"}, TypeError, "data must be a DemoData, got str"),
    ],
)
def test_bad_settings_fail_before_any_work(tmp_path, monkeypatch, changes, error, words):
    monkeypatch.setattr(demo.DemoData, "dataset", _no_work)
    with pytest.raises(error, match=re.escape(words)):
        run_demo(DemoConfig(out=tmp_path / "out", cache_dir=None, progress=False, **changes))
    assert not (tmp_path / "out").exists()


def test_unusable_output_folders_fail_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(demo.DemoData, "dataset", _no_work)
    a_file = tmp_path / "a_file"
    a_file.write_text("keep me")
    with pytest.raises(ValueError, match="out must be a folder, got the file"):
        run_demo(DemoConfig(out=a_file, cache_dir=None))
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_text("keep me")
    with pytest.raises(ValueError, match="non-empty folder that the demo did not write"):
        run_demo(DemoConfig(out=foreign, cache_dir=None))
    assert a_file.read_text() == "keep me" and (foreign / "holiday.jpg").read_text() == "keep me"
    if os.geteuid() != 0:  # root may write anywhere
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        with pytest.raises(ValueError, match="cannot be written"):
            check_config(DemoConfig(out=locked / "report"))


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    path = tmp_path / "figure.png"
    path.write_bytes(b"old")

    def broken(temporary: Path) -> None:
        temporary.write_bytes(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["figure.png"]  # no temporary file left
    atomic_write(path, lambda temporary: temporary.write_bytes(b"new"))
    assert path.read_bytes() == b"new"
    assert path.stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_staged_folder_replaces_the_report_as_a_whole(tmp_path):
    out = tmp_path / "report"
    with staged_folder(out) as folder:
        (folder / "old_figure.png").write_text("old")
    assert (out / "old_figure.png").exists() and (out / demo.MARKER).exists()
    with pytest.raises(RuntimeError), staged_folder(out) as folder:  # interrupted run: old report untouched
        (folder / "new_figure.png").write_text("new")
        raise RuntimeError("interrupted")
    assert sorted(p.name for p in out.iterdir()) == [demo.MARKER, "old_figure.png"]
    with staged_folder(out) as folder:
        (folder / "new_figure.png").write_text("new")
    assert sorted(p.name for p in out.iterdir()) == [demo.MARKER, "new_figure.png"]  # nothing old mixed in
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no staging or old folder left


def test_tiny_run_talks_writes_the_report_and_reuses_the_cache(tmp_path, capsys):
    out, cache = tmp_path / "report", tmp_path / "cache"
    config = DemoConfig(out=out, progress=False, cache_dir=cache, budget=TINY)
    numbers = run_demo(config)
    printed = capsys.readouterr().out
    # one line per stage and per model epoch, even without progress bars
    for stage in range(1, 9):
        assert re.search(rf"^\[{stage}/8\] ", printed, flags=re.M), printed
    for position, title in enumerate(("baseline", "StyleAugment", "SAT"), start=1):
        assert re.search(rf"^training {title} \({position}/3\): epoch 1/1, loss \d+\.\d+, acc \d\.\d+", printed,
                         flags=re.M), printed
    report = (out / "report.md").read_text()
    assert report.index("## Findings") < report.index("## Accuracy and shape bias")
    for section in SECTIONS:
        assert f"\n## {section}\n" in report
    for name in FIGURES:
        assert (out / f"{name}.png").stat().st_size > 1000, name
        assert re.search(rf"!\[{name}\]\({name}\.png\)\n\n\*What to look for: [^\n]+\.\*", report), name
    for title, key in (("baseline", "baseline"), ("StyleAugment", "style"), ("SAT", "sat")):
        assert f"{title} {numbers[f'{key}_accuracy']:.1%}" in report  # every explained model's accuracy is stated
    assert f"decides by shape {numbers['baseline_shape_bias']:.0%} of the time" in report
    assert sorted(p.name for p in (cache / "demo").glob("*.pt"))[0].startswith("baseline-")
    assert len(list((cache / "demo").glob("*.pt"))) == 3
    # the cache gives back the same model without training it again; another seed is another entry
    train = config.data.dataset(TINY.n_train, TINY.size, config.seed)
    model, cached = trained_model("baseline", train, config)
    assert cached and "loaded from the cache" in capsys.readouterr().out
    assert accuracy(model, config.data.dataset(TINY.n_test, TINY.size, config.seed + 1)) == numbers["baseline_accuracy"]
    assert demo._cache_key(config, "baseline") != demo._cache_key(replace(config, seed=1), "baseline")
    assert demo._cache_key(config, "baseline") != demo._cache_key(config, "style")


def test_the_package_keeps_every_name_of_the_former_module_and_the_cache_fingerprint() -> None:
    import hashlib
    from pathlib import Path as _Path

    from captum_wsam.demo import config, report, run, training

    for module in (config, report, run, training):
        for name in module.__all__:
            assert getattr(demo, name) is getattr(module, name), name
    root = _Path(demo.__file__).resolve().parents[1]  # captum_wsam/, not captum_wsam/demo/
    digest = hashlib.sha256()
    for sub in ("data", "models", "augment", "attacks", "train"):
        paths = sorted((root / sub).rglob("*.py"))
        assert paths, sub
        for path in paths:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    assert training._code_fingerprint() == digest.hexdigest()
