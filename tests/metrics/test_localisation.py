"""Localisation metrics against paper-literal float64 references written here, pixel by pixel."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import (
    box_mask,
    energy_pointing_game,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)
from captum_wsam.metrics.localisation import attribution_map

# --- paper-literal references (float64, python loops over pixels) -------------------------------------------------


def _pixels(mask: torch.Tensor) -> list[tuple[int, int]]:
    h, w = mask.shape
    return [(i, j) for i in range(h) for j in range(w) if bool(mask[i, j])]


def reference_pointing_game(m: torch.Tensor, mask: torch.Tensor, tolerance: float = 0.0) -> float:
    """Zhang et al. 2016: the maximum point (first one in reading order) hits the region within ``tolerance`` px."""
    h, w = m.shape
    best, where = -math.inf, (0, 0)
    for i in range(h):
        for j in range(w):
            if float(m[i, j]) > best:
                best, where = float(m[i, j]), (i, j)
    distance = min(math.hypot(where[0] - i, where[1] - j) for i, j in _pixels(mask))
    return 1.0 if distance <= tolerance else 0.0


def reference_mass_accuracy(m: torch.Tensor, mask: torch.Tensor) -> float:
    """Arras et al. 2022: R_within / R_total over positive relevance."""
    within = total = 0.0
    h, w = m.shape
    for i in range(h):
        for j in range(w):
            value = max(float(m[i, j]), 0.0)
            total += value
            within += value if bool(mask[i, j]) else 0.0
    return within / total if total > 0 else math.nan


def reference_rank_accuracy(m: torch.Tensor, mask: torch.Tensor) -> float:
    """Arras et al. 2022: |top-K pixels ∩ GT| / |GT| with K = |GT| (ties: reading order)."""
    h, w = m.shape
    pixels = [(float(m[i, j]), i * w + j, (i, j)) for i in range(h) for j in range(w)]
    pixels.sort(key=lambda item: (-item[0], item[1]))
    k = len(_pixels(mask))
    return sum(1 for _, _, (i, j) in pixels[:k] if bool(mask[i, j])) / k


def reference_energy_pointing_game(m: torch.Tensor, mask: torch.Tensor) -> float:
    """Wang et al. 2020 (Score-CAM): ReLU, min-max normalise, energy in the bounding box / total energy."""
    h, w = m.shape
    relu = [[max(float(m[i, j]), 0.0) for j in range(w)] for i in range(h)]
    low = min(min(row) for row in relu)
    high = max(max(row) for row in relu)
    if high == low:
        return math.nan
    rows = [i for i, _ in _pixels(mask)]
    cols = [j for _, j in _pixels(mask)]
    inside = total = 0.0
    for i in range(h):
        for j in range(w):
            energy = (relu[i][j] - low) / (high - low)
            total += energy
            if min(rows) <= i <= max(rows) and min(cols) <= j <= max(cols):
                inside += energy
    return inside / total


def _random_case(seed: int, n: int = 4, channels: int = 3, size: int = 9) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    attributions = torch.randn(n, channels, size, size, generator=g)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for k in range(n):
        top, left = torch.randint(0, size - 3, (2,), generator=g).tolist()
        masks[k, top : top + 3, left : left + 4] = True
        masks[k, top + 2, left] = False  # not a box: the energy pointing game must use the bounding box
    return attributions, masks


REFERENCES = {
    relevance_mass_accuracy: reference_mass_accuracy,
    relevance_rank_accuracy: reference_rank_accuracy,
    energy_pointing_game: reference_energy_pointing_game,
    pointing_game: reference_pointing_game,
}


@pytest.mark.parametrize("metric", list(REFERENCES), ids=lambda f: f.__name__)
@pytest.mark.parametrize("layout", ["NCHW", "N1HW", "NHW"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_paper_literal_reference(metric, layout, seed):
    attributions, masks = _random_case(seed)
    if layout == "N1HW":
        attributions = attributions[:, :1]
    elif layout == "NHW":
        attributions = attributions[:, 0]
    maps = attributions.double().sum(1) if attributions.dim() == 4 else attributions.double()
    expected = torch.tensor([REFERENCES[metric](maps[k], masks[k]) for k in range(len(maps))], dtype=torch.float64)
    scores = metric(attributions, masks)
    assert scores.shape == (len(maps),) and scores.dtype == attributions.dtype
    torch.testing.assert_close(scores.double(), expected, atol=1e-6, rtol=1e-5, equal_nan=True)
    torch.testing.assert_close(metric(attributions.double(), masks), expected, atol=1e-12, rtol=1e-12,
                               equal_nan=True)


@pytest.mark.parametrize("tolerance", [1, 2, 3])
def test_pointing_game_tolerance_matches_reference(tolerance):
    attributions, masks = _random_case(5, n=8)
    maps = attributions.sum(1)
    expected = [reference_pointing_game(maps[k], masks[k], tolerance) for k in range(len(maps))]
    assert pointing_game(attributions, masks, tolerance=tolerance).tolist() == expected


def test_absolute_uses_magnitude():
    maps = torch.tensor([[[-5.0, 1.0], [0.0, 0.5]]])
    masks = torch.tensor([[[True, False], [False, False]]])
    assert pointing_game(maps, masks).item() == 0.0
    assert pointing_game(maps, masks, absolute=True).item() == 1.0
    assert relevance_mass_accuracy(maps, masks).item() == 0.0
    assert relevance_mass_accuracy(maps, masks, absolute=True).item() == pytest.approx(5 / 6.5)
    assert relevance_rank_accuracy(maps, masks, absolute=True).item() == 1.0


def test_boxes_equal_their_masks():
    attributions, _ = _random_case(3)
    boxes = torch.tensor([[1.0, 2.0, 5.0, 6.0], [0.0, 0.0, 9.0, 3.0], [4.0, 4.0, 5.0, 5.0], [2.0, 1.0, 8.0, 9.0]])
    as_masks = box_mask(boxes, (9, 9))
    assert as_masks.sum().item() == 16 + 27 + 1 + 48
    for metric in REFERENCES:
        torch.testing.assert_close(metric(attributions, boxes), metric(attributions, as_masks), equal_nan=True)


def test_energy_pointing_game_uses_box_unless_told():
    attributions, masks = _random_case(4)
    maps = attributions.sum(1).abs() + 0.1  # every pixel carries energy but the minimum
    boxes = box_mask(torch.stack([torch.tensor([float(min(j for _, j in _pixels(m))), float(min(i for i, _ in
                     _pixels(m))), float(max(j for _, j in _pixels(m)) + 1), float(max(i for i, _ in _pixels(m)) + 1)])
                     for m in masks]), (9, 9))
    torch.testing.assert_close(energy_pointing_game(maps, masks), energy_pointing_game(maps, boxes))
    literal = energy_pointing_game(maps, masks, use_box=False)
    assert not torch.allclose(literal, energy_pointing_game(maps, masks))


def test_layer_maps_are_upsampled_to_the_masks():
    _, masks = _random_case(6)
    small = torch.rand(4, 1, 3, 3)
    upsampled = F.interpolate(small, size=(9, 9), mode="bilinear", align_corners=False)
    for metric in REFERENCES:
        torch.testing.assert_close(metric(small, masks), metric(upsampled, masks), equal_nan=True)
    assert attribution_map(small, (9, 9)).shape == (4, 9, 9)


def test_shapes_textures_masks_and_degenerate_maps():
    data = ShapesTextures(n=4, size=32, seed=0)
    masks = torch.stack([data[k][2]["mask"] for k in range(4)])  # (N, 1, H, W), as a DataLoader collates them
    perfect = masks.float().repeat(1, 3, 1, 1)
    assert pointing_game(perfect, masks).tolist() == [1.0] * 4
    assert relevance_mass_accuracy(perfect, masks).tolist() == [1.0] * 4
    assert relevance_rank_accuracy(perfect, masks).tolist() == [1.0] * 4
    inverse = (~masks).float()
    assert relevance_mass_accuracy(inverse, masks).tolist() == [0.0] * 4
    assert relevance_rank_accuracy(inverse, masks).tolist() == [0.0] * 4
    zero = torch.zeros(4, 32, 32)
    assert relevance_mass_accuracy(zero, masks).isnan().all()
    assert energy_pointing_game(zero, masks).isnan().all()
    # a constant map points at the top-left pixel, which no object covers: not rewarded
    assert pointing_game(zero, masks).tolist() == [0.0] * 4


def test_inputs_not_modified():
    attributions, masks = _random_case(7)
    before_a, before_m = attributions.clone(), masks.clone()
    for metric in REFERENCES:
        metric(attributions, masks)
    assert torch.equal(attributions, before_a) and torch.equal(masks, before_m)


@pytest.mark.parametrize(
    ("attributions", "masks", "error", "match"),
    [
        (torch.rand(2, 8, 8), torch.ones(2, 8, 8, dtype=torch.uint8), TypeError, "masks must be boolean"),
        (torch.rand(2, 8, 8), torch.ones(3, 8, 8, dtype=torch.bool), ValueError, "masks must hold 2 regions"),
        (torch.rand(2, 8, 8), torch.zeros(2, 8, 8, dtype=torch.bool), ValueError, "sample 0 has no pixel"),
        (torch.rand(2, 8, 8), torch.rand(2, 5), ValueError, r"boxes \(N, 4\)"),
        (torch.rand(2, 8, 8), torch.ones(2, 2, 8, 8, dtype=torch.bool), ValueError, r"\(N, 1, H, W\)"),
        (torch.ones(2, 8, 8, dtype=torch.long), torch.ones(2, 8, 8, dtype=torch.bool), TypeError, "floating-point"),
        (torch.rand(8, 8), torch.ones(1, 8, 8, dtype=torch.bool), ValueError, "3-D or 4-D"),
        ([[0.0]], torch.ones(1, 8, 8, dtype=torch.bool), TypeError, "attributions must be Tensor"),
        (torch.rand(2, 8, 8), [[True]], TypeError, "masks must be Tensor"),
    ],
)
def test_bad_input_names_the_argument(attributions, masks, error, match):
    for metric in REFERENCES:
        with pytest.raises(error, match=match):
            metric(attributions, masks)


def test_bad_options():
    attributions, masks = _random_case(0)
    with pytest.raises(ValueError, match="tolerance must be >= 0, got -1"):
        pointing_game(attributions, masks, tolerance=-1)
    with pytest.raises(TypeError, match="tolerance must be an int"):
        pointing_game(attributions, masks, tolerance=1.5)
    with pytest.raises(TypeError, match="absolute must be bool"):
        relevance_mass_accuracy(attributions, masks, absolute=1)
    with pytest.raises(TypeError, match="use_box must be bool"):
        energy_pointing_game(attributions, masks, use_box="yes")


def test_non_finite_attributions_are_rejected() -> None:
    from captum_wsam.metrics import pointing_game

    maps, masks = torch.rand(2, 8, 8), torch.rand(2, 8, 8) > 0.5
    maps[1, 3, 3] = float("inf")
    with pytest.raises(ValueError, match="attributions must be finite"):
        pointing_game(maps, masks)
