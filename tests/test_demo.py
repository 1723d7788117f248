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
            "WSAM variance per class", "LRP αβ and Grad-CAM", "Which explanation is right?", "Parameter saliency",
            "Robust accuracy")
METHODS = ("Random (chance)", "Saliency", "Grad-CAM", "SAM (α=0.5, style 0)", "WSAM", "LRP α1β0", "LRP α2β1")


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
    for stage in range(1, 10):
        assert re.search(rf"^\[{stage}/9\] ", printed, flags=re.M), printed
    assert re.search(r"^\[7/9\] evaluating explanations of the 3 models on \d+ test images", printed, flags=re.M)
    for position, title in enumerate(("baseline", "StyleAugment", "SAT"), start=1):
        assert re.search(rf"^evaluating explanations \({position}/3\): {title} \(\d+\.\d s\)$", printed, flags=re.M)
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
    _check_evaluation_section(report, numbers)
    assert sorted(p.name for p in (cache / "demo").glob("*.pt"))[0].startswith("baseline-")
    assert len(list((cache / "demo").glob("*.pt"))) == 3
    # the cache gives back the same model without training it again; another seed is another entry
    train = config.data.dataset(TINY.n_train, TINY.size, config.seed)
    model, cached = trained_model("baseline", train, config)
    assert cached and "loaded from the cache" in capsys.readouterr().out
    assert accuracy(model, config.data.dataset(TINY.n_test, TINY.size, config.seed + 1)) == numbers["baseline_accuracy"]
    assert demo._cache_key(config, "baseline") != demo._cache_key(replace(config, seed=1), "baseline")
    assert demo._cache_key(config, "baseline") != demo._cache_key(config, "style")


def _check_evaluation_section(report: str, numbers: dict[str, float]) -> None:
    """The explanation-evaluation section: one table per model, a row per method, every mean in [0, 1] or NaN with
    its count, the sentences written from the numbers, and a findings line."""
    findings = report[report.index("## Findings"): report.index("## Accuracy and shape bias")]
    assert f"- **Which explanation is right?** Scored against the object masks and the model on " \
           f"{int(numbers['explained_images'])} test images" in findings
    section = report[report.index("## Which explanation is right?"): report.index("## Parameter saliency")]
    tables = re.findall(r"### (\S+) \(clean accuracy [\d.]+%, shape bias [\d.]+\)\n\n(\| method \|[^\n]+)\n"
                        r"\|(?:---\|)+\n((?:\|[^\n]+\|\n)+)", section)
    assert [title for title, _, _ in tables] == ["baseline", "StyleAugment", "SAT"], section
    for _, header, body in tables:
        columns = [c.strip() for c in header.strip("|").split("|")]
        assert columns[1:] == [f"{k} ({r}) ↑" for r in ("object", "outline") for k in ("PG", "RMA", "RRA", "EPG")] + [
            "deletion AUC ↓", "insertion AUC ↑"]
        rows = [[c.strip() for c in line.strip("|").split("|")] for line in body.strip().split("\n")]
        assert [row[0] for row in rows] == list(METHODS)
        for row in rows:
            assert len(row) == len(columns)
            for cell in row[1:]:
                match = re.fullmatch(r"(nan|[01](?:\.\d+)?(?:e-\d+)?)(?: \((\d+) NaN\))?", cell)
                assert match, cell
                assert match[1] == "nan" or 0.0 <= float(match[1]) <= 1.0, cell
                assert match[1] != "nan" or match[2], cell  # a NaN mean says how many scores were undefined
    assert re.search(r" By deletion [^\n]+; by insertion [^\n]+\.", section), section
    assert re.search(r"^(\S.*)? puts the largest share of its positive mass on the object's outline|"
                     r"^The largest share of positive mass on the object's outline", section, flags=re.M), section
    for key in ("baseline", "style", "sat"):
        assert 0.0 <= numbers[f"{key}_best_deletion_auc"] <= 1.0 and 0.0 <= numbers[f"{key}_random_deletion_auc"] <= 1


