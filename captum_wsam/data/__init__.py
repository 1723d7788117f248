"""Embedded data: procedural, seeded data sets that need no download (the default data of demos and tests)."""

from .batches import IndexedDataset, as_loader, split_batch
from .cue_conflict import GEIRHOS_CATEGORIES, CueConflictFolder, imagenet_to_geirhos16
from .functional import SHAPES, TEXTURES
from .shapes_textures import ShapesTextures, flip_labels, texture_swatches

__all__ = [
    "GEIRHOS_CATEGORIES",
    "SHAPES",
    "TEXTURES",
    "CueConflictFolder",
    "IndexedDataset",
    "ShapesTextures",
    "as_loader",
    "flip_labels",
    "imagenet_to_geirhos16",
    "split_batch",
    "texture_swatches",
]
