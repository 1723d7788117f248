"""LRP over the registry of torchvision classification models (timm style: a new model is tested automatically).

For every model of ``torchvision.models.list_models(module=torchvision.models)`` (``weights=None``, batch 2, a small
input): LRP runs and leaves the model untouched; on a bias-free float64 copy relevance is conserved within 1e-6; on
the models zennit supports (VGG, AlexNet, ResNet/ResNeXt/Wide-ResNet with its ResNet canonizer) LRP equals zennit with
the same composite within a relative error of 1e-6.

A fixed fast subset runs in the default suite (ResNet-18 and miniature configurations of the registry's own classes:
DenseNet, MobileNetV3, EfficientNet, ConvNeXt, ViT, Swin v1/v2, MaxViT, so that every kind of layer is covered in
seconds); the whole registry runs with ``CAPTUM_WSAM_FULL_REGISTRY=1`` (``make test-models``), which also writes the
supported-architectures table to ``$CAPTUM_WSAM_ARCH_TABLE`` when set.
"""

from __future__ import annotations

import copy
import os
import time
import warnings
from pathlib import Path
from typing import Any

import pytest
import torch
import torchvision
from torch import nn

from captum_wsam.attr import LRP, Composite, Epsilon, EpsilonAlpha2Beta1, EpsilonGammaBox, EpsilonPlus, ZBox
from tests.helpers import ModelSnapshot, assert_nothing_left

FULL = os.environ.get("CAPTUM_WSAM_FULL_REGISTRY", "") == "1"
TABLE = os.environ.get("CAPTUM_WSAM_ARCH_TABLE", "")
ALL_MODELS = sorted(torchvision.models.list_models(module=torchvision.models))
#: Fast enough for the default suite (2 CPU cores); one per family with a new kind of layer.
FAST = ("resnet18",)
#: Models zennit supports exactly (its canonizers cover their BatchNorms and residual sums).
ZENNIT = {"alexnet": "vgg", "vgg11": "vgg", "vgg11_bn": "vgg", "vgg13": "vgg", "vgg13_bn": "vgg", "vgg16": "vgg",
          "vgg16_bn": "vgg", "vgg19": "vgg", "vgg19_bn": "vgg", "resnet18": "resnet", "resnet34": "resnet",
          "resnet50": "resnet", "resnet101": "resnet", "resnet152": "resnet", "resnext50_32x4d": "resnet",
          "resnext101_32x8d": "resnet", "resnext101_64x4d": "resnet", "wide_resnet50_2": "resnet",
          "wide_resnet101_2": "resnet"}
ZENNIT_FAST = ("resnet18",)
ROWS: dict[str, dict[str, Any]] = {}


def _registry(names: tuple[str, ...] | list[str], fast: tuple[str, ...]) -> list[Any]:
    full_only = pytest.mark.skipif(not FULL, reason="full registry: set CAPTUM_WSAM_FULL_REGISTRY=1 (make test-models)")
    return [pytest.param(name, marks=[] if name in fast else [pytest.mark.slow, full_only]) for name in names]


def _minis() -> dict[str, Any]:
    """Miniature configurations of the registry's classes (same modules, a few thousand parameters)."""
    from functools import partial

    from torchvision.models import (
        ConvNeXt,
        DenseNet,
        EfficientNet,
        MaxVit,
        MobileNetV3,
        SwinTransformer,
        VisionTransformer,
    )
    from torchvision.models.convnext import CNBlockConfig
    from torchvision.models.efficientnet import FusedMBConvConfig, MBConvConfig
    from torchvision.models.mobilenetv3 import InvertedResidualConfig
    from torchvision.models.swin_transformer import PatchMergingV2, SwinTransformerBlockV2

    swin = partial(SwinTransformer, patch_size=[4, 4], embed_dim=16, depths=[2, 2], num_heads=[2, 2],
                   window_size=[4, 4], num_classes=5)
    return {
        "mini_densenet": lambda: DenseNet(growth_rate=8, block_config=(2, 2), num_init_features=16, bn_size=2,
                                          num_classes=5),
        "mini_mobilenet_v3": lambda: MobileNetV3(
            [InvertedResidualConfig(16, 3, 16, 16, True, "RE", 2, 1, 1.0),
             InvertedResidualConfig(16, 3, 32, 24, True, "HS", 1, 1, 1.0)], last_channel=32, num_classes=5),
        "mini_efficientnet": lambda: EfficientNet(
            [MBConvConfig(1, 3, 1, 16, 16, 1), MBConvConfig(4, 3, 2, 16, 24, 1), FusedMBConvConfig(4, 3, 1, 24, 24, 1)],
            dropout=0.1, num_classes=5),
        "mini_convnext": lambda: ConvNeXt([CNBlockConfig(16, 32, 2), CNBlockConfig(32, None, 2)], num_classes=5),
        "mini_vit": lambda: VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                              mlp_dim=64, num_classes=5),
        "mini_swin": lambda: swin(),
        "mini_swin_v2": lambda: swin(block=SwinTransformerBlockV2, downsample_layer=PatchMergingV2),
        "mini_maxvit": lambda: MaxVit(input_size=(32, 32), stem_channels=8, partition_size=2, block_channels=[16, 32],
                                      block_layers=[1, 1], head_dim=8, stochastic_depth_prob=0.1, num_classes=5),
    }


