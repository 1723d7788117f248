"""Metrics over data sets: shape bias, WSAM variance, robust accuracy, sanity checks."""
