"""Canonizers: folded BatchNorms give the original outputs, the model comes back bit-for-bit, bad pairings fail."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from captum_wsam.attr.lrp_canonizers import canonized, find_batch_norm_pairs, fold_batch_norm, layer_function
from tests.helpers import ModelSnapshot, assert_nothing_left


def randomize_batch_norms(model: nn.Module) -> nn.Module:
    """Give every BatchNorm non-trivial statistics and affine parameters (in place, test models only)."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                module.running_mean.uniform_(-0.3, 0.3)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(-1.5, 1.5)  # negative scales flip which weights are positive
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def test_fold_batch_norm_closed_form() -> None:
    conv = nn.Conv2d(2, 3, 3, bias=True).double()
    bn = randomize_batch_norms(nn.BatchNorm2d(3).double())
    w, b = fold_batch_norm(conv.weight, conv.bias, bn)
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    torch.testing.assert_close(w, conv.weight * scale[:, None, None, None])
    torch.testing.assert_close(b, (conv.bias - bn.running_mean) * scale + bn.bias)


def _vgg_bn() -> nn.Module:
    """A small VGG-BN (torchvision's ``features`` layout: conv, bn, relu, pool)."""
    layers: list[nn.Module] = []
    for c_in, c_out in ((3, 8), (8, 16)):
        layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True), nn.MaxPool2d(2)]
    return nn.Sequential(*layers, nn.Flatten(), nn.Linear(16 * 8 * 8, 10), nn.BatchNorm1d(10))


@pytest.mark.parametrize("name", ["vgg_bn", "resnet18"])
def test_canonized_model_output_equals_original_and_model_restored(name: str) -> None:
    model = _vgg_bn() if name == "vgg_bn" else torchvision.models.resnet18(num_classes=10)
    model = randomize_batch_norms(model)
    x = torch.rand(2, 3, 32, 32)
    expected = model(x)
    snapshot = ModelSnapshot.take(model, [x])
    with canonized(model) as canonizer:
        got = model(x)
        assert canonizer.layer_of, "no BatchNorm was folded"
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    assert_nothing_left(model, snapshot, "canonized()")
    assert torch.equal(model(x), expected)


def test_unpaired_batch_norm_is_named() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.BatchNorm2d(4)).eval()
    assert find_batch_norm_pairs(model)[1] == ["2"]
    with pytest.raises(TypeError, match="'2'"), canonized(model):
        pass


class _ShiftBeforeNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x) + 1.0)


def test_batch_norm_that_does_not_receive_its_layer_output_fails_and_restores() -> None:
    model = _ShiftBeforeNorm().eval()
    snapshot = ModelSnapshot.take(model)
    with pytest.raises(RuntimeError, match="does not receive"), canonized(model):
        model(torch.rand(1, 3, 8, 8))
    assert_nothing_left(model, snapshot, "failed canonized()")


def test_layer_function_rejects_other_modules() -> None:
    with pytest.raises(TypeError, match="ReLU"):
        layer_function(nn.ReLU())
