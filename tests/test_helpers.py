"""The harness must catch every kind of leftover; here each kind is planted on purpose."""

from __future__ import annotations

import copy
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch.nn.modules import module as module_mod

from captum_wsam.models import SmallCNN

from .helpers import InjectedFailure, assert_attribution_contract, assert_model_untouched


def _model() -> nn.Module:
    torch.manual_seed(0)
    return SmallCNN(width=4, depth=2).eval()


def _clean_call(model: nn.Module, x: torch.Tensor) -> Callable:
    def call(target):
        if not 0 <= target < 6:
            raise ValueError(f"target out of range: {target}")
        x_ = x.clone().requires_grad_()
        out = model(x_)[:, target].sum()
        return torch.autograd.grad(out, x_)[0]

    return call


def test_clean_method_passes():
    model, x = _model(), torch.rand(2, 3, 16, 16)
    grad = assert_model_untouched(model, _clean_call(model, x), target=1, inputs=[x])
    assert grad.shape == x.shape


def test_frozen_bn_inside_train_mode_model_passes_when_restored():
    model = _model().train()
    model.block1.bn.eval()  # a frozen BN inside a model in train mode
    x = torch.rand(2, 3, 16, 16)

    def call(target):
        if target > 5:
            raise ValueError("bad target")
        flags = [(m, m.training) for m in model.modules()]
        try:
            model.eval()
            return model(x)
        finally:
            for m, f in flags:
                m.training = f

    assert_model_untouched(model, call, target=0)
    assert not model.block1.bn.training and model.training


def test_frozen_bn_flipped_by_naive_restore_is_caught():
    model = _model().train()
    model.block1.bn.eval()
    x = torch.rand(2, 3, 16, 16)

    def call(target):
        was = model.training
        model.eval()
        try:
            return model(x)
        finally:
            model.train(was)  # naive: un-freezes the frozen BN

    with pytest.raises(AssertionError, match="training flag of 'block1.bn'"):
        assert_model_untouched(model, call, target=0, modes=("normal",))


LEAKS = {
    "forward hook": (lambda m: m.block1.conv.register_forward_hook(lambda *a: None), "hooks changed"),
    "forward pre hook with kwargs": (
        lambda m: m.block2.register_forward_pre_hook(lambda *a: None, with_kwargs=True), "hooks changed"),
    "full backward hook": (lambda m: m.classifier.register_full_backward_hook(lambda *a: None), "hooks changed"),
    "state dict hook": (lambda m: m._register_state_dict_hook(lambda *a: None), "hooks changed"),
    "global forward hook": (lambda m: module_mod.register_module_forward_hook(lambda *a: None), "global hooks"),
    "flipped mode": (lambda m: m.block1.train(), "training flag"),
    "requires_grad": (lambda m: m.classifier.weight.requires_grad_(False), "requires_grad"),
    "polluted grad": (lambda m: setattr(m.classifier.weight, "grad", torch.ones_like(m.classifier.weight)), ".grad"),
    "changed buffer": (lambda m: m.block1.bn.running_mean.add_(1.0), "state_dict entry 'block1.bn.running_mean'"),
    "changed weight": (lambda m: m.block1.conv.weight.data.mul_(2.0), "state_dict entry"),
    "new attribute": (lambda m: setattr(m.block1.conv, "rule", "alpha_beta"), "attributes of 'block1.conv'"),
    "replaced submodule": (lambda m: setattr(m, "flatten", nn.Flatten()), "submodules"),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_each_leftover_is_caught(leak):
    model, x = _model(), torch.rand(2, 3, 16, 16)
    plant, message = LEAKS[leak]
    handles = []

    def call(target):
        handle = plant(model)
        if handle is not None and hasattr(handle, "remove"):
            handles.append(handle)
        return model(x)

    try:
        with pytest.raises(AssertionError, match=message):
            assert_model_untouched(model, call, target=0, modes=("normal",))
    finally:
        for h in handles:
            h.remove()


def test_user_attribute_removed_is_caught():
    model = _model()
    model.block1.conv.rule = "user rule"
    with pytest.raises(AssertionError, match="attributes of 'block1.conv'"):
        assert_model_untouched(model, lambda t: delattr(model.block1.conv, "rule"), target=0, modes=("normal",))


def test_existing_grad_must_keep_values():
    model, x = _model(), torch.rand(2, 3, 16, 16)
    model.classifier.weight.grad = torch.zeros_like(model.classifier.weight)
    assert_model_untouched(model, _clean_call(model, x), target=0, modes=("normal",))

    def accumulates(target):
        model(x)[:, target].sum().backward()

    with pytest.raises(AssertionError, match=".grad of parameter 'classifier.weight'"):
        assert_model_untouched(model, accumulates, target=0, modes=("normal",))


def test_input_mutation_and_grad_are_caught():
    model, x = _model(), torch.rand(2, 3, 16, 16)
    with pytest.raises(AssertionError, match="modified in place"):
        assert_model_untouched(model, lambda t: x.mul_(0.5), target=0, inputs=[x], modes=("normal",))
    leaf = torch.rand(2, 3, 16, 16, requires_grad=True)
    with pytest.raises(AssertionError, match=".grad of input 0"):
        assert_model_untouched(model, lambda t: model(leaf).sum().backward(), target=0, inputs=[leaf],
                               modes=("normal",))


def test_invalid_target_must_raise_documented_error():
    model, x = _model(), torch.rand(2, 3, 16, 16)
    with pytest.raises(pytest.fail.Exception):
        assert_model_untouched(model, lambda t: model(x), target=0, modes=("invalid_target",))


def test_raising_layer_mode_catches_hooks_leaked_on_error():
    model, x = _model(), torch.rand(2, 3, 16, 16)

    def leaky(target):
        model.block1.register_forward_hook(lambda *a: None)  # never removed when the forward fails
        return model(x)

    with pytest.raises(AssertionError, match="mode 'raising_layer'"):
        assert_model_untouched(model, leaky, target=0, modes=("raising_layer",))
    model.block1._forward_hooks.clear()


def test_raising_layer_mode_requires_the_failure_to_propagate():
    model, x = _model(), torch.rand(2, 3, 16, 16)

    def swallows(target):
        try:
            model(x)
        except InjectedFailure:
            return None

    with pytest.raises(pytest.fail.Exception):
        assert_model_untouched(model, swallows, target=0, modes=("raising_layer",))


def test_attribution_contract_on_plain_gradient():
    model, x = _model(), torch.rand(3, 3, 16, 16)

    def saliency(inputs, target):
        inputs = inputs.detach().requires_grad_()
        out = model(inputs).gather(1, target[:, None]).sum()
        return torch.autograd.grad(out, inputs)[0]

    assert_attribution_contract(saliency, x, torch.tensor([0, 1, 2]))


def test_attribution_contract_catches_batch_dependence():
    x = torch.rand(3, 3, 8, 8)
    with pytest.raises(AssertionError):
        assert_attribution_contract(lambda inputs, target: inputs - inputs.mean(0, keepdim=True), x,
                                    torch.tensor([0, 1, 2]))


def test_snapshot_does_not_alias_model():
    model = _model()
    twin = copy.deepcopy(model)
    assert_model_untouched(model, lambda t: twin(torch.rand(1, 3, 16, 16)), target=0, modes=("normal",))
