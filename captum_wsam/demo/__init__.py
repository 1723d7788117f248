"""The offline demo: every capability of the package on the embedded ShapesTextures data, in one report.

Trains a :class:`~captum_wsam.models.SmallCNN` three ways (plain, with :class:`~captum_wsam.augment.StyleAugment`,
with SAT), then writes ``report.md`` -- opening with findings written from the measured numbers -- and PNG figures:
accuracy and shape bias (Geirhos et al. 2019, arXiv:1811.12231), SAM across α and WSAM maps (Moreno-Vera et al.),
WSAM variance per class, LRP αβ (Bach et al. 2015) next to Captum's Grad-CAM, a ground-truth evaluation of the
explanations of every model (pointing game, relevance mass/rank accuracy on the object and its outline, deletion and
insertion AUC; :mod:`captum_wsam.demo.evaluation`), a parameter-saliency profile (Levin et al. 2021,
arXiv:2108.01335) and robust accuracy under PGD (Madry et al. 2018, arXiv:1706.06083). Everything runs on
the CPU with data the package makes itself (no download).

The data set and the augmentation of the style-trained model -- the demo's story -- are set in one place,
:class:`DemoData`. Trained models are cached under ``~/.cache/captum_wsam/demo`` (``$XDG_CACHE_HOME`` is honoured),
keyed by everything that determines them (settings, seed and the source of the code that trains them); a re-run
with the same settings explains the same models without training them again.

Files are written into a staging folder next to ``out``, each one atomically (temporary file, then rename), and the
staging folder replaces ``out`` as a whole at the end: an interrupted run leaves the previous report untouched and a
re-run never mixes old and new figures.

Layout: :mod:`captum_wsam.demo.config` (the data set, run sizes, settings and their checks),
:mod:`captum_wsam.demo.training` (training and the model cache), :mod:`captum_wsam.demo.report` (atomic files, the
markdown report, figure helpers), :mod:`captum_wsam.demo.evaluation` (the ground-truth evaluation of the
explanations) and :mod:`captum_wsam.demo.run` (:func:`run_demo`). Every name of the former module
``captum_wsam/demo.py`` is importable from here.
"""

from .config import (  # noqa: F401  (every name of the former module)
    ACCURACY_TARGET,
    BATCH_SIZE,
    FULL,
    LEARNING_RATE,
    MARKER,
    MODELS,
    QUICK,
    TITLES,
    DemoBudget,
    DemoConfig,
    DemoData,
    check_config,
    default_cache_dir,
)
from .evaluation import (  # noqa: F401
    MAX_IMAGES,
    RANDOM,
    STEPS,
    demo_methods,
    describe,
    evaluate_demo_explanations,
    table_rows,
)
from .report import Report, atomic_write, say, staged_folder  # noqa: F401
from .run import run_demo
from .training import _cache_key, trained_model  # noqa: F401

__all__ = [
    "FULL",
    "QUICK",
    "DemoBudget",
    "DemoConfig",
    "DemoData",
    "Report",
    "atomic_write",
    "check_config",
    "default_cache_dir",
    "demo_methods",
    "evaluate_demo_explanations",
    "run_demo",
    "staged_folder",
    "trained_model",
]
