"""Plain supervised training and evaluation: the baseline every trainer of the package is compared with.

Cross-entropy training with AdamW and a one-cycle learning-rate schedule (Smith & Topin 2019, "Super-Convergence",
arXiv:1708.07120), which gets the :class:`~captum_wsam.models.SmallCNN` to high accuracy on ShapesTextures within
seconds of CPU time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .._checks import check_in_range, check_positive_int, check_type


def split_batch(batch: Any) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Split a DataLoader batch into ``(images, labels, info)``; ``info`` is ``{}`` for ``(images, labels)`` batches."""
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        images, labels = batch[0], batch[1]
        info = batch[2] if len(batch) == 3 else {}
        return images, labels, info
    raise TypeError(f"batch must be (images, labels) or (images, labels, info), got {type(batch).__name__}")


def _as_loader(data: Dataset | DataLoader, batch_size: int, shuffle: bool, seed: int) -> DataLoader:
    if isinstance(data, DataLoader):
        return data
    g = torch.Generator().manual_seed(seed)
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=g)


@torch.no_grad()
def predict(model: nn.Module, data: Dataset | DataLoader | Tensor, batch_size: int = 256) -> Tensor:
    """Predicted classes :math:`(N,)` of ``model`` (in eval mode, its mode restored) on a tensor, Dataset or loader."""
    was_training = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        device = next(model.parameters()).device
        if isinstance(data, Tensor):
            return torch.cat([model(x.to(device)).argmax(1).cpu() for x in data.split(batch_size)])
        loader = _as_loader(data, batch_size, False, 0)
        return torch.cat([model(split_batch(b)[0].to(device)).argmax(1).cpu() for b in loader])
    finally:
        for module, flag in was_training:
            module.training = flag


def accuracy(model: nn.Module, data: Dataset | DataLoader, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` on ``data`` (a Dataset or DataLoader of ``(image, label[, info])`` items).

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> 0.0 <= accuracy(SmallCNN(), ShapesTextures(n=16, size=32)) <= 1.0
        True
    """
    loader = _as_loader(data, batch_size, False, 0)
    labels = torch.cat([split_batch(b)[1] for b in loader])
    return (predict(model, loader) == labels).float().mean().item()


def train_classifier(
    model: nn.Module,
    data: Dataset | DataLoader,
    epochs: int = 3,
    batch_size: int = 64,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    seed: int = 0,
    progress: bool = True,
    augment: Callable[[Tensor], Tensor] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` with cross-entropy, AdamW and a one-cycle schedule; return per-epoch ``loss`` and ``accuracy``.

    .. math:: \\min_\\theta \\; \\mathbb{E}_{(x, y)} \\big[-\\log \\operatorname{softmax}(f_\\theta(x))_y\\big]

    Args:
        model: classifier returning logits :math:`(B, K)`; trained in place, left in eval mode.
        data: Dataset or DataLoader of ``(image, label[, info])`` items.
        epochs: passes over the data.
        batch_size: used when ``data`` is a Dataset.
        lr: peak learning rate.
        weight_decay: AdamW weight decay.
        seed: shuffling seed (when ``data`` is a Dataset).
        progress: show a tqdm bar.
        augment: optional batch augmentation applied to each training batch on the model's device (e.g. a Kornia
            ``AugmentationSequential`` or :class:`~captum_wsam.augment.StyleAugment`).

    Returns:
        One dict per epoch with the mean training ``loss`` and running training ``accuracy``.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> history = train_classifier(SmallCNN(width=4), ShapesTextures(n=32, size=32), epochs=1, progress=False)
        >>> sorted(history[0])
        ['accuracy', 'loss']
    """
    from .adversarial import AdversarialTrainer  # the one training loop of the package

    check_type(model, "model", nn.Module)
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_in_range(lr, "lr", 0.0, None, low_inclusive=False)
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be callable, got {type(augment).__name__}")
    loader = _as_loader(data, batch_size, True, seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
    trainer = AdversarialTrainer(model, optimizer, scheduler=scheduler, scheduler_step="batch", augment=augment,
                                 progress=progress, seed=seed)
    history = trainer.fit(loader, epochs)
    return [{"loss": record["loss"], "accuracy": record["accuracy"]} for record in history]

__all__ = ["accuracy", "predict", "split_batch", "train_classifier"]
