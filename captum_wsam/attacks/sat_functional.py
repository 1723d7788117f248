"""Pure tensor maths of saliency-guided adversarial training (SAT): direction, perturbation and projection.

P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD 2020,
arXiv:2006.07828. The adversarial image of SAT steps against a direction that follows the (thresholded) saliency
with a probability that grows during training, and a random sign otherwise:

.. math::

    x' = \\operatorname{clip}_{[0,1]}\\big(x - \\epsilon\\, g\\big), \\qquad
    g_i = \\begin{cases} s_i & \\text{with probability } p_t = 1 - a^{t/10} \\\\
    \\pm 1 & \\text{otherwise (uniform random sign)} \\end{cases}

Nothing here touches a model: :mod:`captum_wsam.attacks.sat` computes saliencies and gradients and hands them to
these functions. Randomness only enters through sampled parameters (:func:`sample_sat_params`), so applying the same
parameters twice gives the same result.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def sat_probability(epoch: float, a: float = 0.6) -> float:
    """Probability :math:`p_t` that a SAT direction element follows the saliency at epoch :math:`t`.

    .. math:: p_t = 1 - a^{t / 10}

    The perturbation is random at the start of training (:math:`p_0 = 0`) and becomes saliency-driven as the
    model learns (Mangla et al. 2020, Sec. 4).

    Args:
        epoch: training epoch :math:`t \\ge 0` (fractions allowed).
        a: base :math:`0 < a < 1`.

    Returns:
        :math:`p_t` in [0, 1).

    Examples:
        >>> sat_probability(0), round(sat_probability(10), 2)
        (0.0, 0.4)
    """
    return 1.0 - a ** (epoch / 10.0)


def threshold_saliency(saliency: Tensor) -> Tensor:
    """Gradient-type saliency thresholded by sign to :math:`\\{-1, 0, 1\\}` (Mangla et al. 2020, Sec. 4).

    .. math:: s_i = \\operatorname{sign}(m_i)

    Args:
        saliency: map :math:`m` of any shape.

    Returns:
        Same shape and dtype, values in :math:`\\{-1, 0, 1\\}`.

    Examples:
        >>> threshold_saliency(torch.tensor([-0.3, 0.0, 2.0])).tolist()
        [-1.0, 0.0, 1.0]
    """
    return saliency.sign()


def minmax_saliency(saliency: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-sample min–max scaling of a CAM/SmoothGrad-type saliency map to :math:`[-1, 1]`.

    .. math:: s_i = 2 \\frac{m_i - \\min_j m_j}{\\max_j m_j - \\min_j m_j} - 1

    (min and max over all elements of one sample; a constant map gives 0 everywhere).

    Args:
        saliency: map :math:`(B, \\ldots)`.
        eps: guard against a zero range.

    Returns:
        Same shape, values in :math:`[-1, 1]`.

    Examples:
        >>> s = minmax_saliency(torch.tensor([[0.0, 1.0, 3.0]]))
        >>> [round(v, 4) for v in s[0].tolist()]
        [-1.0, -0.3333, 1.0]
    """
    flat = saliency.reshape(saliency.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > eps, 2 * (flat - low) / span.clamp_min(eps) - 1, torch.zeros_like(flat))
    return scaled.reshape(saliency.shape)


def boxes_to_masks(boxes: Tensor, height: int, width: int) -> Tensor:
    """Rasterize boxes ``(x_min, y_min, x_max, y_max)`` (pixels, max exclusive) into bool masks :math:`(B, 1, H, W)`.

    A pixel :math:`(u, v)` (column, row) is inside when :math:`x_{min} \\le u < x_{max}` and
    :math:`y_{min} \\le v < y_{max}`.

    Args:
        boxes: :math:`(B, 4)`.
        height: :math:`H`.
        width: :math:`W`.

    Returns:
        Bool :math:`(B, 1, H, W)`.

    Examples:
        >>> boxes_to_masks(torch.tensor([[1.0, 0.0, 3.0, 2.0]]), 3, 4).int()[0, 0].tolist()
        [[0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]]
    """
    cols = torch.arange(width, device=boxes.device, dtype=boxes.dtype)
    rows = torch.arange(height, device=boxes.device, dtype=boxes.dtype)
    x_min, y_min, x_max, y_max = (boxes[:, i, None] for i in range(4))
    inside_x = (cols[None] >= x_min) & (cols[None] < x_max)
    inside_y = (rows[None] >= y_min) & (rows[None] < y_max)
    return (inside_y[:, :, None] & inside_x[:, None, :])[:, None]


def weak_saliency(mask: Tensor) -> Tensor:
    """Weak saliency from a segmentation mask or rasterized box (Mangla et al. 2020, Sec. 4.1).

    .. math:: \\tilde s_i = \\begin{cases} 1 & \\text{pixel } i \\text{ inside the mask or box} \\\\
              -1 & \\text{otherwise} \\end{cases}

    Args:
        mask: bool (or 0/1) :math:`(B, 1, H, W)`; see :func:`boxes_to_masks` for boxes.

    Returns:
        Float :math:`(B, 1, H, W)` in :math:`\\{-1, 1\\}`.

    Examples:
        >>> weak_saliency(torch.tensor([[[[True, False]]]])).tolist()
        [[[[1.0, -1.0]]]]
    """
    return mask.bool().float() * 2 - 1


