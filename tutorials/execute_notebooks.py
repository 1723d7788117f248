"""Execute the tutorials and store their outputs in the repository (what GitHub and the docs site show).

Run it after editing a notebook: ``python tutorials/execute_notebooks.py [NAME ...]`` (all notebooks by default).
Each notebook runs top to bottom in a fresh kernel with nbclient, as ``make test`` runs it; the outputs, the wall
time and, per code cell, the SHA-256 of the source that produced the outputs are written back.
``tests/test_tutorials.py`` checks that every stored code cell was executed in that run and that its source still has
that hash (the stored outputs are current).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOURCE_HASH = "executed_source_sha256"


def source_hash(source: str) -> str:
    """SHA-256 of a cell's source, the stamp that ties stored outputs to the code that produced them."""
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def kernel_environment() -> dict[str, str]:
    """The kernel imports this checkout and shows no progress bars."""
    return {"PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]), "TQDM_DISABLE": "1"}


def execute(path: Path, timeout: int = 900) -> tuple[nbformat.NotebookNode, float]:
    """Run ``path`` in a fresh kernel (working directory: a scratch folder); returns the notebook and its wall time."""
    notebook = nbformat.read(path, as_version=4)
    previous = {key: os.environ.get(key) for key in kernel_environment()}
    os.environ.update(kernel_environment())
    try:
        with tempfile.TemporaryDirectory() as scratch:
            client = NotebookClient(notebook, timeout=timeout, kernel_name="python3", record_timing=False,
                                    resources={"metadata": {"path": scratch}})
            start = time.perf_counter()
            client.execute()
            seconds = time.perf_counter() - start
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return notebook, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="notebook names without .ipynb (default: all)")
    args = parser.parse_args()
    paths = [HERE / f"{name}.ipynb" for name in args.names] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        notebook, seconds = execute(path)
        for cell in notebook.cells:
            if cell.cell_type == "code":
                cell.metadata[SOURCE_HASH] = source_hash(cell.source)
        notebook.metadata["captum_wsam"] = {
            "executed_seconds": round(seconds, 1),
            "executed_on": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        }
        nbformat.write(notebook, path)
        print(f"{path.name}: {seconds:.0f} s, {path.stat().st_size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
