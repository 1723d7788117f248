"""Pure tensor maths of the regularized image optimization used by the visualizations.

Yosinski, Clune, Nguyen, Fuchs & Lipson (2015), "Understanding Neural Networks Through Deep Visualization", ICML Deep
Learning Workshop, arXiv:1506.06579, Sec. 3: gradient ascent on the image with regularization,

.. math:: x \\leftarrow r_\\theta\\big(x + \\eta \\, \\nabla_x f(x)\\big)

where :math:`r_\\theta` applies L2 decay :math:`x \\mapsto (1 - \\theta_{decay})\\,x`, a Gaussian blur every few steps,
and the clipping of pixels with a small norm. Random jitter (a circular shift before each gradient evaluation) comes
from Mordvintsev, Olah & Tyka (2015), "Inceptionism: Going Deeper into Neural Networks" (Google Research Blog).
Images live in ``value_range`` (default [0, 1]); decay and clipping act on :math:`x - c` with :math:`c` the middle of
the range (the "mean image" of the paper's mean-subtracted inputs).
"""

from __future__ import annotations

import math

import kornia
import torch
from torch import Tensor

from .._checks import check_images, check_in_range


def normalized_ascent_step(image: Tensor, gradient: Tensor, lr: float) -> Tensor:
    """One gradient-ascent step with the gradient scaled to unit mean absolute value per sample.

    .. math:: x + \\eta \\, \\frac{g}{\\operatorname{mean}|g| + 10^{-8}}

    Scaling makes ``lr`` a step size in pixel units, whatever the scale of the objective (DeepDream's choice).

    Examples:
        >>> step = normalized_ascent_step(torch.zeros(1, 1, 2, 2), torch.tensor([[[[2.0, -2.0], [4.0, 0.0]]]]), 0.1)
        >>> [round(v, 4) for v in step.flatten().tolist()]
        [0.1, -0.1, 0.2, 0.0]
    """
    scale = gradient.abs().flatten(1).mean(1).view(-1, *([1] * (gradient.dim() - 1)))
    return image + lr * gradient / (scale + 1e-8)


def l2_decay(image: Tensor, decay: float, center: float) -> Tensor:
    """L2 decay toward ``center``: :math:`c + (1 - \\theta_{decay})(x - c)`.

    Examples:
        >>> l2_decay(torch.tensor([1.0, 0.0]), 0.5, 0.5).tolist()
        [0.75, 0.25]
    """
    return center + (1.0 - decay) * (image - center)


def gaussian_blur(image: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of each channel, kernel side :math:`2\\lceil 2\\sigma \\rceil + 1`, reflected borders.

    Examples:
        >>> gaussian_blur(torch.rand(1, 3, 8, 8), 0.5).shape
        torch.Size([1, 3, 8, 8])
    """
    check_images(image, "image")
    check_in_range(sigma, "sigma", 0.0, None, low_inclusive=False)
    size = 2 * math.ceil(2 * sigma) + 1
    return kornia.filters.gaussian_blur2d(image, (size, size), (sigma, sigma))


def clip_small_norm(image: Tensor, percentile: float, center: float) -> Tensor:
    """Set pixels whose norm over channels :math:`\\|x_{:,i,j} - c\\|_2` is below the ``percentile``-th percentile
    (per sample) to ``center`` (Yosinski et al.'s norm clipping).

    Examples:
        >>> x = torch.tensor([[[[0.5, 0.9], [0.4, 0.1]]]])
        >>> torch.equal(clip_small_norm(x, 50.0, 0.5), torch.tensor([[[[0.5, 0.9], [0.5, 0.1]]]]))
        True
    """
    check_in_range(percentile, "percentile", 0.0, 100.0)
    norms = (image - center).norm(dim=1, keepdim=True)
    threshold = torch.quantile(norms.flatten(1), percentile / 100.0, dim=1).view(-1, 1, 1, 1)
    return torch.where(norms < threshold, torch.full_like(image, center), image)


def jitter(image: Tensor, shift: tuple[int, int]) -> Tensor:
    """Circular shift of the image by ``(dy, dx)`` pixels (undo with the negated shift).

    Examples:
        >>> jitter(torch.arange(4.0).view(1, 1, 1, 4), (0, 1)).flatten().tolist()
        [3.0, 0.0, 1.0, 2.0]
    """
    return torch.roll(image, shifts=(int(shift[0]), int(shift[1])), dims=(-2, -1))


__all__ = ["clip_small_norm", "gaussian_blur", "jitter", "l2_decay", "normalized_ascent_step"]
