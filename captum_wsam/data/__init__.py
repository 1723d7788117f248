"""Embedded data: procedural, seeded data sets that need no download (the default data of demos and tests)."""

from .batches import as_loader, split_batch
from .functional import SHAPES, TEXTURES
from .shapes_textures import ShapesTextures, flip_labels

__all__ = ["SHAPES", "TEXTURES", "ShapesTextures", "as_loader", "flip_labels", "split_batch"]
