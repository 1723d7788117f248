"""SAM, WSAM and ParameterSaliency where Captum puts an attribution: no_grad, NoiseTunnel, sensitivity_max, infidelity.

Written in Captum's own test patterns (``tests/attr/test_noise_tunnel.py``, ``tests/metrics/test_sensitivity.py``,
``tests/metrics/test_infidelity.py``): the host class ``LayerGradCam`` is the reference wherever SAM reduces to it
(α = 1), and every call must also work under the caller's ``torch.no_grad()``.
"""

from __future__ import annotations

from typing import Any

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam, NoiseTunnel
from captum.metrics import infidelity, sensitivity_max
from torch import Tensor, nn

from captum_wsam.attr import SAM, WSAM, ParameterSaliency
from captum_wsam.models import SmallCNN
from tests.attr.style_stand_in import ColourStyles

NOISE_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


@pytest.fixture(scope="module")
def augment() -> ColourStyles:
    return ColourStyles(num_styles=4)


def images(batch: int = 2) -> Tensor:
    """Images in [0.2, 0.8]: small perturbations (NoiseTunnel, sensitivity_max) keep them in [0, 1]."""
    return 0.2 + 0.6 * torch.rand(batch, 3, 32, 32)


def methods(model: SmallCNN, augment: ColourStyles) -> dict[str, tuple[Any, dict[str, Any]]]:
    """Each method with the keyword arguments of one call."""
    return {
        "sam": (SAM(model, model.block3, augment), {"alpha": 0.4, "style": 1}),
        "wsam": (WSAM(model, model.block3, augment, alphas=(0.5,), styles=2), {}),
        "parameter_saliency": (ParameterSaliency(model, mode="raw"), {}),
    }


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_same_result_under_callers_no_grad(small: SmallCNN, augment: ColourStyles, name: str) -> None:
    method, kwargs = methods(small, augment)[name]
    x, target = images(), torch.tensor([1, 3])
    expected = method.attribute(x, target, **kwargs)
    with torch.no_grad():
        got = method.attribute(x, target, **kwargs)
    assert isinstance(got, Tensor) and torch.equal(got, expected)
    if name == "parameter_saliency":
        with torch.no_grad():
            saliency = method.input_saliency(x, target, k=3)
        torch.testing.assert_close(saliency, method.input_saliency(x, target, k=3))


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_inference_mode_raises_clearly_and_inference_tensors_work(small: SmallCNN, augment: ColourStyles,
                                                                   name: str) -> None:
    method, kwargs = methods(small, augment)[name]
    x, target = images(), torch.tensor([0, 2])
    with torch.inference_mode(), pytest.raises(RuntimeError, match="inference_mode"):
        method.attribute(x, target, **kwargs)
    with torch.inference_mode():
        frozen = x.clone()
    assert frozen.is_inference()
    torch.testing.assert_close(method.attribute(frozen, target, **kwargs), method.attribute(x, target, **kwargs))


@pytest.mark.parametrize("nt_type", NOISE_TYPES)
@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_noise_tunnel_all_noise_types(small: SmallCNN, augment: ColourStyles, name: str, nt_type: str) -> None:
    method, kwargs = methods(small, augment)[name]
    x, target = images(), torch.tensor([1, 2])
    plain = method.attribute(x, target, **kwargs)
    smooth = NoiseTunnel(method).attribute(x, nt_type=nt_type, nt_samples=3, stdevs=0.02, target=target, **kwargs)
    assert smooth.shape == plain.shape and torch.isfinite(smooth).all()
    # Captum's vanishing-noise check: smoothgrad -> the map, smoothgrad_sq -> its square, vargrad -> 0
    tiny = NoiseTunnel(method).attribute(x, nt_type=nt_type, nt_samples=2, nt_samples_batch_size=1, stdevs=1e-12,
                                         target=target, **kwargs)
    expected = {"smoothgrad": plain, "smoothgrad_sq": plain**2, "vargrad": torch.zeros_like(plain)}[nt_type]
    torch.testing.assert_close(tiny, expected, atol=1e-5, rtol=1e-4)


def test_noise_tunnel_convergence_delta_like_layer_grad_cam(small: SmallCNN, augment: ColourStyles) -> None:
    """Neither LayerGradCam nor SAM has a convergence delta: NoiseTunnel answers both the same way."""
    x = images()
    sam = SAM(small, small.block3, augment)
    reference = NoiseTunnel(LayerGradCam(small, small.block3))
    assert NoiseTunnel(sam).has_convergence_delta() is reference.has_convergence_delta() is False
    with pytest.raises(TypeError, match="return_convergence_delta"):
        reference.attribute(x, nt_samples=2, stdevs=0.01, target=1, return_convergence_delta=True)
    with pytest.raises(TypeError, match="return_convergence_delta"):
        NoiseTunnel(sam).attribute(x, nt_samples=2, stdevs=0.01, target=1, return_convergence_delta=True)


