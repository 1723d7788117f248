"""Pure maths of the augmentations, each checked against a slow, literal float64 reference written here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from captum_wsam.augment import functional as AF


def _random_spd(batch: int, dim: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, 2 * dim, generator=g, dtype=torch.float64)
    return a @ a.transpose(1, 2) / (2 * dim) + 0.1 * torch.eye(dim, dtype=torch.float64)


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
    kernel, mean_bias = AF.patch_transform_kernel(transform, bias, 3, k)
    fast = AF.apply_patch_transform(x, kernel, mean_bias)
    torch.testing.assert_close(fast, _fold_reference(x, transform, bias, k))


def test_identity_transform_is_exact_inverse_of_the_encoder() -> None:
    x = torch.rand(1, 3, 10, 10, dtype=torch.float64)
    eye = torch.eye(27, dtype=torch.float64)[None]
    kernel, bias = AF.patch_transform_kernel(eye, torch.zeros(1, 27, dtype=torch.float64), 3, 3)
    torch.testing.assert_close(AF.apply_patch_transform(x, kernel, bias), x)


def test_pyramid_collapse_inverts_pyramid_for_odd_sizes() -> None:
    x = torch.rand(2, 3, 23, 17, dtype=torch.float64)
    bands = AF.laplacian_pyramid(x, 3)
    assert [tuple(b.shape[-2:]) for b in bands] == [(23, 17), (12, 9), (6, 5)]
    torch.testing.assert_close(AF.laplacian_collapse(bands), x)


def test_gather_patches_matches_unfold() -> None:
    x = torch.rand(2, 3, 6, 5, dtype=torch.float64)
    positions = AF.sample_positions(6, 5, 3, 10_000, x.device)
    torch.testing.assert_close(AF.gather_patches(x, positions, 3), F.unfold(x, 3).transpose(1, 2))
    sub = AF.sample_positions(40, 40, 3, 50, x.device)
    assert sub.shape == (50,) and torch.equal(sub, AF.sample_positions(40, 40, 3, 50, x.device))


@pytest.mark.parametrize("power", [0.5, -0.5])
def test_symmetric_powers_match_scipy(power: float) -> None:
    a = _random_spd(3, 6)
    fn = AF.symmetric_sqrt if power == 0.5 else AF.symmetric_inverse_sqrt
    out = fn(a)
    for i in range(3):
        root = scipy.linalg.sqrtm(a[i].numpy()).real
        expected = root if power == 0.5 else np.linalg.inv(root)
        np.testing.assert_allclose(out[i].numpy(), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("power", [0.5, -0.5])
def test_symmetric_power_gradcheck_and_repeated_eigenvalues(power: float) -> None:
    fn = AF.symmetric_sqrt if power == 0.5 else AF.symmetric_inverse_sqrt
    a = _random_spd(2, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: fn((m + m.transpose(1, 2)) / 2), (a,))
    # Repeated eigenvalues: torch.linalg.eigh's backward is infinite here, ours is the exact derivative.
    eye = (2.0 * torch.eye(5, dtype=torch.float64)).requires_grad_(True)
    fn(eye).sum().backward()
    expected = 0.5 * 2.0**-0.5 if power == 0.5 else -0.5 * 2.0**-1.5
    torch.testing.assert_close(eye.grad, expected * torch.ones(5, 5, dtype=torch.float64))  # f'(2) · dL/dY


def _reference_transfer(x: torch.Tensor, style_means, style_covs, alpha: float, k: int, levels: int) -> torch.Tensor:
    """The module formula, literally: per level, all patches, scipy square roots, unfold/fold decoder."""
    depth = AF.pyramid_depth(x.shape[-2], x.shape[-1], levels, k)
    bands = AF.laplacian_pyramid(x, depth)
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
    return AF.laplacian_collapse(out_bands).clamp(0, 1)


@pytest.mark.parametrize(("alpha", "size"), [(0.0, 16), (0.6, 16), (0.3, 9)])
def test_linear_style_transfer_matches_literal_reference(alpha: float, size: int) -> None:
    g = torch.Generator().manual_seed(2)
    x = torch.rand(1, 3, size, size, generator=g, dtype=torch.float64)
    style = AF.content_statistics(torch.rand(1, 3, 24, 24, generator=g, dtype=torch.float64), whiten=False)
    fast = AF.linear_style_transfer(x, style.means, style.covariances, torch.tensor([alpha], dtype=torch.float64))
    expected = _reference_transfer(x, style.means, style.covariances, alpha, 3, 3)
    torch.testing.assert_close(fast, expected, rtol=1e-7, atol=1e-8)


def test_flat_image_gives_finite_output_and_gradient() -> None:
    x = torch.full((2, 3, 16, 16), 0.4, dtype=torch.float64, requires_grad=True)
    style = AF.content_statistics(torch.rand(1, 3, 32, 32, dtype=torch.float64), whiten=False)
    means = [m.expand(2, -1) for m in style.means]
    covs = [c.expand(2, -1, -1) for c in style.covariances]
    out = AF.linear_style_transfer(x, means, covs, torch.tensor([0.0, 0.5], dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(x.grad).all()


def test_saturation_matches_formula_and_limits() -> None:
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    for level in (0.5, 2.0, 8.0):
        u = 2 * x.numpy() - 1
        expected = (np.sign(u) * np.abs(u) ** (2 / level) + 1) / 2
        np.testing.assert_allclose(AF.saturation(x, level).numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(AF.saturation(x, 2.0), x)
    binary = AF.saturation(x, 1e6)
    torch.testing.assert_close(binary, (x > 0.5).double(), atol=1e-4, rtol=0)
    half = torch.full((1, 1, 1, 1), 0.5, requires_grad=True)
    AF.saturation(half, 64.0).sum().backward()
    assert torch.isfinite(half.grad).all()


def test_patch_shuffle_is_a_permutation_of_cells() -> None:
    x = torch.arange(2 * 1 * 5 * 4, dtype=torch.float64).view(2, 1, 5, 4)
    perm = torch.tensor([[1, 0, 3, 2], [0, 1, 2, 3]])
    out = AF.patch_shuffle(x, (2, 2), perm)
    torch.testing.assert_close(out[1], x[1])
    torch.testing.assert_close(out[0, :, :2, :2], x[0, :, :2, 2:4])
    torch.testing.assert_close(out[0, :, 2:4, 2:4], x[0, :, 2:4, :2])
    torch.testing.assert_close(out[0, :, 4], x[0, :, 4])  # leftover row stays
    assert sorted(out[0].flatten().tolist()) == sorted(x[0].flatten().tolist())
