"""SAT's pure maths (Mangla et al. 2020) against slow, paper-literal float64 references."""

from __future__ import annotations

import itertools
import math

import torch

from captum_wsam.attacks import sat_functional as SF
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