def sample_sat_params(
    shape: Sequence[int], p: float, generator: torch.Generator | None = None, device: torch.device | str = "cpu"
) -> tuple[Tensor, Tensor]:
    """Sample the random parts of a SAT direction: which elements follow the saliency, and random signs.

    .. math:: u_i \\sim \\mathcal{U}[0, 1), \\quad \\text{use}_i = [u_i < p], \\quad
              z_i = \\begin{cases} 1 & u_i < (1 + p) / 2 \\\\ -1 & \\text{otherwise} \\end{cases}

    One uniform draw per element: given :math:`u_i \\ge p`, :math:`u_i` is uniform on :math:`[p, 1)`, so
    :math:`z_i` is a fair random sign exactly where it is used.

    Args:
        shape: shape of the direction, e.g. :math:`(B, C, H, W)`.
        p: probability :math:`p_t` (see :func:`sat_probability`).
        generator: optional CPU generator (draws happen on the CPU, then move to ``device``).
        device: device of the results.

    Returns:
        ``(use_saliency, signs)``: bool and float tensors of ``shape``.

    Examples:
        >>> use, signs = sample_sat_params((2, 3), 0.5, torch.Generator().manual_seed(0))
        >>> use.dtype, sorted(set(signs.flatten().tolist())) <= [-1.0, 1.0]
        (torch.bool, True)
    """
    u = torch.rand(tuple(shape), generator=generator).to(device)
    return u < p, torch.where(u < (1 + p) / 2, 1.0, -1.0)


def sat_direction(saliency: Tensor, use_saliency: Tensor, signs: Tensor) -> Tensor:
    """SAT direction: the saliency where ``use_saliency`` holds, the random sign elsewhere.

    .. math:: g_i = \\begin{cases} s_i & u_i = 1 \\\\ z_i & u_i = 0 \\end{cases}

    Args:
        saliency: :math:`s`, broadcastable to ``signs`` (e.g. :math:`(B, 1, H, W)` for masks).
        use_saliency: bool :math:`u`, shape of ``signs``.
        signs: random :math:`z \\in \\{-1, 1\\}`, :math:`(B, C, H, W)`.

    Returns:
        :math:`g`, shape of ``signs``.

    Examples:
        >>> sat_direction(torch.ones(1, 2), torch.tensor([[True, False]]), -torch.ones(1, 2)).tolist()
        [[1.0, -1.0]]
    """
    return torch.where(use_saliency, saliency.expand_as(signs).to(signs.dtype), signs)


def sat_perturb(images: Tensor, direction: Tensor, eps: float, start: Tensor | None = None) -> Tensor:
    """SAT adversarial image: a step of size :math:`\\epsilon` against the direction, projected and clipped.

    .. math:: x' = \\operatorname{clip}_{[0,1]}\\big(x + \\operatorname{clip}_{[-\\epsilon, \\epsilon]}
              (\\delta_0 - \\epsilon g)\\big)

    with random start :math:`\\delta_0` (zero for plain SAT; uniform in :math:`[-\\epsilon, \\epsilon]` for PGD-SAT
    and TRADES-SAT). Pass :math:`-g` for a targeted step.

    Args:
        images: :math:`x` in [0, 1], :math:`(B, C, H, W)`.
        direction: :math:`g`, broadcastable to ``images``.
        eps: :math:`\\epsilon \\ge 0`.
        start: optional :math:`\\delta_0`, shape of ``images``.

    Returns:
        :math:`x'`, shape of ``images``, with :math:`\\|x' - x\\|_\\infty \\le \\epsilon`.

    Examples:
        >>> x = torch.full((1, 1, 1, 2), 0.5)
        >>> sat_perturb(x, torch.tensor([1.0, -1.0]).view(1, 1, 1, 2), 0.1).flatten().tolist()
        [0.4000000059604645, 0.6000000238418579]
    """
    delta = -eps * direction if start is None else start - eps * direction
    return (images + delta.clamp(-eps, eps)).clamp(0, 1)


def project_linf(adv_images: Tensor, images: Tensor, eps: float) -> Tensor:
    """Projection onto the :math:`\\ell_\\infty` ball of radius :math:`\\epsilon` around ``images``, then onto [0, 1].

    .. math:: \\Pi(x') = \\operatorname{clip}_{[0,1]}\\big(x
              + \\operatorname{clip}_{[-\\epsilon,\\epsilon]}(x' - x)\\big)

    Args:
        adv_images: :math:`x'`, :math:`(B, C, H, W)`.
        images: :math:`x`, same shape.
        eps: :math:`\\epsilon \\ge 0`.

    Returns:
        Projected :math:`x'`, same shape.

    Examples:
        >>> project_linf(torch.tensor([0.9, -0.2]), torch.tensor([0.5, 0.0]), 0.1).tolist()
        [0.6000000238418579, 0.0]
    """
    return (images + (adv_images - images).clamp(-eps, eps)).clamp(0, 1)


__all__ = [
    "boxes_to_masks",
    "minmax_saliency",
    "project_linf",
    "sample_sat_params",
    "sat_direction",
    "sat_perturb",
    "sat_probability",
    "threshold_saliency",
    "weak_saliency",
]
