from __future__ import annotations

import pytest
import torch

from captum_wsam._state import eval_mode, frozen_parameters, hook_handles, preserved_grads, untouched


def test_untouched_restores_on_error():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
    model[1].eval()
    model[0].weight.grad = torch.ones(2, 2)
    x = torch.rand(3, 2)
    with pytest.raises(RuntimeError), untouched(model, x):
        model.eval()
        x.requires_grad_()
        model[0].weight.requires_grad_(False)
        model[0].weight.grad.add_(5.0)
        raise RuntimeError("boom")
    assert model.training and not model[1].training
    assert model[0].weight.requires_grad and not x.requires_grad
    assert torch.equal(model[0].weight.grad, torch.ones(2, 2))


def test_small_context_managers_restore():
    layer = torch.nn.Linear(2, 2)
    with eval_mode(layer), frozen_parameters(layer), preserved_grads(layer.parameters()), hook_handles() as hs:
        hs.append(layer.register_forward_hook(lambda *a: None))
        layer(torch.rand(1, 2)).sum()
        assert not layer.training and not layer.weight.requires_grad
    assert layer.training and layer.weight.requires_grad and not layer._forward_hooks
    assert layer.weight.grad is None
