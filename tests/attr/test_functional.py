"""attr.functional: the layout transforms against element-by-element definitions (float64)."""

from __future__ import annotations

import pytest
import torch

from captum_wsam.attr.functional import channels_last_to_first, tokens_to_grid


@pytest.mark.parametrize(("prefix", "grid"), [(1, (3, 3)), (2, (2, 4))])
def test_tokens_to_grid_element_by_element(prefix: int, grid: tuple[int, int]) -> None:
    tokens = torch.randn(2, prefix + grid[0] * grid[1], 5, dtype=torch.float64)
    out = tokens_to_grid(tokens, num_prefix_tokens=prefix, grid_size=None if grid[0] == grid[1] else grid)
    assert out.shape == (2, 5, *grid)
    for b in range(2):
        for d in range(5):
            for i in range(grid[0]):
                for j in range(grid[1]):
                    assert out[b, d, i, j] == tokens[b, prefix + i * grid[1] + j, d]


def test_channels_last_to_first_element_by_element() -> None:
    maps = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    out = channels_last_to_first(maps)
    assert out.shape == (2, 5, 3, 4)
    assert all(out[b, c, i, j] == maps[b, i, j, c] for b in range(2) for c in range(5) for i in range(3)
               for j in range(4))


def test_layout_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match="tokens must hold 1 prefix token"):
        tokens_to_grid(torch.rand(1, 11, 4))
    with pytest.raises(ValueError, match="tokens must be a 3-D tensor"):
        tokens_to_grid(torch.rand(1, 3, 4, 4))
    with pytest.raises(ValueError, match="maps must be a 4-D tensor"):
        channels_last_to_first(torch.rand(2, 3, 4))
