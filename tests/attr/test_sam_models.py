"""SAM and WSAM on the architectures people use: torchvision's registry, token layers (ViT, Swin), non-tensor outputs,
normalized inputs.

The registry test is parametrized over ``torchvision.models.list_models(module=torchvision.models)`` (timm's
pattern): a fixed fast subset runs by default; the whole registry runs with ``CAPTUM_WSAM_FULL_REGISTRY=1``
(``make test-models``, as the LRP registry test; marked ``slow``: some models take several GiB and minutes on a CPU),
e.g. ``CAPTUM_WSAM_FULL_REGISTRY=1 pytest tests/attr/test_sam_models.py -k registry``.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from typing import Any

import pytest
import torch
import torchvision
from captum.attr import LayerGradCam
from torch import Tensor, nn
from torchvision.models import SwinTransformer, VisionTransformer

from captum_wsam.attr import SAM, WSAM, LogitsAdapter
from captum_wsam.attr.functional import tokens_to_grid
from captum_wsam.models import SmallCNN
from tests.attr.style_stand_in import ColourStyles
from tests.helpers import ModelSnapshot, assert_nothing_left

ALL_MODELS = torchvision.models.list_models(module=torchvision.models)
FAST_MODELS = ("resnet18", "mobilenet_v3_small")  # ViT and Swin: small configurations below
RUN_ALL = os.environ.get("CAPTUM_WSAM_FULL_REGISTRY") == "1"  # as tests/attr/test_lrp_models.py (make test-models)
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


@pytest.fixture(scope="module")
def augment() -> ColourStyles:
    return ColourStyles(num_styles=3)


def build(name: str) -> tuple[nn.Module, int]:
    """A torchvision classifier with random weights (no download) and the smallest input size it accepts well."""
    kwargs: dict[str, Any] = {"weights": None, "num_classes": 10}
    size = 64
    if name.startswith("vit_"):
        size = 4 * int(name.rsplit("_", 1)[1])  # a 4x4 grid of patches
        kwargs["image_size"] = size
    elif name == "inception_v3":
        kwargs.update(aux_logits=False, init_weights=False)
        size = 96
    elif name == "googlenet":
        kwargs.update(aux_logits=False, init_weights=False)
    elif name == "maxvit_t":
        size = 224  # partition size 7 at every stage
    torch.manual_seed(0)
    return torchvision.models.get_model(name, **kwargs).eval(), size


def explained_layer(model: nn.Module, size: int) -> nn.Module:
    """The layer Grad-CAM users pick: the last block with a spatial map (token/channels-last blocks for ViT/Swin)."""
    if isinstance(model, VisionTransformer):
        # After the last block only the class token reaches the head: its patch tokens get no gradient. The first
        # LayerNorm of the last block (pytorch-grad-cam's choice, ``norm1`` in timm) carries a non-zero map.
        return model.encoder.layers[-1].ln_1
    if isinstance(model, SwinTransformer):
        return model.features[-1]
    if isinstance(model, torchvision.models.MaxVit):
        return model.blocks[-1]
    finished: list[tuple[nn.Module, tuple[int, ...]]] = []
    with torch.no_grad():
        handles = [m.register_forward_hook(lambda m, _i, o: finished.append((m, tuple(o.shape))))
                   for m in model.modules() if m is not model]
        try:
            model(torch.rand(1, 3, size, size))
        finally:
            for handle in handles:
                handle.remove()
    maps = [m for m, shape in finished if len(shape) == 4 and shape[2] * shape[3] > 1]
    return maps[-1]


def _registry_params() -> list[Any]:
    slow = pytest.mark.slow
    skip = pytest.mark.skipif(not RUN_ALL, reason="full registry: set CAPTUM_WSAM_FULL_REGISTRY=1 (make test-models)")
    return [pytest.param(n) if n in FAST_MODELS else pytest.param(n, marks=(slow, skip)) for n in ALL_MODELS]


@pytest.mark.parametrize("name", _registry_params())
def test_registry_sam_and_wsam_run_and_leave_model_untouched(name: str, augment: ColourStyles) -> None:
    model, size = build(name)
    layer = explained_layer(model, size)
    x, target = torch.rand(2, 3, size, size), torch.tensor([1, 7])
    snapshot = ModelSnapshot.take(model, [x])
    sam = SAM(model, layer, augment).attribute(x, target, alpha=0.5, style=1)
    wsam = WSAM(model, layer, augment, alphas=(0.5,), styles=[0, 2]).attribute(x, target=None, chunk_size=2)
    assert_nothing_left(model, snapshot, f"SAM and WSAM on {name}")
    for out in (sam, wsam):
        assert out.dim() == 4 and out.shape[:2] == (2, 1) and out.shape[2] * out.shape[3] > 1
        assert torch.isfinite(out).all() and (out >= 0).all()


# ------------------------------------------------------------------------------------------------ token models
def small_vit() -> VisionTransformer:
    torch.manual_seed(0)
    model = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32,
                              num_classes=5).eval()
    nn.init.normal_(model.heads.head.weight, std=0.5)  # torchvision zero-initializes the head: constant logits
    return model


def small_swin() -> SwinTransformer:
    torch.manual_seed(0)
    return SwinTransformer(patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2], window_size=[4, 4],
                           num_classes=5).eval()


def grad_cam_pytorch_grad_cam(tokens: Tensor) -> Tensor:
    """pytorch-grad-cam's ViT ``reshape_transform`` from its tutorial, literally (class token dropped, 4x4 grid)."""
    result = tokens[:, 1:, :].reshape(tokens.size(0), 4, 4, tokens.size(2))
    return result.transpose(2, 3).transpose(1, 2)


