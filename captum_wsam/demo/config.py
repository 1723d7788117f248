"""The demo's settings: its data set and story (:class:`DemoData`), run sizes (:class:`DemoBudget`, ``QUICK``,
``FULL``), the whole configuration (:class:`DemoConfig`) and its checks (:func:`check_config`), done before any work.

The story is Geirhos, Rubisch, Michaelis, Bethge, Wichmann & Brendel (2019), "ImageNet-trained CNNs are biased
towards texture; increasing shape bias improves accuracy and robustness", ICLR, arXiv:1811.12231: on cue-conflict
images (shape of one class, texture of another) the demo measures

.. math:: \\text{shape bias} = \\frac{\\#\\{\\text{shape decisions}\\}}{\\#\\{\\text{shape decisions}\\} +
    \\#\\{\\text{texture decisions}\\}}

of models trained where the texture agrees with the shape class ``cue_agreement`` of the time. Used by
:mod:`captum_wsam.demo` (which re-exports every name).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from ..augment import StyleAugment
from ..data import ShapesTextures

MARKER = ".captum-wsam-demo"  # written into every report folder: only such a folder is ever replaced
MODELS = ("baseline", "style", "sat")
TITLES = {"baseline": "baseline", "style": "StyleAugment", "sat": "SAT"}
ACCURACY_TARGET = 0.9  # clean test accuracy every explained model reaches in full mode
LEARNING_RATE, BATCH_SIZE = 1e-2, 64


# ---------------------------------------------------------------------------------------------------------------------
# THE DEMO'S STORY: the data set and the augmentation of the style-trained model, in one place.
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DemoData:
    """The data set and the style augmentation of the demo (its story); everything else is sized by :class:`DemoConfig`.

    With ``texture_shortcut=True`` (``ShapesTextures``' ImageNet-like setting) texture is the easy cue: a plain model
    becomes texture-biased, and StyleAugment training -- which swaps textures but keeps shapes -- should raise its
    shape bias and lower its WSAM variance.

    Args:
        texture_shortcut: ``ShapesTextures(texture_shortcut=...)`` for the training and test sets and the
            cue-conflict set.
        cue_agreement: without ``texture_shortcut``, the probability that an object's texture matches its shape.
        style_p: probability that StyleAugment stylizes a training image.
        style_alpha: StyleAugment's α range (``None``: its default); α = 1 is the image, α = 0 the full style.
    """

    texture_shortcut: bool = True
    cue_agreement: float = 0.8
    style_p: float = 0.5
    style_alpha: tuple[float, float] | None = None

    def dataset(self, n: int, size: int, seed: int, cue_conflict: bool = False) -> ShapesTextures:
        """``n`` ShapesTextures images (labelled by shape) of this setting."""
        if self.texture_shortcut:
            return ShapesTextures(n=n, size=size, seed=seed, cue_conflict=cue_conflict, texture_shortcut=True)
        return ShapesTextures(n=n, size=size, seed=seed, cue_conflict=cue_conflict, cue_agreement=self.cue_agreement)

    def style_augment(self) -> StyleAugment:
        """The StyleAugment of the style-trained model (its default backend), also the stylizer of SAM and WSAM."""
        if self.style_alpha is None:
            return StyleAugment(p=self.style_p)
        return StyleAugment(alpha=self.style_alpha, p=self.style_p)

    def describe(self) -> str:
        if self.texture_shortcut:
            return ("texture shortcut: object and background carry the texture family of the shape class, so texture "
                    "fills the image and is the easier cue, as on ImageNet")
        return f"the object's texture matches its shape class {self.cue_agreement:.0%} of the time"


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/captum_wsam`` or ``~/.cache/captum_wsam``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "captum_wsam"


@dataclass(frozen=True)
class DemoBudget:
    """How much work the demo does: image side, data set sizes, epochs and evaluation sizes.

    Args:
        size: image side in pixels (32..224).
        n_train: training images.
        n_test: test images (and as many cue-conflict images).
        epochs: training epochs of each model.
        n_eval: test images of the costlier evaluations (WSAM variance, robust accuracy, parameter saliency).
        wsam_styles: styles of WSAM.
        pgd_steps: PGD steps of the robust-accuracy table.
    """

    size: int
    n_train: int
    n_test: int
    epochs: int
    n_eval: int
    wsam_styles: int
    pgd_steps: int


QUICK = DemoBudget(size=32, n_train=1000, n_test=300, epochs=4, n_eval=48, wsam_styles=3, pgd_steps=5)
FULL = DemoBudget(size=48, n_train=2000, n_test=600, epochs=8, n_eval=160, wsam_styles=4, pgd_steps=10)


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo`. ``quick`` shrinks every step (:data:`QUICK`, < 60 s on two CPU cores); the full
    run (:data:`FULL`) trains every model to at least 90 % clean test accuracy (< 5 min on two cores, no cache).

    Args:
        out: report folder; created, or replaced as a whole if it holds an earlier demo report.
        size: image side in pixels, 32..224 (``None``: the budget's, 32 in quick mode, 48 in full mode).
        quick: the small run.
        seed: seed of the data, the initial weights and the shuffling.
        progress: show progress bars (the stage lines are printed either way).
        cache_dir: folder of the trained-model cache (``None``: no cache).
        data: the data set and style augmentation (:class:`DemoData`).
        budget: explicit :class:`DemoBudget` (``None``: :data:`QUICK` or :data:`FULL`).
    """

    out: Path = Path("demo_out")
    size: int | None = None
    quick: bool = False
    seed: int = 0
    progress: bool = True
    cache_dir: Path | None = field(default_factory=default_cache_dir)
    data: DemoData = field(default_factory=DemoData)
    budget: DemoBudget | None = None

    @property
    def plan(self) -> DemoBudget:
        """The budget in force (``size`` overriding its image side)."""
        budget = self.budget if self.budget is not None else QUICK if self.quick else FULL
        return budget if self.size is None else replace(budget, size=self.size)


def check_config(config: DemoConfig) -> DemoConfig:
    """Validate every setting and the output folder before any work; return the config with ``out`` resolved.

    Raises:
        TypeError: a setting of the wrong type.
        ValueError: ``size`` outside [32, 224], a negative ``seed``, or an ``out`` that is a file, a folder this demo
            did not write (and not empty), or inside an unwritable folder.
    """
    if not isinstance(config, DemoConfig):
        raise TypeError(f"config must be a DemoConfig, got {type(config).__name__}")
    if config.size is not None and (isinstance(config.size, bool) or not isinstance(config.size, int)):
        raise TypeError(f"size must be an int, got {type(config.size).__name__}")
    if config.size is not None and not 32 <= config.size <= 224:
        raise ValueError(f"size must lie in [32, 224], got {config.size}")
    if isinstance(config.seed, bool) or not isinstance(config.seed, int) or config.seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {config.seed!r}")
    if not isinstance(config.data, DemoData):
        raise TypeError(f"data must be a DemoData, got {type(config.data).__name__}")
    if config.budget is not None and not isinstance(config.budget, DemoBudget):
        raise TypeError(f"budget must be a DemoBudget, got {type(config.budget).__name__}")
    for name, value in asdict(config.plan).items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"budget.{name} must be a positive int, got {value!r}")
    if not 32 <= config.plan.size <= 224:
        raise ValueError(f"budget.size must lie in [32, 224], got {config.plan.size}")
    out = Path(config.out).expanduser().resolve()
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the file '{out}'")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).exists():
        raise ValueError(f"out '{out}' is a non-empty folder that the demo did not write; the demo replaces its output "
                         "folder as a whole, so choose a new or empty folder")
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ValueError(f"out '{out}' cannot be written: '{parent}' is not a writable folder")
    return replace(config, out=out)


__all__ = [
    "ACCURACY_TARGET",
    "BATCH_SIZE",
    "FULL",
    "LEARNING_RATE",
    "MARKER",
    "MODELS",
    "QUICK",
    "TITLES",
    "DemoBudget",
    "DemoConfig",
    "DemoData",
    "check_config",
    "default_cache_dir",
]
