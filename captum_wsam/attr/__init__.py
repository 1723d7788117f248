"""Captum attributions: SAM, WSAM, LRP αβ and parameter saliency (each a true ``captum.attr.Attribution``)."""

from .sam import SAM
from .visualization import has_signal, visualize_attr
from .wsam import WSAM

__all__ = ["SAM", "WSAM", "has_signal", "visualize_attr"]
