"""Captum attributions: SAM, WSAM, LRP αβ and parameter saliency (each a true ``captum.attr.Attribution``)."""

from .adapters import LogitsAdapter, logits_of
from .lrp import LRP, AlphaBetaRule, LayerLRP, LRPAlphaBeta, plot_relevance
from .lrp_composites import Composite, EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus
from .lrp_rules import AlphaBeta, Epsilon, Flat, Gamma, Pass, Rule, WSquare, ZBox, ZPlus
from .parameter_saliency import ParameterSaliency, ParameterSaliencyResult, PruningResult, plot_profile
from .sam import SAM
from .visualization import has_signal, visualize_attr
from .wsam import WSAM

__all__ = [
    "LRP",
    "SAM",
    "WSAM",
    "AlphaBeta",
    "AlphaBetaRule",
    "Composite",
    "Epsilon",
    "EpsilonAlpha2Beta1",
    "EpsilonGammaBox",
    "EpsilonPlus",
    "Flat",
    "Gamma",
    "LRPAlphaBeta",
    "LayerLRP",
    "LogitsAdapter",
    "ParameterSaliency",
    "ParameterSaliencyResult",
    "Pass",
    "PruningResult",
    "Rule",
    "WSquare",
    "ZBox",
    "ZPlus",
    "has_signal",
    "logits_of",
    "plot_profile",
    "plot_relevance",
    "visualize_attr",
]
