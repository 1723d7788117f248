"""WSAM: equals an explicit float64 loop over styles and intensities of the definition, whatever the chunking."""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import LayerAttribution, NoiseTunnel
from torch import Tensor, nn

from captum_wsam.attr import SAM, WSAM
from captum_wsam.models import SmallCNN, create_model
from tests.attr.style_stand_in import ColourStyles
from tests.helpers import assert_attribution_contract, assert_model_untouched


def reference_wsam(
    model: nn.Module, layer_name: str, augment: ColourStyles, x: Tensor, target: Tensor | None,
    styles: list[int], alphas: tuple[float, ...], weighting: str = "probability",
) -> Tensor:
    """WSAM^c = 1/Ω Σ_α Σ_σ w · SAM^c_{α,σ}, literally: one image, one style, one α at a time, in float64."""
    model = copy.deepcopy(model).double().eval()
    layer = model.get_submodule(layer_name)
    x = x.double()
    out, saved = [], {}
    for i in range(len(x)):
        c = int(model(x[i : i + 1]).argmax()) if target is None else int(target[i])
        total = 0.0
        for sigma in styles:
            for alpha in alphas:
                styled = augment.stylize(x[i : i + 1], sigma, alpha)
                handle = layer.register_forward_hook(lambda _m, _i, o: saved.__setitem__("A", o))
                try:
                    logits = model(styled)
                finally:
                    handle.remove()
                (grad,) = torch.autograd.grad(logits[0, c], saved["A"])
                A, dy = saved["A"][0], grad[0]
                delta = dy.mean(dim=(1, 2))
                sam = torch.relu((delta[:, None, None] * A).sum(dim=0))
                y = torch.softmax(logits[0], dim=0)[c]
                weight = {"probability": y, "none": 1.0, "alpha_probability": alpha * y}[weighting]
                total = total + weight * sam
        out.append((total / (len(styles) * len(alphas)))[None].detach())
    return torch.stack(out)


@pytest.fixture(scope="module")
def augment() -> ColourStyles:
    return ColourStyles(num_styles=6)


@pytest.mark.parametrize("weighting", ["probability", "none", "alpha_probability"])
@pytest.mark.parametrize("target", [None, torch.tensor([2, 0, 5])], ids=["predicted", "given"])
def test_equals_float64_loop_over_definition(small: SmallCNN, augment: ColourStyles, weighting: str,
                                             target: Tensor | None) -> None:
    model = copy.deepcopy(small).double()
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    wsam = WSAM(model, model.block2, augment, alphas=(0.1, 0.5, 0.9), styles=[0, 4])
    expected = reference_wsam(model, "block2", augment, x, target, [0, 4], (0.1, 0.5, 0.9), weighting)
    got = wsam.attribute(x, target, weighting=weighting, chunk_size=5)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("chunk_size", [1, 7, None])
def test_chunk_invariance(small: SmallCNN, augment: ColourStyles, chunk_size: int | None) -> None:
    x, target = torch.rand(5, 3, 32, 32), torch.tensor([0, 1, 2, 3, 4])
    wsam = WSAM(small, small.block3, augment, styles=3)  # 12 copies per image, 60 in all
    reference = wsam.attribute(x, target, chunk_size=60)
    torch.testing.assert_close(wsam.attribute(x, target, chunk_size=chunk_size), reference, atol=1e-6, rtol=1e-5)


def test_attribution_contract_and_batch_invariance(small: SmallCNN, augment: ColourStyles) -> None:
    wsam = WSAM(small, small.block3, augment, alphas=(0.2, 0.8), styles=2)
    out = assert_attribution_contract(lambda i, t: wsam.attribute(i, t, chunk_size=3), torch.rand(3, 3, 32, 32),
                                      torch.tensor([4, 1, 1]))
    assert out.shape == (3, 1, 4, 4)


def test_return_sams_are_the_sams(small: SmallCNN, augment: ColourStyles) -> None:
    x, target = torch.rand(2, 3, 32, 32), torch.tensor([1, 3])
    wsam = WSAM(small, small.block3, augment, alphas=(0.3, 0.6), styles=[5, 2])
    attribution, sams, probabilities = wsam.attribute(x, target, return_sams=True)
    sam = SAM(small, small.block3, augment)
    for s, style in enumerate([5, 2]):
        for a, alpha in enumerate((0.3, 0.6)):
            torch.testing.assert_close(sams[s, a], sam.attribute(x, target, alpha=alpha, style=style))
            styled = augment.stylize(x, style, alpha)
            expected_probability = torch.softmax(small(styled), dim=1)[torch.arange(2), target]
            torch.testing.assert_close(probabilities[s, a], expected_probability)
    torch.testing.assert_close(attribution, (probabilities[..., None, None, None] * sams).mean(dim=(0, 1)))


def test_target_none_without_class_per_style_uses_the_unstyled_prediction(small: SmallCNN,
                                                                         augment: ColourStyles) -> None:
    x = torch.rand(3, 3, 32, 32)
    wsam = WSAM(small, small.block3, augment, styles=2, class_per_style=False)
    assert torch.equal(wsam.attribute(x), wsam.attribute(x, small(x).argmax(dim=1)))


