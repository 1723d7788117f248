"""Similarity of two attribution maps: the three measures of the model-randomization test (pure tensor maths).

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292, Sec. 3, compare a map of the trained model with the map of a randomized model by

- the Spearman rank correlation (of absolute values, or signed),
  :math:`\\rho = \\operatorname{corr}(\\operatorname{rank}(a), \\operatorname{rank}(b))` with average ranks for ties;
- the structural similarity index (Wang, Bovik, Sheikh & Simoncelli 2004, "Image Quality Assessment: From Error
  Visibility to Structural Similarity", IEEE TIP, DOI:10.1109/TIP.2003.819861),
  :math:`\\operatorname{SSIM} = \\frac{(2\\mu_a\\mu_b + C_1)(2\\sigma_{ab} + C_2)}
  {(\\mu_a^2 + \\mu_b^2 + C_1)(\\sigma_a^2 + \\sigma_b^2 + C_2)}` averaged over Gaussian windows;
- the Pearson correlation of histogram-of-oriented-gradients features (Dalal & Triggs 2005, "Histograms of Oriented
  Gradients for Human Detection", CVPR, DOI:10.1109/CVPR.2005.177).

Every function takes two batches of maps :math:`(B, H, W)` or :math:`(B, C, H, W)` and returns one value per sample
:math:`(B,)`. A correlation with a constant map is undefined; it is reported as 0 (no measurable association), so a
map that a randomized model sends to all zeros counts as dissimilar.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_positive_int, check_tensor

_EPS = 1e-12


def _check_pair(a: Tensor, b: Tensor) -> None:
    check_tensor(a, "a", ndim=(3, 4), floating=True)
    check_tensor(b, "b", ndim=(3, 4), floating=True)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")


def pearson_correlation(a: Tensor, b: Tensor) -> Tensor:
    """Pearson correlation of each pair of samples, flattened.

    .. math::
        r = \\frac{\\sum_i (a_i - \\bar a)(b_i - \\bar b)}
        {\\sqrt{\\sum_i (a_i - \\bar a)^2 \\sum_i (b_i - \\bar b)^2}}

    Args:
        a: batch :math:`(B, \\dots)` with at least two elements per sample.
        b: batch of the same shape.

    Returns:
        :math:`(B,)` correlations in [-1, 1]; 0 where a sample is constant.

    Examples:
        >>> x = torch.rand(2, 8, 8)
        >>> bool(torch.allclose(pearson_correlation(x, 2 * x + 1), torch.ones(2)))
        True
    """
    check_tensor(a, "a", floating=True)
    check_tensor(b, "b", floating=True)
    if a.shape != b.shape or a.dim() < 2:
        raise ValueError(
            f"a and b must be batches of the same shape (B, ...), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a = a.reshape(len(a), -1)
    b = b.reshape(len(b), -1)
    constant = (a.amax(1) == a.amin(1)) | (b.amax(1) == b.amin(1))
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    denominator = (a.pow(2).sum(1) * b.pow(2).sum(1)).sqrt()
    correlation = (a * b).sum(1) / denominator.clamp_min(_EPS)
    correlation = torch.where(constant, torch.zeros_like(correlation), correlation)
    return correlation.clamp(-1.0, 1.0)


def average_ranks(x: Tensor) -> Tensor:
    """Ranks 1…N of each row of ``x`` :math:`(B, N)`, ties sharing their average rank (as ``scipy.stats.rankdata``).

    Examples:
        >>> average_ranks(torch.tensor([[3.0, 1.0, 3.0, 2.0]]))
        tensor([[3.5000, 1.0000, 3.5000, 2.0000]])
    """
    check_tensor(x, "x", ndim=2)
    ranks = torch.empty(x.shape, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32, device=x.device)
    for row, values in enumerate(x):
        sorted_values, order = values.sort(stable=True)
        _, inverse, counts = torch.unique_consecutive(sorted_values, return_inverse=True, return_counts=True)
        last = counts.cumsum(0).to(ranks.dtype)  # 1-based rank of each tie group's last member
        group_rank = last - (counts.to(ranks.dtype) - 1) / 2
        ranks[row, order] = group_rank[inverse]
    return ranks


def spearman_correlation(a: Tensor, b: Tensor, absolute: bool = True) -> Tensor:
    """Spearman rank correlation of each pair of maps (Adebayo et al. 2018's main similarity measure).

    .. math:: \\rho(a, b) = r\\big(\\operatorname{rank}(|a|), \\operatorname{rank}(|b|)\\big)

    with :math:`r` the Pearson correlation and average ranks for ties.

    Args:
        a: maps :math:`(B, H, W)` or :math:`(B, C, H, W)`.
        b: maps of the same shape.
        absolute: rank absolute values (the paper's "absolute value" variant) instead of signed values.

    Returns:
        :math:`(B,)` rank correlations in [-1, 1] (0 where a map is constant).

    Examples:
        >>> x = torch.randn(3, 8, 8)
        >>> rho = spearman_correlation(x, x.abs() ** 3)
        >>> rho.shape, bool(torch.allclose(rho, torch.ones(3)))
        (torch.Size([3]), True)
    """
    _check_pair(a, b)
    if absolute:
        a, b = a.abs(), b.abs()
    return pearson_correlation(average_ranks(a.reshape(len(a), -1)), average_ranks(b.reshape(len(b), -1)))


def gaussian_window(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> Tensor:
    """Normalized 2-D Gaussian window :math:`(size, size)`, :math:`w_{ij} \\propto e^{-(i^2 + j^2)/(2\\sigma^2)}`.

    Examples:
        >>> w = gaussian_window(11, 1.5)
        >>> w.shape, bool(torch.isclose(w.sum(), torch.tensor(1.0)))
        (torch.Size([11, 11]), True)
    """
    check_positive_int(size, "size")
    offsets = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-offsets.pow(2) / (2 * sigma**2))
    window = g[:, None] * g[None, :]
    return window / window.sum()


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0, window_size: int = 11, sigma: float = 1.5) -> Tensor:
    """Mean structural similarity of each pair of maps (Wang et al. 2004), Gaussian-weighted local statistics.

    .. math::
        \\operatorname{SSIM}(a, b) = \\frac{1}{|P|} \\sum_{p \\in P}
        \\frac{(2\\mu_a(p)\\mu_b(p) + C_1)(2\\sigma_{ab}(p) + C_2)}
        {(\\mu_a(p)^2 + \\mu_b(p)^2 + C_1)(\\sigma_a(p)^2 + \\sigma_b(p)^2 + C_2)},
        \\quad C_1 = (0.01 L)^2,\\; C_2 = (0.03 L)^2

    where :math:`\\mu, \\sigma^2, \\sigma_{ab}` are weighted by the Gaussian window placed at every position :math:`p`
    where it fits entirely (no padding), and channels are averaged. Windows larger than the map shrink to the largest
    odd size that fits.

    Args:
        a: maps :math:`(B, H, W)` or :math:`(B, C, H, W)`, values in a range of width ``data_range``.
        b: maps of the same shape.
        data_range: :math:`L`, the dynamic range of the values (1 for maps normalized to [0, 1]).
        window_size: side of the Gaussian window (odd).
        sigma: standard deviation of the window.

    Returns:
        :math:`(B,)` mean SSIM; 1 for identical maps.

    Examples:
        >>> x = torch.rand(2, 16, 16)
        >>> bool(torch.allclose(ssim(x, x), torch.ones(2))), bool((ssim(x, torch.rand(2, 16, 16)) < 0.5).all())
        (True, True)
    """
    _check_pair(a, b)
    check_positive_int(window_size, "window_size")
    if window_size % 2 == 0:
        raise ValueError(f"window_size must be odd, got {window_size}")
    if not data_range > 0:
        raise ValueError(f"data_range must be > 0, got {data_range}")
    if a.dim() == 3:
        a, b = a[:, None], b[:, None]
    size = min(window_size, a.shape[-1] - (a.shape[-1] + 1) % 2, a.shape[-2] - (a.shape[-2] + 1) % 2)
    channels = a.shape[1]
    window = gaussian_window(size, sigma, a.dtype).to(a.device).expand(channels, 1, size, size)

    def local_mean(x: Tensor) -> Tensor:
        return F.conv2d(x, window, groups=channels)

    mu_a, mu_b = local_mean(a), local_mean(b)
    var_a = local_mean(a * a) - mu_a.pow(2)
    var_b = local_mean(b * b) - mu_b.pow(2)
    cov = local_mean(a * b) - mu_a * mu_b
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    index = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a.pow(2) + mu_b.pow(2) + c1) * (var_a + var_b + c2))
    return index.flatten(1).mean(1)


def hog(maps: Tensor, cell_size: int = 4, bins: int = 9, block_size: int = 2) -> Tensor:
    """Histogram-of-oriented-gradients descriptor of each map (Dalal & Triggs 2005).

    Centred differences :math:`g_x = I(y, x+1) - I(y, x-1)`, :math:`g_y = I(y+1, x) - I(y-1, x)` (zero outside), the
    channel with the largest magnitude per pixel, unsigned orientation :math:`\\theta \\in [0°, 180°)` voted into
    ``bins`` bins with linear interpolation between bin centres, weighted by the magnitude; histograms summed over
    ``cell_size``² cells; blocks of ``block_size``² cells (stride one cell) L2-normalized,
    :math:`v / \\sqrt{\\|v\\|_2^2 + \\epsilon^2}`, and concatenated.

    Args:
        maps: :math:`(B, H, W)` or :math:`(B, C, H, W)` with :math:`H, W \\geq` ``cell_size · block_size``.
        cell_size: cell side in pixels (remainder pixels at the bottom/right are dropped).
        bins: orientation bins over 180°.
        block_size: cells per block side.

    Returns:
        :math:`(B, D)` descriptors, :math:`D = (n_y - b + 1)(n_x - b + 1) b^2 \\cdot bins` (:math:`n` cells a side).

    Examples:
        >>> hog(torch.rand(2, 32, 32)).shape
        torch.Size([2, 1764])
    """
    check_tensor(maps, "maps", ndim=(3, 4), floating=True)
    for value, name in ((cell_size, "cell_size"), (bins, "bins"), (block_size, "block_size")):
        check_positive_int(value, name)
    if maps.dim() == 3:
        maps = maps[:, None]
    height, width = maps.shape[-2:]
    if min(height, width) < cell_size * block_size:
        raise ValueError(
            f"maps must be at least cell_size * block_size = {cell_size * block_size} pixels on each side, "
            f"got {height}x{width}"
        )
    padded = F.pad(maps, (1, 1, 1, 1))
    gx = padded[..., 1:-1, 2:] - padded[..., 1:-1, :-2]
    gy = padded[..., 2:, 1:-1] - padded[..., :-2, 1:-1]
    magnitude = torch.sqrt(gx.pow(2) + gy.pow(2))
    strongest = magnitude.argmax(1, keepdim=True)
    magnitude = magnitude.gather(1, strongest)[:, 0]
    angle = torch.rad2deg(torch.atan2(gy.gather(1, strongest)[:, 0], gx.gather(1, strongest)[:, 0])) % 180.0
    # Linear interpolation between the two nearest bin centres (centres at (k + 0.5) * 180 / bins).
    position = angle / (180.0 / bins) - 0.5
    lower = torch.floor(position)
    upper_weight = position - lower
    lower_bin = lower.long() % bins
    upper_bin = (lower_bin + 1) % bins
    votes = torch.zeros(maps.shape[0], bins, height, width, dtype=maps.dtype, device=maps.device)
    votes.scatter_add_(1, lower_bin[:, None], (magnitude * (1 - upper_weight))[:, None])
    votes.scatter_add_(1, upper_bin[:, None], (magnitude * upper_weight)[:, None])
    cells = F.avg_pool2d(votes, cell_size) * cell_size**2  # (B, bins, n_y, n_x) histogram per cell
    blocks = cells.unfold(2, block_size, 1).unfold(3, block_size, 1)  # (B, bins, by, bx, b, b)
    blocks = blocks.permute(0, 2, 3, 4, 5, 1).flatten(3)  # (B, by, bx, b*b*bins)
    blocks = blocks / torch.sqrt(blocks.pow(2).sum(-1, keepdim=True) + 1e-5**2)
    return blocks.flatten(1)


def pearson_hog(a: Tensor, b: Tensor, cell_size: int = 4, bins: int = 9, block_size: int = 2) -> Tensor:
    """Pearson correlation of the HOG descriptors of each pair of maps (Adebayo et al. 2018's third measure).

    .. math:: r\\big(\\operatorname{HOG}(a), \\operatorname{HOG}(b)\\big)

    Args:
        a: maps :math:`(B, H, W)` or :math:`(B, C, H, W)`.
        b: maps of the same shape.
        cell_size: HOG cell side in pixels.
        bins: HOG orientation bins.
        block_size: HOG cells per block side.

    Returns:
        :math:`(B,)` correlations in [-1, 1] (0 where a descriptor is constant, e.g. a flat map).

    Examples:
        >>> x = torch.rand(2, 16, 16)
        >>> bool(torch.allclose(pearson_hog(x, 3 * x), torch.ones(2)))
        True
    """
    _check_pair(a, b)
    return pearson_correlation(hog(a, cell_size, bins, block_size), hog(b, cell_size, bins, block_size))


def minmax_normalize(maps: Tensor) -> Tensor:
    """Rescale each sample of ``maps`` :math:`(B, \\dots)` to [0, 1], :math:`(m - \\min m)/(\\max m - \\min m)`.

    A constant sample becomes all zeros (the scale of a flat map is undefined).

    Examples:
        >>> minmax_normalize(torch.tensor([[2.0, 4.0, 3.0], [1.0, 1.0, 1.0]]))
        tensor([[0.0000, 1.0000, 0.5000],
                [0.0000, 0.0000, 0.0000]])
    """
    check_tensor(maps, "maps", floating=True)
    flat = maps.reshape(len(maps), -1)
    low, high = flat.amin(1, keepdim=True), flat.amax(1, keepdim=True)
    span = high - low
    scaled = torch.where(span > 0, (flat - low) / span.clamp_min(_EPS), torch.zeros_like(flat))
    return scaled.reshape(maps.shape)


__all__ = [
    "average_ranks",
    "gaussian_window",
    "hog",
    "minmax_normalize",
    "pearson_correlation",
    "pearson_hog",
    "spearman_correlation",
    "ssim",
]
