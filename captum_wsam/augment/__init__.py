"""Kornia augmentations: StyleAugment and the shape/texture probes (each a true Kornia augmentation)."""

from .backend import StyleBackend, check_style_backend
from .jackson import JacksonStyleNet
from .linear_transfer import LinearStyleTransfer
from .plot import plot_style_grid
from .probes import RandomPatchShuffle, RandomSaturation, Saturation
from .style_augment import StyleAugment
from .style_bank import StyleBank, procedural_styles
from .texture_transfer import TextureTransfer

__all__ = [
    "JacksonStyleNet",
    "LinearStyleTransfer",
    "RandomPatchShuffle",
    "RandomSaturation",
    "Saturation",
    "StyleAugment",
    "StyleBackend",
    "StyleBank",
    "TextureTransfer",
    "check_style_backend",
    "plot_style_grid",
    "procedural_styles",
]
