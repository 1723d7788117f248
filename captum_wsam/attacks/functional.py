"""Pure tensor maths of the attacks, one module per paper, re-exported here under the old path.

- :mod:`captum_wsam.attacks.sat_functional`: SAT (Mangla, Singh and Balasubramanian 2020, arXiv:2006.07828),
  :math:`x' = \\operatorname{clip}_{[0,1]}(x - \\epsilon g)` with :math:`g_i = s_i` with probability
  :math:`p_t = 1 - a^{t/10}` and a random sign otherwise;
- :mod:`captum_wsam.attacks.lpa3_functional`: LP-A3 (Yang et al. 2022, arXiv:2211.00824),
  :math:`\\max_{x'} \\|\\phi(x') - \\phi(x)\\|` s.t. :math:`\\log p(y|x) - \\log p(y|x') \\le b`, solved with the
  fast-Lagrangian steps of Laidlaw, Singla and Feizi (2021, arXiv:2006.12655).

LP-A3's training-side maths (sample selection: ``prediction_instability``, ``ema_update``, ``selection_threshold``)
lives in :mod:`captum_wsam.train.functional`; the old names here still work with a ``DeprecationWarning``.

Examples:
    >>> import torch
    >>> sat_probability(0), project_linf(torch.tensor([0.9]), torch.tensor([0.5]), 0.1).shape
    (0.0, torch.Size([1]))
"""

from __future__ import annotations

from .lpa3_functional import (
    feature_distance,
    label_log_prob,
    lagrangian_objective,
    lagrangian_schedule,
    lagrangian_step,
    normalize_flatten_features,
    normalized_gradient,
)
from .sat_functional import (
    boxes_to_masks,
    minmax_saliency,
    project_linf,
    sample_sat_params,
    sat_direction,
    sat_perturb,
    sat_probability,
    threshold_saliency,
    weak_saliency,
)

_MOVED_TO_TRAIN = ("ema_update", "prediction_instability", "selection_threshold")


def __getattr__(name: str) -> object:
    """LP-A3's training-side maths moved to :mod:`captum_wsam.train.functional`; the old names still work."""
    if name in _MOVED_TO_TRAIN:
        import warnings

        from ..train import functional as train_functional  # deprecated path: loaded only when an old name is used

        warnings.warn(f"captum_wsam.attacks.functional.{name} moved to captum_wsam.train.functional.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(train_functional, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "boxes_to_masks",
    "feature_distance",
    "label_log_prob",
    "lagrangian_objective",
    "lagrangian_schedule",
    "lagrangian_step",
    "minmax_saliency",
    "normalize_flatten_features",
    "normalized_gradient",
    "project_linf",
    "sample_sat_params",
    "sat_direction",
    "sat_perturb",
    "sat_probability",
    "threshold_saliency",
    "weak_saliency",
]
