"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks."""

from .shape_bias import shape_bias

__all__ = ["shape_bias"]
