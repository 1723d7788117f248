"""LRP (composites of rule objects) and LRPAlphaBeta where Captum users put them: under ``no_grad``, inside
``NoiseTunnel``, ``sensitivity_max`` and ``infidelity``, from several threads, with another tool's hooks, with a
``Normalize`` first layer; LayerLRP against Captum's LayerLRP; clear errors for unsupported modules and bad numbers."""

from __future__ import annotations

import threading

import pytest
import torch
import torchvision
from captum.attr import LayerLRP as CaptumLayerLRP
from captum.attr import NoiseTunnel
from captum.attr._utils.lrp_rules import EpsilonRule
from captum.metrics import infidelity, sensitivity_max
from torch import nn
from torchvision.transforms import Normalize

from captum_wsam.attr import (
    LRP,
    Composite,
    Epsilon,
    EpsilonAlpha2Beta1,
    EpsilonGammaBox,
    EpsilonPlus,
    LayerLRP,
    LRPAlphaBeta,
    ZBox,
)
from captum_wsam.models import SmallCNN
from tests.attr.test_lrp_canonizers import randomize_batch_norms
from tests.helpers import ModelSnapshot, assert_model_untouched, assert_nothing_left

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def small_model() -> nn.Module:
    torch.manual_seed(0)
    return randomize_batch_norms(SmallCNN(width=8, depth=2))


def methods(model: nn.Module) -> dict[str, object]:
    return {"LRP": LRP(model), "LRPAlphaBeta": LRPAlphaBeta(model)}


@pytest.mark.parametrize("name", ["LRP", "LRPAlphaBeta"])
def test_works_under_the_callers_no_grad_and_refuses_inference_mode(name: str) -> None:
    model = small_model()
    method = methods(model)[name]
    x = torch.rand(2, 3, 16, 16)
    expected = method.attribute(x, target=1)
    with torch.no_grad():
        got, delta = method.attribute(x, target=1, return_convergence_delta=True)
    torch.testing.assert_close(got, expected)
    assert delta.shape == (2,)
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        method.attribute(x, target=1)
    with torch.inference_mode():
        frozen = x.clone()
    torch.testing.assert_close(method.attribute(frozen, target=1), expected)  # an inference tensor as input


@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
@pytest.mark.parametrize("with_delta", [False, True])
@pytest.mark.parametrize("name", ["LRP", "LRPAlphaBeta"])
def test_noise_tunnel_all_noise_types(name: str, nt_type: str, with_delta: bool) -> None:
    model = small_model()
    x = 0.3 + 0.4 * torch.rand(2, 3, 16, 16)  # noise keeps the inputs inside the z^B box
    tunnel = NoiseTunnel(methods(model)[name])
    result = tunnel.attribute(x, nt_type=nt_type, nt_samples=3, stdevs=0.01, target=1,
                              return_convergence_delta=with_delta)
    attributions = result[0] if with_delta else result
    assert attributions.shape == x.shape and torch.isfinite(attributions).all()
    if with_delta:
        assert result[1].shape == (2 * 3,)


