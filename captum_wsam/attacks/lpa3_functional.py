"""Pure tensor maths of the LP-A3 attack: normalized features, the label-preservation constraint, Lagrangian steps.

K. Yang, Y. Sun, J. Su, F. He, X. Tian, F. Huang, T. Zhou, D. Tao (2022), "Adversarial Auto-Augment with Label
Preservation: A Representation Learning Principle Guided Approach", NeurIPS 2022, arXiv:2211.00824, augment a sample
as far as possible in feature space while its label stays likely,

.. math::

    \\max_{x'} \\|\\phi(x') - \\phi(x)\\|_2 \\quad \\text{s.t.} \\quad \\log p(y|x) - \\log p(y|x') \\le b,

solved with the fast-Lagrangian steps of C. Laidlaw, S. Singla, S. Feizi (2021), "Perceptual Adversarial Robustness",
arXiv:2006.12655: minimize :math:`-\\|\\phi(x') - \\phi(x)\\|_2 + \\lambda\\,\\max(0, \\text{drop} - b)` with a decaying
step and a growing multiplier :math:`\\lambda`. Nothing here touches a model: :mod:`captum_wsam.attacks.lpa3` computes
logits, features and gradients and hands them to these functions. LP-A3's training-side maths (sample selection) is
in :mod:`captum_wsam.train.functional`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


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


__all__ = [
    "feature_distance",
    "label_log_prob",
    "lagrangian_objective",
    "lagrangian_schedule",
    "lagrangian_step",
    "normalize_flatten_features",
    "normalized_gradient",
]
