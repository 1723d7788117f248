r"""Linear style transfer on patch features, the maths of :class:`~captum_wsam.augment.LinearStyleTransfer`.

Li, Liu, Kautz and Yang (2019), "Learning Linear Transformations for Fast Image and Video Style Transfer", CVPR,
arXiv:1808.04537, write a stylization as a linear map :math:`T` between an encoder :math:`C` and a decoder :math:`U`;
the WSAM seed (Moreno-Vera, Medina and Poco, "WSAM: Visual Explanations from Style Augmentation as Adversarial
Attacker") mixes the content and style statistics with the intensity :math:`\alpha`:

.. math::

    o = U\big(T\,(C(c) - \mu_c)\big) + \alpha\,\mu_c + (1 - \alpha)\,\mu_z, \qquad
    T = \Sigma_t^{1/2}\,\Sigma_c^{-1/2}, \qquad \Sigma_t = \alpha\,\Sigma_c + (1 - \alpha)\,\Sigma_z,

the whitening–colouring transform of Li et al. (2017), "Universal Style Transfer via Feature Transforms",
NeurIPS, arXiv:1705.08086. Here the encoder is fixed and linear (:mod:`captum_wsam.augment.patch_features`): every
level of a Laplacian pyramid is cut into overlapping :math:`k\times k\times 3` patches (:math:`D = 3k^2` features),
and the decoder is its exact inverse, overlap-averaging the patches back (a fold) and collapsing the pyramid. A linear
map applied to every patch followed by overlap-averaging is one :math:`(2k-1)\times(2k-1)` convolution
(:func:`patch_transform_kernel`), so a level costs one grouped convolution per image. **α is the weight of the
image's own style: α = 1 returns the input, α = 0 applies the full style** (the seed's convention; Jackson et al.
use the opposite one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch  # noqa: F401  (the doctests use it)
import torch.nn.functional as F
from torch import Tensor

from .patch_features import (
    gather_patches,
    laplacian_collapse,
    laplacian_pyramid,
    patch_statistics,
    pyramid_depth,
    regularize_covariance,
    sample_positions,
    symmetric_inverse_sqrt,
    symmetric_sqrt,
)


def whitening_colouring(
    content_mean: Tensor,
    content_covariance: Tensor,
    content_whitening: Tensor,
    style_mean: Tensor,
    style_covariance: Tensor,
    alpha: Tensor,
) -> tuple[Tensor, Tensor]:
    r"""Affine map :math:`f \mapsto T f + b` taking the content statistics to the α-mixed target statistics.

    .. math::

        \mu_t = \alpha\,\mu_c + (1-\alpha)\,\mu_z,\quad \Sigma_t = \alpha\,\Sigma_c + (1-\alpha)\,\Sigma_z,\quad
        T = \Sigma_t^{1/2}\,\Sigma_c^{-1/2},\quad b = \mu_t - T\mu_c .

    Args:
        content_mean: :math:`(B, D)` :math:`\mu_c`.
        content_covariance: :math:`(B, D, D)` regularized :math:`\Sigma_c`.
        content_whitening: :math:`(B, D, D)` :math:`\Sigma_c^{-1/2}` (computed once per image).
        style_mean: :math:`(B, D)` :math:`\mu_z`.
        style_covariance: :math:`(B, D, D)` regularized :math:`\Sigma_z`.
        alpha: :math:`(B,)` weight of the content statistics, in [0, 1].

    Returns:
        ``(T, b)`` of shapes :math:`(B, D, D)` and :math:`(B, D)`.

    Examples:
        >>> cov = torch.eye(2).expand(1, 2, 2)
        >>> T, b = whitening_colouring(torch.zeros(1, 2), cov, cov, torch.ones(1, 2), 4 * cov, torch.zeros(1))
        >>> T.tolist(), b.tolist()
        ([[[2.0, 0.0], [0.0, 2.0]]], [[1.0, 1.0]])
    """
    a = alpha[:, None]
    target_mean = a * content_mean + (1 - a) * style_mean
    target_covariance = a[..., None] * content_covariance + (1 - a[..., None]) * style_covariance
    transform = symmetric_sqrt(target_covariance) @ content_whitening
    bias = target_mean - (transform @ content_mean[..., None])[..., 0]
    return transform, bias


# --------------------------------------------------------------------------------------------- patch map as conv
def patch_transform_kernel(transform: Tensor, bias: Tensor, channels: int, patch_size: int) -> tuple[Tensor, Tensor]:
    r"""Convolution equal to "apply :math:`T, b` to every :math:`k\times k` patch, then overlap-average (fold)".

    Output pixel :math:`p` averages the :math:`k^2` transformed patches covering it, so

    .. math::

        y_{c'}(p) = \sum_{c}\sum_{d\in[-(k-1),\,k-1]^2} K_{c'c}(d)\,x_c(p+d) + \bar b_{c'},\qquad
        K_{c'c}(d) = \frac1{k^2}\sum_{s'} T_{(c',s'),(c,s'+d)},\quad \bar b_{c'} = \frac1{k^2}\sum_{s'} b_{(c',s')}

    (terms with :math:`s'+d` outside the patch are zero): a :math:`(2k-1)\times(2k-1)` kernel.

    Args:
        transform: :math:`(B, D, D)` with :math:`D = C k^2`, features ordered ``(channel, row, column)``.
        bias: :math:`(B, D)`.
        channels: :math:`C`.
        patch_size: :math:`k`.

    Returns:
        ``(kernel, bias)`` of shapes :math:`(B, C, C, 2k-1, 2k-1)` and :math:`(B, C)`.

    Examples:
        >>> kernel, b = patch_transform_kernel(torch.eye(12)[None], torch.zeros(1, 12), 3, 2)
        >>> kernel.shape, bool(kernel[0, :, :, 1, 1].equal(torch.eye(3))), float(kernel.abs().sum())
        (torch.Size([1, 3, 3, 3, 3]), True, 3.0)
    """
    batch, k = transform.shape[0], patch_size
    blocks = transform.view(batch, channels, k, k, channels, k, k)
    kernel = transform.new_zeros(batch, channels, channels, 2 * k - 1, 2 * k - 1)
    for row in range(k):
        for col in range(k):
            top, left = k - 1 - row, k - 1 - col
            kernel[:, :, :, top : top + k, left : left + k] += blocks[:, :, row, col]
    return kernel / (k * k), bias.view(batch, channels, k * k).mean(-1)


def apply_patch_transform(image: Tensor, kernel: Tensor, bias: Tensor) -> Tensor:
    r"""Apply per-image kernels from :func:`patch_transform_kernel` (one grouped convolution, reflect padding).

    Args:
        image: :math:`(B, C, H, W)`.
        kernel: :math:`(B, C, C, 2k-1, 2k-1)`.
        bias: :math:`(B, C)`.

    Returns:
        :math:`(B, C, H, W)`.

    Examples:
        >>> kernel, b = patch_transform_kernel(torch.eye(27)[None], torch.ones(1, 27), 3, 3)
        >>> x = torch.rand(1, 3, 8, 8)
        >>> bool(torch.allclose(apply_patch_transform(x, kernel, b), x + 1))
        True
    """
    batch, channels, height, width = image.shape
    pad = (kernel.shape[-1] - 1) // 2
    padded = F.pad(image, (pad, pad, pad, pad), mode="reflect")
    weight = kernel.reshape(batch * channels, channels, *kernel.shape[-2:])
    out = F.conv2d(padded.reshape(1, batch * channels, *padded.shape[-2:]), weight, groups=batch)
    return out.view(batch, channels, height, width) + bias[:, :, None, None]


# --------------------------------------------------------------------------------------------- style transfer
@dataclass(frozen=True)
class ContentStatistics:
    """What a stylization needs from the content images, computed once (:func:`content_statistics`).

    Attributes:
        bands: Laplacian pyramid, ``n`` tensors :math:`(B, C, H_l, W_l)`.
        means: per level :math:`(B, D)` patch means :math:`\\mu_c`.
        covariances: per level :math:`(B, D, D)` regularized covariances :math:`\\Sigma_c`.
        whitening: per level :math:`(B, D, D)` :math:`\\Sigma_c^{-1/2}`.
    """

    bands: list[Tensor]
    means: list[Tensor]
    covariances: list[Tensor]
    whitening: list[Tensor]


def content_statistics(
    image: Tensor, patch_size: int = 3, levels: int = 3, max_positions: int = 4096, whiten: bool = True
) -> ContentStatistics:
    r"""Pyramid, patch means, covariances and whitening matrices of ``image`` (the encoder side :math:`C(c)`).

    Args:
        image: :math:`(B, C, H, W)`.
        patch_size: :math:`k`.
        levels: maximum pyramid depth (fewer for small images, see :func:`pyramid_depth`).
        max_positions: patches sampled per level for the statistics (see :func:`sample_positions`).
        whiten: also compute :math:`\Sigma_c^{-1/2}` (not needed for style images).

    Returns:
        :class:`ContentStatistics` with :math:`D = C k^2`.

    Examples:
        >>> stats = content_statistics(torch.rand(2, 3, 32, 32))
        >>> len(stats.bands), stats.means[0].shape, stats.whitening[2].shape
        (3, torch.Size([2, 27]), torch.Size([2, 27, 27]))
    """
    depth = pyramid_depth(image.shape[-2], image.shape[-1], levels, patch_size)
    bands = laplacian_pyramid(image, depth)
    means, covariances, whitening = [], [], []
    for band in bands:
        positions = sample_positions(band.shape[-2], band.shape[-1], patch_size, max_positions, band.device)
        mean, covariance = patch_statistics(gather_patches(band, positions, patch_size))
        covariance = regularize_covariance(covariance)
        means.append(mean)
        covariances.append(covariance)
        if whiten:
            whitening.append(symmetric_inverse_sqrt(covariance))
    return ContentStatistics(bands, means, covariances, whitening)


def stylize_from_statistics(
    content: ContentStatistics, style_means: list[Tensor], style_covariances: list[Tensor], alpha: Tensor
) -> Tensor:
    r"""Decoder side: :math:`o = U\big(T\,C(c) + b\big)` at every level, then collapse the pyramid and clamp.

    Level :math:`l` of the content uses level :math:`l` of the style, except the low-pass residual, which always
    uses the style's residual (the last entry), so a shallower pyramid of a small image still receives the style's
    colours.

    Args:
        content: from :func:`content_statistics`.
        style_means: per style level :math:`(B, D)`.
        style_covariances: per style level :math:`(B, D, D)` (regularized).
        alpha: :math:`(B,)` in [0, 1].

    Returns:
        :math:`(B, C, H, W)` in [0, 1].

    Examples:
        >>> content = content_statistics(torch.rand(2, 3, 16, 16))
        >>> style = content_statistics(torch.rand(2, 3, 16, 16), whiten=False)
        >>> out = stylize_from_statistics(content, style.means, style.covariances, torch.tensor([0.0, 0.5]))
        >>> out.shape, bool(out.min() >= 0), bool(out.max() <= 1)
        (torch.Size([2, 3, 16, 16]), True, True)
    """
    depth = len(content.bands)
    channels = content.bands[0].shape[1]
    patch_size = math.isqrt(content.means[0].shape[-1] // channels)
    style_index = [*range(depth - 1), len(style_means) - 1]
    outputs = []
    for level, band in enumerate(content.bands):
        s = style_index[level]
        transform, bias = whitening_colouring(
            content.means[level], content.covariances[level], content.whitening[level],
            style_means[s], style_covariances[s], alpha,
        )
        kernel, bias = patch_transform_kernel(transform, bias, channels, patch_size)
        outputs.append(apply_patch_transform(band, kernel, bias))
    return laplacian_collapse(outputs).clamp(0.0, 1.0)


def linear_style_transfer(
    image: Tensor,
    style_means: list[Tensor],
    style_covariances: list[Tensor],
    alpha: Tensor,
    patch_size: int = 3,
    levels: int = 3,
    max_positions: int = 4096,
) -> Tensor:
    r"""Linear style transfer of ``image`` to per-sample style statistics with content weight ``alpha``.

    .. math:: o = U\big(T\,(C(c)-\mu_c)\big) + \alpha\,\mu_c + (1-\alpha)\,\mu_z,\qquad
              T = \big(\alpha\Sigma_c + (1-\alpha)\Sigma_z\big)^{1/2}\,\Sigma_c^{-1/2}

    at every Laplacian-pyramid level, with :math:`C` the :math:`k\times k` patch encoder and :math:`U` the
    overlap-averaging decoder. **α = 1 is the identity (up to round-off), α = 0 the full style.**

    Args:
        image: :math:`(B, C, H, W)` in [0, 1].
        style_means: per style level :math:`(B, D)` with :math:`D = C k^2`.
        style_covariances: per style level :math:`(B, D, D)`.
        alpha: :math:`(B,)` weight of the image's own statistics, in [0, 1].
        patch_size: :math:`k`.
        levels: maximum pyramid depth.
        max_positions: patches sampled per level for the content statistics.

    Returns:
        :math:`(B, C, H, W)` in [0, 1].

    Examples:
        >>> x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
        >>> style = content_statistics(torch.rand(1, 3, 16, 16, dtype=torch.float64), whiten=False)
        >>> same = linear_style_transfer(x, style.means, style.covariances, torch.ones(1, dtype=torch.float64))
        >>> bool(torch.allclose(same, x, atol=1e-8))
        True
    """
    content = content_statistics(image, patch_size, levels, max_positions)
    return stylize_from_statistics(content, style_means, style_covariances, alpha)


__all__ = [
    "ContentStatistics",
    "apply_patch_transform",
    "content_statistics",
    "linear_style_transfer",
    "patch_transform_kernel",
    "stylize_from_statistics",
    "whitening_colouring",
]
