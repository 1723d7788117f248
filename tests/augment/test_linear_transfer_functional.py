"""Linear style transfer maths against a slow, literal float64 reference (all patches, scipy square roots)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from captum_wsam.augment import linear_transfer_functional as LF
from captum_wsam.augment import patch_features as PF


def _fold_reference(image: torch.Tensor, transform: torch.Tensor, bias: torch.Tensor, k: int) -> torch.Tensor:
    """Literal encoder/decoder: reflect-pad by k-1, unfold every k×k patch, apply T f + b, overlap-average, crop."""
    height, width = image.shape[-2:]
    pad = k - 1
    padded = F.pad(image, (pad, pad, pad, pad), mode="reflect")
    patches = F.unfold(padded, k)  # (B, C k², P), features ordered (channel, row, column)
    mapped = transform @ patches + bias[:, :, None]
    size = padded.shape[-2:]
    summed = F.fold(mapped, size, k)
    counts = F.fold(torch.ones_like(mapped), size, k)
    return (summed / counts)[:, :, pad : pad + height, pad : pad + width]


@pytest.mark.parametrize("k", [1, 2, 3])
def test_patch_transform_kernel_equals_unfold_map_fold(k: int) -> None:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 9, 7, generator=g, dtype=torch.float64)
    dim = 3 * k * k
    transform = torch.randn(2, dim, dim, generator=g, dtype=torch.float64)
    bias = torch.randn(2, dim, generator=g, dtype=torch.float64)
    kernel, mean_bias = LF.patch_transform_kernel(transform, bias, 3, k)
    fast = LF.apply_patch_transform(x, kernel, mean_bias)
    torch.testing.assert_close(fast, _fold_reference(x, transform, bias, k))


def test_identity_transform_is_exact_inverse_of_the_encoder() -> None:
    x = torch.rand(1, 3, 10, 10, dtype=torch.float64)
    eye = torch.eye(27, dtype=torch.float64)[None]
    kernel, bias = LF.patch_transform_kernel(eye, torch.zeros(1, 27, dtype=torch.float64), 3, 3)
    torch.testing.assert_close(LF.apply_patch_transform(x, kernel, bias), x)


def _reference_transfer(x: torch.Tensor, style_means, style_covs, alpha: float, k: int, levels: int) -> torch.Tensor:
    """The module formula, literally: per level, all patches, scipy square roots, unfold/fold decoder."""
    depth = PF.pyramid_depth(x.shape[-2], x.shape[-1], levels, k)
    bands = PF.laplacian_pyramid(x, depth)
    out_bands = []
    for level, band in enumerate(bands):
        s = level if level < depth - 1 else len(style_means) - 1
        feats = F.unfold(band, k)[0].T.numpy()  # all patches inside the band
        mu_c = feats.mean(0)
        cov_c = (feats - mu_c).T @ (feats - mu_c) / len(feats)
        d = cov_c.shape[0]
        cov_c = cov_c + (1e-3 * np.trace(cov_c) / d + 1e-5) * np.eye(d)
        mu_z, cov_z = style_means[s][0].numpy(), style_covs[s][0].numpy()
        mu_t = alpha * mu_c + (1 - alpha) * mu_z
        cov_t = alpha * cov_c + (1 - alpha) * cov_z
        t = scipy.linalg.sqrtm(cov_t).real @ np.linalg.inv(scipy.linalg.sqrtm(cov_c).real)
        b = mu_t - t @ mu_c
        out_bands.append(_fold_reference(band, torch.from_numpy(t)[None], torch.from_numpy(b)[None], k))
    return PF.laplacian_collapse(out_bands).clamp(0, 1)


@pytest.mark.parametrize(("alpha", "size"), [(0.0, 16), (0.6, 16), (0.3, 9)])
def test_linear_style_transfer_matches_literal_reference(alpha: float, size: int) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, size, size, generator=g, dtype=torch.float64)
    style = LF.content_statistics(torch.rand(1, 3, 24, 24, generator=g, dtype=torch.float64), whiten=False)
    fast = LF.linear_style_transfer(x, style.means, style.covariances, torch.tensor([alpha], dtype=torch.float64))
    expected = _reference_transfer(x, style.means, style.covariances, alpha, 3, 3)
    torch.testing.assert_close(fast, expected, rtol=1e-7, atol=1e-8)


def test_flat_image_gives_finite_output_and_gradient() -> None:
    x = torch.full((2, 3, 16, 16), 0.4, dtype=torch.float64, requires_grad=True)
    style = LF.content_statistics(torch.rand(1, 3, 32, 32, dtype=torch.float64), whiten=False)
    means = [m.expand(2, -1) for m in style.means]
    covs = [c.expand(2, -1, -1) for c in style.covariances]
    out = LF.linear_style_transfer(x, means, covs, torch.tensor([0.0, 0.5], dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()
