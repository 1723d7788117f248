"""Nearest neighbours in a layer's feature space: which training images does the network consider similar?

Krizhevsky, Sutskever & Hinton (2012), "ImageNet Classification with Deep Convolutional Neural Networks", NeurIPS,
Sec. 6.1 and Fig. 4: images whose feature vectors :math:`\\phi_\\ell(x)` at a layer (there the last hidden layer) lie
closest in Euclidean distance to the query's,

.. math::
    \\operatorname{kNN}(q) = \\operatorname{arg\\,top\\text{-}k}_{i} \\; -\\|\\phi_\\ell(q) - \\phi_\\ell(x_i)\\|_2

are similar for the network even when they differ pixel by pixel.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .._checks import check_images, check_positive_int, check_submodule, check_type
from .._state import eval_mode, untouched
from ..data.batches import as_loader, renamed_data_argument, split_batch
from ._capture import forward_capture


@dataclass(frozen=True)
class NeighborsResult:
    """Outcome of :func:`feature_neighbors`.

    Attributes:
        indices: :math:`(Q, k)` dataset indices of the neighbours, nearest first.
        distances: :math:`(Q, k)` Euclidean feature distances, ascending.
    """

    indices: Tensor
    distances: Tensor


@renamed_data_argument("dataset")
def dataset_image(data: Tensor | Dataset, index: int) -> Tensor:
    """Image :math:`(C, H, W)` number ``index`` of a tensor batch or of a Dataset of ``(image, label[, info])``.

    .. math:: x_i = \\text{data}[i] \\text{ (its image when the item is a tuple)}

    Args:
        data: :math:`(N, C, H, W)` tensor, or a Dataset (``dataset=`` still works, deprecated).
        index: :math:`i`.

    Returns:
        :math:`(C, H, W)`.

    Examples:
        >>> from torch.utils.data import TensorDataset
        >>> images = torch.rand(4, 3, 8, 8)
        >>> item = dataset_image(TensorDataset(images, torch.zeros(4)), 2)
        >>> item.shape, bool(item.equal(dataset_image(images, 2)))
        (torch.Size([3, 8, 8]), True)
    """
    if isinstance(data, Tensor):
        return data[index]
    item = data[index]
    return item[0] if isinstance(item, (tuple, list)) else item


@renamed_data_argument("dataset")
@torch.no_grad()
def feature_neighbors(
    model: nn.Module,
    layer: nn.Module | None,
    query: Tensor,
    data: Tensor | Dataset,
    k: int = 5,
    batch_size: int = 256,
    progress: bool = True,
) -> NeighborsResult:
    """The ``k`` data set images nearest to each query in the feature space of ``layer`` (Krizhevsky et al. 2012).

    .. math:: d_i = \\big\\|\\operatorname{vec}\\phi_\\ell(q) - \\operatorname{vec}\\phi_\\ell(x_i)\\big\\|_2

    computed exactly (differences, not the :math:`\\|a\\|^2 + \\|b\\|^2 - 2ab` shortcut), so a query that belongs to
    the dataset comes back first at distance 0.

    Args:
        model: the network; run in eval mode, left as found.
        layer: submodule whose (flattened) output is the feature vector; ``None`` uses the model output (logits).
        query: :math:`(Q, C, H, W)` query images.
        data: :math:`(N, C, H, W)` tensor, or a Dataset of ``(image, label[, info])`` items, in index order
            (``dataset=`` still works, with a ``DeprecationWarning``).
        k: neighbours per query, :math:`1 \\le k \\le N`.
        batch_size: dataset images per forward pass.
        progress: show a tqdm bar over the dataset.

    Returns:
        A :class:`NeighborsResult` with ``indices`` and ``distances`` of shape :math:`(Q, k)`.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> data = torch.rand(10, 3, 32, 32)
        >>> result = feature_neighbors(model, model.block2, data[3:5], data, k=2, progress=False)
        >>> result.indices.shape, result.indices[:, 0].tolist()
        (torch.Size([2, 2]), [3, 4])
    """
    check_type(model, "model", nn.Module)
    if layer is not None:
        check_submodule(layer, model, "layer")
    check_images(query, "query")
    check_type(data, "data", (Tensor, Dataset))
    if isinstance(data, Tensor):
        check_images(data, "data")
    size = len(data)
    check_positive_int(k, "k")
    if k > size:
        raise ValueError(f"k must be at most the data set size {size}, got {k}")
    check_positive_int(batch_size, "batch_size")
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else query.device

    def features(images: Tensor) -> Tensor:
        return forward_capture(model, layer, images.to(device))[1].flatten(1).double()

    with untouched(model, query), eval_mode(model):
        query_features = features(query)
        distances = []
        total = (size + batch_size - 1) // batch_size
        batches = data.split(batch_size) if isinstance(data, Tensor) else (
            split_batch(batch)[0] for batch in as_loader(data, batch_size))
        for images in tqdm(batches, total=total, desc="features", disable=not progress, leave=False):
            batch_features = features(images)
            if batch_features.shape[1] != query_features.shape[1]:
                raise ValueError(
                    f"data images must give features like the query's ({query_features.shape[1]}), "
                    f"got {batch_features.shape[1]}"
                )
            distances.append(torch.cdist(query_features, batch_features,
                                         compute_mode="donot_use_mm_for_euclid_dist"))
    all_distances = torch.cat(distances, 1)
    nearest, indices = all_distances.topk(k, dim=1, largest=False, sorted=True)
    return NeighborsResult(indices=indices.cpu(), distances=nearest.float().cpu())


@renamed_data_argument("dataset")
def plot_feature_neighbors(query: Tensor, data: Tensor | Dataset, result: NeighborsResult) -> Any:
    """Grid figure: one row per query, the query first then its neighbours (distance in each title).

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> data = torch.rand(6, 3, 8, 8)
        >>> result = NeighborsResult(torch.tensor([[0, 1]]), torch.tensor([[0.0, 1.0]]))
        >>> len(plot_feature_neighbors(data[:1], data, result).axes)
        3
    """
    import matplotlib.pyplot as plt

    check_images(query, "query")
    check_type(result, "result", NeighborsResult)
    if len(query) != len(result.indices):
        raise ValueError(f"query must hold the {len(result.indices)} queries of result, got {len(query)}")
    rows, cols = result.indices.shape[0], result.indices.shape[1] + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.2 * cols, 1.3 * rows), squeeze=False)
    for row in range(rows):
        panels = [(query[row], "query")] + [
            (dataset_image(data, int(i)), f"d={d:.2g}")
            for i, d in zip(result.indices[row].tolist(), result.distances[row].tolist())
        ]
        for ax, (image, title) in zip(axes[row], panels):
            ax.imshow(image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    return fig


__all__ = ["NeighborsResult", "dataset_image", "feature_neighbors", "plot_feature_neighbors"]
