from __future__ import annotations

import math

import pytest

from captum_wsam.cli import main


def test_demo_quick_writes_report(tmp_path, capsys):
    assert main(["demo", "--quick", "--size", "32", "--out", str(tmp_path), "--no-progress"]) == 0
    report = (tmp_path / "report.md").read_text()
    assert "test_accuracy" in report
    out = capsys.readouterr().out
    value = float(out.split("test_accuracy:")[1].split()[0])
    assert math.isfinite(value) and 0 <= value <= 1


def test_unknown_command_exits():
    with pytest.raises(SystemExit):
        main(["nope"])
