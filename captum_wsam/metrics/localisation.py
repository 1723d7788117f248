"""Localisation metrics: how much of an attribution map falls on a known ground-truth region.

Four metrics, one paper each, all computed on the map :math:`M = \\sum_c A_c` (attributions summed over channels;
layer-sized maps such as Grad-CAM's are upsampled bilinearly to the region's size):

- *pointing game* -- Zhang, Bargal, Lin, Brandt, Shen & Sclaroff (2016/2018), "Top-down Neural Attention by
  Excitation Backprop", ECCV / IJCV, arXiv:1608.00507: a hit when the maximum of :math:`M` lies in the region (up to
  a tolerance of ``tolerance`` pixels; the paper uses 15 pixels on ImageNet-sized images);
- *relevance mass accuracy* and *relevance rank accuracy* -- Arras, Osman & Samek (2022), "CLEVR-XAI: A benchmark
  dataset for the ground truth evaluation of neural network explanations", Information Fusion, arXiv:2003.07258:
  the share of positive relevance inside the mask, and the share of the mask covered by the :math:`K = |GT|` most
  relevant pixels;
- *energy-based pointing game* -- Wang, Wang, Du, Yang, Zhang, Ding, Mardziel & Hu (2020), "Score-CAM:
  Score-Weighted Visual Explanations for Convolutional Neural Networks", CVPR workshops, arXiv:1910.01279: the share
  of the (ReLU, min-max normalised) map's energy inside the object's bounding box.

.. math::

    \\text{PG} = [\\arg\\max_p M_p \\in GT], \\quad
    \\text{RMA} = \\frac{\\sum_{p \\in GT} M^+_p}{\\sum_p M^+_p}, \\quad
    \\text{RRA} = \\frac{|\\operatorname{top}_K(M) \\cap GT|}{|GT|}, \\quad
    \\text{EPG} = \\frac{\\sum_{p \\in B} \\tilde M_p}{\\sum_p \\tilde M_p}

Ground truth is either boolean masks :math:`(N, H, W)` (or :math:`(N, 1, H, W)`, as ``ShapesTextures`` collates
them) or boxes :math:`(N, 4)` ``(x_min, y_min, x_max, y_max)`` in pixels of the attribution map, max exclusive
(torchvision order; upsample layer attributions to the input first). Scores are per sample, float tensors
:math:`(N,)`; a map with no positive relevance has no defined mass accuracy or energy share and scores NaN (as in
Quantus), so average with ``torch.nanmean``.
"""

from __future__ import annotations

from typing import Any

import torch
from captum.attr import LayerAttribution
from torch import Tensor

from .._checks import check_finite, check_positive_int, check_tensor, check_type
from ..data.functional import mask_to_box


def attribution_map(attributions: Any, size: tuple[int, int] | None = None, absolute: bool = False) -> Tensor:
    """The map :math:`M = \\sum_c A_c` (or :math:`|M|`) of attributions, upsampled to ``size`` when it differs.

    .. math:: M = \\sum_c A_c \\quad (\\text{or } |\\textstyle\\sum_c A_c| \\text{ with absolute})

    Args:
        attributions: :math:`(N, H, W)`, :math:`(N, 1, H, W)` or :math:`(N, C, H, W)` floating point (a 1-tuple
            from Captum is unwrapped).
        size: :math:`(H, W)` to upsample to (bilinear, ``LayerAttribution.interpolate``), ``None`` to keep.
        absolute: take the absolute value after summing over channels.

    Returns:
        Shape :math:`(N, H, W)`, detached.

    Examples:
        >>> attribution_map(torch.rand(2, 3, 4, 4), size=(8, 8)).shape
        torch.Size([2, 8, 8])
    """
    if isinstance(attributions, tuple) and len(attributions) == 1:
        attributions = attributions[0]
    check_tensor(attributions, "attributions", ndim=(3, 4), floating=True)
    check_type(absolute, "absolute", bool)
    maps = attributions.detach()
    maps = maps.sum(1) if maps.dim() == 4 else maps
    if absolute:
        maps = maps.abs()
    if size is not None and tuple(maps.shape[-2:]) != tuple(size):
        maps = LayerAttribution.interpolate(maps[:, None], tuple(size), "bilinear")[:, 0]
    return maps


