"""Model and data randomization tests (Adebayo et al. 2018) on the trained SmallCNN with Captum attributions."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from captum.attr import LRP, GuidedBackprop, IntegratedGradients, LayerGradCam, Saliency
from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule
from torch import Tensor, nn

from captum_wsam.metrics.randomization import (
    attribution_maps,
    data_randomization,
    model_randomization,
    parametrized_layers,
    plot_randomization,
    plot_randomized_maps,
    reinitialize,
)
from tests.helpers import assert_model_untouched

LAYERS = ["block1.conv", "block1.bn", "block2.conv", "block2.bn", "block3.conv", "block3.bn", "block4.conv",
          "block4.bn", "classifier"]


def grad_cam(model: nn.Module) -> LayerGradCam:
    return LayerGradCam(model, model.block4)


class _LRPView(nn.Module):
    """The SmallCNN's own modules without ``nn.Flatten`` (which captum's LRP cannot propagate through)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.features = nn.Sequential(*model.blocks, model.pool)
        self.classifier = model.classifier

    def forward(self, x: Tensor) -> Tensor:
        return self.classifier(self.features(x).flatten(1))


def lrp_alpha1_beta0(model: nn.Module) -> LRP:
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            module.rule = Alpha1_Beta0_Rule()
    return LRP(_LRPView(model))


@pytest.fixture
def batch(images: Tensor, trained_cnn: nn.Module) -> tuple[Tensor, Tensor]:
    with torch.no_grad():
        return images, trained_cnn(images).argmax(1)


def test_default_layers_are_the_parametrized_ones(trained_cnn: nn.Module) -> None:
    assert parametrized_layers(trained_cnn) == LAYERS


@pytest.mark.parametrize("factory", [Saliency, grad_cam], ids=["saliency", "grad_cam"])
def test_cascading_decorrelates_and_leaves_model_untouched(factory: Any, trained_cnn: nn.Module,
                                                           batch: tuple[Tensor, Tensor]) -> None:
    inputs, target = batch

    def call(t: Any) -> Any:
        return model_randomization(factory, trained_cnn, inputs, t, progress=False)

    result = assert_model_untouched(trained_cnn, call, target, inputs=[inputs])
    assert result.layers == tuple(reversed(LAYERS))
    assert result.scores.shape == (len(LAYERS), len(inputs))
    assert result.original.shape == result.randomized.shape[1:] == (len(inputs), 32, 32)
    torch.testing.assert_close(result.baseline, torch.ones(len(inputs)))
    assert result.mean[-1] < 0.5, result.mean


