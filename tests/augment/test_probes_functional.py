"""The probes of Zhang and Zhu (2019) as pure functions: saturation formula and limits, patch shuffling."""

from __future__ import annotations

import numpy as np
import torch

from captum_wsam.augment import probes_functional as PR


def test_saturation_matches_formula_and_limits() -> None:
    x = torch.rand(2, 3, 4, 4, dtype=torch.float64)
    for level in (0.5, 2.0, 8.0):
        u = 2 * x.numpy() - 1
        expected = (np.sign(u) * np.abs(u) ** (2 / level) + 1) / 2
        np.testing.assert_allclose(PR.saturation(x, level).numpy(), expected, rtol=1e-12)
    torch.testing.assert_close(PR.saturation(x, 2.0), x)
    binary = PR.saturation(x, 1e6)
    torch.testing.assert_close(binary, (x > 0.5).double(), atol=1e-4, rtol=0)
    half = torch.full((1, 1, 1, 1), 0.5, requires_grad=True)
    PR.saturation(half, 64.0).sum().backward()
    assert torch.isfinite(half.grad).all()


def test_patch_shuffle_is_a_permutation_of_cells() -> None:
    x = torch.arange(2 * 1 * 5 * 4, dtype=torch.float64).view(2, 1, 5, 4)
    perm = torch.tensor([[1, 0, 3, 2], [0, 1, 2, 3]])
    out = PR.patch_shuffle(x, (2, 2), perm)
    torch.testing.assert_close(out[1], x[1])
    torch.testing.assert_close(out[0, :, :2, :2], x[0, :, :2, 2:4])
    torch.testing.assert_close(out[0, :, 2:4, 2:4], x[0, :, 2:4, :2])
    torch.testing.assert_close(out[0, :, 4], x[0, :, 4])  # leftover row stays
    assert sorted(out[0].flatten().tolist()) == sorted(x[0].flatten().tolist())
