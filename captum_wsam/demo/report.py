"""The demo's report: atomic files in a staging folder that replaces the report folder as a whole, the markdown
:class:`Report`, stage lines and the figure helpers (images, heat maps, colour bars, bar labels).

No paper here: this is the plumbing of :func:`captum_wsam.demo.run_demo`. The guarantee it gives is

.. math:: \\text{out}_{\\text{after}} \\in \\{\\text{out}_{\\text{before}}, \\text{report}_{\\text{new}}\\}

(an interrupted run leaves the previous report untouched; a finished one never mixes old and new files), with every
file written to a temporary name and renamed. Re-exported by :mod:`captum_wsam.demo`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .config import MARKER


# ---------------------------------------------------------------------------------------------------------------------
# Files: atomic writes into a staging folder that replaces the report folder as a whole
# ---------------------------------------------------------------------------------------------------------------------
def atomic_write(path: Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(temporary_path)`` next to ``path``, then rename it to ``path`` (the old file, if any, is replaced
    in one step; on error the temporary file is removed and ``path`` is untouched)."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        write(temporary)
        temporary.chmod(0o666 & ~_umask())  # mkstemp's 0600 -> what a plain open() would have given
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def staged_folder(out: Path) -> Iterator[Path]:
    """A fresh staging folder next to ``out``; on success it replaces ``out`` as a whole, on error it is removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    for stale in out.parent.glob(f".{out.name}.staging-*"):  # left by a killed run
        if (stale / MARKER).exists():
            shutil.rmtree(stale, ignore_errors=True)
    staging = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.staging-"))
    staging.chmod(0o777 & ~_umask())
    (staging / MARKER).write_text("written by `captum-wsam demo`; the next run replaces this folder as a whole\n")
    try:
        yield staging
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    old = None
    if out.exists():
        old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.old-"))
        os.replace(out, old / out.name)
    os.replace(staging, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


@dataclass
class Report:
    """Markdown lines, figures and numbers collected while the demo runs; written into ``folder``."""

    folder: Path
    lines: list[str] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)

    def section(self, title: str, *text: str) -> None:
        self.lines += ["", f"## {title}", "", *text]

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        def cell(value: Any) -> str:
            return f"{value:.3g}" if isinstance(value, float) else str(value)

        self.lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]

    def figure(self, fig: Any, name: str, caption: str) -> None:
        """Save ``fig`` as ``name.png`` (atomically) with a one-sentence caption of what to look for."""
        atomic_write(self.folder / f"{name}.png", lambda tmp: fig.savefig(tmp, format="png", dpi=90,
                                                                          bbox_inches="tight"))
        plt.close(fig)
        self.figures.append(name)
        self.lines += ["", f"![{name}]({name}.png)", "", f"*{caption}*"]

    def write(self, header: list[str]) -> Path:
        text = "\n".join([*header, *self.lines, ""])
        return atomic_write(self.folder / "report.md", lambda tmp: tmp.write_text(text, encoding="utf-8"))


def say(message: str) -> None:
    """Print a stage line that stays on screen (above any progress bar)."""
    tqdm.write(message)


# ---------------------------------------------------------------------------------------------------------------------
# Figures
# ---------------------------------------------------------------------------------------------------------------------
def _image(image: Tensor) -> np.ndarray:
    return image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy()


def _show(ax: Any, image: Tensor, title: str = "") -> None:
    ax.imshow(_image(image), interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _heat(ax: Any, image: Tensor, heat: Tensor, title: str, symmetric: bool = False) -> Any:
    """Heat map over a grey copy of ``image``: ``symmetric`` uses a diverging map centred on 0 (red +, blue -) and
    scaled to the 99th percentile of :math:`|R|`, else ``inferno`` on [0, max]. Returns the mappable (colour bar)."""
    heat = heat.detach().float().cpu()
    ax.imshow(_image(image).mean(-1), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    if symmetric:
        scale = float(torch.quantile(heat.abs().flatten(), 0.99).clamp(min=1e-12))
        mappable = ax.imshow((heat / scale).clamp(-1, 1).numpy(), cmap="seismic", vmin=-1, vmax=1, alpha=0.75,
                             interpolation="nearest")
    else:
        scale = float(heat.max().clamp(min=1e-12))
        mappable = ax.imshow((heat / scale).clamp(0, 1).numpy(), cmap="inferno", vmin=0, vmax=1, alpha=0.6,
                             interpolation="bilinear")
    ax.set_title(title, fontsize=8)
    ax.axis("off")
    return mappable


def _colorbar(fig: Any, mappable: Any, axes: Any, label: str) -> None:
    bar = fig.colorbar(mappable, ax=axes, shrink=0.6, pad=0.02)
    bar.set_label(label, fontsize=8)
    bar.ax.tick_params(labelsize=7)


def _bar_labels(ax: Any, bars: Any, values: list[float]) -> None:
    for bar, value in zip(bars, values):
        ax.annotate(f"{value:.2f}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center", va="bottom",
                    fontsize=8, xytext=(0, 2), textcoords="offset points")


__all__ = ["Report", "atomic_write", "say", "staged_folder"]
