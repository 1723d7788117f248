"""Multi-scale patch features (pyramid, patch statistics, matrix powers) against literal float64 references."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
import torch
import torch.nn.functional as F

from captum_wsam.augment import patch_features as PF


def _random_spd(batch: int, dim: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(batch, dim, 2 * dim, generator=g, dtype=torch.float64)
    return a @ a.transpose(1, 2) / (2 * dim) + 0.1 * torch.eye(dim, dtype=torch.float64)


def test_pyramid_collapse_inverts_pyramid_for_odd_sizes() -> None:
    x = torch.rand(2, 3, 23, 17, dtype=torch.float64)
    bands = PF.laplacian_pyramid(x, 3)
    assert [tuple(b.shape[-2:]) for b in bands] == [(23, 17), (12, 9), (6, 5)]
    torch.testing.assert_close(PF.laplacian_collapse(bands), x)


def test_gather_patches_matches_unfold() -> None:
    x = torch.rand(2, 3, 6, 5, dtype=torch.float64)
    positions = PF.sample_positions(6, 5, 3, 10_000, x.device)
    torch.testing.assert_close(PF.gather_patches(x, positions, 3), F.unfold(x, 3).transpose(1, 2))
    sub = PF.sample_positions(40, 40, 3, 50, x.device)
    assert sub.shape == (50,) and torch.equal(sub, PF.sample_positions(40, 40, 3, 50, x.device))


@pytest.mark.parametrize("power", [0.5, -0.5])
def test_symmetric_powers_match_scipy(power: float) -> None:
    a = _random_spd(3, 6)
    fn = PF.symmetric_sqrt if power == 0.5 else PF.symmetric_inverse_sqrt
    out = fn(a)
    for i in range(3):
        root = scipy.linalg.sqrtm(a[i].numpy()).real
        expected = root if power == 0.5 else np.linalg.inv(root)
        np.testing.assert_allclose(out[i].numpy(), expected, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("power", [0.5, -0.5])
def test_symmetric_power_gradcheck_and_repeated_eigenvalues(power: float) -> None:
    fn = PF.symmetric_sqrt if power == 0.5 else PF.symmetric_inverse_sqrt
    a = _random_spd(2, 4).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda m: fn((m + m.transpose(1, 2)) / 2), (a,))
    # Repeated eigenvalues: torch.linalg.eigh's backward is infinite here, ours is the exact derivative.
    eye = (2.0 * torch.eye(5, dtype=torch.float64)).requires_grad_(True)
    fn(eye).sum().backward()
    expected = 0.5 * 2.0**-0.5 if power == 0.5 else -0.5 * 2.0**-1.5
    torch.testing.assert_close(eye.grad, expected * torch.ones(5, 5, dtype=torch.float64))  # f'(2) · dL/dY
