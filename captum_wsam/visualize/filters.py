"""First-layer filter visualization: the kernels of the first convolution shown as small images.

Krizhevsky, Sutskever & Hinton (2012), "ImageNet Classification with Deep Convolutional Neural Networks", NeurIPS,
Fig. 3 (the 96 first-layer kernels of AlexNet), as in the IN5400 lecture: each kernel
:math:`W_o \\in \\mathbb{R}^{C_{in} \\times k \\times k}` is min-max scaled,

.. math:: \\tilde W_o = \\frac{W_o - \\min W_o}{\\max W_o - \\min W_o},

and shown as an RGB tile when :math:`C_{in} = 3` (one grey tile per input channel otherwise).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.utils import make_grid

from .._checks import check_choice, check_positive_int, check_type


def first_conv(model: nn.Module) -> nn.Conv2d:
    """The first ``nn.Conv2d`` of ``model`` in registration order.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> first_conv(SmallCNN()).weight.shape
        torch.Size([16, 3, 3, 3])
    """
    check_type(model, "model", nn.Module)
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            return module
    raise ValueError(f"model must contain an nn.Conv2d, got {type(model).__name__} without one")


@torch.no_grad()
def first_layer_filters(model: nn.Module, zoom: int = 8, padding: int = 1, scale: str = "each",
                        nrow: int | None = None) -> Tensor:
    """Grid image of the first convolution's kernels (Krizhevsky et al. 2012, Fig. 3).

    Args:
        model: network containing an ``nn.Conv2d`` (read only).
        zoom: nearest-neighbour magnification of each kernel.
        padding: pixels between tiles (in zoomed pixels).
        scale: ``"each"`` (min-max per kernel) or ``"all"`` (one min-max over every kernel, comparable contrast).
        nrow: tiles per row (default :math:`\\lceil \\sqrt{n} \\rceil`).

    Returns:
        :math:`(3, H, W)` float image in [0, 1].

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> grid = first_layer_filters(SmallCNN(width=16), zoom=4)
        >>> grid.shape, bool(grid.min() >= 0), bool(grid.max() <= 1)
        (torch.Size([3, 53, 53]), True, True)
    """
    check_positive_int(zoom, "zoom")
    check_positive_int(padding, "padding", allow_zero=True)
    check_choice(scale, "scale", ("each", "all"))
    if nrow is not None:
        check_positive_int(nrow, "nrow")
    weight = first_conv(model).weight.detach().float().cpu()
    tiles = weight if weight.shape[1] == 3 else weight.reshape(-1, 1, *weight.shape[-2:])
    flat = tiles.flatten(1)
    if scale == "each":
        low, high = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    else:
        low, high = flat.min(), flat.max()
    tiles = (tiles - low) / (high - low).clamp_min(1e-12)
    tiles = F.interpolate(tiles, scale_factor=zoom, mode="nearest")
    if nrow is None:
        nrow = weight.shape[1] if weight.shape[1] != 3 else math.ceil(math.sqrt(len(tiles)))
    return make_grid(tiles, nrow=nrow, padding=padding, pad_value=1.0)


def plot_first_layer_filters(model: nn.Module, ax: Any = None, **kwargs: Any) -> Any:
    """Show :func:`first_layer_filters` in a matplotlib axes; ``kwargs`` go to :func:`first_layer_filters`.

    Returns:
        The matplotlib ``Axes``.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> plot_first_layer_filters(SmallCNN()).get_title()
        'first-layer filters (16 × 3×3×3)'
    """
    import matplotlib.pyplot as plt

    grid = first_layer_filters(model, **kwargs)
    if ax is None:
        _, ax = plt.subplots(figsize=(3, 3))
    ax.imshow(grid.permute(1, 2, 0).numpy())
    out, inp, kh, kw = first_conv(model).weight.shape
    ax.set_title(f"first-layer filters ({out} × {inp}×{kh}×{kw})")
    ax.axis("off")
    return ax


__all__ = ["first_conv", "first_layer_filters", "plot_first_layer_filters"]
