"""Parameter-saliency statistics: reference mean/std (Welford), standardized scores, input-space saliency.

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022). The filter-wise saliency :math:`\\bar s(x, y)_k` of
:mod:`captum_wsam.attr.parameter_saliency_functional` is standardized over a reference set,

.. math:: \\hat s_k = \\frac{\\bar s_k - \\mu_k}{\\sigma_k}, \\qquad
    M(x) = \\nabla_x \\cos\\big(\\hat s(x), s'\\big),

with :math:`\\mu, \\sigma` merged batch by batch (Welford/Chan, float64) and :math:`s'` the scores with their top-k
entries boosted (the input-space saliency of the paper).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

#: Filters whose reference standard deviation (or mean, in ``"norm"`` mode) is at most this are divided by 1.
MIN_SCALE = 1e-14
MODES = ("standardized", "norm", "raw")


def welford_merge(
    count: int, mean: Tensor, m2: Tensor, batch: Tensor
) -> tuple[int, Tensor, Tensor]:
    """Merge a batch of rows into running mean and sum of squared deviations (Welford; Chan et al. 1979 for batches).

    .. math::
        n' = n + m, \\quad \\delta = \\bar x_B - \\mu, \\quad \\mu' = \\mu + \\delta \\frac{m}{n'}, \\quad
        M_2' = M_2 + \\sum_{j \\in B} (x_j - \\bar x_B)^2 + \\delta^2 \\frac{n m}{n'}

    Args:
        count: rows seen so far :math:`n`.
        mean: running mean :math:`(F,)`.
        m2: running sum of squared deviations :math:`(F,)`.
        batch: new rows :math:`(m, F)`.

    Returns:
        ``(count, mean, m2)`` updated (new tensors).

    Examples:
        >>> rows = torch.rand(10, 3, dtype=torch.float64)
        >>> state = (0, torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64))
        >>> for part in rows.split(4):
        ...     state = welford_merge(*state, part)
        >>> torch.allclose(state[1], rows.mean(0)), torch.allclose(state[2] / 9, rows.var(0))
        (True, True)
    """
    size = batch.shape[0]
    if size == 0:
        return count, mean, m2
    batch_mean = batch.mean(0)
    batch_m2 = ((batch - batch_mean) ** 2).sum(0)
    total = count + size
    delta = batch_mean - mean
    new_mean = mean + delta * (size / total)
    new_m2 = m2 + batch_m2 + delta**2 * (count * size / total)
    return total, new_mean, new_m2


def welford_std(count: int, m2: Tensor, min_scale: float = MIN_SCALE) -> Tensor:
    """Sample standard deviation :math:`\\sqrt{M_2 / (n - 1)}` with values :math:`\\le` ``min_scale`` set to 1.

    Examples:
        >>> welford_std(3, torch.tensor([2.0, 0.0]))
        tensor([1., 1.])
    """
    if count < 2:
        raise ValueError(f"count must be at least 2 to estimate a standard deviation, got {count}")
    std = (m2 / (count - 1)).clamp_min(0).sqrt()
    return torch.where(std <= min_scale, torch.ones_like(std), std)


def normalize_saliency(
    saliency: Tensor, mode: str, mean: Tensor | None = None, std: Tensor | None = None, min_scale: float = MIN_SCALE
) -> Tensor:
    """Filter-wise saliency in one of the three modes of Levin et al.

    .. math::
        \\text{standardized: } \\hat s_k = \\frac{\\bar s_k - \\mu_k}{\\sigma_k}, \\qquad
        \\text{norm: } \\frac{\\bar s_k}{\\mu_k}, \\qquad \\text{raw: } \\bar s_k

    with :math:`\\sigma_k \\le` ``min_scale`` (or :math:`\\mu_k \\le` ``min_scale`` in ``"norm"``) replaced by 1.

    Args:
        saliency: raw filter-wise saliency :math:`(B, F)`.
        mode: ``"standardized"``, ``"norm"`` or ``"raw"``.
        mean: reference mean :math:`(F,)` (``"standardized"`` and ``"norm"``).
        std: reference standard deviation :math:`(F,)` (``"standardized"``).

    Returns:
        :math:`(B, F)` in the dtype of ``saliency``.

    Examples:
        >>> s = torch.tensor([[1.0, 4.0]])
        >>> normalize_saliency(s, "standardized", torch.tensor([1.0, 2.0]), torch.tensor([0.5, 0.0]))
        tensor([[0., 2.]])
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(map(repr, MODES))}; got {mode!r}")
    if mode == "raw":
        return saliency
    if mean is None or (mode == "standardized" and std is None):
        raise ValueError(f"mode {mode!r} needs the reference mean{' and std' if mode == 'standardized' else ''}")
    mean = mean.to(saliency)
    if mode == "norm":
        return saliency / torch.where(mean <= min_scale, torch.ones_like(mean), mean)
    std = std.to(saliency)
    return (saliency - mean) / torch.where(std <= min_scale, torch.ones_like(std), std)


