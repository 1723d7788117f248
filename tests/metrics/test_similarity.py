"""Similarity measures vs reference computations: scipy for the correlations, float64 literal loops for SSIM/HOG."""

from __future__ import annotations

import math

import pytest
import torch
from scipy import stats

from captum_wsam.metrics.similarity import (
    average_ranks,
    hog,
    minmax_normalize,
    pearson_correlation,
    pearson_hog,
    spearman_correlation,
    ssim,
)


def _maps_with_ties(batch: int = 3, size: int = 12) -> tuple[torch.Tensor, torch.Tensor]:
    a = torch.randn(batch, size, size).mul(3).round() / 3  # many ties
    b = a + 0.8 * torch.randn(batch, size, size)
    return a, b.round(decimals=1)


def test_average_ranks_match_scipy_rankdata() -> None:
    x = torch.randint(0, 5, (4, 30)).float()
    expected = torch.from_numpy(stats.rankdata(x.numpy(), axis=1)).float()
    torch.testing.assert_close(average_ranks(x), expected)


@pytest.mark.parametrize("absolute", [True, False])
def test_spearman_matches_scipy(absolute: bool) -> None:
    a, b = _maps_with_ties()
    ours = spearman_correlation(a, b, absolute=absolute)
    for i in range(len(a)):
        x, y = (a[i].abs(), b[i].abs()) if absolute else (a[i], b[i])
        expected = stats.spearmanr(x.flatten().numpy(), y.flatten().numpy()).statistic
        assert ours[i].item() == pytest.approx(expected, abs=1e-5)


def test_pearson_matches_scipy_and_constant_is_zero() -> None:
    a, b = torch.randn(2, 50, dtype=torch.float64), torch.randn(2, 50, dtype=torch.float64)
    ours = pearson_correlation(a, b)
    for i in range(2):
        assert ours[i].item() == pytest.approx(stats.pearsonr(a[i].numpy(), b[i].numpy()).statistic, abs=1e-12)
    flat = torch.full((1, 50), 0.3)
    assert pearson_correlation(flat, torch.rand(1, 50)).item() == 0.0
    assert spearman_correlation(torch.zeros(1, 8, 8), torch.rand(1, 8, 8)).item() == 0.0


def _ssim_reference(a: torch.Tensor, b: torch.Tensor, size: int = 11, sigma: float = 1.5, L: float = 1.0) -> float:
    """Wang et al. 2004, literally: Gaussian-weighted statistics at every window position, then the mean."""
    a, b = a.double(), b.double()
    half = (size - 1) / 2
    weights = [[math.exp(-((i - half) ** 2 + (j - half) ** 2) / (2 * sigma**2)) for j in range(size)]
               for i in range(size)]
    total = sum(sum(row) for row in weights)
    c1, c2 = (0.01 * L) ** 2, (0.03 * L) ** 2
    values = []
    for top in range(a.shape[0] - size + 1):
        for left in range(a.shape[1] - size + 1):
            mu_a = mu_b = 0.0
            for i in range(size):
                for j in range(size):
                    w = weights[i][j] / total
                    mu_a += w * a[top + i, left + j].item()
                    mu_b += w * b[top + i, left + j].item()
            var_a = var_b = cov = 0.0
            for i in range(size):
                for j in range(size):
                    w = weights[i][j] / total
                    da, db = a[top + i, left + j].item() - mu_a, b[top + i, left + j].item() - mu_b
                    var_a, var_b, cov = var_a + w * da * da, var_b + w * db * db, cov + w * da * db
            values.append((2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)))
    return sum(values) / len(values)


def test_ssim_matches_literal_float64_reference() -> None:
    a = torch.rand(2, 14, 13, dtype=torch.float64)
    b = (0.6 * a + 0.4 * torch.rand(2, 14, 13, dtype=torch.float64)).clamp(0, 1)
    ours = ssim(a, b)
    for i in range(2):
        assert ours[i].item() == pytest.approx(_ssim_reference(a[i], b[i]), abs=1e-10)
    # A window larger than the map shrinks to the largest odd size that fits (7 for 7x8 maps).
    small_a, small_b = a[:1, :7, :8], b[:1, :7, :8]
    assert ssim(small_a, small_b).item() == pytest.approx(_ssim_reference(small_a[0], small_b[0], size=7), abs=1e-10)


