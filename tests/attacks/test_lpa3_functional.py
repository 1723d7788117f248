"""LP-A3's pure attack maths (Yang et al. 2022; Laidlaw et al. 2021) against slow, literal float64 references."""

from __future__ import annotations

import math

import pytest
import torch

from captum_wsam.attacks import lpa3_functional as LF


def test_normalized_features_against_reference():
    f = [torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)]
    phi = LF.normalize_flatten_features(f)
    parts = []
    for b in range(2):
        row = []
        for c_h_w in (f[0][b].permute(1, 2, 0).reshape(-1, 3),):  # channel vectors at each pixel
            for vec in c_h_w:
                row.append(vec / vec.norm() / 2.0)
        first = torch.stack(row).T.reshape(-1)  # back to channel-major order
        parts.append(torch.cat([first, f[1][b] / f[1][b].norm()]))
    torch.testing.assert_close(phi, torch.stack(parts))
    zero = torch.randn(2, 3, 2, 2, requires_grad=True)
    with torch.no_grad():
        zero[0, :, 1, 1] = 0  # an all-zero channel vector: finite value and gradient (the sqrt form gave NaN)
    distance = LF.feature_distance([zero], LF.normalize_flatten_features([torch.randn(2, 3, 2, 2)]))
    assert torch.isfinite(torch.autograd.grad(distance.sum(), zero)[0]).all()


def test_lagrangian_schedule_and_step():
    steps = [LF.lagrangian_schedule(i, 5, 0.2, 1.0) for i in range(5)]
    for i, (eta, lam) in enumerate(steps):
        assert math.isclose(eta, 0.2 * 0.1 ** (i / 5)) and math.isclose(lam, 0.1 ** (1 - i / 5))
    grad = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    sens = torch.tensor([0.0, 1.0, 10.0], dtype=torch.float64)
    delta = LF.lagrangian_step(grad, sens, 0.1)
    norms = delta.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, 0.1 / (sens + 1e-4), rtol=1e-6, atol=0)
    assert (delta.flatten(1) * grad.flatten(1)).sum(1).lt(0).all()  # a descent direction
    # a direction the caller already computed gives the same step; one of another shape is refused
    torch.testing.assert_close(LF.lagrangian_step(grad, sens, 0.1, direction=LF.normalized_gradient(grad)), delta)
    with pytest.raises(ValueError, match="direction"):
        LF.lagrangian_step(grad, sens, 0.1, direction=grad[:2])