def reference_token_grad_cam(model: nn.Module, x: Tensor, target: Tensor) -> Tensor:
    """Grad-CAM on the first LayerNorm of the last ViT block, float64, from the definition:
    δ_d = mean over patch tokens of ∂y/∂T, ReLU(Σ_d δ_d T_d)."""
    model, saved = copy.deepcopy(model).double(), {}
    block = model.encoder.layers[-1].ln_1
    handle = block.register_forward_hook(lambda _m, _i, o: saved.__setitem__("T", o))
    try:
        logits = model(x.double())
    finally:
        handle.remove()
    (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), target].sum(), saved["T"])
    tokens, grads = saved["T"][:, 1:], grad[:, 1:]  # (B, 16, D)
    delta = grads.mean(dim=1, keepdim=True)  # (B, 1, D)
    cam = torch.relu((delta * tokens).sum(dim=2))  # (B, 16), row-major patches
    return cam.reshape(len(x), 1, 4, 4)


def test_vit_builtin_transform_equals_definition_and_pytorch_grad_cam(augment: ColourStyles) -> None:
    model = small_vit()
    layer, x, target = model.encoder.layers[-1].ln_1, torch.rand(2, 3, 32, 32), torch.tensor([0, 3])
    auto = SAM(model, layer, augment).attribute(x, target, alpha=1.0)
    assert auto.shape == (2, 1, 4, 4) and float(auto.amax()) > 0  # a map, not zeros
    torch.testing.assert_close(auto.double(), reference_token_grad_cam(model, x, target), atol=1e-5, rtol=1e-4)
    explicit = SAM(model, layer, augment, reshape_transform=grad_cam_pytorch_grad_cam)
    torch.testing.assert_close(auto, explicit.attribute(x, target, alpha=1.0))
    styled = SAM(model, layer, augment).attribute(x, target, alpha=0.3, style=2)
    torch.testing.assert_close(styled, explicit.attribute(x, target, alpha=0.3, style=2))
    wsam = WSAM(model, layer, augment, alphas=(0.5,), styles=[0, 1]).attribute(x, target)
    assert wsam.shape == (2, 1, 4, 4) and torch.isfinite(wsam).all()
    raw = SAM(model, layer, augment, reshape_transform=None).attribute(x, target, alpha=1.0)
    assert raw.shape == (2, 1, 16)  # without a transform the 17 tokens are read as channels: no map
    with pytest.raises(ValueError, match="tokens must hold 1 prefix token"):
        tokens_to_grid(torch.rand(2, 1 + 15, 16))


def test_swin_builtin_transform_is_channels_last_to_first(augment: ColourStyles) -> None:
    model = small_swin()
    x, target = torch.rand(2, 3, 32, 32), torch.tensor([1, 4])
    for layer in (model.features[-1], model.norm):
        auto = SAM(model, layer, augment).attribute(x, target, alpha=0.5, style=1)
        explicit = SAM(model, layer, augment, reshape_transform=lambda t: t.permute(0, 3, 1, 2))
        torch.testing.assert_close(auto, explicit.attribute(x, target, alpha=0.5, style=1))
        assert auto.shape[:2] == (2, 1)
    conv = model.features[0][0]  # the patch embedding is channels-first: no transform
    torch.testing.assert_close(SAM(model, conv, augment).attribute(x, target, alpha=1.0),
                               LayerGradCam(model, conv).attribute(x, target, relu_attributions=True))


def test_maxvit_partition_layers_are_refused_clearly(augment: ColourStyles) -> None:
    model = torchvision.models.maxvit_t(weights=None, num_classes=5)
    inner = model.blocks[0].layers[0].layers[1].attn_layer
    with pytest.raises(TypeError, match="PartitionAttentionLayer"):
        SAM(model, inner, augment)
    assert SAM(model, model.blocks[-1], augment).reshape_transform is None


