"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks."""

from .shape_bias import shape_bias
from .wsam_variance import WSAMVarianceResult, plot_wsam_variance, wsam_variance

__all__ = ["WSAMVarianceResult", "plot_wsam_variance", "shape_bias", "wsam_variance"]
