"""Pure maths of the attacks against slow, paper-literal float64 references."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from captum_wsam.attacks import functional as SF
from captum_wsam.data import ShapesTextures


def test_p_schedule_follows_one_minus_a_power_t_over_10():
    for epoch in (0, 1, 5, 10, 37):
        assert math.isclose(SF.sat_probability(epoch, 0.6), 1 - 0.6 ** (epoch / 10), rel_tol=1e-12)
    values = [SF.sat_probability(t) for t in range(50)]
    assert values[0] == 0.0 and all(b > a for a, b in itertools.pairwise(values)) and values[-1] < 1


def test_threshold_and_minmax_against_reference():
    m = torch.randn(3, 2, 4, 4, dtype=torch.float64)
    m[0, 0, 0, 0] = 0.0
    ref = torch.tensor([1.0 if v > 0 else (-1.0 if v < 0 else 0.0) for v in m.flatten().tolist()]).view_as(m)
    assert torch.equal(SF.threshold_saliency(m), ref.double())
    scaled = SF.minmax_saliency(m)
    for i in range(3):
        lo, hi = m[i].min().item(), m[i].max().item()
        ref_i = torch.tensor([2 * (v - lo) / (hi - lo) - 1 for v in m[i].flatten().tolist()], dtype=torch.float64)
        torch.testing.assert_close(scaled[i].flatten(), ref_i)
    assert torch.equal(SF.minmax_saliency(torch.ones(1, 4)), torch.zeros(1, 4))


def test_weak_saliency_from_masks_and_boxes():
    data = ShapesTextures(n=6, size=32, seed=2)
    masks = torch.stack([data[i][2]["mask"] for i in range(6)])
    boxes = torch.stack([data[i][2]["box"] for i in range(6)])
    weak = SF.weak_saliency(masks)
    assert weak.shape == (6, 1, 32, 32) and torch.equal(weak == 1, masks) and torch.equal(weak == -1, ~masks)
    from_boxes = SF.boxes_to_masks(boxes, 32, 32)
    for i in range(6):  # reference: loop over pixels, torchvision box convention (max exclusive)
        x0, y0, x1, y1 = boxes[i].tolist()
        ref = torch.tensor([[x0 <= u < x1 and y0 <= v < y1 for u in range(32)] for v in range(32)])
        assert torch.equal(from_boxes[i, 0], ref)
        assert torch.equal(from_boxes[i] | masks[i], from_boxes[i])  # the box covers its mask


def test_sat_direction_and_perturbation_against_elementwise_reference():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 4, 4, generator=g, dtype=torch.float64)
    s = torch.randn(2, 3, 4, 4, generator=g, dtype=torch.float64).sign()
    use, signs = SF.sample_sat_params(x.shape, 0.7, torch.Generator().manual_seed(0))
    assert 0.5 < use.double().mean() < 0.9
    assert abs(signs[~use].mean()) < 0.35  # a fair sign where it is used
    eps = 0.05
    adv = SF.sat_perturb(x, SF.sat_direction(s, use, signs.double()), eps)
    ref = torch.empty_like(x).flatten()
    for i, (xi, si, ui, zi) in enumerate(zip(x.flatten(), s.flatten(), use.flatten(), signs.flatten())):
        gi = si if ui else zi
        ref[i] = min(max(xi.item() - eps * gi.item(), 0.0), 1.0)
    torch.testing.assert_close(adv.flatten(), ref)
    assert (adv - x).abs().max() <= eps + 1e-12


def test_normalized_features_against_reference():
    f = [torch.randn(2, 3, 2, 2, dtype=torch.float64), torch.randn(2, 4, dtype=torch.float64)]
    phi = SF.normalize_flatten_features(f)
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
    distance = SF.feature_distance([zero], SF.normalize_flatten_features([torch.randn(2, 3, 2, 2)]))
    assert torch.isfinite(torch.autograd.grad(distance.sum(), zero)[0]).all()


def test_selection_and_instability():
    values = torch.tensor([0.5, 0.1, 0.9, 0.3, 0.7])
    tau = SF.selection_threshold(values, 0.4)
    assert (values >= tau).sum() == 2 and set((values >= tau).nonzero().flatten().tolist()) == {2, 4}
    p, q = torch.tensor([[0.2, 0.8]], dtype=torch.float64), torch.tensor([[0.5, 0.5]], dtype=torch.float64)
    ref = 0.2 * math.log(0.2 / 0.5) + 0.8 * math.log(0.8 / 0.5)
    assert math.isclose(SF.prediction_instability(p, q).item(), ref, rel_tol=1e-9)
    assert torch.equal(SF.ema_update(torch.tensor([1.0]), torch.tensor([0.0]), 0.25), torch.tensor([0.25]))


def test_lagrangian_schedule_and_step():
    steps = [SF.lagrangian_schedule(i, 5, 0.2, 1.0) for i in range(5)]
    for i, (eta, lam) in enumerate(steps):
        assert math.isclose(eta, 0.2 * 0.1 ** (i / 5)) and math.isclose(lam, 0.1 ** (1 - i / 5))
    grad = torch.randn(3, 1, 2, 2, dtype=torch.float64)
    sens = torch.tensor([0.0, 1.0, 10.0], dtype=torch.float64)
    delta = SF.lagrangian_step(grad, sens, 0.1)
    norms = delta.flatten(1).norm(dim=1)
    torch.testing.assert_close(norms, 0.1 / (sens + 1e-4), rtol=1e-6, atol=0)
    assert (delta.flatten(1) * grad.flatten(1)).sum(1).lt(0).all()  # a descent direction
    # a direction the caller already computed gives the same step; one of another shape is refused
    torch.testing.assert_close(SF.lagrangian_step(grad, sens, 0.1, direction=SF.normalized_gradient(grad)), delta)
    with pytest.raises(ValueError, match="direction"):
        SF.lagrangian_step(grad, sens, 0.1, direction=grad[:2])
