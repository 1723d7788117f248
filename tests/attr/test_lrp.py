"""LRPAlphaBeta: single-layer closed forms, conservation and leak, agreement with Captum's LRP and zennit, the
"nothing left behind" contract, memory, batch invariance, torchvision models and bad inputs."""

from __future__ import annotations

import copy
import gc
import warnings

import pytest
import torch
import torchvision
from captum.attr import LRP
from captum.attr._utils.lrp_rules import Alpha1_Beta0_Rule
from torch import nn

from captum_wsam.attr import AlphaBetaRule, LRPAlphaBeta
from captum_wsam.models import SmallCNN
from tests.attr.test_lrp_canonizers import randomize_batch_norms
from tests.attr.test_lrp_rules import EPS, oracle_conv2d, oracle_matrix
from tests.helpers import assert_attribution_contract, assert_model_untouched


def vgg_style(bias: bool = False) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1, bias=bias), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1, bias=bias), nn.ReLU(inplace=True), nn.AvgPool2d(2),
        nn.Conv2d(32, 32, 3, padding=1, bias=bias), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
        nn.Linear(128, 64, bias=bias), nn.ReLU(), nn.Dropout(), nn.Linear(64, 6, bias=bias),
    ).eval()


def _target_output(model: nn.Module, x: torch.Tensor, target: int) -> torch.Tensor:
    with torch.no_grad():
        return model(x)[:, target]


@pytest.mark.parametrize("first_layer", ["alphabeta", "zbox", "flat", "wsquare"])
@pytest.mark.parametrize("bias", [False, True])
def test_single_layer_equals_closed_form(first_layer: str, bias: bool) -> None:
    linear = nn.Linear(10, 4, bias=bias).double()
    x = torch.rand(3, 10, dtype=torch.float64)
    got = LRPAlphaBeta(linear, first_layer=first_layer, epsilon=EPS).attribute(x, target=2)
    r = torch.zeros(3, 4, dtype=torch.float64)
    r[:, 2] = _target_output(linear, x, 2)
    kwargs = {"low": torch.zeros_like(x), "high": torch.ones_like(x)} if first_layer == "zbox" else {}
    expected = oracle_matrix(x, linear.weight.detach(), None if linear.bias is None else linear.bias.detach(), r,
                             first_layer, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)

    conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=bias).double()
    model = nn.Sequential(conv, nn.Flatten()).eval()
    x = torch.rand(2, 3, 6, 6, dtype=torch.float64)
    got = LRPAlphaBeta(model, first_layer=first_layer, epsilon=EPS).attribute(x, target=5)
    with torch.no_grad():
        z = conv(x)
    r = torch.zeros_like(z).flatten(1)
    r[:, 5] = z.flatten(1)[:, 5]
    kwargs = {"low": torch.zeros_like(x), "high": torch.ones_like(x)} if first_layer == "zbox" else {}
    expected = oracle_conv2d(x, conv.weight.detach(), None if conv.bias is None else conv.bias.detach(),
                             r.reshape(z.shape), first_layer, stride=2, padding=1, **kwargs)
    torch.testing.assert_close(got, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.0), (2.0, 1.0)])
@pytest.mark.parametrize("first_layer", ["zbox", "flat", "wsquare", "alphabeta"])
def test_conservation_without_bias(alpha: float, beta: float, first_layer: str) -> None:
    model = vgg_style(bias=False).double()
    x = torch.rand(3, 3, 16, 16, dtype=torch.float64)
    lrp = LRPAlphaBeta(model, alpha, beta, first_layer=first_layer)
    relevance, delta = lrp.attribute(x, target=[0, 3, 5], return_convergence_delta=True)
    output = model(x)[torch.arange(3), [0, 3, 5]].detach()
    torch.testing.assert_close(relevance.sum((1, 2, 3)), output, rtol=1e-5, atol=1e-12)
    assert delta.abs().max() <= 1e-5 * output.abs().max()


def test_leak_with_bias_and_batch_norm_is_reported() -> None:
    model = randomize_batch_norms(SmallCNN(width=8, depth=2)).double()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    relevance, delta = LRPAlphaBeta(model).attribute(x, target=1, return_convergence_delta=True)
    output = model(x)[:, 1].detach()
    torch.testing.assert_close(delta, relevance.sum((1, 2, 3)) - output, rtol=1e-9, atol=1e-12)
    assert delta.abs().min() > 1e-6, "biases absorb relevance: the delta must show it"


