"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks, localisation and faithfulness."""

from .adapters import captum_faithfulness, captum_localisation, quantus_explain_func, quantus_metric
from .autoattack import AutoAttackResult, GradientMaskingReport
from .explanation_evaluation import ExplanationEvaluation, evaluate_explanations, outline_mask
from .faithfulness import (
    DeletionInsertionResult,
    ROADResult,
    deletion_insertion,
    gaussian_blur,
    noisy_linear_imputation,
    plot_faithfulness,
    road,
)
from .localisation import (
    box_mask,
    energy_pointing_game,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
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
    "DeletionInsertionResult",
    "ExplanationEvaluation",
    "GradientMaskingReport",
    "ROADResult",
    "RandomizationResult",
    "WSAMVarianceResult",
    "attribution_maps",
    "average_ranks",
    "box_mask",
    "captum_faithfulness",
    "captum_localisation",
    "data_randomization",
    "deletion_insertion",
    "energy_pointing_game",
    "evaluate_explanations",
    "format_table",
    "gaussian_blur",
    "gaussian_window",
    "hog",
    "map_similarity",
    "minmax_normalize",
    "model_randomization",
    "noisy_linear_imputation",
    "outline_mask",
    "parametrized_layers",
    "pearson_correlation",
    "pearson_hog",
    "plot_faithfulness",
    "plot_randomization",
    "plot_randomized_maps",
    "plot_robust_accuracy",
    "plot_wsam_variance",
    "pointing_game",
    "quantus_explain_func",
    "quantus_metric",
    "reinitialize",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
    "road",
    "robust_accuracy",
    "shape_bias",
    "spearman_correlation",
    "ssim",
    "wsam_variance",
]
