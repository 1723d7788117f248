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
from kornia.augmentation import GeometricAugmentationBase2D, IntensityAugmentationBase2D
from kornia.geometry.boxes import Boxes
from kornia.geometry.keypoints import Keypoints
from torch import Tensor

from .._checks import check_finite, check_in_range, check_positive_int, check_range_pair, check_type
from .functional import patch_shuffle, saturation


def _check_finite_input(input: Any) -> None:
    """Raise ``ValueError`` naming ``input`` if it holds NaN or ±inf (one reduction, at the entry of ``forward``).

    Skipped while ``torch.compile`` traces the module: a data-dependent ``raise`` would break the graph, and the
    compiled path is the pure apply path (callers check their data once, eagerly).
    """
    if isinstance(input, Tensor) and not torch.compiler.is_compiling():
        check_finite(input, "input")


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

    def forward(self, input: Tensor, params: dict[str, Tensor] | None = None, **kwargs: Any) -> Tensor:
        _check_finite_input(input)
        return super().forward(input, params=params, **kwargs)

    def apply_transform(
        self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Tensor:
        level = params["level"].to(device=input.device, dtype=input.dtype)
        if level.shape[0] != input.shape[0]:
            level = level.expand(input.shape[0]) if level.shape[0] == 1 else level[params["batch_prob"] > 0.5]
        return saturation(input, level)


class Saturation(RandomSaturation):
    r"""Zhang and Zhu's saturation at a fixed level (applied to every sample by default, ``p = 1``).

    .. math:: x_p = \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big)

    Args:
        level: :math:`p > 0` (2 is the identity; 1024 nearly binarizes).
        p: Kornia's probability of transforming each sample (default 1.0; not the saturation level).
        keepdim: keep a :math:`(C, H, W)` input's shape.

    Shape:
        - Input: :math:`(B, C, H, W)` in [0, 1], finite. Output: same shape, in [0, 1].

    Examples:
        >>> x = torch.tensor([0.2, 0.5, 0.7]).view(1, 1, 1, 3)
        >>> (Saturation(1024.0)(x) > 0.5).flatten().tolist()
        [False, False, True]
        >>> bool(Saturation(1024.0, p=0.0)(x).equal(x))
        True
    """

    def __init__(self, level: float = 8.0, p: float = 1.0, keepdim: bool = False) -> None:
        if isinstance(level, bool) or not isinstance(level, (int, float)):
            raise TypeError(f"level must be a number, got {type(level).__name__}: {level!r}")
        super().__init__(level=float(level), p=p, same_on_batch=False, keepdim=keepdim)  # the gate per sample


def _cell_index(points: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Grid cell (row-major index) holding each point ``(x, y)``; -1 outside the shuffled cells.

    Kornia's pixel convention: pixel centres at integers, so pixel ``k`` covers :math:`[k - \\tfrac12, k + \\tfrac12)`
    and a point belongs to the cell of the pixel it lies in.
    """
    rows, cols = grid
    cell_h, cell_w = size[0] // rows, size[1] // cols
    col = torch.floor((points[..., 0] + 0.5) / cell_w)
    row = torch.floor((points[..., 1] + 0.5) / cell_h)
    inside = (col >= 0) & (col < cols) & (row >= 0) & (row < rows)
    return torch.where(inside, row * cols + col, torch.full_like(col, -1)).long()


def _move_points(points: Tensor, grid: tuple[int, int], size: tuple[int, int], destination: Tensor) -> Tensor:
    r"""Translate every point with its cell: a point of cell :math:`i` moves to cell ``destination[b, i]``.

    .. math:: (x, y) \mapsto (x + (c' - c)\,w_c,\; y + (r' - r)\,h_c)

    with :math:`(r, c)` the point's cell, :math:`(r', c')` its destination and :math:`h_c \times w_c` the cell size;
    points outside the shuffled cells stay. Exact (a translation by whole pixels).

    Args:
        points: :math:`(B, N, 2)` ``(x, y)`` pixel coordinates.
        grid: ``(rows, columns)``.
        size: image ``(H, W)``.
        destination: :math:`(B, g_h g_w)` long, a permutation per image.

    Returns:
        :math:`(B, N, 2)`.
    """
    rows, cols = grid
    cell_h, cell_w = size[0] // rows, size[1] // cols
    cell = _cell_index(points, grid, size)
    source = cell.clamp(min=0)
    target = destination.to(points.device).gather(1, source)
    moved = cell >= 0
    shift_x = torch.where(moved, (target % cols - source % cols) * cell_w, 0).to(points.dtype)
    shift_y = torch.where(moved, (target // cols - source // cols) * cell_h, 0).to(points.dtype)
    return points + torch.stack([shift_x, shift_y], dim=-1)


class RandomPatchShuffle(GeometricAugmentationBase2D):
    r"""Cut each image into a ``grid`` of equal cells and permute the cells at random (Zhang and Zhu 2019).

    .. math:: y_{\text{cell}\ j} = x_{\text{cell}\ \pi(j)},\qquad \pi \sim U(S_{g_h g_w})

    Keeps local texture, destroys the global shape. A geometric augmentation: in
    :class:`~kornia.augmentation.AugmentationSequential` masks are shuffled with the image, keypoints move with their
    cell (a point of input cell :math:`i` lands in output cell :math:`\pi^{-1}(i)`, translated by whole cells), a
    box lying inside one cell moves with it (a box spanning several cells raises ``ValueError``: a shuffled object
    has no single box), and ``inverse`` undoes the shuffle exactly for images, masks, keypoints and boxes (with
    :math:`\pi^{-1}`, read from the params). Inside :class:`~kornia.augmentation.PatchSequential`, Kornia refuses
    masks, boxes and keypoints for geometric children (``NotImplementedError``) instead of leaving them behind.

    When :math:`H` or :math:`W` is not divisible by the grid, the remaining bottom rows / right columns stay in
    place (and so do points there). Parameters: ``permutation`` :math:`(B, g_h g_w)`.

    **The transformation matrix is not an affine map.** A shuffle moves each cell by its own translation, which no
    single :math:`3\times 3` matrix describes, so :attr:`transform_matrix` holds NaN for every shuffled sample (the
    identity for samples the ``p`` gate skipped); any code that maps coordinates through it gets NaN, never a
    plausible wrong answer. Keypoints and boxes are moved from the ``permutation`` instead.

    Args:
        grid: ``n`` or ``(rows, columns)``; the paper uses 2×2 and 4×4.
        p: probability of shuffling each sample.
        same_on_batch: one permutation for the whole batch.
        keepdim: keep a :math:`(C, H, W)` input's shape.

    Shape:
        - Input: :math:`(B, C, H, W)` or :math:`(C, H, W)`, finite. Output: :math:`(B, C, H, W)`.

    Examples:
        >>> aug = RandomPatchShuffle(grid=(2, 2), p=1.0)
        >>> x = torch.rand(2, 3, 8, 8)
        >>> out = aug(x)
        >>> aug._params["permutation"].shape, bool(aug(x, params=aug._params).equal(out))
        (torch.Size([2, 4]), True)
        >>> bool(aug.inverse(out, params=aug._params).equal(x)), bool(aug.transform_matrix.isnan().all())
        (True, True)
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
        check_type(keepdim, "keepdim", bool)
        super().__init__(p=p, same_on_batch=same_on_batch, p_batch=1.0, keepdim=keepdim)
        self.grid = (int(cells[0]), int(cells[1]))

    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        draws = 1 if self.same_on_batch else batch_shape[0]
        permutation = torch.rand(draws, self.grid[0] * self.grid[1], device=self.device).argsort(dim=1)
        return {"permutation": permutation.expand(batch_shape[0], -1).clone()}

    def forward(self, input: Tensor, params: dict[str, Tensor] | None = None, **kwargs: Any) -> Tensor:
        _check_finite_input(input)
        return super().forward(input, params=params, **kwargs)

    # ------------------------------------------------------------------ parameters
    def _check_size(self, height: int, width: int) -> None:
        if height < self.grid[0] or width < self.grid[1]:
            raise ValueError(f"input must be at least {self.grid} pixels for grid {self.grid}, got {height}x{width}")

    def _permutation(self, params: dict[str, Tensor], batch: int) -> Tensor:
        permutation = params["permutation"]
        if permutation.shape[0] != batch:
            permutation = permutation[params["batch_prob"] > 0.5]  # Kornia < 0.9 passes only the gated samples
        return permutation

    def _image_size(self, params: dict[str, Tensor]) -> tuple[int, int]:
        shape = params.get("forward_input_shape")
        if shape is None:
            raise ValueError("params must hold 'forward_input_shape' (the image size) to move keypoints or boxes")
        height, width = (int(v) for v in shape.tolist()[-2:])
        self._check_size(height, width)
        return height, width

    # ------------------------------------------------------------------ matrix: deliberately not an affine map
    def compute_transformation(self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any]) -> Tensor:
        """NaN :math:`(B, 3, 3)`: a patch shuffle has no affine matrix (see the class docstring)."""
        return torch.full((input.shape[0], 3, 3), float("nan"), device=input.device, dtype=input.dtype)

    def compute_inverse_transformation(self, transform: Tensor) -> Tensor:
        """The stand-in matrix is its own inverse: NaN stays NaN, a skipped sample's identity stays identity."""
        return transform.clone()

    # ------------------------------------------------------------------ forward
    def apply_transform(
        self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Tensor:
        self._check_size(input.shape[-2], input.shape[-1])
        return patch_shuffle(input, self.grid, self._permutation(params, input.shape[0]))

    def apply_transform_keypoint(
        self, input: Keypoints, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Keypoints:
        data = input.data if input.data.dim() == 3 else input.data.unsqueeze(0)
        destination = self._permutation(params, data.shape[0]).argsort(dim=1)  # input cell i -> pi^-1(i)
        moved = _move_points(data, self.grid, self._image_size(params), destination)
        return Keypoints(moved if input.data.dim() == 3 else moved.squeeze(0), False)

    def apply_transform_box(
        self, input: Boxes, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Boxes:
        return self._move_boxes(input, params, inverse=False)

    def _move_boxes(self, boxes: Boxes, params: dict[str, Tensor], inverse: bool) -> Boxes:
        """Translate each box with the cell holding its centre; raise if a box of a shuffled sample leaves that cell.

        A box lies inside cell :math:`(r, c)` when its corners lie in :math:`[c w_c - \tfrac12, (c+1) w_c]` (and
        likewise in :math:`y`), which accepts both corner conventions Kornia uses (inclusive pixel centres, and
        exclusive edges for ``bbox_xyxy`` data keys). Boxes outside the shuffled cells stay.
        """
        data = boxes.data if boxes.data.dim() == 4 else boxes.data.unsqueeze(0)
        batch, count = data.shape[:2]
        size = self._image_size(params)
        rows, cols = self.grid
        cell_h, cell_w = size[0] // rows, size[1] // cols
        centre = data.mean(dim=2)
        cell = _cell_index(centre, self.grid, size)
        left = ((cell % cols) * cell_w).unsqueeze(-1).to(data.dtype)
        top = ((cell // cols) * cell_h).unsqueeze(-1).to(data.dtype)
        x, y = data[..., 0], data[..., 1]
        contained = ((x >= left - 0.5) & (x <= left + cell_w) & (y >= top - 0.5) & (y <= top + cell_h)).all(dim=-1)
        outside = (_cell_index(data, self.grid, size) < 0).all(dim=-1)
        fits = torch.where(cell >= 0, contained, outside)
        valid = boxes._valid.reshape(batch, count).to(data.device)
        gate = self._gate(params).to(data.device).view(-1, 1)  # a skipped sample's boxes need not fit a cell
        spanning = ~fits & valid & gate
        if bool(spanning.any()):
            sample, box = (int(i) for i in spanning.nonzero()[0])
            raise ValueError(f"boxes must each lie inside one cell of the {self.grid} grid to follow "
                             f"RandomPatchShuffle (a shuffled object has no single box), got box {box} of sample "
                             f"{sample} with corners {data[sample, box].tolist()} on an image of {size[0]}x{size[1]}")
        permutation = self._permutation(params, batch)
        destination = permutation if inverse else permutation.argsort(dim=1)
        shift = _move_points(centre, self.grid, size, destination) - centre
        out = boxes.clone()
        moved = data + shift.unsqueeze(2)
        out._data = moved if boxes.data.dim() == 4 else moved.squeeze(0)
        return out

    # ------------------------------------------------------------------ inverse (Kornia passes no params to
    # ``inverse_transform``, so the handlers that receive params are overridden)
    def inverse_inputs(
        self,
        input: Tensor,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
        **kwargs: Any,
    ) -> Tensor:
        in_tensor = self.transform_tensor(input)
        params, flags = self._process_kwargs_to_params_and_flags(
            self._params if params is None else params, flags, **kwargs
        )
        self._check_size(in_tensor.shape[-2], in_tensor.shape[-1])
        permutation = self._permutation(params, in_tensor.shape[0])
        restored = patch_shuffle(in_tensor, self.grid, permutation.argsort(dim=1))
        return self._blend_by_prob(restored, in_tensor, self._gate(params))

    def inverse_transform(
        self,
        input: Tensor,
        flags: dict[str, Any],
        transform: Tensor | None = None,
        size: tuple[int, int] | None = None,
    ) -> Tensor:
        raise NotImplementedError("RandomPatchShuffle is undone from its permutation: call inverse(), inverse_inputs() "
                                  "or inverse_masks() with the params of the forward call")

    def inverse_keypoints(
        self,
        input: Keypoints,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
        **kwargs: Any,
    ) -> Keypoints:
        params, flags = self._process_kwargs_to_params_and_flags(
            self._params if params is None else params, flags, **kwargs
        )
        data = input.data if input.data.dim() == 3 else input.data.unsqueeze(0)
        permutation = self._permutation(params, data.shape[0])  # output cell j came from input cell pi(j)
        moved = _move_points(data, self.grid, self._image_size(params), permutation)
        moved = self._blend_by_prob(moved, data, self._gate(params))
        return Keypoints(moved if input.data.dim() == 3 else moved.squeeze(0), False)

    def inverse_boxes(
        self,
        input: Boxes,
        params: dict[str, Tensor],
        flags: dict[str, Any],
        transform: Tensor | None = None,
        **kwargs: Any,
    ) -> Boxes:
        params, flags = self._process_kwargs_to_params_and_flags(
            self._params if params is None else params, flags, **kwargs
        )
        moved = self._move_boxes(input, params, inverse=True)
        gate = self._gate(params)
        if input.data.dim() == 4:
            moved._data = self._blend_by_prob(moved.data, input.data, gate)
        return moved


__all__ = ["RandomPatchShuffle", "RandomSaturation", "Saturation"]