class _CaptumNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(8, 16, 3, bias=False), nn.ReLU(), nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(64, 5, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        return self.fc(torch.flatten(self.pool2(self.relu2(self.conv2(x))), 1))


def test_alpha1_beta0_equals_captum_lrp() -> None:
    model = _CaptumNet().double().eval()
    x = torch.rand(3, 3, 14, 14, dtype=torch.float64)
    for layer in (model.conv1, model.conv2, model.fc):
        layer.rule = Alpha1_Beta0_Rule()
    expected = LRP(model).attribute(x, target=2)
    ours = LRPAlphaBeta(model, alpha=1.0, beta=0.0, first_layer="alphabeta").attribute(x, target=2)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-10)


def _zennit(model: nn.Module, x: torch.Tensor, target: int, alpha: float, first: str, resnet: bool,
            eps: float = EPS) -> torch.Tensor:
    """zennit with the same rules; its ``Norm`` (sums, average pooling) divides by ``z + eps`` where we divide by
    nothing, so small ``eps`` are compared."""
    from zennit.composites import SpecialFirstLayerMapComposite
    from zennit.layer import Sum
    from zennit.rules import AlphaBeta, Flat, Norm, Pass, WSquare, ZBox
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import Activation, AvgPool, Convolution, Linear

    first_rules = {"zbox": ZBox(0.0, 1.0, stabilizer=eps), "flat": Flat(stabilizer=eps),
                   "wsquare": WSquare(stabilizer=eps), "alphabeta": AlphaBeta(alpha, alpha - 1, stabilizer=eps)}
    layer_map = [(Activation, Pass()), (Sum, Norm(stabilizer=eps)), (AvgPool, Norm(stabilizer=eps)),
                 ((Convolution, Linear), AlphaBeta(alpha, alpha - 1, stabilizer=eps))]
    composite = SpecialFirstLayerMapComposite(layer_map, [((Convolution, Linear), first_rules[first])],
                                              canonizers=[ResNetCanonizer()] if resnet else None)
    x = x.clone().requires_grad_(True)
    with composite.context(model) as modified:
        out = modified(x)
        grad = torch.zeros_like(out)
        grad[:, target] = out[:, target].detach()
        return torch.autograd.grad(out, x, grad)[0]


@pytest.mark.parametrize("alpha", [1.0, 2.0])
@pytest.mark.parametrize("first_layer", ["zbox", "flat", "wsquare", "alphabeta"])
def test_equals_zennit_on_vgg_style(alpha: float, first_layer: str) -> None:
    model = vgg_style(bias=False).double()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    expected = _zennit(model, x, 4, alpha, first_layer, resnet=False)
    ours = LRPAlphaBeta(model, alpha, alpha - 1, first_layer=first_layer, epsilon=EPS).attribute(x, target=4)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


@pytest.mark.parametrize("first_layer", ["zbox", "alphabeta"])
def test_equals_zennit_on_resnet18(first_layer: str) -> None:
    model = randomize_batch_norms(torchvision.models.resnet18(num_classes=10)).double()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            # zennit leaves a merged BatchNorm computing x / sqrt(1 + eps) instead of x (a 5e-6 change per layer);
            # eps = 0 (variances are >= 0.5 here) makes its canonization exact, like ours
            module.eps = 0.0
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    expected = _zennit(copy.deepcopy(model), x, 3, 2.0, first_layer, resnet=True, eps=1e-14)
    ours = LRPAlphaBeta(model, first_layer=first_layer, epsilon=1e-14).attribute(x, target=3)
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5 * expected.abs().max().item())


def test_in_place_relu_gives_the_same_result_as_out_of_place() -> None:
    model = randomize_batch_norms(torchvision.models.resnet18(num_classes=10))
    plain = copy.deepcopy(model)
    for module in plain.modules():
        if isinstance(module, nn.ReLU):
            module.inplace = False
    x = torch.rand(1, 3, 32, 32)
    for canonize in (True, False):
        expected = LRPAlphaBeta(plain, canonize=canonize).attribute(x, target=1)
        torch.testing.assert_close(LRPAlphaBeta(model, canonize=canonize).attribute(x, target=1), expected,
                                   rtol=1e-5, atol=1e-6 * expected.abs().max().item())


def test_model_untouched_in_three_modes_and_user_attributes_survive() -> None:
    model = SmallCNN(width=4, depth=2).train()
    model.block1.conv.rule = marker = object()
    model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
    x = torch.rand(2, 3, 16, 16)
    lrp = LRPAlphaBeta(model)
    relevance = assert_model_untouched(model, lambda t: lrp.attribute(x, target=t), 1, inputs=[x])
    assert relevance.shape == x.shape and model.block1.conv.rule is marker and model.training


def _live_tensors() -> int:
    gc.collect()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # isinstance() on torch's deprecated module attributes warns
        return sum(1 for obj in gc.get_objects() if isinstance(obj, torch.Tensor))


