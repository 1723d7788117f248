"""Plots of augmentation results: the style × α grid of :meth:`StyleAugment.stylize_grid`."""

from __future__ import annotations

from collections.abc import Sequence

from matplotlib.figure import Figure
from torch import Tensor

from .._checks import check_tensor


def plot_style_grid(
    grid: Tensor,
    alphas: Sequence[float] | None = None,
    style_names: Sequence[str] | None = None,
    image_index: int = 0,
    cell_size: float = 1.3,
) -> Figure:
    """One image of a :meth:`~captum_wsam.augment.StyleAugment.stylize_grid` result: styles as rows, α as columns.

    Args:
        grid: :math:`(S, A, B, 3, H, W)` in [0, 1].
        alphas: the ``A`` α values (column titles).
        style_names: the ``S`` style names (row labels).
        image_index: which image :math:`b < B` to show.
        cell_size: inches per cell.

    Returns:
        The matplotlib figure (not shown).

    Examples:
        >>> import torch
        >>> fig = plot_style_grid(torch.rand(2, 3, 1, 3, 8, 8), alphas=[1.0, 0.5, 0.0], style_names=["a", "b"])
        >>> len(fig.axes)
        6
    """
    check_tensor(grid, "grid", ndim=6, floating=True)
    styles, columns, batch = grid.shape[:3]
    if not 0 <= image_index < batch:
        raise ValueError(f"image_index must lie in [0, {batch - 1}], got {image_index}")
    fig = Figure(figsize=(columns * cell_size, styles * cell_size))
    axes = fig.subplots(styles, columns, squeeze=False)
    for s in range(styles):
        for a in range(columns):
            ax = axes[s][a]
            ax.imshow(grid[s, a, image_index].detach().float().clamp(0, 1).permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([])
            ax.set_yticks([])
            if s == 0 and alphas is not None:
                ax.set_title(f"α={alphas[a]:g}", fontsize=8)
            if a == 0 and style_names is not None:
                ax.set_ylabel(style_names[s], fontsize=6)
    fig.tight_layout()
    return fig


__all__ = ["plot_style_grid"]
