r"""The probes of :mod:`captum_wsam.augment.probes` as pure functions: saturation and patch shuffling.

Zhang and Zhu (2019), "Interpreting Adversarially Trained Convolutional Neural Networks", ICML, arXiv:1905.09797,
test whether a network relies on texture or on shape with two image transforms:

.. math:: \operatorname{sat}_p(x) = \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big), \qquad
          \operatorname{shuffle}_\pi(x)_{\text{cell } j} = x_{\text{cell } \pi(j)}

(saturation: identity at :math:`p = 2`, binarizing as :math:`p\to\infty`; shuffling: an :math:`n\times n` grid of
cells permuted by :math:`\pi`). Randomness (:math:`p`, :math:`\pi`) is sampled by the augmentation classes and passed
in, so applying the same parameters twice gives the same image.
"""

from __future__ import annotations

import torch
from torch import Tensor


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


__all__ = ["patch_shuffle", "saturation"]
