r"""Shape/texture probes of Zhang and Zhu (2019) as Kornia augmentations: saturation and patch shuffling.

Zhang and Zhu (2019), "Interpreting Adversarially Trained Convolutional Neural Networks", ICML, arXiv:1905.09797,
measure what a classifier relies on by transforming test images so that one cue survives:

- **saturation** keeps the shape and destroys texture as the level :math:`p` grows,
  :math:`x_p = \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big)` (:math:`p = 2` is the identity,
  :math:`p \to \infty` binarizes each channel);
- **patch shuffling** keeps local texture and destroys the global shape: the image is cut into an :math:`n\times n`
  grid whose cells are randomly permuted;
- **stylizing** keeps the shape and replaces the texture: :class:`~captum_wsam.augment.StyleAugment` at α = 0.

Not to be confused with Kornia's ``RandomSaturation`` (HSV colour saturation).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from kornia.augmentation import IntensityAugmentationBase2D
from torch import Tensor

from .._checks import check_in_range, check_positive_int, check_range_pair, check_type
from .functional import patch_shuffle, saturation


def _level_range(level: Any) -> tuple[float, float]:
    pair = (level, level) if isinstance(level, (int, float)) and not isinstance(level, bool) else level
    low, high = check_range_pair(pair, "level", 1e-6, 1e12)
    return low, high


class RandomSaturation(IntensityAugmentationBase2D):
    r"""Zhang and Zhu's saturation with a random level per sample (log-uniform in ``level``).

    .. math:: x_p = \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big),\qquad
              \log_2 p \sim U(\log_2 p_{\min}, \log_2 p_{\max})

    Level 2 is the identity, large levels (the paper uses 8 to 1024) binarize every channel at 0.5, levels below 2
    wash the image towards grey. Parameters: ``level`` :math:`(B,)`; ``aug(x, params=aug._params)`` replays them.

    Args:
        level: a level :math:`p > 0` or a range ``(min, max)``.
        p: probability of transforming each sample.
        same_on_batch: one level for the whole batch.
        keepdim: keep a :math:`(C, H, W)` input's shape.

    Shape:
        - Input: :math:`(B, C, H, W)` in [0, 1]. Output: same shape, in [0, 1].

    Examples:
        >>> aug = RandomSaturation(level=(8.0, 1024.0), p=1.0)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> out = aug(x)
        >>> out.shape, bool(aug(x, params=aug._params).equal(out)), bool(RandomSaturation(2.0, p=1.0)(x).allclose(x))
        (torch.Size([2, 3, 8, 8]), True, True)
    """

    def __init__(
        self,
        level: float | tuple[float, float] = (8.0, 1024.0),
        p: float = 0.5,
        same_on_batch: bool = False,
        keepdim: bool = False,
    ) -> None:
        low, high = _level_range(level)
        check_in_range(p, "p", 0.0, 1.0)
        check_type(same_on_batch, "same_on_batch", bool)
        super().__init__(p=p, same_on_batch=same_on_batch, p_batch=1.0, keepdim=keepdim)
        self.level = (low, high)

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        draws = 1 if self.same_on_batch else batch_shape[0]
        low, high = math.log2(self.level[0]), math.log2(self.level[1])
        exponent = low + (high - low) * torch.rand(draws, device=self.device, dtype=torch.float64)
        return {"level": (2.0**exponent).expand(batch_shape[0]).clone()}

    def apply_transform(
        self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Tensor:
        level = params["level"].to(device=input.device, dtype=input.dtype)
        if level.shape[0] != input.shape[0]:
            level = level.expand(input.shape[0]) if level.shape[0] == 1 else level[params["batch_prob"] > 0.5]
        return saturation(input, level)


class Saturation(RandomSaturation):
    r"""Zhang and Zhu's saturation at a fixed level, applied to every sample (``p = 1``).

    .. math:: x_p = \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big)

    Args:
        level: :math:`p > 0` (2 is the identity; 1024 nearly binarizes).
        keepdim: keep a :math:`(C, H, W)` input's shape.

    Examples:
        >>> x = torch.tensor([0.2, 0.5, 0.7]).view(1, 1, 1, 3)
        >>> (Saturation(1024.0)(x) > 0.5).flatten().tolist()
        [False, False, True]
    """

    def __init__(self, level: float = 8.0, keepdim: bool = False) -> None:
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise TypeError(f"level must be a number, got {type(level).__name__}: {level!r}")
        super().__init__(level=float(level), p=1.0, same_on_batch=True, keepdim=keepdim)


class RandomPatchShuffle(IntensityAugmentationBase2D):
    r"""Cut each image into a ``grid`` of equal cells and permute the cells at random (Zhang and Zhu 2019).

    .. math:: y_{\text{cell}\ j} = x_{\text{cell}\ \pi(j)},\qquad \pi \sim U(S_{g_h g_w})

    Keeps local texture, destroys the global shape. Masks are shuffled with the image; boxes and keypoints are not
    supported (a shuffled object has no single box). When :math:`H` or :math:`W` is not divisible by the grid, the
    remaining bottom rows / right columns stay in place. Parameters: ``permutation`` :math:`(B, g_h g_w)`.

    Args:
        grid: ``n`` or ``(rows, columns)``; the paper uses 2×2 and 4×4.
        p: probability of shuffling each sample.
        same_on_batch: one permutation for the whole batch.
        keepdim: keep a :math:`(C, H, W)` input's shape.

    Examples:
        >>> aug = RandomPatchShuffle(grid=(2, 2), p=1.0)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> out = aug(x)
        >>> aug._params["permutation"].shape, bool(aug(x, params=aug._params).equal(out))
        (torch.Size([2, 4]), True)
        >>> bool(torch.equal(out.flatten(1).sort(1).values, x.flatten(1).sort(1).values))
        True
    """

    def __init__(
        self, grid: int | tuple[int, int] = (2, 2), p: float = 0.5, same_on_batch: bool = False, keepdim: bool = False
    ) -> None:
        cells = (grid, grid) if isinstance(grid, int) and not isinstance(grid, bool) else grid
        if not isinstance(cells, (tuple, list)) or len(cells) != 2:
            raise TypeError(f"grid must be an int or a (rows, columns) pair, got {grid!r}")
        for value in cells:
            check_positive_int(value, "grid")
        check_in_range(p, "p", 0.0, 1.0)
        check_type(same_on_batch, "same_on_batch", bool)
        super().__init__(p=p, same_on_batch=same_on_batch, p_batch=1.0, keepdim=keepdim)
        self.grid = (int(cells[0]), int(cells[1]))

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        draws = 1 if self.same_on_batch else batch_shape[0]
        permutation = torch.rand(draws, self.grid[0] * self.grid[1], device=self.device).argsort(dim=1)
        return {"permutation": permutation.expand(batch_shape[0], -1).clone()}

    def _check_size(self, input: Tensor) -> None:
        if input.shape[-2] < self.grid[0] or input.shape[-1] < self.grid[1]:
            raise ValueError(f"input must be at least {self.grid} pixels for grid {self.grid}, got "
                             f"{tuple(input.shape)}")

    def _permutation(self, params: dict[str, Tensor], batch: int) -> Tensor:
        permutation = params["permutation"]
        if permutation.shape[0] != batch:
            permutation = permutation[params["batch_prob"] > 0.5]
        return permutation

    def apply_transform(
        self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Tensor:
        self._check_size(input)
        return patch_shuffle(input, self.grid, self._permutation(params, input.shape[0]))

    def apply_transform_mask(
        self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Tensor:
        return patch_shuffle(input, self.grid, self._permutation(params, input.shape[0]))

    def apply_transform_box(self, input: Any, params: dict[str, Tensor], flags: dict[str, Any],
                            transform: Tensor | None = None) -> Any:
        raise ValueError("RandomPatchShuffle does not support boxes: a shuffled object has no single box")

    def apply_transform_keypoint(self, input: Any, params: dict[str, Tensor], flags: dict[str, Any],
                                 transform: Tensor | None = None) -> Any:
        raise ValueError("RandomPatchShuffle does not support keypoints")


__all__ = ["RandomPatchShuffle", "RandomSaturation", "Saturation"]
