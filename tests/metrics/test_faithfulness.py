"""Deletion/insertion (RISE) and ROAD against slow, paper-literal float64 references written here."""

from __future__ import annotations

import copy
import functools
import math

import matplotlib
import numpy as np
import pytest
import torch
from captum.attr import LayerGradCam, Saliency

from captum_wsam.metrics import (
    DeletionInsertionResult,
    ROADResult,
    deletion_insertion,
    gaussian_blur,
    noisy_linear_imputation,
    plot_faithfulness,
    road,
)
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched

matplotlib.use("Agg")

SIZE = 8
NEIGHBOURS = [((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12), ((0, -1), 1 / 6),
              ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6)]


@pytest.fixture
def model() -> torch.nn.Module:
    torch.manual_seed(0)
    net = SmallCNN(width=4, depth=2)
    with torch.no_grad():  # non-trivial BatchNorm statistics
        net.train()(torch.rand(16, 3, SIZE, SIZE))
    return net.eval()


@pytest.fixture
def inputs() -> torch.Tensor:
    return torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))


# --- references --------------------------------------------------------------------------------------------------


def reference_blur(x: torch.Tensor, kernel_size: int = 11, sigma: float = 5.0) -> torch.Tensor:
    """Literal zero-padded convolution with a normalised Gaussian, one output pixel at a time."""
    half = kernel_size // 2
    g = [[math.exp(-(a * a + b * b) / (2 * sigma * sigma)) for b in range(-half, half + 1)]
         for a in range(-half, half + 1)]
    norm = sum(sum(row) for row in g)
    c, h, w = x.shape
    out = torch.zeros(c, h, w, dtype=torch.float64)
    for ch in range(c):
        for i in range(h):
            for j in range(w):
                total = 0.0
                for a in range(-half, half + 1):
                    for b in range(-half, half + 1):
                        if 0 <= i + a < h and 0 <= j + b < w:
                            total += float(x[ch, i + a, j + b]) * g[a + half][b + half] / norm
                out[ch, i, j] = total
    return out


def _order(m: torch.Tensor) -> list[int]:
    """Pixels by decreasing relevance, ties in reading order."""
    flat = m.flatten().tolist()
    return sorted(range(len(flat)), key=lambda p: (-flat[p], p))


def _probability(model64: torch.nn.Module, image: torch.Tensor, target: int) -> float:
    with torch.no_grad():
        return float(model64(image[None]).softmax(1)[0, target])


