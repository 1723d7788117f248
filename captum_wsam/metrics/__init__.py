"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks."""

from .autoattack import AutoAttackResult, GradientMaskingReport
from .randomization import (
    DataRandomizationResult,
    RandomizationResult,
    attribution_maps,
    data_randomization,
    map_similarity,
    model_randomization,
    parametrized_layers,
    plot_randomization,
    plot_randomized_maps,
    reinitialize,
)
from .robust_accuracy import format_table, plot_robust_accuracy, robust_accuracy
from .shape_bias import shape_bias
from .similarity import (
    average_ranks,
    gaussian_window,
    hog,
    minmax_normalize,
    pearson_correlation,
    pearson_hog,
    spearman_correlation,
    ssim,
)
from .wsam_variance import WSAMVarianceResult, plot_wsam_variance, wsam_variance

__all__ = [
    "AutoAttackResult",
    "DataRandomizationResult",
    "GradientMaskingReport",
    "RandomizationResult",
    "WSAMVarianceResult",
    "attribution_maps",
    "average_ranks",
    "data_randomization",
    "format_table",
    "gaussian_window",
    "hog",
    "map_similarity",
    "minmax_normalize",
    "model_randomization",
    "parametrized_layers",
    "pearson_correlation",
    "pearson_hog",
    "plot_randomization",
    "plot_randomized_maps",
    "plot_robust_accuracy",
    "plot_wsam_variance",
    "reinitialize",
    "robust_accuracy",
    "shape_bias",
    "spearman_correlation",
    "ssim",
    "wsam_variance",
]