def test_orders_randomize_as_defined(trained_cnn: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    """Cascading step k re-initializes the top k layers; independent step k only layer k; same seed per layer."""
    inputs, target = batch
    trained = {k: v.clone() for k, v in trained_cnn.state_dict().items()}
    seen: dict[str, list[dict[str, Tensor]]] = {"cascading": [], "independent": []}
    for order, states in seen.items():

        def factory(model: nn.Module, states: list = states) -> Saliency:
            states.append({k: v.clone() for k, v in model.state_dict().items()})
            return Saliency(model)

        result = model_randomization(factory, trained_cnn, inputs, target, order=order, progress=False)
        assert len(states) == len(LAYERS) + 1  # the original map, then one model per step
        for k, state in enumerate(states[1:]):
            changed = {name for name in LAYERS if any(
                not torch.equal(state[key], trained[key]) for key in trained if key.startswith(name + "."))}
            expected = set(reversed(LAYERS[len(LAYERS) - k - 1 :])) if order == "cascading" else {result.layers[k]}
            assert changed == expected, (order, k, changed)
            assert set(result.randomized_layers[k]) == expected
        assert all(torch.equal(states[0][key], trained[key]) for key in trained)  # the original map's model
    # A layer gets the same random weights in both orders.
    for k, name in enumerate(reversed(LAYERS)):
        key = f"{name}.weight"
        assert torch.equal(seen["cascading"][k + 1][key], seen["independent"][k + 1][key])
    # The orders differ as soon as more than one layer is randomized in the cascade.
    cascading = model_randomization(Saliency, trained_cnn, inputs, target, progress=False)
    independent = model_randomization(Saliency, trained_cnn, inputs, target, order="independent", progress=False)
    torch.testing.assert_close(cascading.scores[0], independent.scores[0])
    assert not torch.allclose(cascading.scores[-1], independent.scores[-1])


def test_lrp_alpha_beta_is_insensitive_to_top_layers(trained_cnn: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    """Sixt et al. 2020: α1β0 maps barely change when the top layers are randomized; Grad-CAM maps do."""
    inputs, target = batch
    top = ["block4.conv", "block4.bn", "classifier"]
    lrp = model_randomization(lrp_alpha1_beta0, trained_cnn, inputs, target, layers=top, progress=False)
    cam = model_randomization(grad_cam, trained_cnn, inputs, target, layers=top, progress=False)
    assert lrp.mean[-1] > 0.8 > cam.mean[-1] + 0.2, (lrp.mean, cam.mean)


@pytest.mark.parametrize("similarity", ["ssim", "pearson_hog"])
def test_other_similarities_and_attributions(similarity: str, trained_cnn: nn.Module,
                                            batch: tuple[Tensor, Tensor]) -> None:
    inputs, target = batch
    layers = ["block3.conv", "block4.conv", "classifier"]
    for factory, kwargs in ((IntegratedGradients, {"n_steps": 8}), (GuidedBackprop, None)):
        result = model_randomization(factory, trained_cnn, inputs[:2], target[:2], similarity=similarity,
                                     layers=layers, attribute_kwargs=kwargs, progress=False)
        assert result.scores.shape == (3, 2) and torch.isfinite(result.scores).all()
        assert (result.scores <= 1 + 1e-6).all() and result.mean[-1] < result.baseline.mean()


def test_custom_similarity_and_native_size(trained_cnn: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    inputs, target = batch

    def l1_distance(a: Tensor, b: Tensor) -> Tensor:
        return -(a - b).abs().flatten(1).mean(1)

    result = model_randomization(grad_cam, trained_cnn, inputs, target, similarity=l1_distance, upsample=False,
                                 layers=["classifier"], progress=False)
    assert result.similarity == "l1_distance" and result.original.shape == (len(inputs), 2, 2)
    assert (result.baseline == 0).all() and (result.scores < 0).all()


def test_data_randomization(trained_cnn: nn.Module, shapes_train: Any, batch: tuple[Tensor, Tensor]) -> None:
    inputs, target = batch
    images, labels = shapes_train.tensors()
    data = (images[:256], labels[:256])

    def call(t: Any) -> Any:
        return data_randomization(grad_cam, trained_cnn, inputs, t, data, epochs=2, progress=False)

    result = assert_model_untouched(trained_cnn, call, target, inputs=[inputs])
    assert result.scores.shape == (len(inputs),) and len(result.history) == 2
    assert result.scores.mean() < 0.5, result.scores


def test_reinitialize_is_seeded_and_keeps_global_rng() -> None:
    layer = nn.Conv2d(3, 4, 3)
    twin = copy.deepcopy(layer)
    state = torch.get_rng_state()
    reinitialize(layer, seed=5)
    assert torch.equal(torch.get_rng_state(), state)
    reinitialize(twin, seed=5)
    assert torch.equal(layer.weight, twin.weight)

    class NoReset(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

    with pytest.raises(TypeError, match="NoReset owns parameters"):
        reinitialize(NoReset(), seed=0)


def test_attribution_maps() -> None:
    layer_attr = torch.rand(2, 1, 4, 4)
    assert attribution_maps(layer_attr, (32, 32)).shape == (2, 32, 32)
    assert attribution_maps((layer_attr,), (32, 32), upsample=False).shape == (2, 4, 4)
    signed = torch.randn(2, 3, 8, 8)
    torch.testing.assert_close(attribution_maps(signed, (8, 8), absolute=False), signed.sum(1))
    with pytest.raises(ValueError, match="single input"):
        attribution_maps((layer_attr, layer_attr), (32, 32))


def test_plots(trained_cnn: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    import matplotlib.pyplot as plt

    inputs, target = batch
    result = model_randomization(Saliency, trained_cnn, inputs, target, layers=LAYERS[-3:], progress=False)
    ax = plot_randomization({"Saliency": result, "again": result})
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", *result.layers]
    assert len(plot_randomized_maps(result, sample=1).axes) == 4
    with pytest.raises(ValueError, match="sample"):
        plot_randomized_maps(result, sample=9)
    plt.close("all")


def test_bad_inputs_raise_clear_errors(trained_cnn: nn.Module, batch: tuple[Tensor, Tensor]) -> None:
    inputs, target = batch
    cases = [
        (dict(order="random"), ValueError, "order must be one of"),
        (dict(similarity="cosine"), ValueError, "similarity must be one of"),
        (dict(layers=["block9"]), ValueError, "layers must name submodules"),
        (dict(layers=["block1.relu"]), ValueError, "layers must have parameters"),
        (dict(layers=[]), ValueError, "layers must not be empty"),
        (dict(layers="classifier"), TypeError, "layers must be a sequence"),
        (dict(attribute_kwargs=[1]), TypeError, "attribute_kwargs must be dict"),
    ]
    for kwargs, error, message in cases:
        with pytest.raises(error, match=message):
            model_randomization(Saliency, trained_cnn, inputs, target, progress=False, **kwargs)
    with pytest.raises(TypeError, match="attribution_factory must be callable"):
        model_randomization("saliency", trained_cnn, inputs, target)
    with pytest.raises(ValueError, match="inputs must be a 4-D"):
        model_randomization(Saliency, trained_cnn, inputs[0], target)
    with pytest.raises(ValueError, match="target must lie in"):
        model_randomization(Saliency, trained_cnn, inputs, 6)
    with pytest.raises(TypeError, match="data must be"):
        data_randomization(Saliency, trained_cnn, inputs, target, data=[1, 2, 3])


def test_old_module_re_exports_the_split_modules() -> None:
    from captum_wsam.metrics import (
        label_randomization,
        parameter_randomization,
        randomization,
        randomization_plots,
        sanity_maps,
    )

    modules = (label_randomization, parameter_randomization, randomization_plots, sanity_maps)
    assert set(randomization.__all__) == set().union(*(m.__all__ for m in modules))
    for module in modules:
        for name in module.__all__:
            assert getattr(randomization, name) is getattr(module, name), name


def test_data_randomization_reads_a_dataset_or_a_loader_like_the_tensors() -> None:
    from torch.utils.data import DataLoader, TensorDataset

    from captum_wsam.models import SmallCNN

    g = torch.Generator().manual_seed(3)
    images, labels = torch.rand(12, 3, 32, 32, generator=g), torch.arange(12) % 6
    model = SmallCNN(width=4, depth=2)
    results = [data_randomization(Saliency, model, images[:2], [0, 1], data, epochs=1, batch_size=4, progress=False)
               for data in ((images, labels), TensorDataset(images, labels),
                            DataLoader(TensorDataset(images, labels), batch_size=5))]
    for other in results[1:]:
        torch.testing.assert_close(other.scores, results[0].scores)
        assert other.history == results[0].history
    with pytest.raises(TypeError, match="data must be an \\(images, labels\\) pair"):
        data_randomization(Saliency, model, images[:2], [0, 1], [images], progress=False)
