"""SAM, WSAM and ParameterSaliency called from several threads on one model: results right, model left intact.

Before the per-model lock of ``captum_wsam._state``, two threads x 50 calls left every parameter with
``requires_grad=False``, SAM on a train-mode model moved the BatchNorm running statistics, and ParameterSaliency
left modules in eval mode. Each test runs 3 threads x 12 calls on one train-mode model with BatchNorm, a user
gradient and a frozen parameter, compares every result with the single-threaded one and then checks the model
(state_dict incl. BN buffers, modes, requires_grad, .grad, hooks, forwards) with ``tests.helpers``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import torch
from torch import Tensor

from captum_wsam.attr import SAM, WSAM, ParameterSaliency
from captum_wsam.models import SmallCNN
from tests.attr.style_stand_in import ColourStyles
from tests.helpers import ModelSnapshot, assert_nothing_left

THREADS, CALLS = 3, 12


def train_mode_model() -> SmallCNN:
    torch.manual_seed(0)
    model = SmallCNN(width=8, depth=3).train()
    with torch.no_grad():  # non-trivial BatchNorm statistics: a moved buffer would show
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.1, 0.1)
                module.running_var.uniform_(0.5, 1.5)
    model.classifier.weight.grad = torch.full_like(model.classifier.weight, 0.125)
    model.block1.conv.weight.requires_grad_(False)
    return model


def make_call(name: str, model: SmallCNN) -> Callable[[Tensor, Tensor], Tensor]:
    augment = ColourStyles(num_styles=3)
    if name == "sam":
        sam = SAM(model, model.block3, augment)
        return lambda x, t: sam.attribute(x, t, alpha=0.4, style=1)
    if name == "wsam":
        wsam = WSAM(model, model.block3, augment, alphas=(0.5,), styles=[0, 2])
        return lambda x, t: wsam.attribute(x, t, chunk_size=3)
    saliency = ParameterSaliency(model, mode="raw")
    return lambda x, t: saliency.attribute(x, t)


@pytest.mark.parametrize("name", ["sam", "wsam", "parameter_saliency"])
def test_threads_on_one_model(name: str) -> None:
    model = train_mode_model()
    call = make_call(name, model)
    torch.manual_seed(1)
    batches = [(torch.rand(2, 3, 32, 32), torch.randint(0, 6, (2,))) for _ in range(THREADS)]
    snapshot = ModelSnapshot.take(model)
    expected = [call(x, t) for x, t in batches]
    assert_nothing_left(model, snapshot, f"single-threaded {name}")
    outputs: list[list[Tensor]] = [[] for _ in range(THREADS)]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        try:
            x, t = batches[index]
            for _ in range(CALLS):
                outputs[index].append(call(x, t))
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert_nothing_left(model, snapshot, f"{THREADS} threads x {CALLS} calls of {name}")
    for index in range(THREADS):
        assert len(outputs[index]) == CALLS
        for out in outputs[index]:
            torch.testing.assert_close(out, expected[index])
    with torch.no_grad():  # the model still runs as before (no stale patches), in train mode
        assert model.training and model(batches[0][0]).shape == (2, 6)


def test_sam_and_lrp_threads_on_one_model() -> None:
    """Different methods at once: SAM's guards and LRP's shared eval mode must not restore each other's flags."""
    from captum_wsam.attr import LRP, EpsilonPlus

    model = train_mode_model()
    sam, lrp = make_call("sam", model), LRP(model, composite=EpsilonPlus())
    torch.manual_seed(2)
    x, t = torch.rand(2, 3, 32, 32), torch.randint(0, 6, (2,))
    snapshot = ModelSnapshot.take(model)
    expected = {"sam": sam(x, t), "lrp": lrp.attribute(x, target=t)}
    calls = {"sam": lambda: sam(x, t), "lrp": lambda: lrp.attribute(x, target=t)}
    errors: list[BaseException] = []
    outputs: dict[str, list[Tensor]] = {"sam": [], "lrp": []}

    def work(name: str) -> None:
        try:
            for _ in range(CALLS):
                outputs[name].append(calls[name]())
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("sam", "lrp", "sam", "lrp")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert_nothing_left(model, snapshot, "SAM and LRP in 4 threads")
    for name, results in outputs.items():
        assert len(results) == 2 * CALLS
        for out in results:
            torch.testing.assert_close(out, expected[name])
