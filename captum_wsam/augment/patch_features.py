r"""Multi-scale patch features: Laplacian pyramid, patch statistics and symmetric matrix powers.

The fixed, weight-free encoder of :mod:`captum_wsam.augment.linear_transfer_functional`.

- **Laplacian pyramid**: Burt and Adelson (1983), "The Laplacian Pyramid as a Compact Image Code", IEEE Transactions
  on Communications 31(4), DOI:10.1109/TCOM.1983.1095851. With :math:`g` the 5-tap binomial filter and
  :math:`\uparrow` bilinear upsampling,

  .. math:: G_0 = x,\quad G_{l+1} = \downarrow(g * G_l),\quad L_l = G_l - \uparrow G_{l+1},\quad
            L_{n-1} = G_{n-1},

  inverted exactly by :math:`G_l = L_l + \uparrow G_{l+1}`.
- **Patch statistics** of every level, the feature statistics of Li, Fang, Yang, Wang, Lu and Yang (2017),
  "Universal Style Transfer via Feature Transforms", NeurIPS, arXiv:1705.08086, on :math:`k\times k\times C`
  patches :math:`f_m \in \mathbb{R}^{Ck^2}`:

  .. math:: \mu = \tfrac1M \textstyle\sum_m f_m, \qquad
            \Sigma = \tfrac1M \textstyle\sum_m (f_m - \mu)(f_m - \mu)^\top + (\epsilon_r \operatorname{tr}\Sigma / D
            + \epsilon_a) I .

- **Matrix powers** :math:`A^{\pm 1/2} = V \Lambda^{\pm 1/2} V^\top` with the Daleckii–Krein backward
  :math:`dA^p = V (F \circ V^\top dA\,V) V^\top`, :math:`F_{ij} = (\lambda_i^p - \lambda_j^p)/(\lambda_i -
  \lambda_j)` (Ionescu, Vantzos and Sminchisescu 2015, "Matrix Backpropagation for Deep Networks with Structured
  Layers", ICCV, arXiv:1509.07838), written without cancellation so repeated eigenvalues keep a finite gradient.
"""

from __future__ import annotations

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


__all__ = [
    "gather_patches",
    "laplacian_collapse",
    "laplacian_pyramid",
    "patch_statistics",
    "pyramid_depth",
    "regularize_covariance",
    "sample_positions",
    "symmetric_inverse_sqrt",
    "symmetric_sqrt",
]
