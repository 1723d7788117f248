"""The Captum and Quantus adapters: the host libraries' own metrics are the references where they exist."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam, Saliency

from captum_wsam.metrics import (
    captum_faithfulness,
    captum_localisation,
    deletion_insertion,
    noisy_linear_imputation,
    pointing_game,
    quantus_explain_func,
    quantus_metric,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
    road,
)
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched

try:
    import quantus
except ImportError:  # a dev extra: the Quantus tests skip, the Captum ones still run
    quantus = None

needs_quantus = pytest.mark.skipif(quantus is None, reason="Quantus is not installed (pip install -e '.[dev]')")
SIZE = 12


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    return SmallCNN(width=4, depth=2).eval()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.rand(4, 3, SIZE, SIZE, generator=g)
    masks = torch.zeros(4, SIZE, SIZE, dtype=torch.bool)
    for k, (top, left) in enumerate([(0, 0), (2, 5), (6, 1), (4, 4)]):
        masks[k, top : top + 5, left : left + 6] = True
    return x, torch.tensor([0, 1, 2, 3]), masks


# --- Captum conventions ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["pointing_game", "relevance_mass_accuracy", "relevance_rank_accuracy",
                                    "energy_pointing_game"])
def test_captum_localisation_equals_direct_call(model, batch, metric):
    from captum_wsam.metrics.adapters import LOCALISATION_METRICS

    x, y, masks = batch
    saliency = Saliency(model)
    direct = LOCALISATION_METRICS[metric](saliency.attribute(x.clone().requires_grad_(), target=y), masks)
    adapted = captum_localisation(saliency.attribute, x.clone().requires_grad_(), masks, metric=metric, target=y)
    torch.testing.assert_close(adapted, direct, equal_nan=True)


def test_captum_localisation_passes_metric_and_attribute_kwargs(model, batch):
    x, y, masks = batch
    gradcam = LayerGradCam(model, model.block2)
    maps = gradcam.attribute(x, target=y, relu_attributions=True)
    expected = pointing_game(maps, masks, tolerance=2)
    adapted = captum_localisation(gradcam.attribute, x, masks, metric_kwargs={"tolerance": 2}, target=y,
                                  relu_attributions=True)
    torch.testing.assert_close(adapted, expected)


def test_captum_faithfulness_equals_direct_call_and_passes_forward_args(model, batch):
    x, y, _ = batch
    attributions = Saliency(model).attribute(x.clone().requires_grad_(), target=y)
    direct = deletion_insertion(model, x, attributions, target=y, steps=3, progress=False)
    torch.testing.assert_close(captum_faithfulness(model, x, attributions, target=y, steps=3, progress=False),
                               direct.deletion_auc)
    torch.testing.assert_close(
        captum_faithfulness(model, x, (attributions,), metric="insertion_auc", target=y, steps=3, progress=False),
        direct.insertion_auc,
    )

    def scaled(inputs: torch.Tensor, factor: float) -> torch.Tensor:  # Captum's additional_forward_args
        return model(inputs) * factor

    with_args = captum_faithfulness(scaled, x, attributions, metric="road_combined", target=y,
                                    additional_forward_args=(1.0,), percentages=(0.5,), noise=0.0, progress=False)
    without = road(model, x, attributions, target=y, percentages=(0.5,), noise=0.0, progress=False).combined
    torch.testing.assert_close(with_args, without, atol=1e-5, rtol=1e-4)


def test_captum_adapters_leave_model_untouched(model, batch):
    x, y, _ = batch
    model.train()
    assert_model_untouched(
        model,
        lambda t: captum_faithfulness(model, x, Saliency(model), target=t, steps=2, progress=False),
        y.tolist(),
        inputs=[x],
    )


def test_captum_adapters_bad_input(model, batch):
    x, y, masks = batch
    with pytest.raises(ValueError, match="metric must be one of"):
        captum_localisation(Saliency(model).attribute, x, masks, metric="deletion_auc", target=y)
    with pytest.raises(TypeError, match="explanation_func must be callable"):
        captum_localisation("saliency", x, masks)
    with pytest.raises(TypeError, match="masks must be Tensor"):
        captum_localisation(Saliency(model).attribute, x, masks.numpy())
    with pytest.raises(ValueError, match="metric must be one of"):
        captum_faithfulness(model, x, torch.rand(4, SIZE, SIZE), metric="pointing_game")
    with pytest.raises(TypeError, match="forward_func must be callable"):
        captum_faithfulness(None, x, torch.rand(4, SIZE, SIZE))


# --- Quantus -----------------------------------------------------------------------------------------------------


def _quantus_inputs(batch: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> dict[str, np.ndarray]:
    x, y, masks = batch
    return {"x_batch": x.numpy(), "y_batch": y.numpy(), "s_batch": masks[:, None].numpy().astype(np.float32)}


@needs_quantus
@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (pointing_game, "PointingGame"),
        (relevance_mass_accuracy, "RelevanceMassAccuracy"),
        (relevance_rank_accuracy, "RelevanceRankAccuracy"),
    ],
)
def test_localisation_matches_quantus(model, batch, ours, theirs):
    # Non-negative maps without ties, where CLEVR-XAI's positive-relevance definition and Quantus's coincide.
    a = torch.rand(4, 1, SIZE, SIZE, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    metric = getattr(quantus, theirs)(abs=False, normalise=False, disable_warnings=True, display_progressbar=False)
    expected = metric(model=model, a_batch=a.numpy(), device="cpu", **_quantus_inputs(batch))
    torch.testing.assert_close(ours(a, batch[2]), torch.tensor(expected, dtype=torch.float64))


@needs_quantus
def test_noisy_linear_imputation_matches_quantus():
    from quantus.functions.perturb_func import noisy_linear_imputation as quantus_imputation

    g = torch.Generator().manual_seed(3)
    x = torch.rand(3, 3, 10, 9, generator=g, dtype=torch.float64)
    removed = torch.rand(3, 10, 9, generator=g) < torch.tensor([0.2, 0.6, 0.9])[:, None, None]
    ours = noisy_linear_imputation(x, removed, noise=0.0, tol=1e-12)
    for k in range(3):
        theirs = quantus_imputation(x[k].numpy(), np.flatnonzero(removed[k].numpy()), noise=0.0)
        np.testing.assert_allclose(ours[k].numpy(), theirs, atol=1e-9)


@needs_quantus
def test_explain_func_inside_a_quantus_metric(model, batch):
    x, y, masks = batch
    metric = quantus.PointingGame(abs=False, normalise=False, disable_warnings=True, display_progressbar=False)
    scores = metric(model=model, a_batch=None, explain_func=quantus_explain_func(Saliency), device="cpu",
                    **_quantus_inputs(batch))
    expected = pointing_game(Saliency(model).attribute(x.clone().requires_grad_(), target=y), masks)
    assert scores == expected.tolist()
    # layer attributions come back upsampled, one channel, as Quantus expects
    explain = quantus_explain_func(lambda m: LayerGradCam(m, m.block2), relu_attributions=True)
    assert explain(model, x.numpy(), y.numpy(), method="ignored", device="cpu").shape == (4, 1, SIZE, SIZE)


def _unwrap(scores: object) -> list[float]:
    """Quantus returns the scores directly, or per set of call keyword arguments."""
    return list(next(iter(scores.values())) if isinstance(scores, dict) else scores)


@needs_quantus
def test_our_metrics_inside_quantus_evaluate(model, batch):
    x, y, masks = batch
    results = quantus.evaluate(
        metrics={"ours": quantus_metric("relevance_rank_accuracy"),
                 "theirs": quantus.RelevanceRankAccuracy(abs=False, normalise=False, disable_warnings=True,
                                                         display_progressbar=False),
                 "deletion": quantus_metric("deletion_auc", steps=2, progress=False)},
        xai_methods={"Saliency": quantus_explain_func(Saliency)},
        model=model,
        explain_func_kwargs={},
        **_quantus_inputs(batch),
    )
    ours, theirs, deletion = (_unwrap(results["Saliency"][k]) for k in ("ours", "theirs", "deletion"))
    maps = Saliency(model).attribute(x.clone().requires_grad_(), target=y)
    assert ours == pytest.approx(relevance_rank_accuracy(maps, masks).tolist())
    assert ours == pytest.approx(list(theirs))
    expected = deletion_insertion(model, x, maps, target=y, steps=2, mode="deletion", progress=False).deletion_auc
    assert deletion == pytest.approx(expected.tolist(), abs=1e-6)


def test_quantus_metric_without_quantus_installed(model, batch):
    # The adapters themselves do not import Quantus: they run on numpy arrays in its calling convention.
    x, y, masks = batch
    metric = quantus_metric("pointing_game", tolerance=1)
    scores = metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=None,
                    s_batch=masks[:, None].numpy(), explain_func=quantus_explain_func(Saliency))
    expected = pointing_game(Saliency(model).attribute(x.clone().requires_grad_(), target=y), masks, tolerance=1)
    assert scores == expected.tolist()
    with pytest.raises(ValueError, match="needs segmentation masks"):
        metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), a_batch=np.zeros((4, 1, SIZE, SIZE)))
    with pytest.raises(ValueError, match="pass explain_func"):
        metric(model=model, x_batch=x.numpy(), y_batch=y.numpy(), s_batch=masks[:, None].numpy())
    with pytest.raises(ValueError, match="name must be one of"):
        quantus_metric("focus")
    with pytest.raises(TypeError, match="attribution_factory must be callable"):
        quantus_explain_func("Saliency")
