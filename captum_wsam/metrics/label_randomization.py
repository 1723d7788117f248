"""The data randomization test of Adebayo et al. (2018, Sec. 4): does the map depend on what the model learned?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292. The same architecture, re-initialized, is trained on labels permuted by a seeded random
:math:`\\pi`, and its maps are compared with those of the model trained on the true labels:

.. math::
    \\theta_\\pi = \\arg\\min_\\theta \\sum_i \\mathcal{L}\\big(f_\\theta(x_i), y_{\\pi(i)}\\big), \\qquad
    s = s\\big(M(x; \\theta), M(x; \\theta_\\pi)\\big)

with :math:`M` and :math:`s` of :mod:`captum_wsam.metrics.sanity_maps`. A method passes when :math:`s` is low.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .._checks import check_images, check_in_range, check_positive_int
from .._typing import TargetType
from ..data.batches import as_loader, split_batch
from ..train import train_classifier
from .parameter_randomization import parametrized_layers, reinitialize
from .sanity_maps import AttributionFactory, SimilarityFunc, _check_common, _map_builder, map_similarity


@dataclass(frozen=True)
class DataRandomizationResult:
    """Outcome of :func:`data_randomization`.

    Attributes:
        scores: :math:`(B,)` similarity between the maps of the given model and of the model trained on permuted
            labels.
        similarity: name of the similarity measure.
        original: :math:`(B, H, W)` maps of the given model.
        randomized: :math:`(B, H, W)` maps of the model trained on permuted labels.
        history: per-epoch training ``loss`` / ``accuracy`` on the permuted labels (how far it memorized them).
    """

    scores: Tensor
    similarity: str
    original: Tensor
    randomized: Tensor
    history: list[dict[str, float]]


def _tensors_of(data: Any) -> tuple[Tensor, Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        images, labels = data
    elif isinstance(data, (Dataset, DataLoader)):
        batches = [split_batch(batch)[:2] for batch in as_loader(data, batch_size=256)]
        images = torch.cat([b[0] for b in batches])
        labels = torch.cat([torch.as_tensor(b[1]) for b in batches])
    else:
        raise TypeError(f"data must be an (images, labels) pair of tensors, a Dataset or a DataLoader, got {data!r}")
    check_images(images, "data images")
    if labels.shape != (len(images),) or labels.is_floating_point():
        raise ValueError(f"data labels must be {len(images)} integer class indices, got {tuple(labels.shape)}")
    return images, labels


def data_randomization(
    attribution_factory: AttributionFactory,
    model: nn.Module,
    inputs: Tensor,
    target: TargetType,
    data: tuple[Tensor, Tensor] | Dataset | DataLoader,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 5e-3,
    similarity: str | SimilarityFunc = "spearman",
    absolute: bool = True,
    upsample: bool = True,
    attribute_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DataRandomizationResult:
    """Data randomization test (Adebayo et al. 2018, Sec. 4): compare with a model trained on permuted labels.

    A copy of ``model`` is re-initialized (every parametrized layer, seeded) and trained with
    :func:`~captum_wsam.train.train_classifier` on ``data`` with labels :math:`y_{\\pi(i)}` for a seeded random
    permutation :math:`\\pi`; the result is :math:`s\\big(M(x; \\theta), M(x; \\theta_\\pi)\\big)` per sample. Keep
    ``data`` small: the point is a model that fits noise, which takes many epochs on large data.

    Args:
        attribution_factory: ``model -> attribution`` (see :func:`model_randomization`).
        model: the classifier trained on the true labels; never run nor modified.
        inputs: :math:`(B, C, H, W)` images to explain.
        target: Captum target for ``inputs``.
        data: training data ``(images, labels)`` tensors, or a Dataset/DataLoader of ``(image, label[, info])``.
        epochs: training epochs on the permuted labels.
        batch_size: training batch size.
        lr: peak learning rate.
        similarity: ``"spearman"``, ``"ssim"``, ``"pearson_hog"`` or a callable.
        absolute: compare absolute maps.
        upsample: upsample layer attributions to the input size.
        attribute_kwargs: extra keyword arguments of ``attribute``.
        seed: seed of the permutation, the re-initialization and the shuffling.
        progress: show training progress bars.

    Returns:
        A :class:`DataRandomizationResult` with ``scores`` :math:`(B,)` and the training history.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> data = (torch.rand(16, 3, 32, 32), torch.arange(16) % 6)
        >>> result = data_randomization(Saliency, SmallCNN(width=4, depth=2), data[0][:2], [0, 1], data,
        ...                             epochs=1, progress=False)
        >>> result.scores.shape, len(result.history)
        (torch.Size([2]), 1)
    """
    _check_common(attribution_factory, model, inputs, similarity, attribute_kwargs, seed)
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_in_range(lr, "lr", 0.0, None, low_inclusive=False)
    images, labels = _tensors_of(data)
    base, maps_of = _map_builder(attribution_factory, model, inputs, target, attribute_kwargs, absolute, upsample)
    original = maps_of(copy.deepcopy(base))
    shuffled = copy.deepcopy(base)
    for j, name in enumerate(parametrized_layers(shuffled)):
        reinitialize(shuffled.get_submodule(name), seed + j)
    permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    history = train_classifier(shuffled, TensorDataset(images, labels[permutation]), epochs=epochs,
                               batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    randomized = maps_of(shuffled.eval())
    return DataRandomizationResult(
        scores=map_similarity(original, randomized, similarity),
        similarity=similarity if isinstance(similarity, str) else getattr(similarity, "__name__", "custom"),
        original=original,
        randomized=randomized,
        history=history,
    )


__all__ = ["DataRandomizationResult", "data_randomization"]