def test_repeated_calls_identical_without_memory_growth() -> None:
    model = SmallCNN(width=2, depth=1).eval()
    x = torch.rand(1, 3, 8, 8)
    lrp = LRPAlphaBeta(model)
    first = lrp.attribute(x, target=0)
    before = _live_tensors()
    for _ in range(50):
        again = lrp.attribute(x, target=0)
    del again
    after = _live_tensors()
    assert after <= before, f"{after - before} tensors left alive by 50 calls"
    assert torch.equal(lrp.attribute(x, target=0), first)


def test_attribution_contract_batch_invariance(images: torch.Tensor) -> None:
    lrp = LRPAlphaBeta(randomize_batch_norms(SmallCNN(width=8, depth=3)), max_pool="proportional")
    targets = torch.tensor([0, 1, 2, 3])
    out = assert_attribution_contract(lambda x, t: lrp.attribute(x, target=t), images, targets)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ["vgg11", "vgg16", "vgg11_bn", "resnet18", "resnet50"])
def test_torchvision_models(name: str) -> None:
    model = getattr(torchvision.models, name)(num_classes=10).eval()
    x = torch.rand(1, 3, 32, 32)
    relevance, delta = LRPAlphaBeta(model).attribute(x, target=2, return_convergence_delta=True)
    assert relevance.shape == x.shape and torch.isfinite(relevance).all() and torch.isfinite(delta).all()


def test_per_layer_rules_and_tensor_bounds() -> None:
    model = vgg_style().double()
    mean, std = torch.tensor([0.5, 0.4, 0.3]).reshape(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).reshape(1, 3, 1, 1)
    x = ((torch.rand(2, 3, 16, 16) - mean) / std).double()
    low, high = (-mean / std).double(), ((1 - mean) / std).double()
    rules = {nn.Linear: AlphaBetaRule(1.0, 0.0), "3": AlphaBetaRule(3.0, 2.0)}
    lrp = LRPAlphaBeta(model, low=low, high=high, rules=rules)
    relevance, delta = lrp.attribute(x, target=1, return_convergence_delta=True)
    assert delta.abs().max() < 1e-6 * model(x)[:, 1].abs().max()
    assert not torch.allclose(relevance, LRPAlphaBeta(model, low=low, high=high).attribute(x, target=1))


class _Twice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.fc(x)))


def test_module_called_twice_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="'fc'.*more than once"):
        LRPAlphaBeta(_Twice()).attribute(torch.rand(2, 4), target=0)


@pytest.mark.parametrize(
    "model,path",
    [(nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2)), "'1'"),
     (nn.Sequential(nn.Sequential(nn.Linear(4, 4), nn.GELU()), nn.Linear(4, 2)), "'0.1'")],
)
def test_unsupported_layer_names_its_path(model: nn.Module, path: str) -> None:
    with pytest.raises(TypeError, match=path):
        LRPAlphaBeta(model)


@pytest.mark.parametrize(
    "kwargs,error",
    [({"alpha": 0.5, "beta": -0.5}, ValueError), ({"alpha": 2.0, "beta": 0.5}, ValueError),
     ({"first_layer": "gamma"}, ValueError), ({"low": 1.0, "high": 0.0}, ValueError), ({"epsilon": 0.0}, ValueError),
     ({"canonize": "yes"}, TypeError), ({"max_pool": "mean"}, ValueError), ({"rules": {"nope": AlphaBetaRule()}},
     ValueError), ({"rules": {nn.Linear: (1, 0)}}, TypeError), ({"alpha": "2"}, TypeError)],
)
def test_bad_constructor_arguments(kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        LRPAlphaBeta(vgg_style(), **kwargs)


@pytest.mark.parametrize(
    "inputs,kwargs,error",
    [(torch.randint(0, 2, (2, 3, 16, 16)), {}, TypeError), (torch.rand(3), {}, ValueError),
     (torch.rand(2, 3, 16, 16) + 1.5, {}, ValueError), ((torch.rand(1, 3, 16, 16),) * 2, {}, ValueError),
     (torch.rand(2, 3, 16, 16), {"target": 6}, ValueError), (torch.rand(2, 3, 16, 16), {"target": 1.5}, TypeError),
     (torch.rand(2, 3, 16, 16), {"target": 0, "return_convergence_delta": 1}, TypeError)],
)
def test_bad_attribute_arguments(inputs: object, kwargs: dict, error: type[Exception]) -> None:
    with pytest.raises(error):
        LRPAlphaBeta(vgg_style()).attribute(inputs, **kwargs)


def test_captum_api() -> None:
    lrp = LRPAlphaBeta(vgg_style())
    assert lrp.has_convergence_delta() and lrp.multiplies_by_inputs
    x = torch.rand(2, 3, 16, 16)
    (relevance,) = lrp.attribute((x,), target=0)
    assert relevance.shape == x.shape
