"""shape_bias: Geirhos et al.'s ratio, checked against a literal count and against oracle models."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import shape_bias
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched


class _CueOracle(nn.Module):
    """Predicts a fixed cue of each image by looking it up (index smuggled in the pixel at (0, 0, 0))."""

    def __init__(self, labels: torch.Tensor) -> None:
        super().__init__()
        self.labels = labels
        self.scale = nn.Parameter(torch.ones(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = x[:, 0, 0, 0].round().long()
        return nn.functional.one_hot(self.labels[index], 6).float() * self.scale


def _indexed(data: ShapesTextures) -> list:
    items = []
    for i in range(len(data)):
        image, label, info = data[i]
        image = image.clone()
        image[0, 0, 0] = i
        items.append((image, label, info))
    return items


@pytest.fixture(scope="module")
def conflict() -> ShapesTextures:
    return ShapesTextures(n=60, size=32, seed=4, cue_conflict=True)


def test_oracles_give_one_and_zero(conflict: ShapesTextures) -> None:
    items = _indexed(conflict)
    assert shape_bias(_CueOracle(conflict.shape_labels), DataLoader(items, batch_size=16)) == 1.0
    assert shape_bias(_CueOracle(conflict.texture_labels), DataLoader(items, batch_size=16)) == 0.0


def test_matches_literal_count_for_a_mixed_model(conflict: ShapesTextures) -> None:
    items = _indexed(conflict)
    shape, texture = conflict.shape_labels, conflict.texture_labels
    mixed = torch.where(torch.arange(60) % 3 == 0, shape, torch.where(torch.arange(60) % 3 == 1, texture, 5 - shape))
    result = shape_bias(_CueOracle(mixed), DataLoader(items, batch_size=7), return_counts=True)
    shape_hits = sum(int(m == s) for m, s, t in zip(mixed, shape, texture) if s != t)
    texture_hits = sum(int(m == t) for m, s, t in zip(mixed, shape, texture) if s != t)
    assert result["shape_decisions"] == shape_hits and result["texture_decisions"] == texture_hits
    assert result["shape_bias"] == pytest.approx(shape_hits / (shape_hits + texture_hits))
    assert result["images"] == 60


def test_no_matching_decision_gives_nan(conflict: ShapesTextures) -> None:
    items = _indexed(conflict)
    shape, texture = conflict.shape_labels, conflict.texture_labels
    neither = torch.tensor([next(c for c in range(6) if c not in (int(s), int(t))) for s, t in zip(shape, texture)])
    assert math.isnan(shape_bias(_CueOracle(neither), DataLoader(items, batch_size=30)))


def test_model_untouched(conflict: ShapesTextures) -> None:
    model = SmallCNN(width=8, depth=2).train()  # train mode: shape_bias must switch to eval and back
    bias = assert_model_untouched(model, lambda bs: shape_bias(model, conflict, batch_size=bs), 32, invalid_target=0)
    assert 0.0 <= bias <= 1.0 or math.isnan(bias)


def test_bad_inputs(conflict: ShapesTextures) -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 32 * 32, 6))
    with pytest.raises(TypeError, match="model"):
        shape_bias("model", conflict)
    with pytest.raises(TypeError, match="data"):
        shape_bias(model, [1, 2])
    plain = ShapesTextures(n=4, size=32, return_info=False)
    with pytest.raises(ValueError, match="data must yield"):
        shape_bias(model, plain)


def test_non_finite_images_are_rejected(conflict: ShapesTextures) -> None:
    image, label, info = conflict[0]
    image[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="data images must be finite"):
        shape_bias(SmallCNN(width=4, depth=2), DataLoader([(image, label, info)], batch_size=1))
