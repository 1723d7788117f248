"""SAM: equals LayerGradCam at α = 1, follows the paper's definition on styled inputs, leaves the model untouched."""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
from torch import Tensor, nn

from captum_wsam.attr import SAM
from captum_wsam.models import SmallCNN, create_model
from tests.attr.style_stand_in import ColourStyles
from tests.helpers import assert_attribution_contract, assert_model_untouched


def reference_sam(model: nn.Module, layer_name: str, styled: Tensor, target: Tensor | None) -> Tensor:
    """The paper's SAM, literally, one image at a time in float64: ReLU(Σ_k δ_k A^k), δ_k = mean_ij ∂y^c/∂A^k_ij."""
    model = copy.deepcopy(model).double().eval()
    layer = model.get_submodule(layer_name)
    maps, saved = [], {}
    for i in range(len(styled)):
        handle = layer.register_forward_hook(lambda _m, _i, out: saved.__setitem__("A", out))
        try:
            logits = model(styled[i : i + 1].double())
        finally:
            handle.remove()
        c = int(logits.argmax()) if target is None else int(target[i])
        (grad,) = torch.autograd.grad(logits[0, c], saved["A"])
        A, dy = saved["A"][0], grad[0]
        delta = dy.sum(dim=(1, 2)) / (dy.shape[1] * dy.shape[2])
        maps.append(torch.relu(sum(delta[k] * A[k] for k in range(A.shape[0])))[None])
    return torch.stack(maps)


@pytest.fixture(scope="module")
def augment() -> ColourStyles:
    return ColourStyles(num_styles=5)


@pytest.mark.parametrize("name", ["small_cnn", "resnet18", "vgg11_bn"])
def test_alpha_one_equals_layer_grad_cam(name: str, augment: ColourStyles) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    layer = {"small_cnn": lambda m: m.block3, "resnet18": lambda m: m.layer3, "vgg11_bn": lambda m: m.features[10]}
    layer = layer[name](model)
    x, target = torch.rand(2, 3, 32, 32), torch.tensor([1, 4])
    expected = LayerGradCam(model, layer).attribute(x, target, relu_attributions=True)
    got = SAM(model, layer, augment).attribute(x, target, alpha=1.0, style=2)
    assert torch.equal(got, expected)


@pytest.mark.parametrize(
    "options",
    [{"relu_attributions": False}, {"attr_dim_summation": False}, {"attribute_to_layer_input": True}],
    ids=["signed", "per_channel", "layer_input"],
)
def test_alpha_one_matches_layer_grad_cam_options(small: SmallCNN, augment: ColourStyles, options: dict) -> None:
    x = torch.rand(3, 3, 32, 32)
    expected = LayerGradCam(small, small.block2).attribute(x, 2, **{"relu_attributions": True, **options})
    got = SAM(small, small.block2, augment).attribute(x, 2, alpha=1.0, **options)
    assert torch.equal(got, expected)


@pytest.mark.parametrize("target", [None, torch.tensor([0, 3, 5])], ids=["predicted", "given"])
def test_sam_equals_paper_definition_on_styled_input(small: SmallCNN, augment: ColourStyles, target: Tensor) -> None:
    x = torch.rand(3, 3, 32, 32)
    styled = augment.stylize(x, 3, 0.25)
    expected = reference_sam(small, "block2", styled.double(), target)
    got = SAM(small, small.block2, augment).attribute(x, target, alpha=0.25, style=3)
    torch.testing.assert_close(got.double(), expected, atol=1e-5, rtol=1e-4)
    assert not torch.equal(got, SAM(small, small.block2, augment).attribute(x, target, alpha=1.0))


def test_target_none_is_class_predicted_on_styled_input(small: SmallCNN, augment: ColourStyles) -> None:
    x = torch.rand(4, 3, 32, 32)
    styled = augment.stylize(x, 1, 0.0)
    predicted = small(styled).argmax(dim=1)
    sam = SAM(small, small.block3, augment)
    assert torch.equal(sam.attribute(x, alpha=0.0, style=1), sam.attribute(x, predicted, alpha=0.0, style=1))


def test_attribution_contract(small: SmallCNN, augment: ColourStyles) -> None:
    sam = SAM(small, small.block3, augment)
    x = torch.rand(3, 3, 32, 32)
    out = assert_attribution_contract(lambda i, t: sam.attribute(i, t, alpha=0.4, style=2), x, torch.tensor([0, 1, 2]))
    assert out.shape == (3, 1, 4, 4)