def boost_top_k(scores: Tensor, k: int, boost: float) -> Tensor:
    """Detached copy :math:`s'` of ``scores`` :math:`(B, F)` whose ``k`` largest entries per row are times ``boost``.

    The target of the input-space saliency of Levin et al.: :math:`s'_k = \\text{boost} \\cdot \\hat s_k` for the
    top-:math:`k` filters, :math:`s'_k = \\hat s_k` otherwise.

    Examples:
        >>> boost_top_k(torch.tensor([[1.0, 3.0, 2.0]]), 1, 10.0)
        tensor([[ 1., 30.,  2.]])
    """
    target = scores.detach().clone()
    top = target.topk(k, dim=1).indices
    target.scatter_(1, top, target.gather(1, top) * boost)
    return target


def input_space_saliency(
    scores: Tensor, inputs: Tensor | tuple[Tensor, ...], k: int, boost: float
) -> Tensor | tuple[Tensor, ...]:
    """Input-space saliency: gradient of the cosine similarity between :math:`\\hat s(x)` and its boosted copy.

    .. math:: M(x) = \\nabla_x \\, \\frac{\\langle \\hat s(x), s' \\rangle}{\\lVert \\hat s(x) \\rVert \\,
        \\lVert s' \\rVert}, \\qquad s' = \\operatorname{boost\\_top\\_k}(\\hat s(x))\\ \\text{(detached)}

    Args:
        scores: :math:`\\hat s(x)` :math:`(B, F)`, a differentiable function of ``inputs`` (per-sample rows).
        inputs: the tensor :math:`x` the scores were computed from (or a tuple of such tensors).
        k: filters to boost per sample.
        boost: factor of the boosted filters.

    Returns:
        Gradient of the same shape as ``inputs`` (a tuple of gradients for a tuple).

    Examples:
        >>> x = torch.rand(2, 5, requires_grad=True)
        >>> input_space_saliency((x**2).cumsum(1), x, 2, 100.0).shape
        torch.Size([2, 5])
    """
    target = boost_top_k(scores, k, boost)
    similarity = F.cosine_similarity(scores, target, dim=1)
    grads = torch.autograd.grad(similarity.sum(), inputs)
    return grads if isinstance(inputs, tuple) else grads[0]


def layer_slices(sizes: Sequence[int]) -> list[slice]:
    """Consecutive slices of a flat filter axis made of layers with ``sizes`` filters.

    Examples:
        >>> layer_slices([2, 3])
        [slice(0, 2, None), slice(2, 5, None)]
    """
    slices, start = [], 0
    for size in sizes:
        slices.append(slice(start, start + size))
        start += size
    return slices


__all__ = [
    "MIN_SCALE",
    "MODES",
    "boost_top_k",
    "input_space_saliency",
    "layer_slices",
    "normalize_saliency",
    "welford_merge",
    "welford_std",
]