def reference_deletion_insertion(model: torch.nn.Module, x: torch.Tensor, maps: torch.Tensor, target: list[int],
                                 steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """RISE (Petsiuk et al. 2018): per image and step, move the top pixels one by one; float64 model."""
    model64 = copy.deepcopy(model).double().eval()
    x = x.double()
    n, _, h, w = x.shape
    deletion = torch.zeros(steps + 1, n, dtype=torch.float64)
    insertion = torch.zeros(steps + 1, n, dtype=torch.float64)
    for k in range(n):
        order = _order(maps[k].double())
        canvas = reference_blur(x[k])
        for s in range(steps + 1):
            deleted, inserted = x[k].clone(), canvas.clone()
            for p in order[: s * h * w // steps]:
                i, j = divmod(p, w)
                deleted[:, i, j] = 0.0
                inserted[:, i, j] = x[k][:, i, j]
            deletion[s, k] = _probability(model64, deleted, target[k])
            insertion[s, k] = _probability(model64, inserted, target[k])
    return deletion, insertion


def reference_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """ROAD (Rong et al. 2022): each removed pixel is the weighted mean of its neighbours, one sparse system."""
    from scipy.sparse import lil_matrix
    from scipy.sparse.linalg import spsolve

    c, h, w = image.shape
    unknown = [(i, j) for i in range(h) for j in range(w) if removed[i, j]]
    index = {p: t for t, p in enumerate(unknown)}
    a = lil_matrix((len(unknown), len(unknown)))
    b = np.zeros((len(unknown), c))
    for t, (i, j) in enumerate(unknown):
        for (di, dj), weight in NEIGHBOURS:
            ii, jj = i + di, j + dj
            if not (0 <= ii < h and 0 <= jj < w):
                continue
            a[t, t] += weight
            if removed[ii, jj]:
                a[t, index[(ii, jj)]] -= weight
            else:
                b[t] += weight * image[:, ii, jj]
    solution = np.asarray(spsolve(a.tocsc(), b)).reshape(len(unknown), c)
    out = image.copy()
    for t, (i, j) in enumerate(unknown):
        out[:, i, j] = solution[t]
    return out


def reference_road(model: torch.nn.Module, x: torch.Tensor, maps: torch.Tensor, target: list[int],
                   percentages: tuple[float, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    model64 = copy.deepcopy(model).double().eval()
    n, _, h, w = x.shape
    curves = {"morf": torch.zeros(len(percentages), n, dtype=torch.float64),
              "lerf": torch.zeros(len(percentages), n, dtype=torch.float64)}
    for k in range(n):
        order = _order(maps[k].double())
        for q, p in enumerate(percentages):
            count = round(p * h * w)
            for name, chosen in (("morf", order[:count]), ("lerf", order[h * w - count:])):
                removed = np.zeros((h, w), dtype=bool)
                for pixel in chosen:
                    removed[divmod(pixel, w)] = True
                imputed = torch.from_numpy(reference_imputation(x[k].double().numpy(), removed))
                curves[name][q, k] = _probability(model64, imputed, target[k])
    return curves["morf"], curves["lerf"]


# --- deletion / insertion ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("steps", [5])  # 64 pixels in 5 steps: unequal step sizes
def test_deletion_insertion_matches_reference(model, inputs, steps):
    maps = torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(2))
    target = [0, 3, 5]
    result = deletion_insertion(model, inputs, maps, target=target, steps=steps, progress=False)
    deletion, insertion = reference_deletion_insertion(model, inputs, maps, target, steps)
    torch.testing.assert_close(result.deletion.double(), deletion, atol=2e-5, rtol=1e-4)
    torch.testing.assert_close(result.insertion.double(), insertion, atol=2e-5, rtol=1e-4)
    assert result.fractions[0] == 0 and result.fractions[-1] == 1 and len(result.fractions) == steps + 1
    assert result.target.tolist() == target


def test_a_constant_deletion_substrate_costs_one_image_and_a_varying_one_a_batch(model, inputs):
    """The fully deleted image is the substrate: one image when it is the same for every sample, else a batch; the
    last point of the curve is the substrate's probability either way."""
    maps = torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    target = torch.tensor([0, 3, 5])
    varying = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(5))
    for substrate, last_images in ((0.0, 1), (varying, 3)):
        sizes: list[int] = []
        handle = model.register_forward_pre_hook(lambda module, args, sizes=sizes: sizes.append(len(args[0])))
        try:
            result = deletion_insertion(model, inputs, maps, target=target, steps=4, mode="deletion",
                                        deletion_baseline=substrate, progress=False)
        finally:
            handle.remove()
        assert sum(sizes) == 3 + 3 * 3 + last_images  # the inputs, steps 1..3, the fully deleted images
        pixels = torch.full_like(inputs, substrate) if isinstance(substrate, float) else substrate
        with torch.no_grad():
            expected = model(pixels).softmax(1)[torch.arange(3), target]
        torch.testing.assert_close(result.deletion[-1], expected, atol=1e-6, rtol=1e-5)


def test_auc_is_rise_auc_for_equal_steps(model, inputs):
    result = deletion_insertion(model, inputs, torch.rand(3, SIZE, SIZE), target=1, steps=8, progress=False)
    for curve, auc in ((result.deletion, result.deletion_auc), (result.insertion, result.insertion_auc)):
        rise = (curve.sum(0) - curve[0] / 2 - curve[-1] / 2) / (curve.shape[0] - 1)  # RISE's evaluation.auc
        torch.testing.assert_close(auc, rise)


def test_blur_matches_reference(inputs):
    blurred = gaussian_blur(inputs.double())
    for k in range(len(inputs)):
        torch.testing.assert_close(blurred[k], reference_blur(inputs[k].double()))


def test_perfect_and_adversarial_maps_order_as_expected(model, inputs):
    # A map that ranks by the gradient of the target logit vs its negation: deletion must drop faster for the first.
    saliency = Saliency(model).attribute(inputs.clone().requires_grad_(), target=2, abs=False).sum(1)
    good = deletion_insertion(model, inputs, saliency, target=2, steps=4, mode="deletion", progress=False)
    bad = deletion_insertion(model, inputs, -saliency, target=2, steps=4, mode="deletion", progress=False)
    assert good.deletion_auc.mean() < bad.deletion_auc.mean()


def test_sources_batching_and_modes_agree(model, inputs):
    target = torch.tensor([1, 0, 4])
    saliency = Saliency(model)
    tensor = saliency.attribute(inputs.clone().requires_grad_(), target=target)
    reference = deletion_insertion(model, inputs, tensor, target=target, steps=4, progress=False)
    runs = [(saliency, None), (saliency.attribute, 2), (functools.partial(saliency.attribute, abs=True), 5)]
    for source, batch_size in runs:
        result = deletion_insertion(model, inputs, source, target=target, steps=4, batch_size=batch_size,
                                    progress=False)
        torch.testing.assert_close(result.deletion, reference.deletion, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(result.insertion, reference.insertion, atol=1e-6, rtol=1e-5)
    only = deletion_insertion(model, inputs, tensor, target=target, steps=4, mode="deletion", progress=False)
    torch.testing.assert_close(only.deletion, reference.deletion)
    assert only.insertion is None
    with pytest.raises(ValueError, match="insertion_auc needs the insertion curve"):
        _ = only.insertion_auc
    with pytest.raises(ValueError, match="deletion_auc needs the deletion curve"):
        _ = deletion_insertion(model, inputs, tensor, target=target, steps=2, mode="insertion",
                               progress=False).deletion_auc


def test_target_none_is_the_prediction_and_layer_maps_work(model, inputs):
    predicted = model(inputs).argmax(1)
    gradcam = LayerGradCam(model, model.block2)
    result = deletion_insertion(model, inputs, gradcam, steps=2, progress=False)
    assert result.target.tolist() == predicted.tolist()
    with torch.no_grad():
        assert torch.allclose(result.deletion[0], model(inputs).softmax(1)[torch.arange(3), predicted])
    logits = deletion_insertion(model, inputs, gradcam, steps=2, softmax=False, progress=False)
    with torch.no_grad():
        assert torch.allclose(logits.insertion[-1], model(inputs)[torch.arange(3), predicted])


def test_deletion_insertion_leaves_model_untouched(model, inputs):
    model.train()
    model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
    x = inputs.clone().requires_grad_()
    assert_model_untouched(
        model,
        lambda t: deletion_insertion(model, x, Saliency(model), target=t, steps=2, progress=False),
        [0, 1, 2],
        inputs=[x],
    )
    assert model.training


def test_progress_bar_can_be_turned_off(model, inputs, capsys):
    deletion_insertion(model, inputs, torch.rand(3, SIZE, SIZE), target=0, steps=2, progress=False)
    assert capsys.readouterr().err == ""
    deletion_insertion(model, inputs, torch.rand(3, SIZE, SIZE), target=0, steps=2, progress=True)
    assert "deletion" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"steps": 0}, ValueError, "steps must be > 0, got 0"),
        ({"mode": "both_ways"}, ValueError, "mode must be one of"),
        ({"deletion_baseline": "noise"}, ValueError, "deletion_baseline must be one of 'blur'"),
        ({"insertion_baseline": torch.rand(2, 3, SIZE, SIZE)}, ValueError, "insertion_baseline must broadcast"),
        ({"softmax": 1}, TypeError, "softmax must be bool"),
        ({"batch_size": 0}, ValueError, "batch_size must be > 0"),
        ({"attribute_kwargs": [1]}, TypeError, "attribute_kwargs must be dict"),
        ({"attributions": torch.rand(2, SIZE, SIZE)}, ValueError, "attributions must have shape"),
        ({"attributions": "saliency"}, TypeError, "attributions must be a tensor, a Captum Attribution"),
        ({"inputs": torch.rand(3, SIZE, SIZE)}, ValueError, "inputs must be a 4-D tensor"),
        ({"model": 3}, TypeError, "model must be an nn.Module or a callable"),
        ({"target": [0, 1]}, ValueError, "target must hold 3 class indices"),
    ],
)
def test_deletion_insertion_bad_input(model, inputs, kwargs, error, match):
    arguments = {"model": model, "inputs": inputs, "attributions": torch.rand(3, SIZE, SIZE), "target": 0,
                 "steps": 2, "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        deletion_insertion(**arguments)


# --- ROAD --------------------------------------------------------------------------------------------------------


def test_imputation_matches_sparse_reference():
    g = torch.Generator().manual_seed(3)
    x = torch.rand(4, 3, 10, 12, generator=g, dtype=torch.float64)
    removed = torch.rand(4, 10, 12, generator=g) < torch.tensor([0.1, 0.5, 0.9, 0.97])[:, None, None]
    imputed = noisy_linear_imputation(x, removed, noise=0.0, tol=1e-12)
    for k in range(4):
        expected = reference_imputation(x[k].numpy(), removed[k].numpy())
        np.testing.assert_allclose(imputed[k].numpy(), expected, atol=1e-9)
    single = noisy_linear_imputation(x.float(), removed, noise=0.0)  # default float32 tolerance
    torch.testing.assert_close(single.double(), imputed, atol=1e-4, rtol=0)


def test_imputation_noise_is_seeded_and_only_on_removed_pixels():
    x = torch.rand(2, 3, 16, 16)
    removed = torch.zeros(2, 16, 16, dtype=torch.bool)
    removed[:, 4:12, 4:12] = True
    clean = noisy_linear_imputation(x, removed, noise=0.0)
    noisy = noisy_linear_imputation(x, removed, noise=0.01, generator=torch.Generator().manual_seed(0))
    again = noisy_linear_imputation(x, removed, noise=0.01, generator=torch.Generator().manual_seed(0))
    assert torch.equal(noisy, again)
    assert torch.equal(noisy[:, :, ~removed[0]], x[:, :, ~removed[0]])
    difference = (noisy - clean)[:, :, removed[0]]
    assert 0.008 < difference.std().item() < 0.012


def test_road_matches_reference(model, inputs):
    maps = torch.randn(3, SIZE, SIZE, generator=torch.Generator().manual_seed(4))
    target, percentages = [2, 0, 1], (0.2, 0.5, 0.9)
    result = road(model, inputs, maps, target=target, percentages=percentages, noise=0.0, progress=False)
    morf, lerf = reference_road(model, inputs, maps, target, percentages)
    torch.testing.assert_close(result.morf.double(), morf, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(result.lerf.double(), lerf, atol=1e-4, rtol=1e-3)
    torch.testing.assert_close(result.combined.double(), ((lerf - morf) / 2).mean(0), atol=1e-4, rtol=1e-3)
    assert result.percentages.tolist() == pytest.approx(list(percentages))


def test_road_seeded_batch_invariant_and_global_rng_untouched(model, inputs):
    maps = torch.rand(3, SIZE, SIZE)
    state = torch.get_rng_state()
    first = road(model, inputs, maps, target=1, percentages=(0.3, 0.6), seed=5, progress=False)
    assert torch.equal(torch.get_rng_state(), state)
    second = road(model, inputs, maps, target=1, percentages=(0.3, 0.6), seed=5, progress=False)
    assert torch.equal(first.morf, second.morf) and torch.equal(first.lerf, second.lerf)
    clean = road(model, inputs, maps, target=1, percentages=(0.3,), noise=0.0, progress=False)
    morf_only = road(model, inputs, maps, target=1, percentages=(0.3,), noise=0.0, mode="morf", batch_size=2,
                     progress=False)
    torch.testing.assert_close(morf_only.morf, clean.morf, atol=1e-5, rtol=1e-4)
    assert morf_only.lerf is None
    with pytest.raises(ValueError, match="combined needs both curves"):
        _ = morf_only.combined


def test_road_leaves_model_untouched(model, inputs):
    model.train()
    x = inputs.clone()
    assert_model_untouched(
        model,
        lambda t: road(model, x, Saliency(model), target=t, percentages=(0.5,), progress=False),
        1,
        inputs=[x],
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"percentages": (0.5, 1.0)}, ValueError, r"percentages must lie in \(0.0, 1.0\), got 1.0"),
        ({"percentages": ()}, TypeError, "percentages must be a non-empty sequence"),
        ({"percentages": 0.5}, TypeError, "percentages must be a non-empty sequence"),
        ({"mode": "both_ways"}, ValueError, "mode must be one of 'both', 'morf', 'lerf'"),
        ({"noise": -0.1}, ValueError, "noise must lie in"),
        ({"seed": -1}, ValueError, "seed must be >= 0"),
        ({"attributions": torch.rand(3, 2, 2, SIZE, SIZE)}, ValueError, "attributions must have shape"),
    ],
)
def test_road_bad_input(model, inputs, kwargs, error, match):
    arguments = {"model": model, "inputs": inputs, "attributions": torch.rand(3, SIZE, SIZE), "target": 0,
                 "progress": False, **kwargs}
    with pytest.raises(error, match=match):
        road(**arguments)


