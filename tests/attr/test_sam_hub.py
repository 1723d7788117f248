"""SAM and WSAM on timm and Hugging Face models built from small configurations (no download): the optional extras
``captum-wsam[timm]`` and ``captum-wsam[hf]``; skipped with the reason when the library is not installed.

Token layers of timm/Hugging Face ViTs are not recognised by ``reshape_transform="auto"`` (torchvision only), so the
tests pass :func:`~captum_wsam.attr.functional.tokens_to_grid` explicitly, as pytorch-grad-cam's users do; Hugging
Face's ``ModelOutput`` is read through ``.logits``. References: Grad-CAM from its definition in float64 (tokens) and
Captum's ``LayerGradCam`` (channels-first maps), both at ``alpha=1.0`` (the unstyled image).
"""

from __future__ import annotations

import copy
from functools import partial
from typing import Any

import pytest
import torch
from captum.attr import LayerGradCam
from torch import Tensor, nn

from captum_wsam.attr import SAM, WSAM, LogitsAdapter, logits_of
from captum_wsam.attr.functional import tokens_to_grid
from tests.attr.style_stand_in import ColourStyles
from tests.helpers import ModelSnapshot, assert_model_untouched, assert_nothing_left

GRID = partial(tokens_to_grid, num_prefix_tokens=1)  # class token dropped, 4x4 patches at 32x32 / patch 8


@pytest.fixture(scope="module")
def augment() -> ColourStyles:
    return ColourStyles(num_styles=3)


def _timm(name: str, **kwargs: Any) -> nn.Module:
    timm = pytest.importorskip("timm", reason="timm is not installed (pip install 'captum-wsam[timm]')")
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=5, **kwargs).eval()


def _hf_vit() -> nn.Module:
    transformers = pytest.importorskip("transformers",
                                       reason="transformers is not installed (pip install 'captum-wsam[hf]')")
    torch.manual_seed(0)
    config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                    num_attention_heads=2, intermediate_size=64, num_labels=5)
    return transformers.ViTForImageClassification(config).eval()


def _hf_last_layer(model: nn.Module) -> nn.Module:
    """The last block's first LayerNorm (``vit.layers`` in transformers 5, ``vit.encoder.layer`` before).

    Not the block's output: after the last block only the class token reaches the logits, so the patch tokens' gradient
    there is zero (pytorch-grad-cam picks ``blocks[-1].norm1`` for timm ViTs for the same reason)."""
    layers = model.vit.layers if hasattr(model.vit, "layers") else model.vit.encoder.layer
    return layers[-1].layernorm_before


# name -> (model builder, layer picker, reshape_transform, input size); CNNs at 64 px for a 2x2 map after stride 32
CASES: dict[str, tuple[Any, Any, Any, int]] = {
    "timm_vit": (lambda: _timm("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_heads=2,
                               embed_dim=32), lambda m: m.blocks[-1].norm1, GRID, 32),
    "timm_convnext": (lambda: _timm("convnext_atto", depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
                      lambda m: m.stages[-1], None, 64),
    "timm_resnet": (lambda: _timm("resnet10t"), lambda m: m.layer4, None, 64),
    "hf_vit": (_hf_vit, _hf_last_layer, GRID, 32),
}


def _first_tensor(output: Any) -> Tensor:
    return output[0] if isinstance(output, tuple) else output


def reference_grad_cam(model: nn.Module, layer_of: Any, transform: Any, x: Tensor, target: Tensor) -> Tensor:
    """Grad-CAM from its definition in float64 (Selvaraju et al., 2017): δ_k = mean_ij ∂y/∂A_kij,
    ReLU(Σ_k δ_k A_k), with A the (reshaped) layer output."""
    model, saved = copy.deepcopy(model).double(), {}
    handle = layer_of(model).register_forward_hook(lambda _m, _i, o: saved.__setitem__("A", _first_tensor(o)))
    try:
        logits = logits_of(model(x.double()))
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), saved["A"])
    maps, grads = (saved["A"], grad) if transform is None else (transform(saved["A"]), transform(grad))
    delta = grads.mean(dim=(2, 3), keepdim=True)
    return torch.relu((delta * maps).sum(dim=1, keepdim=True))


@pytest.mark.parametrize("name", sorted(CASES))
def test_sam_and_wsam_on_hub_models(name: str, augment: ColourStyles) -> None:
    build, layer_of, transform, size = CASES[name]
    model = build()
    layer, x, target = layer_of(model), torch.rand(2, 3, size, size), torch.tensor([1, 3])
    snapshot = ModelSnapshot.take(model, [x])
    sam = SAM(model, layer, augment, reshape_transform=transform)
    plain = sam.attribute(x, target, alpha=1.0)
    styled = sam.attribute(x, target, alpha=0.5, style=1)
    wsam = WSAM(model, layer, augment, alphas=(0.5,), styles=[0, 2], reshape_transform=transform).attribute(x)
    assert_nothing_left(model, snapshot, f"SAM and WSAM on {name}")
    for out in (plain, styled, wsam):
        assert out.dim() == 4 and out.shape[:2] == (2, 1) and out.shape[2] * out.shape[3] > 1, out.shape
        assert torch.isfinite(out).all() and (out >= 0).all()
    if transform is not None:
        assert plain.shape == (2, 1, 4, 4)
    torch.testing.assert_close(plain.double(), reference_grad_cam(model, layer_of, transform, x, target),
                               atol=1e-5, rtol=1e-4)
    assert plain.amax() > 0  # a map that says something, not the all-zero one of a layer the logits ignore
    assert not torch.equal(plain, styled)  # the style changed the image the model saw


def test_hf_vit_without_transform_is_not_a_map(augment: ColourStyles) -> None:
    """The 17 tokens of a Hugging Face ViT layer are read as channels without ``reshape_transform``: no map (the
    reason the transform exists); ``"auto"`` knows torchvision's ViT only."""
    model = _hf_vit()
    layer, x, target = _hf_last_layer(model), torch.rand(2, 3, 32, 32), torch.tensor([0, 4])
    assert SAM(model, layer, augment).reshape_transform is None
    raw = SAM(model, layer, augment, reshape_transform=None).attribute(x, target, alpha=1.0)
    assert raw.shape == (2, 1, 32)


def test_channels_first_hub_model_matches_captum_layer_grad_cam(augment: ColourStyles) -> None:
    model = CASES["timm_convnext"][0]()
    layer, x, target = model.stages[-1], torch.rand(2, 3, 64, 64), torch.tensor([2, 0])
    expected = LayerGradCam(LogitsAdapter(model), layer).attribute(x, target, relu_attributions=True)
    torch.testing.assert_close(SAM(model, layer, augment).attribute(x, target, alpha=1.0), expected)


@pytest.mark.parametrize("name", ["timm_vit", "hf_vit"])
def test_hub_models_untouched_on_error(name: str, augment: ColourStyles) -> None:
    build, layer_of, transform, size = CASES[name]
    model = build()
    x = torch.rand(2, 3, size, size)
    sam = SAM(model, layer_of(model), augment, reshape_transform=transform)
    out = assert_model_untouched(model, lambda t: sam.attribute(x, t, alpha=0.5, style=0), torch.tensor([1, 2]),
                                 inputs=[x])
    assert out.shape == (2, 1, 4, 4)
