from __future__ import annotations

import math
import re

import pytest

from captum_wsam.cli import main

FIGURES = ("shape_bias", "sam_alpha", "wsam", "wsam_variance", "lrp", "parameter_saliency")


def test_demo_quick_writes_report_with_every_figure(tmp_path, capsys):
    assert main(["demo", "--quick", "--size", "32", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "report.md").read_text()
    for name in FIGURES:
        assert (tmp_path / f"{name}.png").stat().st_size > 1000, name
        assert f"({name}.png)" in report
    for section in ("Accuracy and shape bias", "SAM across α", "WSAM variance per class", "LRP αβ",
                    "Parameter saliency", "Robust accuracy"):
        assert f"## {section}" in report
    out = capsys.readouterr().out
    numbers = {k: float(v) for k, v in re.findall(r"^  (\S+): (\S+)$", out, flags=re.M)}
    assert {"baseline_accuracy", "style_shape_bias", "sat_PGD_4_255", "seconds"} <= numbers.keys()
    assert all(math.isfinite(v) for v in numbers.values())
    cells = re.findall(r"\| (-?[0-9.e+-]+|nan|inf) ", report)
    assert cells and all(math.isfinite(float(c)) for c in cells)


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        main(["nope"])
