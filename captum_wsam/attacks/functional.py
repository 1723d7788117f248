"""Pure tensor maths of the attacks: SAT (Mangla et al. 2020) and LP-A3 (Yang et al. 2022).

LP-A3's training-side maths (sample selection: ``prediction_instability``, ``ema_update``, ``selection_threshold``)
lives in :mod:`captum_wsam.train.functional`; the old names here still work with a ``DeprecationWarning``.

Nothing here touches a model: the classes in :mod:`captum_wsam.attacks.sat` and :mod:`captum_wsam.attacks.lpa3`
compute logits, features and gradients and hand them to these functions. Randomness only enters through sampled
parameters (:func:`sample_sat_params`), so applying the same parameters twice gives the same result.

References:
    - P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD
      2020, arXiv:2006.07828. Perturbation :math:`x' = \\operatorname{clip}_{[0,1]}(x - \\epsilon g)` with
      :math:`g_i = s_i` with probability :math:`p_t = 1 - a^{t/10}` and a random sign otherwise.
    - K. Yang, Y. Sun, J. Su, F. He, X. Tian, F. Huang, T. Zhou, D. Tao (2022), "Adversarial Auto-Augment with Label
      Preservation: A Representation Learning Principle Guided Approach", NeurIPS 2022, arXiv:2211.00824.
      :math:`\\max_{x'} \\|\\phi(x') - \\phi(x)\\|` s.t. :math:`\\log p(y|x) - \\log p(y|x') \\le b`, solved with the
      fast-Lagrangian steps of C. Laidlaw, S. Singla, S. Feizi (2021), "Perceptual Adversarial Robustness",
      arXiv:2006.12655.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

# --------------------------------------------------------------------------------------------------------------- SAT


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


# ------------------------------------------------------------------------------------------------------------- LP-A3


def normalize_flatten_features(features: Sequence[Tensor], eps: float = 1e-10) -> Tensor:
    """LPIPS-like features: unit-normalize each channel vector, scale by :math:`1/\\sqrt{HW}`, flatten and concatenate.

    .. math:: \\phi(x) = \\Big[\\frac{f^{(l)}_{:, h, w}}{\\|f^{(l)}_{:, h, w}\\|_2 \\sqrt{H_l W_l}}\\Big]_{l, h, w}

    so each layer contributes a vector of norm 1 and :math:`\\|\\phi(x') - \\phi(x)\\|_2 \\le 2\\sqrt{L}`.
    2-D features :math:`(B, C)` are treated as :math:`(B, C, 1, 1)`. An all-zero channel vector maps to zero and has a
    finite gradient (the literal :math:`\\sqrt{\\sum_c f_c^2}` of the official code gives NaN there).

    Args:
        features: per layer :math:`(B, C_l, H_l, W_l)` or :math:`(B, C_l)`.
        eps: guard for zero channel vectors.

    Returns:
        :math:`(B, \\sum_l C_l H_l W_l)`.

    Examples:
        >>> phi = normalize_flatten_features([torch.rand(2, 3, 4, 4), torch.rand(2, 5)])
        >>> phi.shape, torch.allclose(phi.norm(dim=1), torch.full((2,), 2 ** 0.5))
        (torch.Size([2, 53]), True)
    """
    maps = [f if f.dim() == 4 else f.reshape(f.shape[0], -1, 1, 1) for f in features]
    flat = torch.cat([f.reshape(f.shape[0], -1) for f in maps], dim=1)
    if flat.dtype in (torch.float16, torch.bfloat16):  # squares of AMP activations overflow half precision
        flat = flat.float()
    # all layers in one pass: each element's channel vector ("group": layer and position) is found by an index, so
    # the cost is a dozen operations whatever the number of layers (the per-layer loop took 8 per layer)
    group, scale = _channel_groups(tuple(tuple(f.shape[1:]) for f in maps), flat.device, flat.dtype)
    squares = torch.index_add(flat.new_zeros(flat.shape[0], scale.shape[0]), 1, group, flat * flat)
    # clamped before the square root: at an all-zero channel vector (common behind a ReLU) the plain sqrt(sum f^2)
    # has a 0/0 = NaN backward, which made every later LP-A3 step of that sample NaN; the clamp passes no gradient
    inverse = scale / (squares.clamp_min(torch.finfo(squares.dtype).tiny).sqrt() + eps)
    return flat * inverse.index_select(1, group)


@functools.lru_cache(maxsize=64)
def _channel_groups(
    shapes: tuple[tuple[int, ...], ...], device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor]:
    """Channel-vector groups of features with per-sample ``shapes`` :math:`(C_l, H_l, W_l)`, flattened and concatenated.

    Returns the group of every element, :math:`\\sum_{l' < l} H_{l'} W_{l'} + h W_l + w`, and each group's scale
    :math:`1/\\sqrt{H_l W_l}`.
    """
    groups, scales, offset = [], [], 0
    for channels, height, width in shapes:
        positions = height * width
        groups.append(torch.arange(positions, device=device).repeat(channels) + offset)
        scales.append(torch.full((positions,), 1 / math.sqrt(positions), device=device, dtype=dtype))
        offset += positions
    return torch.cat(groups), torch.cat(scales)


def feature_distance(features: Sequence[Tensor], reference: Tensor) -> Tensor:
    """Normalized feature distance :math:`\\|\\phi(x') - \\phi(x)\\|_2` per sample.

    Args:
        features: raw features of :math:`x'` (see :func:`normalize_flatten_features`).
        reference: :math:`\\phi(x)`, already normalized, :math:`(B, D)`.

    Returns:
        :math:`(B,)`.

    Examples:
        >>> f = [torch.rand(2, 3, 4, 4)]
        >>> feature_distance(f, normalize_flatten_features(f)).abs().max() < 1e-6
        tensor(True)
    """
    return (normalize_flatten_features(features) - reference).norm(dim=1)


def label_log_prob(logits: Tensor, labels: Tensor) -> Tensor:
    """:math:`\\log p(y|x)` per sample from logits.

    .. math:: \\log p(y|x) = z_y - \\log \\sum_k e^{z_k}

    Args:
        logits: :math:`(B, K)`.
        labels: :math:`(B,)` class indices.

    Returns:
        :math:`(B,)`.

    Examples:
        >>> label_log_prob(torch.zeros(1, 4), torch.tensor([2])).exp().tolist()
        [0.25]
    """
    return F.log_softmax(logits, dim=1).gather(1, labels[:, None])[:, 0]


def lagrangian_schedule(iteration: int, steps: int, bound: float, lam: float) -> tuple[float, float]:
    """Fast-Lagrangian step size and multiplier at ``iteration`` (step decays, multiplier grows).

    .. math:: \\eta_i = b \\cdot 0.1^{i/N}, \\qquad \\lambda_i = \\lambda \\cdot 0.1^{1 - i/N}

    Args:
        iteration: :math:`i \\in [0, N)`.
        steps: :math:`N`.
        bound: label-preservation bound :math:`b`.
        lam: final multiplier :math:`\\lambda`.

    Returns:
        ``(step, multiplier)``.

    Examples:
        >>> [round(v, 4) for v in lagrangian_schedule(0, 5, 0.1, 1.0)]
        [0.1, 0.1]
    """
    return bound * 0.1 ** (iteration / steps), lam * 0.1 ** (1 - iteration / steps)


def lagrangian_objective(distance: Tensor, drop: Tensor, bound: float, multiplier: float) -> Tensor:
    """Per-sample LP-A3 Lagrangian (minimized): feature distance rewarded, log-prob drop above the bound penalized.

    .. math:: \\mathcal{L}(x') = -\\|\\phi(x') - \\phi(x)\\| + \\lambda \\max\\big(0, \\log p(y|x) - \\log p(y|x')
              - b\\big)

    Args:
        distance: :math:`\\|\\phi(x') - \\phi(x)\\|`, :math:`(B,)`.
        drop: :math:`\\log p(y|x) - \\log p(y|x')`, :math:`(B,)`.
        bound: :math:`b`.
        multiplier: :math:`\\lambda`.

    Returns:
        :math:`(B,)`.

    Examples:
        >>> round(lagrangian_objective(torch.tensor([0.5]), torch.tensor([0.3]), 0.1, 2.0).item(), 4)
        -0.1
    """
    return -distance + multiplier * F.relu(drop - bound)


def lagrangian_step(
    gradient: Tensor, sensitivity: Tensor, step: float, eps: float = 1e-8, *, direction: Tensor | None = None
) -> Tensor:
    """Fast-Lagrangian update: normalized gradient descent, length divided by the constraint's sensitivity.

    .. math:: \\Delta = -\\frac{\\eta}{\\sigma + 10^{-4}} \\frac{\\nabla \\mathcal{L}}{\\|\\nabla \\mathcal{L}\\|_2},
              \\qquad \\sigma = \\frac{|c(x') - c(x' - h \\hat g)|}{h}

    so that one step changes the constraint :math:`c` by about :math:`\\eta`.

    Args:
        gradient: :math:`\\nabla_{x'} \\mathcal{L}`, :math:`(B, C, H, W)`.
        sensitivity: :math:`\\sigma`, :math:`(B,)` (see :func:`normalized_gradient` for :math:`\\hat g`).
        step: :math:`\\eta`.
        eps: guard for a zero gradient.
        direction: :math:`\\hat g` when the caller already has it (``normalized_gradient(gradient, eps)``); saves
            recomputing it.

    Returns:
        :math:`\\Delta`, shape of ``gradient``.

    Examples:
        >>> d = lagrangian_step(torch.ones(1, 1, 2, 2), torch.tensor([0.0]), 1e-4)
        >>> round(d.norm().item(), 3)
        1.0
    """
    if direction is None:
        direction = normalized_gradient(gradient, eps)
    elif direction.shape != gradient.shape:
        raise ValueError(
            f"direction must have the shape of gradient {tuple(gradient.shape)}, got {tuple(direction.shape)}"
        )
    scale = step / (sensitivity + 1e-4)
    return -direction * scale.view(-1, *([1] * (gradient.dim() - 1)))


def normalized_gradient(gradient: Tensor, eps: float = 1e-8) -> Tensor:
    """Per-sample unit-:math:`\\ell_2` gradient :math:`\\hat g = g / (\\|g\\|_2 + 10^{-8})`.

    Args:
        gradient: :math:`(B, \\ldots)`.
        eps: guard for a zero gradient.

    Returns:
        Same shape.

    Examples:
        >>> normalized_gradient(torch.tensor([[3.0, 4.0]])).tolist()
        [[0.6000000238418579, 0.800000011920929]]
    """
    norm = gradient.reshape(gradient.shape[0], -1).norm(dim=1)
    return gradient / (norm + eps).view(-1, *([1] * (gradient.dim() - 1)))


_MOVED_TO_TRAIN = ("ema_update", "prediction_instability", "selection_threshold")


def __getattr__(name: str) -> object:
    """LP-A3's training-side maths moved to :mod:`captum_wsam.train.functional`; the old names still work."""
    if name in _MOVED_TO_TRAIN:
        import warnings

        from ..train import functional as train_functional  # deprecated path: loaded only when an old name is used

        warnings.warn(f"captum_wsam.attacks.functional.{name} moved to captum_wsam.train.functional.{name}",
                      DeprecationWarning, stacklevel=2)
        return getattr(train_functional, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "boxes_to_masks",
    "feature_distance",
    "label_log_prob",
    "lagrangian_objective",
    "lagrangian_schedule",
    "lagrangian_step",
    "minmax_saliency",
    "normalize_flatten_features",
    "normalized_gradient",
    "project_linf",
    "sample_sat_params",
    "sat_direction",
    "sat_perturb",
    "sat_probability",
    "threshold_saliency",
    "weak_saliency",
]
