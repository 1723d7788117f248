"""Kornia augmentations: StyleAugment and the shape/texture probes (each a true Kornia augmentation)."""

from .linear_transfer import LinearStyleTransfer
from .style_augment import StyleAugment
from .style_bank import StyleBank, procedural_styles

__all__ = ["LinearStyleTransfer", "StyleAugment", "StyleBank", "procedural_styles"]
