"""Kornia augmentations: StyleAugment and the shape/texture probes (each a true Kornia augmentation)."""
