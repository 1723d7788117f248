"""Kornia augmentations: StyleAugment and the shape/texture probes (each a true Kornia augmentation)."""

from .linear_transfer import LinearStyleTransfer
from .probes import RandomPatchShuffle, RandomSaturation, Saturation
from .style_augment import StyleAugment
from .style_bank import StyleBank, procedural_styles

__all__ = [
    "LinearStyleTransfer",
    "RandomPatchShuffle",
    "RandomSaturation",
    "Saturation",
    "StyleAugment",
    "StyleBank",
    "procedural_styles",
]
