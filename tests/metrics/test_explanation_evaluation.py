"""evaluate_explanations: the table equals the metrics called one by one; outline masks against a literal reference."""

from __future__ import annotations

import math

import pytest
import torch
from captum.attr import LayerGradCam, Saliency

from captum_wsam.metrics import (
    ExplanationEvaluation,
    deletion_insertion,
    evaluate_explanations,
    outline_mask,
    pointing_game,
    relevance_mass_accuracy,
    road,
)
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched

SIZE = 12


@pytest.fixture
def setup() -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = SmallCNN(width=4, depth=2).eval()
    x = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    masks = torch.zeros(3, SIZE, SIZE, dtype=torch.bool)
    masks[0, 2:7, 3:9] = True
    masks[1, 5:11, 1:6] = True
    masks[2, 0:4, 0:12] = True
    return model, x, masks


def reference_outline(mask: torch.Tensor, width: int) -> torch.Tensor:
    """Pixels within Chebyshev distance ``width`` of a pixel of the other kind (object vs background)."""
    h, w = mask.shape
    out = torch.zeros(h, w, dtype=torch.bool)
    for i in range(h):
        for j in range(w):
            near = [(a, b) for a in range(i - width, i + width + 1) for b in range(j - width, j + width + 1)]
            inside = [bool(mask[a, b]) for a, b in near if 0 <= a < h and 0 <= b < w]
            # outside the image counts as background for background pixels and as object for object pixels
            out[i, j] = (any(inside) and not mask[i, j]) or (bool(mask[i, j]) and not all(inside))
    return out


@pytest.mark.parametrize("width", [1, 2])
def test_outline_matches_reference(setup, width):
    _, _, masks = setup
    outline = outline_mask(masks, width=width)
    for k in range(len(masks)):
        assert torch.equal(outline[k], reference_outline(masks[k], width))


def test_table_equals_direct_calls(setup):
    model, x, masks = setup
    target = torch.tensor([0, 1, 2])
    saliency = Saliency(model).attribute(x.clone().requires_grad_(), target=target)
    result = evaluate_explanations(
        model, x, {"object": masks, "outline": outline_mask(masks)},
        {"Saliency": Saliency(model), "Grad-CAM": LayerGradCam(model, model.block2)},
        target=target, steps=3, percentages=(0.5,), progress=False,
    )
    row = result.scores["Saliency"]
    torch.testing.assert_close(row["PG (object)"], pointing_game(saliency, masks))
    torch.testing.assert_close(row["RMA (outline)"], relevance_mass_accuracy(saliency, outline_mask(masks)))
    curves = deletion_insertion(model, x, saliency, target=target, steps=3, progress=False)
    torch.testing.assert_close(row["deletion AUC"], curves.deletion_auc)
    torch.testing.assert_close(row["insertion AUC"], curves.insertion_auc)
    expected_road = road(model, x, saliency, target=target, percentages=(0.5,), progress=False).combined
    torch.testing.assert_close(row["ROAD"], expected_road)
    headers, rows = result.table()
    assert headers[0] == "method" and len(headers) == 1 + 2 * 4 + 3 and [r[0] for r in rows] == ["Saliency",
                                                                                                 "Grad-CAM"]
    assert result.higher_is_better["deletion AUC"] is False
    assert result.region_share["object"] == pytest.approx(masks.float().mean().item())
    markdown = result.to_markdown()
    assert markdown.count("\n") == 3 and "**" in markdown


def test_without_road_the_other_columns_are_unchanged(setup):
    model, x, masks = setup
    kwargs = {"target": torch.tensor([0, 1, 2]), "steps": 3, "percentages": (0.5,), "progress": False}
    full = evaluate_explanations(model, x, masks, {"Saliency": Saliency(model)}, **kwargs)
    fast = evaluate_explanations(model, x, masks, {"Saliency": Saliency(model)}, road=False, **kwargs)
    assert list(fast.higher_is_better) == [c for c in full.higher_is_better if c != "ROAD"]
    for column, values in fast.scores["Saliency"].items():
        torch.testing.assert_close(values, full.scores["Saliency"][column])
    with pytest.raises(TypeError, match="road"):
        evaluate_explanations(model, x, masks, {"Saliency": Saliency(model)}, road="no", **kwargs)


def test_nan_scores_are_counted_not_averaged():
    result = ExplanationEvaluation({"zero": {"RMA (object)": torch.tensor([math.nan, 0.5])}}, {"RMA (object)": True})
    assert result.means()["zero"]["RMA (object)"] == 0.5
    assert "(1 NaN)" in result.to_markdown()


def test_localisation_only_and_model_untouched(setup):
    model, x, masks = setup
    model.train()
    result = assert_model_untouched(
        model,
        lambda t: evaluate_explanations(model, x, masks, {"Saliency": Saliency(model)}, target=t,
                                        faithfulness=False, progress=False),
        [0, 1, 2],
        inputs=[x],
    )
    assert list(result.higher_is_better) == ["PG (object)", "RMA (object)", "RRA (object)", "EPG (object)"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"masks": {}}, ValueError, "masks must name at least one region"),
        ({"masks": torch.ones(2, SIZE, SIZE, dtype=torch.bool)}, ValueError, "must hold 3 regions"),
        ({"methods": {}}, ValueError, "methods must name at least one"),
        ({"methods": [Saliency]}, TypeError, "methods must be Mapping"),
        ({"steps": 0}, ValueError, "steps must be > 0"),
        ({"model": lambda x: x}, TypeError, "model must be Module"),
    ],
)
def test_bad_input(setup, kwargs, error, match):
    model, x, masks = setup
    arguments = {"model": model, "inputs": x, "masks": masks, "methods": {"Saliency": Saliency(model)},
                 "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        evaluate_explanations(**arguments)