def test_sensitivity_max_equals_layer_grad_cam_at_alpha_one(small: SmallCNN, augment: ColourStyles) -> None:
    """Captum's sensitivity_max needs tuple-in/tuple-out explanations (its LayerGradCam fails there, so the host
    reference is LayerGradCam's map returned as a 1-tuple)."""
    x, target = images(3), torch.tensor([0, 1, 2])
    sam, host = SAM(small, small.block3, augment), LayerGradCam(small, small.block3)

    def host_tuple(inputs: tuple[Tensor, ...], **kwargs: Any) -> tuple[Tensor, ...]:
        return (host.attribute(inputs, relu_attributions=True, **kwargs),)

    torch.manual_seed(7)
    ours = sensitivity_max(sam.attribute, x, target=target, alpha=1.0, n_perturb_samples=4)
    torch.manual_seed(7)
    reference = sensitivity_max(host_tuple, x, target=target, n_perturb_samples=4)
    assert ours.shape == (3,) and torch.equal(ours, reference)


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_sensitivity_max_runs(small: SmallCNN, augment: ColourStyles, name: str) -> None:
    method, kwargs = methods(small, augment)[name]
    value = sensitivity_max(method.attribute, images(), target=torch.tensor([1, 0]), n_perturb_samples=2, **kwargs)
    assert value.shape == (2,) and torch.isfinite(value).all() and (value >= 0).all()


def _perturb(inputs: Tensor) -> tuple[Tensor, Tensor]:
    noise = 0.01 * torch.randn_like(inputs)
    return noise, inputs - noise


def test_infidelity_equals_layer_grad_cam_at_alpha_one(small: SmallCNN, augment: ColourStyles) -> None:
    x, target = images(), torch.tensor([3, 1])
    sam = SAM(small, small.block3, augment)
    ours = sam.attribute(x, target, alpha=1.0, interpolate_to_input=True).expand_as(x)
    host = LayerAttribution.interpolate(LayerGradCam(small, small.block3).attribute(x, target, relu_attributions=True),
                                        (32, 32), "bilinear").expand_as(x)
    torch.manual_seed(3)
    a = infidelity(small, _perturb, x, ours, target=target, n_perturb_samples=4)
    torch.manual_seed(3)
    b = infidelity(small, _perturb, x, host, target=target, n_perturb_samples=4)
    assert torch.equal(a, b)
    styled = sam.attribute(x, target, alpha=0.3, style=2, interpolate_to_input=True).expand_as(x)
    assert torch.isfinite(infidelity(small, _perturb, x, styled, target=target, n_perturb_samples=4)).all()


def test_infidelity_with_parameter_saliency_input_maps(small: SmallCNN) -> None:
    x, target = images(), torch.tensor([0, 4])
    with torch.no_grad():  # as Captum's metrics call it
        maps = ParameterSaliency(small, mode="raw").input_saliency(x, target, k=4)
    value = infidelity(small, _perturb, x, maps, target=target, n_perturb_samples=3)
    assert maps.shape == x.shape and value.shape == (2,) and torch.isfinite(value).all()


class TwoViews(nn.Module):
    """A model taking a tuple of two image batches (Captum's multi-input convention)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = SmallCNN(width=4, depth=2)

    def forward(self, first: Tensor, second: Tensor) -> Tensor:
        return self.body(0.5 * (first + second))


def test_tuple_inputs_like_layer_grad_cam(augment: ColourStyles) -> None:
    model = TwoViews().eval()
    x, y, target = images(), images(), torch.tensor([0, 1])
    layer = model.body.block2
    host = LayerGradCam(model, layer).attribute((x, y), target, relu_attributions=True)
    (ours,) = SAM(model, layer, augment).attribute((x, y), target, alpha=1.0)  # tuple in, tuple out
    assert torch.equal(ours, host)
    styled = (augment.stylize(x, 1, 0.3), augment.stylize(y, 1, 0.3))
    torch.testing.assert_close(SAM(model, layer, augment).attribute((x, y), target, alpha=0.3, style=1)[0],
                               LayerGradCam(model, layer).attribute(styled, target, relu_attributions=True))
    wsam = WSAM(model, layer, augment, alphas=(1.0,), styles=[0])
    probability = torch.softmax(model(x, y), 1)[torch.arange(2), target]
    torch.testing.assert_close(wsam.attribute((x, y), target)[0], probability[:, None, None, None] * host)
    saliency = ParameterSaliency(model, mode="raw")
    (scores,) = saliency.attribute((x, y), target)
    assert scores.shape == (2, saliency.num_filters)
    first, second = saliency.input_saliency((x, y), target, k=2)
    assert first.shape == second.shape == x.shape


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_one_tuple_equals_tensor(small: SmallCNN, augment: ColourStyles, name: str) -> None:
    method, kwargs = methods(small, augment)[name]
    x = images()
    (out,) = method.attribute((x,), 2, **kwargs)
    assert torch.equal(out, method.attribute(x, 2, **kwargs))


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_grad_kwargs_reach_autograd(small: SmallCNN, augment: ColourStyles, name: str,
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    method, kwargs = methods(small, augment)[name]
    seen: list[dict[str, Any]] = []
    grad = torch.autograd.grad

    def recording_grad(*args: Any, **options: Any) -> Any:
        seen.append(options)
        return grad(*args, **options)

    monkeypatch.setattr(torch.autograd, "grad", recording_grad)
    x = images()
    out = method.attribute(x, 1, grad_kwargs={"retain_graph": True}, **kwargs)
    assert seen and all(options.get("retain_graph") is True for options in seen)
    monkeypatch.undo()
    torch.testing.assert_close(out, method.attribute(x, 1, **kwargs))


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_inputs_rejected_before_work(small: SmallCNN, augment: ColourStyles, name: str,
                                               bad: float) -> None:
    method, kwargs = methods(small, augment)[name]
    x = images()
    x[1, 2, 3, 4] = bad
    with pytest.raises(ValueError, match="inputs must be finite"):
        method.attribute(x, 0, **kwargs)
    with pytest.raises(ValueError, match=r"inputs\[1\] must be finite"):
        method.attribute((images(), x), 0, **kwargs)