def test_imputation_bad_input():
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ValueError, match="removed must keep at least one pixel"):
        noisy_linear_imputation(x, torch.ones(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"removed must be a boolean tensor of shape \(1, 4, 4\)"):
        noisy_linear_imputation(x, torch.ones(1, 4, 4))


# --- plot --------------------------------------------------------------------------------------------------------


def test_plot_faithfulness(model, inputs):
    maps = torch.rand(3, SIZE, SIZE)
    curves = deletion_insertion(model, inputs, maps, target=0, steps=2, progress=False)
    ax = plot_faithfulness({"random": curves, "again": curves})
    assert len(ax.get_lines()) == 4 and "AUC" in ax.get_legend().get_texts()[0].get_text()
    imputed = road(model, inputs, maps, target=0, percentages=(0.5,), progress=False)
    assert isinstance(curves, DeletionInsertionResult) and isinstance(imputed, ROADResult)
    assert len(plot_faithfulness(imputed).get_lines()) == 2
    with pytest.raises(TypeError, match="results of one kind"):
        plot_faithfulness({"a": curves, "b": imputed})


def test_old_module_re_exports_the_split_modules():
    from captum_wsam.metrics import faithfulness, faithfulness_results, perturbation

    for module in (perturbation, faithfulness_results):
        for name in module.__all__:
            assert getattr(faithfulness, name) is getattr(module, name), name


def test_non_finite_inputs_and_attributions_are_rejected() -> None:
    from captum_wsam.metrics import deletion_insertion

    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 4)).eval()
    x, maps = torch.rand(2, 3, 8, 8), torch.rand(2, 8, 8)
    bad = x.clone()
    bad[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="inputs must be finite"):
        deletion_insertion(model, bad, maps, target=0, progress=False)
    maps[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="attributions must be finite"):
        deletion_insertion(model, x, maps, target=0, progress=False)