def test_float64_and_interpolation(small: SmallCNN, augment: ColourStyles) -> None:
    model = copy.deepcopy(small).double()
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    sam = SAM(model, model.block3, augment)
    layer_map = sam.attribute(x, 1, alpha=0.5, style=0)
    upsampled = sam.attribute(x, 1, alpha=0.5, style=0, interpolate_to_input=True)
    assert layer_map.dtype == torch.float64 and upsampled.shape == (2, 1, 32, 32)
    torch.testing.assert_close(upsampled, LayerAttribution.interpolate(layer_map, (32, 32), "bilinear"))


def test_noise_tunnel(small: SmallCNN, augment: ColourStyles) -> None:
    sam = SAM(small, small.block3, augment)
    x = 0.25 + 0.5 * torch.rand(2, 3, 32, 32)  # the noisy images stay in [0, 1]
    smooth = NoiseTunnel(sam).attribute(x, nt_type="smoothgrad", nt_samples=4, stdevs=0.05, target=1, alpha=0.5,
                                        style=1)
    assert smooth.shape == (2, 1, 4, 4) and torch.isfinite(smooth).all()
    # with a vanishing noise the smoothed map is the map itself
    tiny = NoiseTunnel(sam).attribute(x, nt_type="smoothgrad", nt_samples=2, stdevs=1e-12, target=1, alpha=0.5,
                                      style=1)
    torch.testing.assert_close(tiny, sam.attribute(x, 1, alpha=0.5, style=1), atol=1e-5, rtol=1e-4)


def test_model_left_untouched(augment: ColourStyles) -> None:
    torch.manual_seed(0)
    model = SmallCNN(width=8, depth=4).train()  # train mode: BatchNorm statistics must not move
    model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
    model.block1.bn.weight.requires_grad_(False)
    x = torch.rand(2, 3, 32, 32)
    sam = SAM(model, model.block3, augment)
    out = assert_model_untouched(model, lambda t: sam.attribute(x, t, alpha=0.3, style=1), torch.tensor([0, 2]),
                                 inputs=[x])
    assert out.shape == (2, 1, 4, 4)


@pytest.mark.parametrize(
    ("kwargs", "error", "names"),
    [
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"alpha": -0.1}, ValueError, "alpha"),
        ({"target": 6}, ValueError, "target"),
        ({"target": [0, 9]}, ValueError, "target"),
        ({"style": 5}, ValueError, "style"),
        ({"inputs": torch.rand(3, 32, 32)}, ValueError, "inputs"),
        ({"inputs": torch.zeros(2, 3, 32, 32, dtype=torch.uint8)}, TypeError, "inputs"),
        ({"relu_attributions": "yes"}, TypeError, "relu_attributions"),
    ],
)
def test_bad_arguments(small: SmallCNN, augment: ColourStyles, kwargs: dict, error: type, names: str) -> None:
    sam = SAM(small, small.block3, augment)
    arguments = {"inputs": torch.rand(2, 3, 32, 32), "target": 0, **kwargs}
    with pytest.raises(error, match=names):
        sam.attribute(**arguments)


def test_bad_constructor_arguments(small: SmallCNN, augment: ColourStyles) -> None:
    with pytest.raises(ValueError, match="layer"):
        SAM(small, nn.Conv2d(3, 3, 3), augment)
    with pytest.raises(TypeError, match="augment"):
        SAM(small, small.block3, augment=lambda x: x)
    with pytest.raises(TypeError, match="forward_func"):
        SAM(3, small.block3, augment)


def test_default_style_augment(small: SmallCNN) -> None:
    from captum_wsam.augment import StyleAugment

    sam = SAM(small, small.block3)
    assert isinstance(sam.augment, StyleAugment)
    x = torch.rand(2, 3, 32, 32)
    expected = LayerGradCam(small, small.block3).attribute(x, 3, relu_attributions=True)
    assert torch.equal(sam.attribute(x, 3, alpha=1.0, style=7), expected)
    styled = sam.augment.stylize(x, 7, 0.2)
    torch.testing.assert_close(sam.attribute(x, 3, alpha=0.2, style=7),
                               LayerGradCam(small, small.block3).attribute(styled, 3, relu_attributions=True))


def test_style_params_are_replayed(small: SmallCNN) -> None:
    from captum_wsam.augment import StyleAugment

    augment = StyleAugment(alpha=0.4, p=1.0)
    x = torch.rand(3, 3, 32, 32)
    styled = augment(x)
    params = augment._params
    sam = SAM(small, small.block3, augment)
    expected = LayerGradCam(small, small.block3).attribute(styled, [0, 1, 2], relu_attributions=True)
    torch.testing.assert_close(sam.attribute(x, [0, 1, 2], alpha=0.4, style=params), expected)
    with pytest.raises(ValueError, match="style_index"):
        sam.attribute(x, 0, style={"alpha": params["alpha"]})
    with pytest.raises(TypeError, match="style"):
        sam.attribute(x, 0, style=torch.tensor([0.5]))
