"""WSAM variance: how much styling moves a class's explanation away from the unstyled Grad-CAM, per class.

Moreno-Vera, Medina & Poco, 2023, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker and
Their Influence in Image Classification" (ICAART 2023, DOI 10.5220/0011795400003417, arXiv:2308.14995), whose STL-10
table ranks classes by

.. math::

    \\mathrm{WSAM}^c_{variance} = \\frac{1}{Z\\,m} \\sum_{i=1}^{m} \\big\\lVert \\mathrm{WSAM}^c_i - y^c_i\\, I^c_i
    \\big\\rVert_2^2,

over the :math:`m` samples of class :math:`c` (their label), with :math:`I^c_i` the Grad-CAM map of the unstyled image
(α = 1), :math:`y^c_i` its softmax probability and :math:`Z` the number of map pixels. The loader is streamed and
only per-class sums are kept; under an initialised ``torch.distributed`` process group each rank takes every
``world_size``-th batch and the sums are all-reduced, so the result equals the single-process one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler
from tqdm.auto import tqdm

from .._checks import check_finite, check_positive_int, check_type
from ..attr._style_cam import grad_cam_and_probabilities, model_guard
from ..attr.functional import accumulate_per_class, variance_from_sums, wsam_variance_terms
from ..attr.wsam import WSAM
from ..data.batches import renamed_data_argument


@dataclass(frozen=True)
class WSAMVarianceResult:
    """Per-class WSAM variance.

    Attributes:
        variance: shape :math:`(K,)`, float64; ``nan`` for classes without samples.
        counts: samples per class, shape :math:`(K,)`.
        classes: class names (from ``loader.dataset.classes``) or ``None``.
    """

    variance: Tensor
    counts: Tensor
    classes: tuple[str, ...] | None = None

    def as_dict(self) -> dict[str, float]:
        """``{class name (or index): variance}``.

        Examples:
            >>> WSAMVarianceResult(torch.tensor([0.5, 1.0]), torch.tensor([2, 3]), ("a", "b")).as_dict()
            {'a': 0.5, 'b': 1.0}
        """
        names = self.classes if self.classes is not None else tuple(str(i) for i in range(len(self.variance)))
        return {name: float(v) for name, v in zip(names, self.variance.tolist())}


def _dataset_classes(loader: Any) -> tuple[str, ...] | None:
    classes = getattr(getattr(loader, "dataset", None), "classes", None)
    if classes is None:
        return None
    try:
        return tuple(str(c) for c in classes)
    except TypeError:
        return None


def _split_batch(batch: Any) -> tuple[Tensor, Tensor]:
    if not isinstance(batch, (list, tuple)) or len(batch) < 2:
        raise ValueError("loader must yield (images, labels, ...) batches")
    images, labels = batch[0], batch[1]
    if not isinstance(labels, Tensor):
        labels = torch.as_tensor(labels)
    return images, labels


@renamed_data_argument("loader")
def wsam_variance(
    wsam: WSAM, data: DataLoader | Any, num_classes: int | None = None, progress: bool = True
) -> WSAMVarianceResult:
    """Per-class WSAM variance over a data set, streamed (and sharded under ``torch.distributed``).

    .. math::

        \\mathrm{WSAM}^c_{variance} = \\frac{1}{Z\\,m_c} \\sum_{i: l_i = c} \\big\\lVert \\mathrm{WSAM}^{c}_i -
        y^{c}_i\\, I^{c}_i \\big\\rVert_2^2

    Each sample is explained for its label :math:`l_i = c`. The WSAM uses ``wsam``'s styles, intensities and
    default ``"probability"`` weighting; :math:`I^c_i` is Grad-CAM (with ReLU) of the same layer on the unstyled image.

    Args:
        wsam: the configured :class:`captum_wsam.attr.WSAM`.
        data: iterable of ``(images, labels, ...)`` batches (e.g. a ``DataLoader`` over ShapesTextures). Under an
            initialised process group, rank ``r`` of ``w`` processes batches ``r, r + w, ...`` unless the loader
            already uses a ``DistributedSampler``. The old name ``loader=`` still works with a
            ``DeprecationWarning``.
        num_classes: :math:`K`; default ``len(data.dataset.classes)``, else the model's output size.
        progress: show a tqdm progress bar (on rank 0).

    Returns:
        A :class:`WSAMVarianceResult` with ``variance`` :math:`(K,)` (float64), ``counts`` :math:`(K,)` and the
        class names.

    Examples:
        >>> from torch.utils.data import DataLoader
        >>> from captum_wsam.attr import WSAM
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN().eval()
        >>> loader = DataLoader(ShapesTextures(n=8, size=32), batch_size=4)
        >>> result = wsam_variance(WSAM(model, model.block3, alphas=(0.5,), styles=2), loader, progress=False)
        >>> result.variance.shape, result.classes[0], int(result.counts.sum())
        (torch.Size([6]), 'circle', 8)
    """
    check_type(wsam, "wsam", WSAM)
    if num_classes is not None:
        check_positive_int(num_classes, "num_classes")
    check_type(progress, "progress", bool)
    classes = _dataset_classes(data)
    if num_classes is None and classes is not None:
        num_classes = len(classes)
    if classes is not None and len(classes) != num_classes:
        classes = None
    distributed = dist.is_available() and dist.is_initialized()
    rank, world_size = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    presharded = isinstance(getattr(data, "sampler", None), DistributedSampler)

    sums: Tensor | None = None
    counts: Tensor | None = None
    iterator = tqdm(data, desc="WSAM variance", disable=not progress or rank != 0, leave=False)
    for index, batch in enumerate(iterator):
        if distributed and not presharded and index % world_size != rank:
            continue
        images, labels = _split_batch(batch)
        check_finite(images, f"images of batch {index}")
        with model_guard(wsam.forward_func, images):
            maps, probabilities, _ = grad_cam_and_probabilities(
                wsam.forward_func, wsam.layer, images.detach(), labels, device_ids=wsam.device_ids,
                reshape_transform=wsam.reshape_transform,
            )
        if len(maps) != 1:
            raise ValueError(f"wsam.layer must produce a single tensor, got {len(maps)}")
        attribution = wsam.attribute(images, target=labels)
        terms = wsam_variance_terms(attribution, maps[0], probabilities).double()
        if sums is None:
            if num_classes is None:
                with torch.no_grad(), model_guard(wsam.forward_func, images):
                    num_classes = int(wsam.forward_func(images[:1]).shape[1])
            sums = torch.zeros(num_classes, dtype=torch.float64, device=terms.device)
            counts = torch.zeros_like(sums)
        accumulate_per_class(sums, counts, terms, labels)

    if num_classes is None and sums is None:
        raise ValueError("num_classes must be given when the loader (or this rank's shard) yields no batch")
    if sums is None or counts is None:
        sums = torch.zeros(num_classes, dtype=torch.float64)  # type: ignore[arg-type]
        counts = torch.zeros_like(sums)
    if distributed:
        totals = torch.stack([sums, counts])
        dist.all_reduce(totals, op=dist.ReduceOp.SUM)
        sums, counts = totals[0], totals[1]
    return WSAMVarianceResult(variance_from_sums(sums, counts).cpu(), counts.round().long().cpu(), classes)


def plot_wsam_variance(result: WSAMVarianceResult, ax: Any = None, sort: bool = True, title: str | None = None) -> Any:
    """Bar chart of the per-class WSAM variance (the paper's STL-10 table as a figure).

    Args:
        result: from :func:`wsam_variance`.
        ax: matplotlib axes to draw on (a new figure when ``None``).
        sort: order classes by increasing variance, as the paper's table.
        title: axes title.

    Returns:
        The matplotlib ``Axes``.

    Examples:
        >>> result = WSAMVarianceResult(torch.tensor([0.3, 0.1]), torch.tensor([4, 4]), ("ship", "airplane"))
        >>> [t.get_text() for t in plot_wsam_variance(result).get_xticklabels()]
        ['airplane', 'ship']
    """
    import matplotlib.pyplot as plt

    check_type(result, "result", WSAMVarianceResult)
    items = list(result.as_dict().items())
    if sort:
        items.sort(key=lambda item: (item[1] != item[1], item[1]))  # nan last
    if ax is None:
        _, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(items)), 3.0))
    names, values = zip(*items) if items else ((), ())
    positions = list(range(len(names)))
    ax.bar(positions, values, color="tab:blue")
    ax.set_xticks(positions)
    ax.set_xticklabels(names, rotation=30, ha="right")
    ax.set_ylabel("WSAM variance")
    ax.set_title(title if title is not None else "WSAM variance per class")
    return ax


__all__ = ["WSAMVarianceResult", "plot_wsam_variance", "wsam_variance"]
