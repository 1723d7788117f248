r"""Shape bias of a classifier on cue-conflict images (Geirhos et al. 2019).

Geirhos, Rubisch, Michaelis, Bethge, Wichmann and Brendel (2019), "ImageNet-trained CNNs are biased towards texture;
increasing shape bias improves accuracy and robustness", ICLR, arXiv:1811.12231, show a classifier images whose
shape and texture belong to different classes and count its decisions that follow either cue:

.. math:: \text{shape bias} = \frac{\#\{\hat y = y_{\text{shape}}\}}
          {\#\{\hat y = y_{\text{shape}}\} + \#\{\hat y = y_{\text{texture}}\}}

over the images with :math:`y_{\text{shape}} \ne y_{\text{texture}}`. Zhang and Zhu (2019), "Interpreting
Adversarially Trained Convolutional Neural Networks", arXiv:1905.09797, use it to show that adversarial training
makes CNNs more shape-biased. Here the cue-conflict images come from
:class:`~captum_wsam.data.ShapesTextures` (``cue_conflict=True``), whose items carry both cue labels.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checks import check_positive_int, check_type
from .._state import eval_mode


def _cue_labels(info: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(info, dict) or "shape" not in info or "texture" not in info:
        raise ValueError(f"{name} must yield (images, labels, info) with info['shape'] and info['texture'] "
                         "(e.g. ShapesTextures(cue_conflict=True))")
    return torch.as_tensor(info["shape"]).reshape(-1), torch.as_tensor(info["texture"]).reshape(-1)


def shape_bias(
    model: nn.Module,
    loader: DataLoader | Dataset,
    batch_size: int = 256,
    return_counts: bool = False,
    progress: bool = False,
) -> float | dict[str, float]:
    r"""Fraction of shape decisions among the decisions that match either cue (Geirhos et al. 2019).

    .. math:: \frac{\#\{\hat y = y_{\text{shape}}\}}
              {\#\{\hat y = y_{\text{shape}}\} + \#\{\hat y = y_{\text{texture}}\}}

    counted over images whose two cues differ (others are skipped). The model runs in eval mode without gradients;
    its modes are restored afterwards, even on error.

    Args:
        model: classifier returning logits over the shape/texture classes.
        loader: a DataLoader or Dataset of ``(image, label, info)`` items with ``info["shape"]`` and
            ``info["texture"]``, e.g. ``ShapesTextures(cue_conflict=True)``.
        batch_size: batch size when ``loader`` is a Dataset.
        return_counts: return a dict with ``shape_bias``, ``shape_decisions``, ``texture_decisions`` and ``images``
            (the cue-conflict images counted) instead of the ratio.
        progress: show a progress bar.

    Returns:
        The shape bias in [0, 1] (NaN when no decision matches either cue), or the dict of counts.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> data = ShapesTextures(n=32, size=32, cue_conflict=True)
        >>> result = shape_bias(SmallCNN(), data, return_counts=True)
        >>> sorted(result), result["images"]
        (['images', 'shape_bias', 'shape_decisions', 'texture_decisions'], 32.0)
    """
    check_type(model, "model", nn.Module)
    check_type(loader, "loader", (DataLoader, Dataset))
    check_positive_int(batch_size, "batch_size")
    batches = loader if isinstance(loader, DataLoader) else DataLoader(loader, batch_size=batch_size)
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    shape_hits = texture_hits = images_counted = 0
    with eval_mode(model), torch.no_grad():
        for batch in tqdm(batches, desc="shape bias", disable=not progress):
            if not isinstance(batch, (tuple, list)) or len(batch) != 3:
                raise ValueError("loader must yield (images, labels, info) batches with cue labels in info")
            images, _, info = batch
            shape, texture = _cue_labels(info, "loader")
            predicted = model(images.to(device)).argmax(dim=1).cpu()
            conflict = shape != texture
            shape_hits += int(((predicted == shape) & conflict).sum())
            texture_hits += int(((predicted == texture) & conflict).sum())
            images_counted += int(conflict.sum())
    decisions = shape_hits + texture_hits
    bias = shape_hits / decisions if decisions else math.nan
    if return_counts:
        return {"shape_bias": bias, "shape_decisions": float(shape_hits), "texture_decisions": float(texture_hits),
                "images": float(images_counted)}
    return bias


__all__ = ["shape_bias"]
