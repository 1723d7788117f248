"""Visualizations of what a network learned (the IN5400 lecture's toolbox): first-layer filters, activation
maximization, DeepDream and nearest neighbours in feature space. One concept per module; the shared image-optimization
maths is in :mod:`captum_wsam.visualize.functional`."""

from .activation_maximization import ActivationMaximizationResult, activation_maximization, plot_activation_maximization
from .deep_dream import deep_dream, octave_sizes
from .filters import first_conv, first_layer_filters, plot_first_layer_filters
from .neighbors import NeighborsResult, dataset_image, feature_neighbors, plot_feature_neighbors

__all__ = [
    "ActivationMaximizationResult",
    "NeighborsResult",
    "activation_maximization",
    "dataset_image",
    "deep_dream",
    "feature_neighbors",
    "first_conv",
    "first_layer_filters",
    "octave_sizes",
    "plot_activation_maximization",
    "plot_feature_neighbors",
    "plot_first_layer_filters",
]