def test_styles_count_is_sampled_once_and_seeded(small: SmallCNN, augment: ColourStyles) -> None:
    first, second = WSAM(small, small.block3, augment, styles=4), WSAM(small, small.block3, augment, styles=4)
    assert first.styles == second.styles and len(set(first.styles)) == 4
    assert WSAM(small, small.block3, augment, styles=torch.tensor([1, 2])).styles == [1, 2]


def test_interpolation_and_per_sample_forward_args(augment: ColourStyles) -> None:
    torch.manual_seed(0)

    class Scaled(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = SmallCNN(width=4, depth=2)

        def forward(self, x: Tensor, scale: Tensor) -> Tensor:
            return self.body(x) * scale[:, None]

    model = Scaled().eval()
    x, scale, target = torch.rand(3, 3, 32, 32), torch.tensor([1.0, 2.0, 0.5]), torch.tensor([0, 1, 2])
    wsam = WSAM(model, model.body.block2, augment, alphas=(0.5,), styles=2)
    together = wsam.attribute(x, target, additional_forward_args=scale, chunk_size=2)
    apart = torch.cat([wsam.attribute(x[i : i + 1], target[i : i + 1], additional_forward_args=scale[i : i + 1])
                       for i in range(3)])
    torch.testing.assert_close(together, apart, atol=1e-6, rtol=1e-5)
    upsampled = wsam.attribute(x, target, additional_forward_args=scale, interpolate_to_input=True)
    torch.testing.assert_close(upsampled, LayerAttribution.interpolate(together, (32, 32), "bilinear"),
                               atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name", ["resnet18", "vgg11_bn"])
def test_torchvision_models(name: str, augment: ColourStyles) -> None:
    torch.manual_seed(0)
    model = create_model(name).eval()
    layer = model.layer4 if name == "resnet18" else model.features[14]
    out = WSAM(model, layer, augment, alphas=(0.5,), styles=2).attribute(torch.rand(2, 3, 32, 32), chunk_size=3)
    assert out.shape[:2] == (2, 1) and torch.isfinite(out).all() and (out >= 0).all()


def test_noise_tunnel(small: SmallCNN, augment: ColourStyles) -> None:
    wsam = WSAM(small, small.block3, augment, alphas=(0.5,), styles=2)
    x = 0.25 + 0.5 * torch.rand(2, 3, 32, 32)  # the noisy images stay in [0, 1]
    smooth = NoiseTunnel(wsam).attribute(x, nt_type="smoothgrad_sq", nt_samples=3, stdevs=0.05, target=1)
    assert smooth.shape == (2, 1, 4, 4) and torch.isfinite(smooth).all()


def test_model_left_untouched(augment: ColourStyles) -> None:
    torch.manual_seed(0)
    model = SmallCNN(width=8, depth=4).train()  # train mode: BatchNorm statistics must not move
    model.block2.conv.weight.grad = torch.full_like(model.block2.conv.weight, 0.5)
    x = torch.rand(2, 3, 32, 32)
    wsam = WSAM(model, model.block3, augment, alphas=(0.4, 0.8), styles=2)
    out = assert_model_untouched(model, lambda t: wsam.attribute(x, t, chunk_size=3), torch.tensor([1, 2]),
                                 inputs=[x])
    assert out.shape == (2, 1, 4, 4)


@pytest.mark.parametrize(
    ("make", "error", "name"),
    [
        (lambda m, a: WSAM(m, m.block3, a, alphas=()), ValueError, "alphas"),
        (lambda m, a: WSAM(m, m.block3, a, alphas=(0.5, 1.2)), ValueError, "alphas"),
        (lambda m, a: WSAM(m, m.block3, a, styles=0), ValueError, "styles"),
        (lambda m, a: WSAM(m, m.block3, a, styles=99), ValueError, "styles"),
        (lambda m, a: WSAM(m, m.block3, a, styles=[0, 6]), ValueError, "styles"),
        (lambda m, a: WSAM(m, nn.Linear(2, 2), a), ValueError, "layer"),
        (lambda m, a: WSAM(m, m.block3, object()), TypeError, "augment"),
        (lambda m, a: WSAM(m, m.block3, a).attribute(torch.rand(2, 3, 32, 32), 6), ValueError, "target"),
        (lambda m, a: WSAM(m, m.block3, a).attribute(torch.rand(3, 32, 32)), ValueError, "inputs"),
        (lambda m, a: WSAM(m, m.block3, a).attribute(torch.ones(1, 3, 32, 32, dtype=torch.int64)), TypeError,
         "inputs"),
        (lambda m, a: WSAM(m, m.block3, a).attribute(torch.rand(1, 3, 32, 32), weighting="max"), ValueError,
         "weighting"),
        (lambda m, a: WSAM(m, m.block3, a).attribute(torch.rand(1, 3, 32, 32), chunk_size=0), ValueError,
         "chunk_size"),
    ],
)
def test_bad_arguments(small: SmallCNN, augment: ColourStyles, make, error: type, name: str) -> None:
    with pytest.raises(error, match=name):
        make(small, augment)


def test_default_style_augment_equals_float64_loop(small: SmallCNN) -> None:
    from captum_wsam.augment import StyleAugment

    model = copy.deepcopy(small).double()
    wsam = WSAM(model, model.block2, alphas=(0.3, 0.9), styles=2)
    assert isinstance(wsam.augment, StyleAugment) and len(set(wsam.styles)) == 2
    x, target = torch.rand(2, 3, 32, 32, dtype=torch.float64), torch.tensor([3, 1])
    expected = reference_wsam(model, "block2", wsam.augment, x, target, wsam.styles, (0.3, 0.9))
    torch.testing.assert_close(wsam.attribute(x, target, chunk_size=3), expected, atol=1e-10, rtol=1e-8)


def authors_wsam_loop(model: nn.Module, layer_name: str, augment: ColourStyles, x: Tensor, styles: list[int],
                      alphas: tuple[float, ...]) -> tuple[Tensor, Tensor]:
    """The authors' loop, literally, in float64: for each image, style and α, the styled copy is explained for its own
    top-1 class, weighted by that class's probability; the sum is divided by Ω = #styles × #α. Also returns the
    top-1 classes (S, A, B)."""
    model = copy.deepcopy(model).double().eval()
    layer = model.get_submodule(layer_name)
    x = x.double()
    maps, classes, saved = [], torch.empty(len(styles), len(alphas), len(x), dtype=torch.long), {}
    for i in range(len(x)):
        total = 0.0
        for s, sigma in enumerate(styles):
            for a, alpha in enumerate(alphas):
                styled = augment.stylize(x[i : i + 1], sigma, alpha)
                handle = layer.register_forward_hook(lambda _m, _i, o: saved.__setitem__("A", o))
                try:
                    logits = model(styled)
                finally:
                    handle.remove()
                probabilities = torch.softmax(logits[0], dim=0)
                top1 = int(probabilities.argmax())
                classes[s, a, i] = top1
                (grad,) = torch.autograd.grad(logits[0, top1], saved["A"])
                weights = grad[0].mean(dim=(1, 2))
                cam = torch.relu((weights[:, None, None] * saved["A"][0]).sum(dim=0))
                total = total + probabilities[top1] * cam
        maps.append((total / (len(styles) * len(alphas)))[None].detach())
    return torch.stack(maps), classes


class ColourNet(nn.Module):
    """A small CNN whose class depends strongly on colour (a mean-colour skip into the logits), so that styling
    flips predictions -- an untrained SmallCNN predicts one class for everything."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                                      nn.ReLU())
        self.head = nn.Linear(8, 5)
        self.colour = nn.Linear(3, 5, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).mean(dim=(2, 3))) + 50 * self.colour(x.mean(dim=(2, 3)) - 0.5)


def test_class_per_style_follows_the_authors_code(augment: ColourStyles) -> None:
    torch.manual_seed(3)
    model = ColourNet().double().eval()
    x = torch.rand(4, 3, 32, 32, dtype=torch.float64)
    styles, alphas = [0, 3, 5], (0.0, 0.5)
    expected, classes = authors_wsam_loop(model, "features.2", augment, x, styles, alphas)
    unstyled = model(x).argmax(dim=1)
    assert (classes != unstyled).any(), "precondition: styling must flip some classes for the test to discriminate"
    default = WSAM(model, model.features[2], augment, alphas=alphas, styles=styles)
    assert default.class_per_style
    torch.testing.assert_close(default.attribute(x, chunk_size=5), expected, atol=1e-12, rtol=1e-10)
    one_class = WSAM(model, model.features[2], augment, alphas=alphas, styles=styles, class_per_style=False)
    assert not torch.allclose(one_class.attribute(x), expected)
    # a given target is used for every copy, whatever class_per_style says
    assert torch.equal(default.attribute(x, unstyled), one_class.attribute(x, unstyled))


def test_target_none_consistent_between_sam_and_wsam(augment: ColourStyles) -> None:
    """WSAM(target=None) is the probability-weighted mean of the SAM(target=None) maps of its copies."""
    torch.manual_seed(3)
    model = ColourNet().double().eval()
    x = torch.rand(3, 3, 32, 32, dtype=torch.float64)
    styles, alphas = [1, 4], (0.2, 0.6)
    wsam, sams, probabilities = WSAM(model, model.features[2], augment, alphas=alphas, styles=styles).attribute(
        x, return_sams=True)
    sam = SAM(model, model.features[2], augment)
    total = torch.zeros_like(wsam)
    for s, style in enumerate(styles):
        for a, alpha in enumerate(alphas):
            sam_map = sam.attribute(x, None, alpha=alpha, style=style)
            torch.testing.assert_close(sams[s, a], sam_map)
            top1 = torch.softmax(model(augment.stylize(x, style, alpha)), dim=1).max(dim=1).values
            torch.testing.assert_close(probabilities[s, a], top1)
            total = total + top1[:, None, None, None] * sam_map
    torch.testing.assert_close(wsam, total / 4)
