r"""Shape bias of a classifier on cue-conflict images (Geirhos et al. 2019).

Geirhos, Rubisch, Michaelis, Bethge, Wichmann and Brendel (2019), "ImageNet-trained CNNs are biased towards texture;
increasing shape bias improves accuracy and robustness", ICLR, arXiv:1811.12231, show a classifier images whose
shape and texture belong to different classes and count its decisions that follow either cue:

.. math:: \text{shape bias} = \frac{\#\{\hat y = y_{\text{shape}}\}}
          {\#\{\hat y = y_{\text{shape}}\} + \#\{\hat y = y_{\text{texture}}\}}

over the images with :math:`y_{\text{shape}} \ne y_{\text{texture}}`. Zhang and Zhu (2019), "Interpreting
Adversarially Trained Convolutional Neural Networks", arXiv:1905.09797, use it to show that adversarial training
makes CNNs more shape-biased. Two protocols: ``"shapes_textures"``, cue-conflict images of
:class:`~captum_wsam.data.ShapesTextures` (``cue_conflict=True``, also with ``texture_shortcut=True``) read by a
classifier over their 6 classes; ``"geirhos"``, the paper's 1,280 stimuli (:class:`~captum_wsam.data.CueConflictFolder`)
read by an ImageNet classifier whose 1,000 probabilities are averaged into the 16 entry-level categories
(:func:`~captum_wsam.data.imagenet_to_geirhos16`).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checks import check_choice, check_finite, check_positive_int, check_type
from .._state import eval_mode
from ..data.batches import as_loader, renamed_data_argument
from ..data.cue_conflict import CueConflictFolder, imagenet_to_geirhos16

_PROTOCOLS = ("shapes_textures", "geirhos")


def _cue_labels(info: Any, name: str) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(info, dict) or "shape" not in info or "texture" not in info:
        raise ValueError(f"{name} must yield (images, labels, info) with info['shape'] and info['texture'] "
                         "(e.g. ShapesTextures(cue_conflict=True))")
    return torch.as_tensor(info["shape"]).reshape(-1), torch.as_tensor(info["texture"]).reshape(-1)


@renamed_data_argument("loader")
def shape_bias(
    model: nn.Module,
    data: DataLoader | Dataset | str | os.PathLike[str],
    batch_size: int = 256,
    return_counts: bool = False,
    progress: bool = False,
    protocol: str = "shapes_textures",
    transform: Callable[[Tensor], Tensor] | None = None,
) -> float | dict[str, float]:
    r"""Fraction of shape decisions among the decisions that match either cue (Geirhos et al. 2019).

    .. math:: \frac{\#\{\hat y = y_{\text{shape}}\}}
              {\#\{\hat y = y_{\text{shape}}\} + \#\{\hat y = y_{\text{texture}}\}}

    counted over images whose two cues differ (same-class stimuli are skipped, as in the paper). With
    ``protocol="geirhos"`` the decision is
    :math:`\hat y = \arg\max_k \frac{1}{|I_k|}\sum_{i\in I_k}\operatorname{softmax}(f(x))_i` over the 16
    entry-level categories. The model runs in eval mode without gradients; its modes are restored afterwards, even on
    error.

    Args:
        model: for ``"shapes_textures"`` a classifier returning logits over the data's classes; for ``"geirhos"`` an
            ImageNet classifier returning :math:`(B, 1000)` logits.
        data: a DataLoader or Dataset of ``(image, label, info)`` items with ``info["shape"]`` and
            ``info["texture"]`` (e.g. ``ShapesTextures(cue_conflict=True)``, or a
            :class:`~captum_wsam.data.CueConflictFolder`); with ``protocol="geirhos"`` also the stimulus folder
            itself. (``loader=`` is the deprecated name.)
        batch_size: batch size when ``data`` is a Dataset or a folder.
        return_counts: return a dict with ``shape_bias``, ``shape_decisions``, ``texture_decisions`` and ``images``
            (the cue-conflict images counted) instead of the ratio.
        progress: show a progress bar.
        protocol: ``"shapes_textures"`` or ``"geirhos"``.
        transform: with a folder, applied to each image in [0, 1] (e.g. the model's ``Normalize``).

    Returns:
        The shape bias in [0, 1] (NaN when no decision matches either cue), or the dict of counts.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> data = ShapesTextures(n=32, size=32, cue_conflict=True)
        >>> result = shape_bias(SmallCNN(), data, return_counts=True)
        >>> sorted(result), result["images"]
        (['images', 'shape_bias', 'shape_decisions', 'texture_decisions'], 32.0)

        The paper's protocol on a folder of stimuli and a torchvision ImageNet model (pretrained weights need a
        download, so they are not used here)::

            import torchvision
            weights = torchvision.models.ResNet50_Weights.IMAGENET1K_V2
            model = torchvision.models.resnet50(weights=weights)
            normalize = torchvision.transforms.Normalize(weights.transforms().mean, weights.transforms().std)
            shape_bias(model, "texture-vs-shape/stimuli/style-transfer-preprocessed-512", protocol="geirhos",
                       transform=normalize)
    """
    check_type(model, "model", nn.Module)
    check_choice(protocol, "protocol", _PROTOCOLS)
    check_positive_int(batch_size, "batch_size")
    if transform is not None and not callable(transform):
        raise TypeError(f"transform must be callable, got {type(transform).__name__}")
    if isinstance(data, (str, os.PathLike)):
        if protocol != "geirhos":
            raise ValueError(f"data may be a folder only with protocol='geirhos', got protocol={protocol!r}")
        data = CueConflictFolder(data, transform=transform)
    check_type(data, "data", (DataLoader, Dataset))
    batches = as_loader(data, batch_size)
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    shape_hits = texture_hits = images_counted = 0
    with eval_mode(model), torch.no_grad():
        for batch in tqdm(batches, desc="shape bias", disable=not progress):
            if not isinstance(batch, (tuple, list)) or len(batch) != 3:
                raise ValueError("data must yield (images, labels, info) batches with cue labels in info")
            images, _, info = batch
            shape, texture = _cue_labels(info, "data")
            check_finite(images, "data images")
            logits = model(images.to(device))
            if protocol == "geirhos":
                logits = imagenet_to_geirhos16(logits.softmax(dim=1))
            predicted = logits.argmax(dim=1).cpu()
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
