r"""Pure tensor maths of the augmentations: linear style transfer on multi-scale patch features, and the probes.

**Linear style transfer** (the weight-free backend of :class:`~captum_wsam.augment.StyleAugment`). Li, Liu, Kautz
and Yang (2019), "Learning Linear Transformations for Fast Image and Video Style Transfer", CVPR, arXiv:1808.04537,
write a stylization as a linear map :math:`T` between an encoder :math:`C` and a decoder :math:`U`; the WSAM seed
(Moreno-Vera, Medina and Poco, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker") mixes
the content and style statistics with the intensity :math:`\alpha`:

.. math::

    o = U\big(T\,(C(c) - \mu_c)\big) + \alpha\,\mu_c + (1 - \alpha)\,\mu_z, \qquad
    T = \Sigma_t^{1/2}\,\Sigma_c^{-1/2}, \qquad \Sigma_t = \alpha\,\Sigma_c + (1 - \alpha)\,\Sigma_z,

the whitening–colouring transform of Li et al. (2017), "Universal Style Transfer via Feature Transforms",
NeurIPS, arXiv:1705.08086. Here the encoder is fixed and linear: every level of a Laplacian pyramid (Burt and
Adelson 1983) is cut into overlapping :math:`k\times k\times 3` patches (:math:`D = 3k^2` features), and the decoder
is its exact inverse, overlap-averaging the patches back (a fold) and collapsing the pyramid. A linear map applied to
every patch followed by overlap-averaging is one :math:`(2k-1)\times(2k-1)` convolution
(:func:`patch_transform_kernel`), so a level costs one grouped convolution per image. **α is the weight of the
image's own style: α = 1 returns the input, α = 0 applies the full style** (the seed's convention; Jackson et al.
use the opposite one).

**Probes** of Zhang and Zhu (2019), "Interpreting Adversarially Trained Convolutional Neural Networks", ICML,
arXiv:1905.09797: saturation :math:`x \mapsto \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big)`
(identity at :math:`p = 2`, binarizing as :math:`p\to\infty`) and :math:`n\times n` patch shuffling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

_BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)


# --------------------------------------------------------------------------------------------- Laplacian pyramid
def _blur_down(image: Tensor) -> Tensor:
    """5-tap binomial blur then stride-2 subsampling (reflect padding): :math:`(B, C, \\lceil H/2\\rceil, ...)`.

    Written as strided slices of the padded image (the filter is symmetric: taps 0/4 and 1/3 share a weight), which
    on the CPU is about twice as fast as a depthwise convolution and gives the same values up to round-off.
    """
    outer, inner, centre = (t / 16.0 for t in _BINOMIAL[:3])
    padded = F.pad(image, (2, 2, 2, 2), mode="reflect")
    rows = (padded[..., 0:-4:2] + padded[..., 4::2]) * outer + (padded[..., 1:-3:2] + padded[..., 3:-1:2]) * inner
    rows = rows + padded[..., 2:-2:2] * centre
    out = (rows[..., 0:-4:2, :] + rows[..., 4::2, :]) * outer + (rows[..., 1:-3:2, :] + rows[..., 3:-1:2, :]) * inner
    return out + rows[..., 2:-2:2, :] * centre


def _up(image: Tensor, size: tuple[int, int]) -> Tensor:
    return F.interpolate(image, size=size, mode="bilinear", align_corners=False)


def pyramid_depth(height: int, width: int, levels: int, patch_size: int) -> int:
    """Number of pyramid levels used for an image: at most ``levels``, the coarsest side staying >= ``patch_size + 1``.

    Examples:
        >>> pyramid_depth(224, 224, 3, 3), pyramid_depth(8, 8, 3, 3), pyramid_depth(4, 4, 3, 3)
        (3, 2, 1)
    """
    depth, h, w = 1, height, width
    while depth < levels:
        h, w = (h + 1) // 2, (w + 1) // 2
        if min(h, w) < patch_size + 1:
            break
        depth += 1
    return depth


def laplacian_pyramid(image: Tensor, levels: int) -> list[Tensor]:
    r"""Laplacian pyramid: band-pass levels then the low-pass residual (Burt and Adelson 1983).

    .. math:: G_0 = x,\quad G_{l+1} = \downarrow(g * G_l),\quad L_l = G_l - \uparrow G_{l+1}\ (l < n-1),\quad
              L_{n-1} = G_{n-1}

    with :math:`g` the 5-tap binomial filter and :math:`\uparrow` bilinear upsampling, so that
    :func:`laplacian_collapse` inverts it exactly (up to round-off).

    Args:
        image: :math:`(B, C, H, W)`.
        levels: number :math:`n \ge 1` of returned tensors.

    Returns:
        ``levels`` tensors, the :math:`l`-th of shape :math:`(B, C, H_l, W_l)`, with
        :math:`H_{l+1} = \lceil H_l/2\rceil`.

    Examples:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> bands = laplacian_pyramid(x, 3)
        >>> [tuple(b.shape[-2:]) for b in bands], bool(torch.allclose(laplacian_collapse(bands), x, atol=1e-6))
        ([(16, 16), (8, 8), (4, 4)], True)
    """
    bands, current = [], image
    for _ in range(levels - 1):
        lower = _blur_down(current)
        bands.append(current - _up(lower, tuple(current.shape[-2:])))
        current = lower
    bands.append(current)
    return bands


def laplacian_collapse(bands: list[Tensor]) -> Tensor:
    r"""Inverse of :func:`laplacian_pyramid`: :math:`G_l = L_l + \uparrow G_{l+1}` from the coarsest level up.

    Args:
        bands: the output of :func:`laplacian_pyramid` (possibly transformed, same shapes).

    Returns:
        :math:`(B, C, H_0, W_0)`.

    Examples:
        >>> laplacian_collapse([torch.zeros(1, 3, 8, 8), torch.ones(1, 3, 4, 4)]).shape
        torch.Size([1, 3, 8, 8])
    """
    image = bands[-1]
    for band in reversed(bands[:-1]):
        image = band + _up(image, tuple(band.shape[-2:]))
    return image


# --------------------------------------------------------------------------------------------- patch statistics
def sample_positions(height: int, width: int, patch_size: int, max_positions: int, device: torch.device) -> Tensor:
    """Top-left corners (flat indices into an ``H×W`` grid) of the patches used for the statistics.

    All :math:`(H-k+1)(W-k+1)` patches lying inside the image when there are at most ``max_positions`` of them,
    otherwise a fixed pseudo-random subset of ``max_positions`` (a seeded generator, independent of the global RNG),
    so the statistics are a deterministic function of the image.

    Returns:
        :math:`(M,)` long tensor.

    Examples:
        >>> sample_positions(4, 4, 3, 100, torch.device("cpu")).tolist()
        [0, 1, 4, 5]
        >>> sample_positions(64, 64, 3, 256, torch.device("cpu")).shape
        torch.Size([256])
    """
    rows, cols = height - patch_size + 1, width - patch_size + 1
    count = rows * cols
    if count <= max_positions:
        chosen = torch.arange(count)
    else:
        generator = torch.Generator().manual_seed(height * 100_003 + width)
        chosen = torch.randperm(count, generator=generator)[:max_positions].sort().values
    return ((chosen // cols) * width + chosen % cols).to(device)


def gather_patches(image: Tensor, positions: Tensor, patch_size: int) -> Tensor:
    r"""The :math:`k\times k\times C` patches whose top-left corners are ``positions``, as feature vectors.

    Feature order is ``(channel, row, column)``, matching :func:`patch_transform_kernel`.

    Args:
        image: :math:`(B, C, H, W)`.
        positions: :math:`(M,)` flat indices of top-left corners (see :func:`sample_positions`).
        patch_size: :math:`k`.

    Returns:
        :math:`(B, M, C k^2)`.

    Examples:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> gather_patches(x, torch.tensor([5]), 2).tolist()
        [[[5.0, 6.0, 9.0, 10.0]]]
    """
    batch, channels, _, width = image.shape
    offsets = torch.arange(patch_size, device=image.device)
    offsets = (offsets[:, None] * width + offsets[None, :]).reshape(-1)
    index = (offsets[:, None] + positions[None, :]).reshape(-1)
    patches = image.reshape(batch, channels, -1)[:, :, index]
    patches = patches.view(batch, channels * patch_size * patch_size, -1)
    return patches.transpose(1, 2)


def patch_statistics(features: Tensor) -> tuple[Tensor, Tensor]:
    r"""Mean and (biased) covariance of feature vectors: :math:`\mu = \frac1M\sum_m f_m`,
    :math:`\Sigma = \frac1M\sum_m (f_m-\mu)(f_m-\mu)^\top`.

    Args:
        features: :math:`(B, M, D)`.

    Returns:
        ``(mean, covariance)`` of shapes :math:`(B, D)` and :math:`(B, D, D)`.

    Examples:
        >>> mean, cov = patch_statistics(torch.tensor([[[0.0, 1.0], [2.0, 1.0]]]))
        >>> mean.tolist(), cov.tolist()
        ([[1.0, 1.0]], [[[1.0, 0.0], [0.0, 0.0]]])
    """
    mean = features.mean(dim=1)
    centred = features - mean[:, None]
    return mean, centred.transpose(1, 2) @ centred / features.shape[1]


def regularize_covariance(covariance: Tensor, relative: float = 1e-3, absolute: float = 1e-5) -> Tensor:
    r"""Tikhonov regularization :math:`\Sigma + (\epsilon_r\,\operatorname{tr}(\Sigma)/D + \epsilon_a)\,I`.

    Keeps every eigenvalue positive, so whitening a flat image (:math:`\Sigma = 0`) is finite and the matrix square
    roots stay differentiable.

    Examples:
        >>> regularize_covariance(torch.zeros(1, 2, 2), absolute=0.5).tolist()
        [[[0.5, 0.0], [0.0, 0.5]]]
    """
    dim = covariance.shape[-1]
    trace = covariance.diagonal(dim1=-2, dim2=-1).sum(-1)
    ridge = relative * trace / dim + absolute
    eye = torch.eye(dim, dtype=covariance.dtype, device=covariance.device)
    return covariance + ridge[..., None, None] * eye


# --------------------------------------------------------------------------------------------- matrix powers
class _SymmetricPower(torch.autograd.Function):
    """:math:`A^{p}` of a symmetric positive definite matrix via ``eigh``, with a divided-difference backward.

    The backward is the Daleckii–Krein formula :math:`dA^p = V (F \\circ V^\\top dA\\,V) V^\\top` with
    :math:`F_{ij} = (\\lambda_i^p - \\lambda_j^p)/(\\lambda_i - \\lambda_j)` written without cancellation, which stays
    finite for repeated eigenvalues (``torch.linalg.eigh``'s own backward divides by :math:`\\lambda_i - \\lambda_j`).
    """

    @staticmethod
    def forward(ctx, matrix: Tensor, power: float) -> Tensor:  # type: ignore[override]
        eigenvalues, vectors = torch.linalg.eigh(matrix)
        floor = eigenvalues.abs().amax(-1, keepdim=True) * 1e-7 + torch.finfo(matrix.dtype).tiny
        eigenvalues = torch.maximum(eigenvalues, floor)
        roots = eigenvalues.sqrt()
        ctx.save_for_backward(roots, vectors)
        ctx.power = power
        scaled = roots if power == 0.5 else 1.0 / roots
        return (vectors * scaled[..., None, :]) @ vectors.transpose(-1, -2)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        roots, vectors = ctx.saved_tensors
        si, sj = roots[..., :, None], roots[..., None, :]
        # divided differences of λ^{1/2} and λ^{-1/2}, cancellation-free
        divided = 1.0 / (si + sj) if ctx.power == 0.5 else -1.0 / (si * sj * (si + sj))
        symmetric = (grad + grad.transpose(-1, -2)) / 2
        inner = vectors.transpose(-1, -2) @ symmetric @ vectors
        return vectors @ (divided * inner) @ vectors.transpose(-1, -2), None


def symmetric_sqrt(matrix: Tensor) -> Tensor:
    r"""Principal square root :math:`A^{1/2} = V\,\Lambda^{1/2} V^\top` of symmetric positive definite matrices.

    Batched over leading dimensions; eigenvalues are floored at :math:`10^{-7}\lambda_{\max}` (no NaN on singular
    input) and the gradient is finite for repeated eigenvalues.

    Args:
        matrix: :math:`(*, D, D)` symmetric positive (semi-)definite.

    Returns:
        :math:`(*, D, D)`.

    Examples:
        >>> a = torch.tensor([[4.0, 0.0], [0.0, 9.0]])
        >>> symmetric_sqrt(a).tolist()
        [[2.0, 0.0], [0.0, 3.0]]
    """
    return _SymmetricPower.apply(matrix, 0.5)


def symmetric_inverse_sqrt(matrix: Tensor) -> Tensor:
    r"""Inverse square root :math:`A^{-1/2} = V\,\Lambda^{-1/2} V^\top` (the whitening matrix), batched.

    Args:
        matrix: :math:`(*, D, D)` symmetric positive definite (regularize first, see :func:`regularize_covariance`).

    Returns:
        :math:`(*, D, D)`.

    Examples:
        >>> symmetric_inverse_sqrt(torch.tensor([[4.0, 0.0], [0.0, 0.25]])).tolist()
        [[0.5, 0.0], [0.0, 2.0]]
    """
    return _SymmetricPower.apply(matrix, -0.5)


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


# --------------------------------------------------------------------------------------------- probes
def saturation(image: Tensor, level: Tensor | float) -> Tensor:
    r"""Saturation of Zhang and Zhu (2019): :math:`x_p = \tfrac12\big(\operatorname{sign}(2x-1)|2x-1|^{2/p} + 1\big)`.

    :math:`p = 2` is the identity; :math:`p \to \infty` binarizes every channel at 0.5; :math:`p < 2` pulls values
    toward grey. The gradient is finite everywhere (zero at :math:`x = 0.5` when :math:`2/p < 1`).

    Args:
        image: :math:`(B, C, H, W)` in [0, 1].
        level: :math:`p > 0`, a number or a :math:`(B,)` tensor.

    Returns:
        :math:`(B, C, H, W)` in [0, 1].

    Examples:
        >>> x = torch.tensor([0.0, 0.25, 0.5, 0.9]).view(1, 1, 1, 4)
        >>> bool(torch.allclose(saturation(x, 2.0), x)), saturation(x, 1024.0).flatten().round(decimals=2).tolist()
        (True, [0.0, 0.0, 0.5, 1.0])
    """
    level_t = torch.as_tensor(level, dtype=image.dtype, device=image.device)
    exponent = (2.0 / level_t).reshape(-1, *([1] * (image.dim() - 1))) if level_t.dim() else 2.0 / level_t
    centred = 2 * image - 1
    magnitude = centred.abs()
    nonzero = magnitude > 0
    safe = torch.where(nonzero, magnitude, torch.ones_like(magnitude))
    powered = torch.where(nonzero, safe.pow(exponent), torch.zeros_like(magnitude))
    return ((torch.sign(centred) * powered + 1) / 2).clamp(0.0, 1.0)


def patch_shuffle(image: Tensor, grid: tuple[int, int], permutation: Tensor) -> Tensor:
    r"""Cut each image into a ``grid`` of equal cells and reorder them: cell :math:`j` of the output is cell
    :math:`\pi(j)` of the input (Zhang and Zhu 2019's :math:`n\times n` patch shuffling).

    Cells are :math:`\lfloor H/g_h\rfloor\times\lfloor W/g_w\rfloor`; the remaining bottom rows and right columns (when
    the size is not divisible) stay in place.

    Args:
        image: :math:`(B, C, H, W)`.
        grid: ``(rows, columns)`` :math:`g_h, g_w`.
        permutation: :math:`(B, g_h g_w)` long, a permutation of ``range(g_h * g_w)`` per image.

    Returns:
        :math:`(B, C, H, W)`.

    Examples:
        >>> x = torch.arange(4.0).view(1, 1, 2, 2)
        >>> patch_shuffle(x, (2, 2), torch.tensor([[3, 2, 1, 0]])).flatten().tolist()
        [3.0, 2.0, 1.0, 0.0]
    """
    batch, channels, height, width = image.shape
    rows, cols = grid
    cell_h, cell_w = height // rows, width // cols
    core = image[:, :, : rows * cell_h, : cols * cell_w]
    cells = core.reshape(batch, channels, rows, cell_h, cols, cell_w).permute(0, 2, 4, 1, 3, 5)
    cells = cells.reshape(batch, rows * cols, channels, cell_h, cell_w)
    index = permutation.to(image.device).view(batch, rows * cols, 1, 1, 1).expand_as(cells)
    shuffled = cells.gather(1, index).view(batch, rows, cols, channels, cell_h, cell_w)
    shuffled = shuffled.permute(0, 3, 1, 4, 2, 5).reshape(batch, channels, rows * cell_h, cols * cell_w)
    out = image.clone()
    out[:, :, : rows * cell_h, : cols * cell_w] = shuffled
    return out


__all__ = [
    "ContentStatistics",
    "apply_patch_transform",
    "content_statistics",
    "gather_patches",
    "laplacian_collapse",
    "laplacian_pyramid",
    "linear_style_transfer",
    "patch_shuffle",
    "patch_statistics",
    "patch_transform_kernel",
    "pyramid_depth",
    "regularize_covariance",
    "sample_positions",
    "saturation",
    "stylize_from_statistics",
    "symmetric_inverse_sqrt",
    "symmetric_sqrt",
    "whitening_colouring",
]
