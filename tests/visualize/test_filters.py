"""First-layer filter grid (Krizhevsky et al. 2012, Fig. 3): tile contents vs the kernels."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from captum_wsam.models import SmallCNN
from captum_wsam.visualize.filters import first_layer_filters, plot_first_layer_filters


def test_tiles_are_min_max_scaled_kernels() -> None:
    model = SmallCNN(width=8)
    weight = model.block1.conv.weight.detach()
    grid = first_layer_filters(model, zoom=2, padding=1)  # 8 RGB tiles of 6x6, 3 per row
    for o in (0, 4, 7):
        row, col = divmod(o, 3)
        top, left = 1 + row * 7, 1 + col * 7
        tile = grid[:, top : top + 6, left : left + 6]
        kernel = weight[o]
        expected = ((kernel - kernel.min()) / (kernel.max() - kernel.min())).repeat_interleave(2, 1)
        torch.testing.assert_close(tile, expected.repeat_interleave(2, 2))
    everything = first_layer_filters(model, zoom=1, padding=0, scale="all", nrow=8)
    assert everything.min() == 0 and everything.max() == 1 and everything.shape == (3, 3, 24)


def test_grey_tiles_for_other_input_channels_and_errors() -> None:
    model = nn.Sequential(nn.Conv2d(2, 4, 5), nn.ReLU())
    grid = first_layer_filters(model, zoom=1, padding=0)
    assert grid.shape == (3, 4 * 5, 2 * 5)  # one row per kernel, one grey tile per input channel
    assert torch.equal(grid[0], grid[1])
    with pytest.raises(ValueError, match="must contain an nn.Conv2d"):
        first_layer_filters(nn.Linear(2, 2))
    with pytest.raises(ValueError, match="scale must be one of"):
        first_layer_filters(model, scale="global")
    assert plot_first_layer_filters(model).get_title().startswith("first-layer filters")
