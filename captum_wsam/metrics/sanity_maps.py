"""Attribution maps made comparable, and their similarity: what the sanity checks of Adebayo et al. measure.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292, compare the explanation of a trained model with the explanation of a changed one through

.. math::

    M(x; \\theta) = \\operatorname{up}\\Big(\\sum_c \\big|A_c(x; \\theta)\\big|\\Big), \\qquad
    s\\big(M(x; \\theta), M(x; \\theta')\\big)

with :math:`A` any Captum attribution, :math:`\\operatorname{up}` bilinear upsampling of layer-sized maps and
:math:`s` the Spearman rank correlation, SSIM or the Pearson correlation of HOG features
(:mod:`captum_wsam.metrics.similarity`). The attribution is built by a *factory* called with each deep copy of the
model (in eval mode), e.g. ``lambda m: LayerGradCam(m, m.block4)``, so layer references follow the copy and the
user's model is never run, modified or hooked. Used by :mod:`captum_wsam.metrics.parameter_randomization` and
:mod:`captum_wsam.metrics.label_randomization`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import torch
from captum.attr import LayerAttribution
from torch import Tensor, nn

from .._checks import check_choice, check_images, check_positive_int, check_target, check_type
from .._typing import TargetType
from .similarity import minmax_normalize, pearson_hog, spearman_correlation, ssim

#: Builds an attribution object (anything with ``attribute(inputs, target=..., **kwargs)``) for a model.
AttributionFactory = Callable[[nn.Module], Any]
#: Compares two batches of maps :math:`(B, H, W)` and returns :math:`(B,)` similarities.
SimilarityFunc = Callable[[Tensor, Tensor], Tensor]

SIMILARITY_NAMES = ("spearman", "ssim", "pearson_hog")


def _check_common(
    attribution_factory: Any, model: Any, inputs: Any, similarity: Any, attribute_kwargs: Any, seed: Any
) -> None:
    if not callable(attribution_factory):
        raise TypeError(f"attribution_factory must be callable (model -> attribution), got {attribution_factory!r}")
    check_type(model, "model", nn.Module)
    check_images(inputs, "inputs")
    if not callable(similarity):
        check_choice(similarity, "similarity", SIMILARITY_NAMES)
    if attribute_kwargs is not None:
        check_type(attribute_kwargs, "attribute_kwargs", dict)
    check_positive_int(seed, "seed", allow_zero=True)


def _pristine_copy(model: nn.Module, inputs: Tensor, target: TargetType) -> nn.Module:
    """Deep copy in eval mode; the target is checked against the copy's output (the user's model never runs)."""
    base = copy.deepcopy(model).eval()
    with torch.no_grad():
        logits = base(inputs[:1])
    if logits.dim() != 2:
        raise ValueError(f"model must return logits of shape (B, K), got shape {tuple(logits.shape)}")
    check_target(target, logits.shape[1], len(inputs))
    return base


def attribution_maps(attribution: Tensor | tuple[Tensor, ...], size: tuple[int, int], absolute: bool = True,
                     upsample: bool = True) -> Tensor:
    """Turn an attribution :math:`(B, C, h, w)` into maps :math:`(B, H, W)` for comparison.

    .. math:: M = \\sum_c |A_c| \\quad (\\text{or } \\sum_c A_c \\text{ with } absolute=False)

    upsampled bilinearly to ``size`` with ``LayerAttribution.interpolate`` when the attribution is a layer's (e.g.
    Grad-CAM's :math:`(B, 1, h, w)`) and ``upsample`` is set.

    Args:
        attribution: a Captum attribution of a single input (a tensor or a 1-tuple).
        size: :math:`(H, W)` of the inputs.
        absolute: sum absolute values over channels (Adebayo et al.'s "absolute value" maps).
        upsample: interpolate layer-sized maps to ``size``; otherwise keep the native size.

    Returns:
        :math:`(B, H, W)` maps (or :math:`(B, h, w)` without upsampling).

    Examples:
        >>> attribution_maps(torch.rand(2, 1, 4, 4), (32, 32)).shape
        torch.Size([2, 32, 32])
    """
    if isinstance(attribution, tuple):
        if len(attribution) != 1:
            raise ValueError(f"attribution must be for a single input, got a tuple of {len(attribution)} tensors")
        attribution = attribution[0]
    check_images(attribution, "attribution")
    attribution = attribution.detach()
    maps = attribution.abs().sum(1, keepdim=True) if absolute else attribution.sum(1, keepdim=True)
    if upsample and tuple(maps.shape[-2:]) != tuple(size):
        maps = LayerAttribution.interpolate(maps, tuple(size), "bilinear")
    return maps[:, 0]


def map_similarity(original: Tensor, other: Tensor, similarity: str | SimilarityFunc) -> Tensor:
    """Similarity :math:`(B,)` of two batches of maps :math:`(B, H, W)` by name or callable.

    ``"spearman"`` ranks the values as given (maps are already absolute with ``absolute=True``), ``"ssim"`` compares
    maps min-max normalized to [0, 1] with :math:`L = 1`, ``"pearson_hog"`` correlates HOG descriptors.

    Examples:
        >>> x = torch.rand(2, 16, 16)
        >>> [round(v, 3) for v in map_similarity(x, x, "ssim").tolist()]
        [1.0, 1.0]
    """
    if callable(similarity):
        scores = similarity(original, other)
        check_type(scores, "similarity(original, other)", Tensor)
        if scores.shape != (len(original),):
            raise ValueError(f"similarity must return shape ({len(original)},), got {tuple(scores.shape)}")
        return scores
    check_choice(similarity, "similarity", SIMILARITY_NAMES)
    if similarity == "spearman":
        return spearman_correlation(original, other, absolute=False)
    if similarity == "ssim":
        return ssim(minmax_normalize(original), minmax_normalize(other), data_range=1.0)
    return pearson_hog(original, other)


def _map_builder(
    attribution_factory: AttributionFactory,
    model: nn.Module,
    inputs: Tensor,
    target: Any,
    attribute_kwargs: dict[str, Any] | None,
    absolute: bool,
    upsample: bool,
) -> tuple[nn.Module, Callable[[nn.Module], Tensor]]:
    """A pristine eval-mode copy of ``model`` and the function ``network -> maps`` shared by both sanity checks."""
    inputs = inputs.detach().clone().requires_grad_()  # gradient methods need it; Captum restores the flag
    base = _pristine_copy(model, inputs, target)
    kwargs = attribute_kwargs or {}
    size = (inputs.shape[-2], inputs.shape[-1])

    def maps_of(network: nn.Module) -> Tensor:
        attribution = attribution_factory(network).attribute(inputs, target=target, **kwargs)
        return attribution_maps(attribution, size, absolute, upsample)

    return base, maps_of


__all__ = ["SIMILARITY_NAMES", "AttributionFactory", "SimilarityFunc", "attribution_maps", "map_similarity"]