def box_mask(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Boolean masks :math:`(N, H, W)` of boxes ``(x_min, y_min, x_max, y_max)`` (pixels, max exclusive).

    Pixel :math:`(i, j)` (row, column) is inside when :math:`x_{min} \\le j < x_{max}` and :math:`y_{min} \\le i <
    y_{max}`.

    Args:
        boxes: :math:`(N, 4)` in pixels.
        size: :math:`(H, W)` of the masks.

    Returns:
        Shape :math:`(N, H, W)`, bool.

    Examples:
        >>> box_mask(torch.tensor([[1.0, 0.0, 3.0, 2.0]]), (3, 4)).int().tolist()
        [[[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]]
    """
    check_tensor(boxes, "boxes", ndim=2)
    if boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (N, 4), got {tuple(boxes.shape)}")
    rows = torch.arange(size[0], device=boxes.device, dtype=torch.float64)[None, :, None]
    cols = torch.arange(size[1], device=boxes.device, dtype=torch.float64)[None, None, :]
    x_min, y_min, x_max, y_max = (boxes.double()[:, k, None, None] for k in range(4))
    return (cols >= x_min) & (cols < x_max) & (rows >= y_min) & (rows < y_max)


def region_masks(masks: Any, batch_size: int, size: tuple[int, int] | None = None, name: str = "masks") -> Tensor:
    """Validate ground truth and return boolean masks :math:`(N, H, W)`.

    Accepts boolean masks :math:`(N, H, W)` or :math:`(N, 1, H, W)`, or boxes :math:`(N, 4)` (which need ``size``).
    Raises before any work if the batch size differs from ``batch_size`` or a region is empty.

    Examples:
        >>> region_masks(torch.tensor([[0.0, 0.0, 2.0, 2.0]]), 1, size=(4, 4)).sum().item()
        4
    """
    check_tensor(masks, name, ndim=(2, 3, 4))
    if masks.dim() == 2:
        if masks.shape[1] != 4 or masks.dtype == torch.bool:
            raise ValueError(f"{name} must be boolean masks (N, H, W) or boxes (N, 4), got shape "
                             f"{tuple(masks.shape)} and dtype {masks.dtype}")
        if size is None:
            raise ValueError(f"{name} given as boxes (N, 4) need the map size; got size=None")
        regions = box_mask(masks, size)
    else:
        if masks.dtype != torch.bool:
            raise TypeError(f"{name} must be boolean masks (use masks.bool()) or boxes (N, 4), got dtype {masks.dtype}")
        if masks.dim() == 4:
            if masks.shape[1] != 1:
                raise ValueError(f"{name} must have shape (N, H, W) or (N, 1, H, W), got {tuple(masks.shape)}")
            masks = masks[:, 0]
        regions = masks
    if len(regions) != batch_size:
        raise ValueError(f"{name} must hold {batch_size} regions (one per attribution), got {len(regions)}")
    empty = (~regions.flatten(1).any(1)).nonzero().flatten()
    if len(empty):
        raise ValueError(f"{name} must not be empty; region of sample {int(empty[0])} has no pixel")
    return regions


def _prepare(attributions: Any, masks: Any, absolute: bool) -> tuple[Tensor, Tensor]:
    """Maps and regions of the same size: boxes take the map's size, maps are upsampled to the masks'."""
    if isinstance(attributions, tuple) and len(attributions) == 1:
        attributions = attributions[0]
    check_tensor(attributions, "attributions", ndim=(3, 4), floating=True)
    check_finite(attributions, "attributions")
    check_type(absolute, "absolute", bool)
    check_type(masks, "masks", Tensor)
    size = None if masks.dim() != 2 else tuple(attributions.shape[-2:])
    regions = region_masks(masks, len(attributions), size)
    maps = attribution_map(attributions, tuple(regions.shape[-2:]), absolute)
    return maps, regions.to(maps.device)


def pointing_game(attributions: Any, masks: Tensor, tolerance: int = 0, absolute: bool = False) -> Tensor:
    """Pointing game (Zhang et al. 2016, arXiv:1608.00507): is the map's maximum on the object?

    .. math::

        \\text{PG} = \\big[\\min_{q \\in GT} \\lVert p^* - q \\rVert_2 \\le \\tau\\big], \\qquad
        p^* = \\arg\\max_p M_p

    Ties take the first maximum in row-major order (``torch.argmax``), so a constant map is not rewarded; Quantus
    counts a hit when *any* tied maximum lies in the region, which gives the same score whenever the maximum is
    unique.

    Args:
        attributions: :math:`(N, H, W)`, :math:`(N, 1, H, W)` or :math:`(N, C, H, W)`, summed over channels.
        masks: boolean :math:`(N, H, W)` / :math:`(N, 1, H, W)` or boxes :math:`(N, 4)`.
        tolerance: :math:`\\tau`, the largest distance in pixels from the region that still counts as a hit (the
            paper: 15 on ImageNet-sized images).
        absolute: point at the maximum of :math:`|M|` instead of :math:`M`.

    Returns:
        Hits as 1.0 or 0.0 in the attributions' dtype, shape :math:`(N,)`.

    Examples:
        >>> maps = torch.zeros(2, 4, 4); maps[0, 1, 1] = 1.0; maps[1, 3, 3] = 1.0
        >>> masks = torch.zeros(2, 4, 4, dtype=torch.bool); masks[:, :2, :2] = True
        >>> pointing_game(maps, masks).tolist(), pointing_game(maps, masks, tolerance=3).tolist()
        ([1.0, 0.0], [1.0, 1.0])
    """
    check_positive_int(tolerance, "tolerance", allow_zero=True)
    maps, regions = _prepare(attributions, masks, absolute)
    n, h, w = maps.shape
    best = maps.reshape(n, -1).argmax(1)
    if tolerance == 0:
        return regions.reshape(n, -1).gather(1, best[:, None])[:, 0].to(maps.dtype)
    rows = torch.arange(h, device=maps.device)[None, :, None]
    cols = torch.arange(w, device=maps.device)[None, None, :]
    squared = (rows - (best // w)[:, None, None]) ** 2 + (cols - (best % w)[:, None, None]) ** 2
    nearest = squared.masked_fill(~regions, h * h + w * w + 1).reshape(n, -1).min(1).values
    return (nearest <= tolerance * tolerance).to(maps.dtype)


def relevance_mass_accuracy(attributions: Any, masks: Tensor, absolute: bool = False) -> Tensor:
    """Relevance mass accuracy (Arras, Osman & Samek 2022, arXiv:2003.07258): positive relevance inside the mask.

    .. math:: \\text{RMA} = \\frac{R_{within}}{R_{total}} = \\frac{\\sum_{p \\in GT} M^+_p}{\\sum_p M^+_p}, \\qquad
        M^+ = \\max(M, 0)

    CLEVR-XAI counts only positive relevance; ``absolute=True`` uses :math:`|M|` instead. A map without positive
    relevance scores NaN.

    Args:
        attributions: :math:`(N, H, W)`, :math:`(N, 1, H, W)` or :math:`(N, C, H, W)`, summed over channels.
        masks: boolean :math:`(N, H, W)` / :math:`(N, 1, H, W)` or boxes :math:`(N, 4)`.
        absolute: use :math:`|M|` instead of :math:`M^+`.

    Returns:
        Scores in [0, 1] (or NaN), shape :math:`(N,)`.

    Examples:
        >>> maps = torch.tensor([[[1.0, 3.0], [-2.0, 0.0]]])
        >>> masks = torch.tensor([[[False, True], [True, True]]])
        >>> relevance_mass_accuracy(maps, masks).tolist(), relevance_mass_accuracy(maps, masks, absolute=True).tolist()
        ([0.75], [0.8333333134651184])
    """
    maps, regions = _prepare(attributions, masks, absolute)
    relevance = maps.clamp(min=0)
    total = relevance.flatten(1).sum(1)
    within = (relevance * regions).flatten(1).sum(1)
    return torch.where(total > 0, within / total.clamp(min=torch.finfo(total.dtype).tiny), torch.nan)


def relevance_rank_accuracy(attributions: Any, masks: Tensor, absolute: bool = False) -> Tensor:
    """Relevance rank accuracy (Arras, Osman & Samek 2022, arXiv:2003.07258): the top-K pixels that hit the mask.

    .. math:: \\text{RRA} = \\frac{|P_{top K} \\cap GT|}{|GT|}, \\qquad K = |GT|

    with :math:`P_{top K}` the :math:`K` pixels of largest :math:`M`; ties are broken by row-major pixel order.

    Args:
        attributions: :math:`(N, H, W)`, :math:`(N, 1, H, W)` or :math:`(N, C, H, W)`, summed over channels.
        masks: boolean :math:`(N, H, W)` / :math:`(N, 1, H, W)` or boxes :math:`(N, 4)`.
        absolute: rank :math:`|M|` instead of :math:`M`.

    Returns:
        Scores in [0, 1], shape :math:`(N,)`.

    Examples:
        >>> maps = torch.tensor([[[4.0, 3.0], [2.0, 1.0]]])
        >>> relevance_rank_accuracy(maps, torch.tensor([[[True, False], [True, False]]])).tolist()
        [0.5]
    """
    maps, regions = _prepare(attributions, masks, absolute)
    n = len(maps)
    order = torch.argsort(maps.reshape(n, -1), dim=1, descending=True, stable=True)
    hits = regions.reshape(n, -1).gather(1, order).cumsum(1)
    size = regions.reshape(n, -1).sum(1)
    return hits.gather(1, (size - 1)[:, None])[:, 0].to(maps.dtype) / size.to(maps.dtype)


def energy_pointing_game(attributions: Any, masks: Tensor, use_box: bool = True, absolute: bool = False) -> Tensor:
    """Energy-based pointing game (Wang et al. 2020, Score-CAM, arXiv:1910.01279): map energy in the bounding box.

    .. math::

        \\text{EPG} = \\frac{\\sum_{p \\in B} \\tilde M_p}{\\sum_{p \\in B} \\tilde M_p + \\sum_{p \\notin B}
        \\tilde M_p}, \\qquad \\tilde M = \\frac{M^+ - \\min M^+}{\\max M^+ - \\min M^+}, \\;
        M^+ = \\max(M, 0)

    As in Score-CAM, the map goes through a ReLU and is min-max normalised before the energy is measured (unlike
    :func:`relevance_mass_accuracy`, the minimum is subtracted), and the region :math:`B` is the object's bounding
    box: masks are replaced by their bounding boxes unless ``use_box=False``. A constant map scores NaN.

    Args:
        attributions: :math:`(N, H, W)`, :math:`(N, 1, H, W)` or :math:`(N, C, H, W)`, summed over channels.
        masks: boolean :math:`(N, H, W)` / :math:`(N, 1, H, W)` or boxes :math:`(N, 4)`.
        use_box: measure the energy in the masks' bounding boxes (the paper); ``False`` uses the masks as given.
        absolute: use :math:`|M|` instead of :math:`M^+`.

    Returns:
        Scores in [0, 1] (or NaN), shape :math:`(N,)`.

    Examples:
        >>> maps = torch.tensor([[[2.0, 1.0], [1.0, 1.0]]])
        >>> masks = torch.tensor([[[True, False], [False, False]]])
        >>> energy_pointing_game(maps, masks).tolist()
        [1.0]
    """
    check_type(use_box, "use_box", bool)
    maps, regions = _prepare(attributions, masks, absolute)
    if use_box:
        regions = box_mask(mask_to_box(regions), tuple(regions.shape[-2:])).to(maps.device)
    relevance = maps.clamp(min=0).flatten(1)
    low, high = relevance.min(1, keepdim=True).values, relevance.max(1, keepdim=True).values
    span = high - low
    energy = (relevance - low) / span.clamp(min=torch.finfo(span.dtype).tiny)
    total = energy.sum(1)
    within = (energy * regions.flatten(1)).sum(1)
    return torch.where(span[:, 0] > 0, within / total.clamp(min=torch.finfo(total.dtype).tiny), torch.nan)


__all__ = [
    "attribution_map",
    "box_mask",
    "energy_pointing_game",
    "pointing_game",
    "region_masks",
    "relevance_mass_accuracy",
    "relevance_rank_accuracy",
]
