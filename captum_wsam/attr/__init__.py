"""Captum attributions: SAM, WSAM, LRP αβ and parameter saliency (each a true ``captum.attr.Attribution``)."""

from .lrp import AlphaBetaRule, LRPAlphaBeta, plot_relevance

__all__ = ["AlphaBetaRule", "LRPAlphaBeta", "plot_relevance"]
