"""Plain supervised training and evaluation: the baseline every trainer of the package is compared with.

Cross-entropy training with AdamW and a one-cycle learning-rate schedule (Smith & Topin 2019, "Super-Convergence",
arXiv:1708.07120), which gets the :class:`~captum_wsam.models.SmallCNN` to high accuracy on ShapesTextures within
seconds of CPU time.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset

from .._checks import check_in_range, check_positive_int, check_type
from ..data.batches import as_loader, split_batch
from .evaluation import accuracy, predict
from .loop import AdversarialTrainer


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
    check_type(model, "model", nn.Module)
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_in_range(lr, "lr", 0.0, None, low_inclusive=False)
    if augment is not None and not callable(augment):
        raise TypeError(f"augment must be callable, got {type(augment).__name__}")
    loader = as_loader(data, batch_size, shuffle=True, seed=seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * len(loader))
    trainer = AdversarialTrainer(model, optimizer, scheduler=scheduler, scheduler_step="batch", augment=augment,
                                 progress=progress, seed=seed)
    history = trainer.fit(loader, epochs)
    return [{"loss": record["loss"], "accuracy": record["accuracy"]} for record in history]


__all__ = ["accuracy", "predict", "split_batch", "train_classifier"]
