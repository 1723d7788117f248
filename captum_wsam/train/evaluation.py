"""Predictions and accuracy of a classifier, clean or under an attack: what the training loop reports each epoch.

.. math:: \\operatorname{acc}_{A} = \\frac{1}{N} \\sum_i \\mathbb{1}\\big[\\arg\\max_k f_k(A(x_i, y_i)) = y_i\\big],
          \\qquad A = \\mathrm{id} \\text{ for the clean accuracy}

Robust accuracy under an attack follows Madry et al. (2018), "Towards Deep Learning Models Resistant to Adversarial
Attacks", arXiv:1706.06083. The model is evaluated in eval mode; every module's mode, ``requires_grad``, ``.grad``
and buffers are restored. (:func:`captum_wsam.metrics.robust_accuracy` is the table of several attacks at once; the
trainer uses this module so that ``train`` imports nothing from ``metrics``, the layer above it.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .._checks import check_positive_int, check_type
from .._state import eval_mode, kept_buffers, untouched
from ..data.batches import as_loader, split_batch

Attack = Callable[[Tensor, Tensor], Tensor]


def predict(
    model: nn.Module, data: Dataset | DataLoader | Tensor, batch_size: int = 256, attack: Attack | None = None
) -> Tensor:
    """Predicted classes of ``model`` (in eval mode, its state restored) on a tensor, Dataset or loader.

    .. math:: \\hat y_i = \\arg\\max_k f_k(A(x_i, y_i))

    Args:
        model: classifier returning logits.
        data: images :math:`(N, C, H, W)`, or a Dataset/DataLoader of ``(image, label[, info])`` items.
        batch_size: batch size for a tensor or Dataset.
        attack: optional ``(images, labels) -> images`` (a torchattacks attack on ``model``) applied to each batch
            (needs labels, so not with a tensor).

    Returns:
        Shape :math:`(N,)` class indices (on the CPU).

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> predict(SmallCNN(width=4), torch.rand(5, 3, 32, 32), batch_size=2).shape
        torch.Size([5])
    """
    return _predictions_and_labels(model, data, batch_size, attack)[0]


def accuracy(
    model: nn.Module, data: Dataset | DataLoader, batch_size: int = 256, attack: Attack | None = None
) -> float:
    """Top-1 accuracy of ``model`` on ``data``, clean or under ``attack``.

    .. math:: \\operatorname{acc}_{A} = \\frac{1}{N} \\sum_i \\mathbb{1}[\\hat y_i = y_i]

    Args:
        model: classifier returning logits.
        data: Dataset or DataLoader of ``(image, label[, info])`` items.
        batch_size: used when ``data`` is a Dataset.
        attack: optional attack ``(images, labels) -> images`` (robust accuracy).

    Returns:
        Accuracy in [0, 1].

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> 0.0 <= accuracy(SmallCNN(), ShapesTextures(n=16, size=32)) <= 1.0
        True
    """
    if isinstance(data, Tensor):
        raise TypeError("data must be a Dataset or DataLoader of (image, label[, info]) items, got a Tensor")
    predictions, labels = _predictions_and_labels(model, data, batch_size, attack)
    return (predictions == labels).float().mean().item()


def _predictions_and_labels(
    model: nn.Module, data: Dataset | DataLoader | Tensor, batch_size: int, attack: Attack | None
) -> tuple[Tensor, Tensor | None]:
    """One pass over ``data`` (a shuffling loader gives predictions and labels in the same order)."""
    check_type(model, "model", nn.Module)
    check_positive_int(batch_size, "batch_size")
    if attack is not None and not callable(attack):
        raise TypeError(f"attack must be callable (images, labels) -> images, got {type(attack).__name__}")
    if isinstance(data, Tensor):
        if attack is not None:
            raise ValueError("attack needs labels: pass a Dataset or DataLoader of (image, label) items, got a Tensor")
        batches: Any = ((x, None) for x in data.split(batch_size))
    else:
        batches = (split_batch(b)[:2] for b in as_loader(data, batch_size))
    device = next(model.parameters()).device
    predictions, labels = [], []
    with kept_buffers(model), eval_mode(model), untouched(model):
        for images, batch_labels in batches:
            images = images.to(device)
            if attack is not None:
                images = attack(images, batch_labels.to(device)).detach()
            with torch.no_grad():
                predictions.append(model(images).argmax(1).cpu())
            if batch_labels is not None:
                labels.append(torch.as_tensor(batch_labels).cpu())
    return torch.cat(predictions), (torch.cat(labels) if labels else None)


__all__ = ["accuracy", "predict"]
