"""Regularizers of the image optimization vs float64 literal references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from captum_wsam.visualize.functional import clip_small_norm, gaussian_blur, jitter, l2_decay, normalized_ascent_step


def test_gaussian_blur_matches_literal_convolution() -> None:
    image = torch.rand(1, 2, 9, 10, dtype=torch.float64)
    sigma = 0.8
    radius = math.ceil(2 * sigma)
    taps = [math.exp(-(i**2) / (2 * sigma**2)) for i in range(-radius, radius + 1)]
    taps = [t / sum(taps) for t in taps]
    padded = np.pad(image.numpy(), ((0, 0), (0, 0), (radius, radius), (radius, radius)), mode="reflect")
    expected = np.zeros(image.shape)
    for c in range(2):
        for y in range(9):
            for x in range(10):
                expected[0, c, y, x] = sum(taps[i] * taps[j] * padded[0, c, y + i, x + j]
                                           for i in range(2 * radius + 1) for j in range(2 * radius + 1))
    torch.testing.assert_close(gaussian_blur(image, sigma), torch.from_numpy(expected))


def test_step_decay_clip_and_jitter_literal() -> None:
    image = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    gradient = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    stepped = normalized_ascent_step(image, gradient, 0.1)
    for i in range(2):
        expected = image[i] + 0.1 * gradient[i] / (gradient[i].abs().sum().item() / gradient[i].numel() + 1e-8)
        torch.testing.assert_close(stepped[i], expected)
    torch.testing.assert_close(l2_decay(image, 0.1, 0.5), 0.5 + 0.9 * (image - 0.5))
    clipped = clip_small_norm(image, 25.0, 0.5)
    for i in range(2):
        norms = [[math.sqrt(sum((image[i, c, y, x].item() - 0.5) ** 2 for c in range(3))) for x in range(4)]
                 for y in range(4)]
        threshold = np.percentile(np.array(norms), 25.0)
        for y in range(4):
            for x in range(4):
                expected = torch.full((3,), 0.5, dtype=torch.float64) if norms[y][x] < threshold else image[i, :, y, x]
                torch.testing.assert_close(clipped[i, :, y, x], expected)
    shifted = jitter(image, (1, -2))
    assert shifted[0, 0, 1, 0] == image[0, 0, 0, 2] and torch.equal(jitter(shifted, (-1, 2)), image)


def test_bad_inputs() -> None:
    with pytest.raises(ValueError, match="sigma must lie"):
        gaussian_blur(torch.rand(1, 1, 4, 4), 0.0)
    with pytest.raises(ValueError, match="percentile must lie"):
        clip_small_norm(torch.rand(1, 1, 4, 4), 120.0, 0.5)
