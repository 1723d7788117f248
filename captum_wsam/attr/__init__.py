"""Captum attributions: SAM, WSAM, LRP αβ and parameter saliency (each a true ``captum.attr.Attribution``)."""

from .parameter_saliency import ParameterSaliency, ParameterSaliencyResult, PruningResult

__all__ = ["ParameterSaliency", "ParameterSaliencyResult", "PruningResult"]