MINIS = tuple(_minis())


def input_size(name: str) -> int:
    """The smallest convenient input for the model (patch sizes, MaxViT's 7×7 partitions, Inception's stem)."""
    if name.startswith("maxvit"):
        return 224
    if name == "inception_v3":
        return 80
    if name == "alexnet":
        return 64
    if name.startswith("vit_h"):
        return 28
    return 32


def build(name: str, seed: int = 0) -> nn.Module:
    """The registry model with 5 classes, random BatchNorm statistics and no zero-initialised head, in eval mode."""
    if name in MINIS:
        torch.manual_seed(seed)
        return _randomized(_minis()[name]())
    kwargs: dict[str, Any] = {"num_classes": 5}
    if name.startswith("vit"):
        kwargs["image_size"] = input_size(name)
    if name in ("googlenet", "inception_v3"):
        kwargs.update(aux_logits=False, init_weights=False)
    torch.manual_seed(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = torchvision.models.get_model(name, weights=None, **kwargs)
    return _randomized(model)


def _randomized(model: nn.Module) -> nn.Module:
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
            elif isinstance(module, nn.Linear) and not module.weight.any():
                nn.init.normal_(module.weight, std=module.in_features ** -0.5)
    return model.eval()


def bias_free(model: nn.Module) -> nn.Module:
    """The model (changed in place: pass a fresh one) in float64 with every input-independent term zeroed: biases,
    BatchNorm means and shifts, class tokens and position embeddings (the terms that absorb relevance)."""
    model = model.double()
    with torch.no_grad():
        for module in model.modules():
            for name, param in module.named_parameters(recurse=False):
                if "bias" in name and "relative_position" not in name:
                    param.zero_()
                if name in ("class_token", "pos_embedding", "cls_token", "pos_embed", "position_embeddings"):
                    param.zero_()
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.running_mean.zero_()
    return model


def conservative_composite() -> Composite:
    """ε with a negligible stabilizer everywhere, z^B on the pixels: relevance is conserved exactly on bias-free
    models (z⁺ and αβ drop the relevance of neurons without positive contributions by definition). The stabilizer
    is 1e-100 (float64): deep bias-free copies (EfficientNet-B7) have activations of 1e-14 and below, which a 1e-12
    stabilizer would dominate."""
    return Composite([((nn.Conv2d, nn.Linear), Epsilon(1e-100))], first_layer=ZBox(0.0, 1.0, stabilizer=1e-100),
                     stabilizer=1e-100)


def _record(name: str, **values: Any) -> None:
    ROWS.setdefault(name, {}).update(values)
    if TABLE:  # rewritten after every model, so that an interrupted full run still leaves its table
        write_table(Path(TABLE), ROWS)


@pytest.mark.parametrize("name", [*MINIS, *_registry(ALL_MODELS, FAST)])
def test_lrp_runs_and_leaves_the_model_untouched(name: str) -> None:
    model = build(name)
    x = torch.rand(2, 3, input_size(name), input_size(name))
    snapshot = ModelSnapshot.take(model, [x])
    start = time.perf_counter()
    relevance, delta = LRP(model).attribute(x, target=[1, 3], return_convergence_delta=True)
    elapsed = time.perf_counter() - start
    assert_nothing_left(model, snapshot, name)
    assert relevance.shape == x.shape and relevance.dtype == x.dtype
    assert torch.isfinite(relevance).all() and torch.isfinite(delta).all()
    with torch.no_grad():
        output = model(x)[torch.arange(2), torch.tensor([1, 3])]
    torch.testing.assert_close(delta, relevance.sum((1, 2, 3)) - output, rtol=1e-4, atol=1e-4)
    _record(name, runs=True, seconds=elapsed, params=sum(p.numel() for p in model.parameters()))


@pytest.mark.parametrize("name", [*MINIS, *_registry(ALL_MODELS, FAST)])
def test_lrp_conserves_relevance_on_bias_free_copies(name: str) -> None:
    model = bias_free(build(name))
    x = torch.rand(2, 3, input_size(name), input_size(name), dtype=torch.float64)
    with torch.no_grad():
        target = model(x).argmax(1)  # SqueezeNet's logits pass a ReLU: a fixed class may have no relevance at all
    relevance, delta = LRP(model, composite=conservative_composite()).attribute(x, target=target,
                                                                                 return_convergence_delta=True)
    scale = relevance.abs().sum((1, 2, 3))
    assert bool((scale > 0).all()), "no relevance reached the input: the check would mean nothing"
    # relative to the total absolute relevance: deep bias-free copies can have tiny logits made of large parts
    relative = (delta.abs() / scale).max().item()
    _record(name, conservation=relative)
    assert relative <= 1e-6, f"{name}: relevance not conserved, relative error {relative:.3g}"


def _zennit(model: nn.Module, x: torch.Tensor, target: int, family: str, composite: str) -> torch.Tensor:
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.composites import SpecialFirstLayerMapComposite, layer_map_base
    from zennit.rules import AlphaBeta, Epsilon, Gamma, ZBox, ZPlus
    from zennit.torchvision import ResNetCanonizer
    from zennit.types import Convolution

    eps = 1e-12
    conv = {"plus": ZPlus(stabilizer=eps), "alpha2beta1": AlphaBeta(2.0, 1.0, stabilizer=eps),
            "gammabox": Gamma(0.25, stabilizer=eps)}[composite]
    layer_map = [*layer_map_base(eps), (Convolution, conv), (nn.Linear, Epsilon(1e-6))]
    canonizers = [ResNetCanonizer()] if family == "resnet" else [SequentialMergeBatchNorm()]
    zennit_composite = SpecialFirstLayerMapComposite(layer_map, [(Convolution, ZBox(0.0, 1.0, stabilizer=eps))],
                                                     canonizers=canonizers)
    leaf = x.clone().requires_grad_(True)
    with zennit_composite.context(model) as modified:
        out = modified(leaf)
        grad = torch.zeros_like(out)
        grad[:, target] = out[:, target].detach()
        return torch.autograd.grad(out, leaf, grad)[0]


@pytest.mark.parametrize("composite", ["plus", "alpha2beta1", "gammabox"])
@pytest.mark.parametrize("name", _registry(sorted(ZENNIT), ZENNIT_FAST))
def test_lrp_equals_zennit(name: str, composite: str) -> None:
    model = build(name).double()
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            # zennit's merged BatchNorm computes x / sqrt(1 + eps) instead of x; eps = 0 makes its canonization exact
            module.eps = 0.0
    x = torch.rand(2, 3, input_size(name), input_size(name), dtype=torch.float64)
    expected = _zennit(copy.deepcopy(model), x, 2, ZENNIT[name], composite)
    box = ZBox(0.0, 1.0, stabilizer=1e-12)
    presets = {"plus": EpsilonPlus, "alpha2beta1": EpsilonAlpha2Beta1, "gammabox": EpsilonGammaBox}
    ours_composite = presets[composite](box, stabilizer=1e-12)
    ours = LRP(model, composite=ours_composite).attribute(x, target=2)
    relative = ((ours - expected).abs().max() / expected.abs().max()).item()
    _record(name, **{f"zennit_{composite}": relative})
    assert relative <= 1e-6, f"{name} ({composite}): relative error {relative:.3g} against zennit"


def write_table(path: Path, rows: dict[str, dict[str, Any]]) -> None:
    """The supported-architectures table (Markdown) from the rows recorded by the tests."""
    lines = ["# Supported architectures (LRP)", "",
             "Generated by `make test-models` (`tests/attr/test_lrp_models.py` over "
             "`torchvision.models.list_models(module=torchvision.models)`, `weights=None`, batch 2). "
             "*Conservation*: |Σ R − f_c(x)| / Σ |R| on a bias-free float64 copy (ε with a 1e-100 stabilizer, "
             "z^B on pixels). *zennit*: largest relative error against zennit 0.5 with the same composite "
             "(EpsilonPlus / EpsilonAlpha2Beta1 / EpsilonGammaBox, z^B first layer), float64.", "",
             "| model | input | parameters | LRP runs | seconds (wall, shared CPU) | conservation | zennit |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in ALL_MODELS:
        row = rows.get(name, {})
        zennit = [v for k, v in row.items() if k.startswith("zennit_")]
        params = f"{row['params'] / 1e6:.1f} M" if "params" in row else "—"
        seconds = f"{row['seconds']:.1f}" if "seconds" in row else "—"
        conservation = f"{row['conservation']:.1e}" if "conservation" in row else "not run"
        agreement = f"{max(zennit):.1e}" if zennit else ("—" if name not in ZENNIT else "not run")
        lines.append(f"| {name} | {input_size(name)}² | {params} | {'yes' if row.get('runs') else 'not run'} | "
                     f"{seconds} | {conservation} | {agreement} |")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


@pytest.fixture(scope="module", autouse=True)
def _table() -> Any:
    yield
    if TABLE and ROWS:
        write_table(Path(TABLE), ROWS)
