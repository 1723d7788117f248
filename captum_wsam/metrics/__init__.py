"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks."""

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

__all__ = [
    "DataRandomizationResult",
    "RandomizationResult",
    "attribution_maps",
    "average_ranks",
    "data_randomization",
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
    "reinitialize",
    "spearman_correlation",
    "ssim",
]