def _hog_reference(image: torch.Tensor, cell: int, bins: int, block: int) -> torch.Tensor:
    """Dalal & Triggs 2005, one pixel at a time in float64 (single channel)."""
    image = image.double()
    height, width = image.shape

    def at(y: int, x: int) -> float:
        return image[y, x].item() if 0 <= y < height and 0 <= x < width else 0.0

    cells_y, cells_x = height // cell, width // cell
    hist = [[[0.0] * bins for _ in range(cells_x)] for _ in range(cells_y)]
    bin_width = 180.0 / bins
    for y in range(cells_y * cell):
        for x in range(cells_x * cell):
            gx, gy = at(y, x + 1) - at(y, x - 1), at(y + 1, x) - at(y - 1, x)
            magnitude = math.hypot(gx, gy)
            angle = math.degrees(math.atan2(gy, gx)) % 180.0
            position = angle / bin_width - 0.5
            lower = math.floor(position)
            fraction = position - lower
            hist[y // cell][x // cell][lower % bins] += magnitude * (1 - fraction)
            hist[y // cell][x // cell][(lower + 1) % bins] += magnitude * fraction
    features = []
    for by in range(cells_y - block + 1):
        for bx in range(cells_x - block + 1):
            vector = [hist[by + i][bx + j][k] for i in range(block) for j in range(block) for k in range(bins)]
            norm = math.sqrt(sum(v * v for v in vector) + 1e-10)
            features.extend(v / norm for v in vector)
    return torch.tensor(features, dtype=torch.float64)


def test_hog_matches_literal_float64_reference() -> None:
    maps = torch.rand(2, 13, 17, dtype=torch.float64)
    ours = hog(maps, cell_size=4, bins=9, block_size=2)
    for i in range(2):
        torch.testing.assert_close(ours[i], _hog_reference(maps[i], 4, 9, 2), atol=1e-10, rtol=1e-8)


def test_hog_takes_strongest_channel_and_pearson_hog_matches_scipy() -> None:
    strong = torch.rand(1, 1, 16, 16, dtype=torch.float64)
    maps = torch.cat([0.5 * strong, strong, -0.3 * strong], 1)  # channel 1 has the largest gradient at every pixel
    torch.testing.assert_close(hog(maps), hog(strong[:, 0]))
    a, b = torch.rand(2, 16, 16, dtype=torch.float64), torch.rand(2, 16, 16, dtype=torch.float64)
    ours = pearson_hog(a, b)
    for i in range(2):
        expected = stats.pearsonr(hog(a[i : i + 1])[0].numpy(), hog(b[i : i + 1])[0].numpy()).statistic
        assert ours[i].item() == pytest.approx(expected, abs=1e-10)


def test_minmax_normalize_range() -> None:
    out = minmax_normalize(torch.randn(3, 5, 5))
    assert torch.allclose(out.flatten(1).amin(1), torch.zeros(3))
    assert torch.allclose(out.flatten(1).amax(1), torch.ones(3))


def test_bad_inputs_raise_clear_errors() -> None:
    with pytest.raises(ValueError, match="same shape"):
        spearman_correlation(torch.rand(2, 8, 8), torch.rand(2, 8, 9))
    with pytest.raises(TypeError, match="floating-point"):
        ssim(torch.ones(2, 8, 8, dtype=torch.long), torch.ones(2, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="window_size must be odd"):
        ssim(torch.rand(1, 8, 8), torch.rand(1, 8, 8), window_size=4)
    with pytest.raises(ValueError, match="at least cell_size"):
        hog(torch.rand(1, 6, 6), cell_size=4)
    with pytest.raises(ValueError, match="a must be a 3-D or 4-D"):
        pearson_hog(torch.rand(8, 8), torch.rand(8, 8))