@pytest.mark.parametrize("name", ["LRP", "LRPAlphaBeta"])
def test_sensitivity_max_and_infidelity(name: str) -> None:
    model = small_model()
    method = methods(model)[name]
    x = 0.3 + 0.4 * torch.rand(2, 3, 16, 16)
    sensitivity = sensitivity_max(method.attribute, x, target=1, n_perturb_samples=2, perturb_radius=0.01)
    assert sensitivity.shape == (2,) and torch.isfinite(sensitivity).all()

    def perturb(inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        noise = 0.01 * torch.randn_like(inputs)
        return noise, inputs - noise

    score = infidelity(model, perturb, x, method.attribute(x, target=1), target=1, n_perturb_samples=2)
    assert score.shape == (2,) and torch.isfinite(score).all()


@pytest.mark.parametrize("name", ["LRP", "LRPAlphaBeta"])
def test_two_threads_on_one_model_leave_it_intact(name: str) -> None:
    model = small_model().train()
    model.block1.conv.rule = marker = object()
    method = methods(model)[name]
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        expected = type(method)(model).attribute(x, target=1)
    snapshot = ModelSnapshot.take(model, [x])
    errors: list[BaseException] = []
    results: list[torch.Tensor] = []

    def work() -> None:
        try:
            for _ in range(25):
                results.append(method.attribute(x, target=1))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert_nothing_left(model, snapshot, "after 2 threads x 25 calls")
    assert model.training and model.block1.conv.rule is marker and "forward" not in vars(model.block1.conv)
    for result in results:
        torch.testing.assert_close(result, expected)


@pytest.mark.parametrize("name", ["LRP", "LRPAlphaBeta"])
def test_a_no_op_backward_hook_of_another_tool_changes_nothing(name: str) -> None:
    model = small_model()
    x = torch.rand(2, 3, 16, 16)
    expected = methods(model)[name].attribute(x, target=1)
    handles = [model.block1.conv.register_full_backward_hook(lambda *args: None),
               model.block2.conv.register_full_backward_hook(lambda *args: None)]
    try:
        got = methods(model)[name].attribute(x, target=1)
    finally:
        for handle in handles:
            handle.remove()
    torch.testing.assert_close(got, expected)


def test_model_untouched_in_three_modes() -> None:
    model = small_model().train()
    x = torch.rand(2, 3, 16, 16)
    lrp = LRP(model, composite=EpsilonGammaBox())
    relevance = assert_model_untouched(model, lambda t: lrp.attribute(x, target=t), 1, inputs=[x])
    assert relevance.shape == x.shape


class _MeanStd(nn.Module):
    """A plain normalizing module with ``mean`` and ``std`` buffers (not torchvision's)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(MEAN, dtype=torch.float64).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD, dtype=torch.float64).reshape(1, 3, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


def test_normalize_first_layer_is_folded_into_the_box_bounds() -> None:
    """Normalized inputs with ``normalization=(mean, std)`` equal pixel inputs through a ``Normalize`` first module
    (a torchvision model, ImageNet statistics)."""
    torch.manual_seed(0)
    net = randomize_batch_norms(torchvision.models.resnet18(num_classes=4)).double()
    wrapped = nn.Sequential(Normalize(MEAN, STD), net).double().eval()
    pixels = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    normalized = Normalize(MEAN, STD)(pixels)

    expected = LRP(net, composite=EpsilonPlus(ZBox(0.0, 1.0, normalization=(MEAN, STD)))).attribute(normalized, 1)
    got = LRP(wrapped, composite=EpsilonPlus(ZBox(0.0, 1.0))).attribute(pixels, target=1)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)
    # the same with the box written out by hand in normalized space
    mean, std = torch.tensor(MEAN).reshape(1, 3, 1, 1).double(), torch.tensor(STD).reshape(1, 3, 1, 1).double()
    by_hand = ZBox(-mean / std, (1 - mean) / std)
    torch.testing.assert_close(LRP(net, composite=EpsilonPlus(by_hand)).attribute(normalized, 1), expected)

    expected = LRPAlphaBeta(net, normalization=(MEAN, STD)).attribute(normalized, target=1)
    torch.testing.assert_close(LRPAlphaBeta(wrapped).attribute(pixels, target=1), expected, rtol=1e-9, atol=1e-12)


def test_a_plain_mean_std_module_is_folded_too() -> None:
    net = small_model().double()
    wrapped = nn.Sequential(_MeanStd(), net).eval()
    pixels = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    normalized = Normalize(MEAN, STD)(pixels)
    expected = LRP(net, composite=EpsilonPlus(ZBox(0.0, 1.0, normalization=(MEAN, STD)))).attribute(normalized, 1)
    torch.testing.assert_close(LRP(wrapped).attribute(pixels, target=1), expected, rtol=1e-9, atol=1e-12)
    expected = LRPAlphaBeta(net, normalization=(MEAN, STD)).attribute(normalized, target=1)
    torch.testing.assert_close(LRPAlphaBeta(wrapped).attribute(pixels, target=1), expected, rtol=1e-9, atol=1e-12)
    # without an explicit first-layer rule (z⁺ on the first convolution) relevance passes the normalization unchanged
    plain = LRP(net, composite=EpsilonPlus()).attribute(normalized, target=1)
    torch.testing.assert_close(LRP(wrapped, composite=EpsilonPlus()).attribute(pixels, target=1), plain)


class _NotANormalization(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.mean, self.std = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * 2


def test_a_module_with_mean_and_std_that_does_not_normalize_is_refused() -> None:
    model = nn.Sequential(_NotANormalization(), small_model()).eval()
    with pytest.raises(TypeError, match="does not compute"):
        LRP(model).attribute(torch.rand(1, 3, 16, 16), target=0)


def test_normalized_inputs_without_normalization_are_a_clear_error() -> None:
    net = small_model()
    normalized = Normalize(MEAN, STD)(torch.rand(2, 3, 16, 16))
    with pytest.raises(ValueError, match="normalization"):
        LRP(net).attribute(normalized, target=0)
    with pytest.raises(ValueError, match="normalization"):
        LRPAlphaBeta(net).attribute(normalized, target=0)


@pytest.mark.parametrize("name", ["LRP", "LRPAlphaBeta"])
def test_non_finite_inputs_are_rejected(name: str) -> None:
    x = torch.rand(2, 3, 16, 16)
    x[0, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="finite"):
        methods(small_model())[name].attribute(x, target=0)


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1 = nn.Conv2d(3, 6, 3, bias=False), nn.ReLU()
        self.conv2, self.relu2 = nn.Conv2d(6, 8, 3, bias=False), nn.ReLU()
        self.pool, self.fc = nn.AdaptiveAvgPool2d(2), nn.Linear(32, 4, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu2(self.conv2(self.relu1(self.conv1(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def test_layer_lrp_equals_captums_layer_lrp_with_epsilon_rules() -> None:
    model = _Net().double().eval()
    x = torch.rand(3, 3, 10, 10, dtype=torch.float64)
    for layer in (model.conv1, model.conv2, model.fc):
        layer.rule = EpsilonRule(epsilon=1e-9)
    composite = Composite([((nn.Conv2d, nn.Linear), Epsilon(1e-9))], stabilizer=1e-9)  # Captum: ε on pooling too
    for layer in (model.conv2, model.pool, model.fc):
        for to_input in (False, True):
            expected = CaptumLayerLRP(model, layer).attribute(x, target=2, attribute_to_layer_input=to_input)
            got = LayerLRP(model, layer, composite=composite).attribute(x, target=2,
                                                                        attribute_to_layer_input=to_input)
            torch.testing.assert_close(got, expected, rtol=1e-7, atol=1e-12)


def test_layer_lrp_conserves_and_matches_lrp_at_the_input() -> None:
    model = _Net().double().eval()
    x = torch.rand(2, 3, 10, 10, dtype=torch.float64)
    composite = EpsilonGammaBox(epsilon=1e-12, stabilizer=1e-12)
    output = model(x)[:, 1].detach()
    for layer in (model.relu1, model.conv2, model.pool):
        relevance, delta = LayerLRP(model, layer, composite=composite).attribute(x, target=1,
                                                                                 return_convergence_delta=True)
        torch.testing.assert_close(relevance.flatten(1).sum(1), output, rtol=1e-9, atol=1e-12)
        assert delta.abs().max() < 1e-9
    at_input = LayerLRP(model, model.conv1, composite=composite).attribute(x, 1, attribute_to_layer_input=True)
    torch.testing.assert_close(at_input, LRP(model, composite=composite).attribute(x, target=1))


class _SelfAttention(nn.Module):
    """A custom attention block the engine does not know (its softmax would silently get a gradient)."""

    def __init__(self) -> None:
        super().__init__()
        self.qkv = nn.Linear(4, 12)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self.qkv(x).chunk(3, -1)
        return (q @ k.transpose(-2, -1)).softmax(-1) @ v


@pytest.mark.parametrize(
    "model,path,kind",
    [(nn.Sequential(nn.Linear(4, 4), nn.Softmax(dim=1)), "'1'", "Softmax"),
     (nn.Sequential(nn.Sequential(nn.Linear(4, 4), _SelfAttention())), "'0.1'", "_SelfAttention"),
     (nn.Sequential(nn.Linear(4, 4), nn.MaxPool1d(2, return_indices=True)), "'1'", "MaxPool1d")],
)
def test_an_unsupported_module_is_a_type_error_naming_it(model: nn.Module, path: str, kind: str) -> None:
    with pytest.raises(TypeError, match=f"{path} \\({kind}\\)"):
        LRP(model)
    lrp = LRP(nn.Sequential(nn.Linear(4, 4)))
    lrp.model.append(model)  # changed after the constructor: attribute() checks again
    with pytest.raises(TypeError, match=kind):
        lrp.attribute(torch.rand(2, 4), target=0)


def test_bad_arguments() -> None:
    model = small_model()
    with pytest.raises(TypeError, match="composite"):
        LRP(model, composite="epsilon")
    with pytest.raises(ValueError, match="nope"):
        LRP(model, composite=EpsilonPlus(name_map={"nope": Epsilon()}))
    with pytest.raises(TypeError, match="layer_map"):
        Composite([(nn.Linear, "epsilon")])
    with pytest.raises(ValueError, match="target"):
        LRP(model).attribute(torch.rand(2, 3, 16, 16), target=99)
    with pytest.raises(ValueError, match="inputs"):
        LRP(model).attribute((torch.rand(1, 3, 16, 16),) * 2, target=0)
    with pytest.raises(ValueError, match="needs the model inputs"):  # ZBox on a layer that does not get the input
        LRP(model, composite=EpsilonPlus(name_map={"block2.conv": ZBox()})).attribute(torch.rand(1, 3, 16, 16), 0)


def test_captum_api_and_presets() -> None:
    model = small_model()
    x = torch.rand(2, 3, 16, 16)
    for composite in (EpsilonPlus(ZBox(0.0, 1.0)), EpsilonAlpha2Beta1(ZBox(0.0, 1.0)), EpsilonGammaBox()):
        lrp = LRP(model, composite=composite)
        assert lrp.has_convergence_delta() and lrp.multiplies_by_inputs
        (relevance,) = lrp.attribute((x,), target=0)
        assert relevance.shape == x.shape and torch.isfinite(relevance).all()
    a = LRP(model, composite=EpsilonPlus(ZBox(0.0, 1.0))).attribute(x, target=0)
    b = LRP(model, composite=EpsilonAlpha2Beta1(ZBox(0.0, 1.0))).attribute(x, target=0)
    assert not torch.allclose(a, b), "the composites must change the result"


def test_non_finite_box_bounds_are_rejected() -> None:
    with pytest.raises(ValueError, match="finite"):
        LRPAlphaBeta(small_model(), low=torch.full((1, 3, 1, 1), float("nan")))
    with pytest.raises(ValueError, match="finite"):
        LRPAlphaBeta(small_model(), high=float("nan"))
    with pytest.raises(ValueError, match="finite"):
        ZBox(0.0, torch.tensor([1.0, float("inf")]))
