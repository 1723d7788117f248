"""Captum attributions: SAM, WSAM, LRP αβ and parameter saliency (each a true ``captum.attr.Attribution``)."""

from .adapters import LogitsAdapter, logits_of
from .lrp import AlphaBetaRule, LRPAlphaBeta, plot_relevance
from .parameter_saliency import ParameterSaliency, ParameterSaliencyResult, PruningResult, plot_profile
from .sam import SAM
from .visualization import has_signal, visualize_attr
from .wsam import WSAM

__all__ = [
    "SAM",
    "WSAM",
    "AlphaBetaRule",
    "LRPAlphaBeta",
    "LogitsAdapter",
    "ParameterSaliency",
    "ParameterSaliencyResult",
    "PruningResult",
    "has_signal",
    "logits_of",
    "plot_profile",
    "plot_relevance",
    "visualize_attr",
]
