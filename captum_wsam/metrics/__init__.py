"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks."""

from .robust_accuracy import format_table, plot_robust_accuracy, robust_accuracy

__all__ = ["format_table", "plot_robust_accuracy", "robust_accuracy"]
