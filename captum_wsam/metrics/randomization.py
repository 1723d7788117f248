"""Sanity checks for attribution maps: the model-parameter and data randomization tests (one module each).

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292. An explanation :math:`E(x; \\theta)` that explains the model must depend on the learned parameters
:math:`\\theta` and on the relation between inputs and labels that the model learned:

.. math:: s_k = s\\big(M(x; \\theta), M(x; \\theta^{(k)})\\big), \\qquad
          s_\\pi = s\\big(M(x; \\theta), M(x; \\theta_\\pi)\\big)

- *model randomization* (Sec. 3, :mod:`captum_wsam.metrics.parameter_randomization`): re-initialize the parameters
  of layer after layer, from the top (``cascading``) or one layer at a time (``independent``), giving
  :math:`\\theta^{(k)}`;
- *data randomization* (Sec. 4, :mod:`captum_wsam.metrics.label_randomization`): train the same architecture on
  randomly permuted labels, giving :math:`\\theta_\\pi`;
- the maps :math:`M` and similarities :math:`s` (Spearman, SSIM, Pearson of HOG) are in
  :mod:`captum_wsam.metrics.sanity_maps`, the figures in :mod:`captum_wsam.metrics.randomization_plots`.

A method passes when the similarity drops. Every public name stays importable from this module.

Examples:
    >>> import torch
    >>> from captum.attr import Saliency
    >>> from captum_wsam.models import SmallCNN
    >>> result = model_randomization(Saliency, SmallCNN(width=4, depth=2), torch.rand(2, 3, 32, 32), [0, 1],
    ...                              progress=False)
    >>> result.layers[0], result.scores.shape, attribution_maps(torch.rand(2, 1, 4, 4), (32, 32)).shape
    ('classifier', torch.Size([5, 2]), torch.Size([2, 32, 32]))
"""

from __future__ import annotations

from .label_randomization import DataRandomizationResult, data_randomization
from .parameter_randomization import (
    ORDERS,
    RandomizationResult,
    model_randomization,
    parametrized_layers,
    reinitialize,
)
from .randomization_plots import plot_randomization, plot_randomized_maps
from .sanity_maps import SIMILARITY_NAMES, AttributionFactory, SimilarityFunc, attribution_maps, map_similarity

__all__ = [
    "ORDERS",
    "SIMILARITY_NAMES",
    "AttributionFactory",
    "DataRandomizationResult",
    "RandomizationResult",
    "SimilarityFunc",
    "attribution_maps",
    "data_randomization",
    "map_similarity",
    "model_randomization",
    "parametrized_layers",
    "plot_randomization",
    "plot_randomized_maps",
    "reinitialize",
]