# ------------------------------------------------------------------------------------------------ non-tensor outputs
@dataclass
class Output:
    logits: Tensor


class DictModel(nn.Module):
    def __init__(self, body: nn.Module, as_mapping: bool) -> None:
        super().__init__()
        self.body, self.as_mapping = body, as_mapping

    def forward(self, x: Tensor) -> Any:
        logits = self.body(x)
        return {"logits": logits, "hidden": x} if self.as_mapping else Output(logits)


@pytest.mark.parametrize("as_mapping", [True, False], ids=["mapping", "logits_attribute"])
def test_models_returning_mappings_or_logits_objects(small: SmallCNN, augment: ColourStyles, as_mapping: bool) -> None:
    model = DictModel(small, as_mapping)
    x, target = torch.rand(2, 3, 32, 32), torch.tensor([2, 5])
    expected = SAM(small, small.block3, augment).attribute(x, target, alpha=0.4, style=1)
    assert torch.equal(SAM(model, small.block3, augment).attribute(x, target, alpha=0.4, style=1), expected)
    assert torch.equal(SAM(model, small.block3, augment).attribute(x, None, alpha=0.4, style=1),
                       SAM(small, small.block3, augment).attribute(x, None, alpha=0.4, style=1))
    wsam = WSAM(model, small.block3, augment, alphas=(0.5,), styles=[0, 1], class_per_style=False)
    assert torch.equal(wsam.attribute(x), WSAM(small, small.block3, augment, alphas=(0.5,), styles=[0, 1],
                                               class_per_style=False).attribute(x))
    adapted = LogitsAdapter(model)  # for Captum's own classes
    torch.testing.assert_close(LayerGradCam(adapted, small.block3).attribute(x, target, relu_attributions=True),
                               LayerGradCam(small, small.block3).attribute(x, target, relu_attributions=True))


# ------------------------------------------------------------------------------------------------ normalization
def imagenet_resnet() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    model = torchvision.models.resnet18(weights=None, num_classes=10).eval()
    normalizing = nn.Sequential(torchvision.transforms.Normalize(*IMAGENET), model).eval()
    return model, normalizing


@pytest.mark.parametrize("method", ["sam", "wsam"])
def test_normalized_inputs_equal_pixels_through_a_normalizing_model(augment: ColourStyles, method: str) -> None:
    model, normalizing = imagenet_resnet()
    pixels = torch.rand(2, 3, 32, 32)
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in IMAGENET)
    normalized = (pixels - mean) / std
    assert normalized.min() < -1.5 and normalized.max() > 2.0  # the range a torchvision pipeline feeds
    target = torch.tensor([3, 8])
    if method == "sam":
        ours = SAM(model, model.layer3, augment, normalization=IMAGENET).attribute(normalized, target, alpha=0.3,
                                                                                    style=1)
        reference = SAM(normalizing, model.layer3, augment).attribute(pixels, target, alpha=0.3, style=1)
    else:
        ours = WSAM(model, model.layer3, augment, alphas=(0.3, 0.7), styles=[0, 2],
                    normalization=IMAGENET).attribute(normalized)
        reference = WSAM(normalizing, model.layer3, augment, alphas=(0.3, 0.7), styles=[0, 2]).attribute(pixels)
    torch.testing.assert_close(ours, reference, atol=1e-5, rtol=1e-4)
    unaware = SAM(model, model.layer3, augment) if method == "sam" else WSAM(model, model.layer3, augment, styles=[0])
    with pytest.raises(ValueError, match=r"inputs must be images in \[0, 1\].*normalization="):
        unaware.attribute(normalized, target)


def test_normalization_arguments_are_checked(small: SmallCNN, augment: ColourStyles) -> None:
    with pytest.raises(ValueError, match="normalization std"):
        SAM(small, small.block3, augment, normalization=((0.5, 0.5, 0.5), (0.2, 0.0, 0.2)))
    with pytest.raises(TypeError, match="normalization"):
        WSAM(small, small.block3, augment, normalization=(0.5,))
    with pytest.raises(ValueError, match="normalization must hold 1 or 3"):
        SAM(small, small.block3, augment, normalization=((0.5, 0.5), (0.2, 0.2))).attribute(torch.rand(1, 3, 32, 32))
    with pytest.raises(ValueError, match="pixels"):  # normalized with other statistics than declared
        SAM(small, small.block3, augment, normalization=IMAGENET).attribute(torch.full((1, 3, 32, 32), 5.0))