def test_evaluation_scores_match_the_metrics_called_directly():
    """The demo's table is the metrics of captum_wsam.metrics on the demo's maps (no ROAD), one row per method."""
    import torch

    from captum_wsam.metrics import deletion_insertion, outline_mask, pointing_game, relevance_mass_accuracy
    from captum_wsam.metrics.localisation import attribution_map
    from captum_wsam.models import SmallCNN

    torch.manual_seed(0)
    model = SmallCNN().eval()
    data = demo.DemoData().dataset(6, 32, seed=3)
    x, y = data.tensors()
    masks = data.masks
    methods = demo.demo_methods(model, None, wsam_styles=1, seed=0)
    assert list(methods) == list(METHODS)
    chosen = {name: methods[name] for name in ("Saliency", "Grad-CAM", "LRP α2β1")}
    result = demo.evaluate_demo_explanations(model, x, y, masks, chosen, steps=4, outline_width=1)
    for name, method in chosen.items():
        maps = attribution_map(method(x, target=y), (32, 32))
        scores = result.scores[name]
        torch.testing.assert_close(scores["PG (object)"], pointing_game(maps, masks).cpu())
        torch.testing.assert_close(scores["RMA (outline)"], relevance_mass_accuracy(maps, outline_mask(masks, 1)),
                                   equal_nan=True)
        curves = deletion_insertion(model, x, maps, target=y, steps=4, progress=False)
        torch.testing.assert_close(scores["deletion AUC"], curves.deletion_auc)
        torch.testing.assert_close(scores["insertion AUC"], curves.insertion_auc)
    assert "ROAD" not in result.columns and result.columns[-2:] == ["deletion AUC", "insertion AUC"]


def test_evaluation_sentences_follow_the_numbers():
    """Written from the means: the best method per column, worse-than-random on deletion, all-zero maps counted."""
    import torch

    from captum_wsam.metrics.explanation_evaluation import ExplanationEvaluation

    def row(deletion: float, insertion: float, outline: float, nan: int = 0) -> dict[str, torch.Tensor]:
        rma = torch.tensor([outline] * (4 - nan) + [float("nan")] * nan)
        return {"RMA (object)": rma, "RMA (outline)": rma, "deletion AUC": torch.full((4,), deletion),
                "insertion AUC": torch.full((4,), insertion)}

    columns = {"RMA (object)": True, "RMA (outline)": True, "deletion AUC": False, "insertion AUC": True}
    shares = {"object": 0.2, "outline": 0.1}
    texture = ExplanationEvaluation({"Random (chance)": row(0.2, 0.5, 0.1), "A": row(0.1, 0.6, 0.3),
                                     "B": row(0.5, 0.9, 0.2), "WSAM": row(0.3, 0.8, 0.2)}, columns, shares)
    shape = ExplanationEvaluation({"Random (chance)": row(0.2, 0.5, 0.1), "A": row(0.19, 0.6, 0.6),
                                   "B": row(0.21, 0.7, 0.2, nan=3), "WSAM": row(0.2, 0.8, 0.2)}, columns, shares)
    sentences, finding = demo.describe({"t": texture, "s": shape}, {"t": "texture", "s": "shape"},
                                       {"t": 0.2, "s": 0.8}, images=4)
    assert sentences[0] == ("A puts the largest share of its positive mass on the object's outline for every model "
                            "(texture 30%; shape 60%), where the outline band covers 10% of the image, and the share "
                            "grows with the model's shape bias.")
    assert sentences[1].startswith("By deletion the most faithful map is A for the texture model (0.10 vs 0.20 "
                                   "random); none for the shape model")
    assert "model uses) B for the texture model (0.90 vs 0.50 random); WSAM for the shape model" in sentences[1]
    assert sentences[2].endswith(": B, WSAM for the texture model.")  # 0.5 and 0.3 vs 0.2; shape's 0.21 within margin
    assert sentences[3].startswith("All-zero maps") and "B on 3 of 4 images for the shape model" in sentences[3]
    assert "WSAM, which averages many styles weighted by the class probability, on none" in sentences[3]
    assert "2 of 3 methods do worse than a random map for the texture model" in finding


def test_the_package_keeps_every_name_of_the_former_module_and_the_cache_fingerprint() -> None:
    import hashlib
    from pathlib import Path as _Path

    from captum_wsam.demo import config, evaluation, report, run, training

    for module in (config, evaluation, report, run, training):
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
