"""Rendering attribution maps with ``captum.attr.visualization.visualize_image_attr``, all-zero maps included.

Captum's renderer takes NumPy arrays in :math:`(H, W, C)` layout and stops with a bare ``AssertionError: Cannot
normalize by scale factor = 0`` when the map has nothing of the requested sign, which happens often with ReLU maps
such as Grad-CAM, SAM and WSAM (a class with no positive evidence). :func:`visualize_attr` converts tensors, upsamples
layer maps to the image size (``LayerAttribution.interpolate``) and, for an empty map, draws the image (or a blank
panel) with a title saying so and warns, instead of failing. Selvaraju et al., 2017, "Grad-CAM: Visual Explanations
from Deep Networks via Gradient-based Localization" (arXiv:1610.02391) describe the upsampled overlay.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from captum.attr import LayerAttribution
from captum.attr import visualization as captum_visualization
from torch import Tensor

from .._checks import check_choice, check_type

_SIGNS = ("positive", "negative", "absolute_value", "all")


def _as_hwc(value: Tensor, name: str) -> Tensor:
    """``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` → ``(C, H, W)``."""
    check_type(value, name, Tensor)
    tensor = value.detach()
    if tensor.dim() == 4 and tensor.shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() == 2:
        tensor = tensor[None]
    if tensor.dim() != 3:
        raise ValueError(f"{name} must have shape (H, W), (C, H, W) or (1, C, H, W), got {tuple(value.shape)}")
    return tensor.float()


def has_signal(attr: Tensor, sign: str = "positive") -> bool:
    """Whether ``attr`` holds any non-zero value of the given sign (what Captum's renderer needs).

    .. math::

        \\exists p: s(a_p) \\neq 0, \\quad s \\in \\{\\max(\\cdot, 0), \\min(\\cdot, 0), |\\cdot|\\}

    Examples:
        >>> import torch
        >>> has_signal(torch.zeros(1, 4, 4)), has_signal(-torch.ones(4, 4), "positive"), has_signal(torch.ones(4, 4))
        (False, False, True)
    """
    check_choice(sign, "sign", _SIGNS)
    if sign == "positive":
        return bool((attr > 0).any())
    if sign == "negative":
        return bool((attr < 0).any())
    return bool((attr != 0).any())


def visualize_attr(
    attr: Tensor,
    image: Tensor | None = None,
    method: str = "blended_heat_map",
    sign: str = "positive",
    **kwargs: Any,
) -> tuple[Any, Any]:
    """Draw one attribution map with ``captum.attr.visualization.visualize_image_attr``.

    .. math::

        \\tilde a = \\mathrm{interpolate}(a, (H, W)), \\quad \\text{rendered by Captum after clipping at its
        outlier percentile}

    Args:
        attr: one map, shape :math:`(h, w)`, :math:`(C, h, w)` or :math:`(1, C, h, w)`; upsampled bilinearly to the
            image size when ``image`` is given.
        image: the image, shape :math:`(3, H, W)` or :math:`(1, 3, H, W)`, values in [0, 1]; needed by the blended
            methods.
        method: Captum's ``method`` (``"heat_map"``, ``"blended_heat_map"``, ``"original_image"``, ...); without
            ``image``, ``"blended_heat_map"`` falls back to ``"heat_map"``.
        sign: Captum's ``sign``; ``"positive"`` suits ReLU maps.
        **kwargs: passed to ``visualize_image_attr`` (``plt_fig_axis``, ``cmap``, ``title``, ``use_pyplot`` ...).

    Returns:
        Captum's ``(figure, axes)``. A map with no value of the requested sign is not passed to Captum (which would
        fail on it): the image (or a blank panel) is drawn, titled "all-zero attribution", with a ``UserWarning``.

    Examples:
        >>> import torch, warnings
        >>> fig, ax = visualize_attr(torch.rand(1, 4, 4), torch.rand(3, 16, 16), use_pyplot=False)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     fig, ax = visualize_attr(torch.zeros(1, 4, 4), torch.rand(3, 16, 16), use_pyplot=False)
        >>> ax.get_title(), "all-zero" in str(caught[0].message)
        ('all-zero attribution', True)
    """
    check_choice(sign, "sign", _SIGNS)
    attr_chw = _as_hwc(attr, "attr")
    image_chw = None if image is None else _as_hwc(image, "image")
    if image_chw is not None and attr_chw.shape[-2:] != image_chw.shape[-2:]:
        attr_chw = LayerAttribution.interpolate(attr_chw[None], tuple(image_chw.shape[-2:]), "bilinear")[0]
    if image_chw is None and method.startswith("blended"):
        method = "heat_map"
    attr_np = attr_chw.permute(1, 2, 0).cpu().numpy()
    image_np = None if image_chw is None else image_chw.permute(1, 2, 0).clamp(0, 1).cpu().numpy()
    if not has_signal(attr_chw, sign):
        warnings.warn(
            f"attr has no {sign.replace('_', ' ')} value (an all-zero map for this sign, e.g. a ReLU map of a class "
            "without positive evidence); captum's visualize_image_attr cannot normalise it, so the image is drawn "
            "instead and titled 'all-zero attribution'",
            UserWarning,
            stacklevel=2,
        )
        kwargs = {**kwargs, "title": "all-zero attribution"}
        # "original_image" ignores the map, but Captum still normalises it: hand it a constant one.
        placeholder = np.ones(attr_np.shape[:2], dtype=np.float32)
        background = image_np if image_np is not None else np.ones((*attr_np.shape[:2], 3), dtype=np.float32)
        return captum_visualization.visualize_image_attr(placeholder, background, method="original_image",
                                                         sign="absolute_value", **kwargs)
    return captum_visualization.visualize_image_attr(attr_np, image_np, method=method, sign=sign, **kwargs)


__all__ = ["has_signal", "visualize_attr"]
