from __future__ import annotations

import threading
import time

import pytest
import torch

from captum_wsam._state import (
    eval_mode,
    exclusive,
    frozen_parameters,
    hook_handles,
    kept_buffers,
    model_lock,
    preserved_grads,
    untouched,
)
from tests.helpers import ModelSnapshot, assert_nothing_left


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


def _guarded_forwards(model: torch.nn.Module, calls: int, errors: list[BaseException]) -> None:
    try:
        for _ in range(calls):
            with untouched(model), eval_mode(model), frozen_parameters(model), kept_buffers(model):
                assert not model.training and not model[0].weight.requires_grad
                model(torch.rand(4, 3))
                time.sleep(1e-4)  # let the other threads run while this one holds the guards
    except BaseException as error:
        errors.append(error)


def test_guards_threads_leave_model_as_found() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)).train()
    model[2].weight.requires_grad_(False)
    model[0].weight.grad = torch.full_like(model[0].weight, 0.25)
    snapshot = ModelSnapshot.take(model)
    errors: list[BaseException] = []
    threads = [threading.Thread(target=_guarded_forwards, args=(model, 50, errors)) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert_nothing_left(model, snapshot, "4 threads x 50 guarded calls")


def test_nested_guards_are_reentrant() -> None:
    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
    model[1].eval()
    with exclusive(model), untouched(model), eval_mode(model):
        with untouched(model), frozen_parameters(model), eval_mode(model):
            assert not model.training and not model[0].weight.requires_grad
        assert not model.training and model[0].weight.requires_grad
    assert model.training and not model[1].training and model[0].weight.requires_grad
    assert model_lock(model) is model_lock(torch.nn.DataParallel(model)) and model_lock(len) is None
