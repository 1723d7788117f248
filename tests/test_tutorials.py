"""Every notebook in tutorials/ runs end to end (executed with nbclient, as a user would run it), and the outputs
stored in the repository are current: produced by one in-order run of exactly the stored code.

After editing a notebook, store fresh outputs with ``python tutorials/execute_notebooks.py NAME``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "tutorials").glob("*.ipynb"))
MAX_STORED_BYTES = 1_500_000


def _load_executor():
    spec = importlib.util.spec_from_file_location("execute_notebooks", ROOT / "tutorials" / "execute_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


executor = _load_executor()


def _figures(cell: nbformat.NotebookNode) -> int:
    return sum(any(key.startswith("image/") for key in output.get("data", {})) for output in cell.get("outputs", []))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_stored_outputs_are_current(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    hint = f"re-run `python tutorials/execute_notebooks.py {path.stem}`"
    # One in-order run of every code cell in a fresh kernel numbers them 1, 2, ..., N.
    assert [cell.execution_count for cell in code] == list(range(1, len(code) + 1)), f"not executed in order: {hint}"
    stale = [i for i, cell in enumerate(code)
             if cell.metadata.get(executor.SOURCE_HASH) != executor.source_hash(cell.source)]
    assert not stale, f"code cells {stale} changed since their outputs were stored: {hint}"
    assert not [o for cell in code for o in cell.outputs if o.output_type == "error"]
    assert path.stat().st_size < MAX_STORED_BYTES, f"{path.name} is {path.stat().st_size / 1e6:.1f} MB"
    assert "executed_seconds" in notebook.metadata.get("captum_wsam", {})


def test_source_hash_detects_an_edit() -> None:
    assert executor.source_hash("x = 1") == executor.source_hash("x = 1")
    assert executor.source_hash("x = 1") != executor.source_hash("x = 2")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_tutorial_runs(path: Path) -> None:
    stored = nbformat.read(path, as_version=4)
    executed, _ = executor.execute(path)
    errors = [o for cell in executed.cells if cell.cell_type == "code" for o in cell.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors
    # The executed cells are the stored ones, and each draws the figures that are stored for it.
    assert [cell.source for cell in executed.cells] == [cell.source for cell in stored.cells]
    assert [_figures(cell) for cell in executed.cells] == [_figures(cell) for cell in stored.cells]
