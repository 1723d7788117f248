"""LRP on timm and Hugging Face models built from small configurations (no download): the optional extras
``captum-wsam[timm]`` and ``captum-wsam[hf]``; skipped with the reason when the library is not installed."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import nn

from captum_wsam.attr import LRP
from tests.attr.test_lrp_models import bias_free, conservative_composite
from tests.helpers import ModelSnapshot, assert_nothing_left


def _timm(name: str, **kwargs: Any) -> nn.Module:
    timm = pytest.importorskip("timm", reason="timm is not installed (pip install 'captum-wsam[timm]')")
    torch.manual_seed(0)
    return timm.create_model(name, pretrained=False, num_classes=5, **kwargs).eval()


def _hf(kind: str) -> nn.Module:
    transformers = pytest.importorskip("transformers",
                                       reason="transformers is not installed (pip install 'captum-wsam[hf]')")
    torch.manual_seed(0)
    if kind == "vit":
        config = transformers.ViTConfig(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2,
                                        num_attention_heads=2, intermediate_size=64, num_labels=5)
        return transformers.ViTForImageClassification(config).eval()
    config = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], layer_type="basic",
                                       num_labels=5)
    return transformers.ResNetForImageClassification(config).eval()


BUILDERS = {
    "timm_vit": lambda: _timm("vit_tiny_patch16_224", img_size=32, patch_size=8, depth=2, num_heads=2, embed_dim=32),
    "timm_convnext": lambda: _timm("convnext_atto", depths=(1, 1, 1, 1), dims=(8, 16, 24, 32)),
    "timm_mobilenetv3": lambda: _timm("mobilenetv3_small_050"),
    "hf_vit": lambda: _hf("vit"),
    "hf_resnet": lambda: _hf("resnet"),
}


def _logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = model(x)
    return out if isinstance(out, torch.Tensor) else out.logits


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_lrp_runs_on_hub_models_and_leaves_them_untouched(name: str) -> None:
    model = BUILDERS[name]()
    x = torch.rand(2, 3, 32, 32)
    snapshot = ModelSnapshot.take(model, [x])
    relevance, delta = LRP(model).attribute(x, target=[1, 2], return_convergence_delta=True)
    assert_nothing_left(model, snapshot, name)
    assert relevance.shape == x.shape and torch.isfinite(relevance).all()
    # the engine's forward computes the model's own logits (checked through the delta)
    output = _logits(model, x)[torch.arange(2), torch.tensor([1, 2])]
    torch.testing.assert_close(delta, relevance.sum((1, 2, 3)) - output, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", sorted(BUILDERS))
def test_lrp_conserves_relevance_on_bias_free_hub_models(name: str) -> None:
    model = bias_free(BUILDERS[name]())
    x = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    relevance, delta = LRP(model, composite=conservative_composite()).attribute(x, target=[0, 4],
                                                                                 return_convergence_delta=True)
    scale = relevance.abs().sum((1, 2, 3))
    assert bool((scale > 0).all())
    assert (delta.abs() / scale).max() <= 1e-6
