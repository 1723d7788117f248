"""One contract checker per host kind, as torchvision v2's ``check_transform`` (attributions: ``tests.helpers``).

- :func:`check_augmentation` (Kornia): params replay, ``same_on_batch``, dtype/device kept, input not mutated,
  batch == one by one with the batch's params, pickling.
- :func:`check_attack` (torchattacks): :math:`\\|x' - x\\|_\\infty \\le \\epsilon` (when the attack has one), output in
  [0, 1] with the input's shape/dtype/device, model untouched (``tests.helpers.assert_nothing_left``: modes, hooks,
  ``requires_grad``, ``.grad``, buffers), input not mutated.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from tests.helpers import ModelSnapshot, assert_nothing_left


def _one_sample(params: dict[str, Any], i: int, batch: int, single: Tensor) -> dict[str, Any]:
    """Row ``i`` of Kornia params (per-sample tensors sliced, the recorded input shape replaced)."""
    out = {}
    for key, value in params.items():
        if key == "forward_input_shape":
            out[key] = torch.tensor(single.shape)
        elif isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == batch:
            out[key] = value[i : i + 1]
        else:
            out[key] = value
    return out


def check_augmentation(make: Callable[..., nn.Module], images: Tensor, *, same_on_batch: bool | None = False,
                       atol: float = 1e-5) -> None:
    """Assert the Kornia-augmentation contract for ``make(**kwargs)`` on ``images`` :math:`(B, C, H, W)`.

    ``same_on_batch=None``: the class has no such argument (its draws are shared by construction).
    """
    kwargs = {} if same_on_batch is None else {"same_on_batch": False}
    aug = make(**kwargs)
    before = images.clone()
    torch.manual_seed(0)
    out = aug(images)
    params = dict(aug._params)
    assert torch.equal(images, before), "the input was modified in place"
    assert out.shape == images.shape and out.dtype == images.dtype and out.device == images.device
    assert not torch.equal(out, images), "the augmentation did nothing (p=1 expected in the registry)"
    assert torch.equal(aug(images, params=params), out), "replaying the params gave another output"
    out64 = aug(images.double(), params=params)
    assert out64.dtype == torch.float64, f"float64 input: output dtype {out64.dtype}"
    torch.testing.assert_close(out64.float(), out, atol=atol, rtol=1e-4, msg="float64 input: another result")
    singles = torch.cat([aug(images[i : i + 1], params=_one_sample(params, i, len(images), images[i : i + 1]))
                         for i in range(len(images))])
    torch.testing.assert_close(singles, out, atol=atol, rtol=1e-4, msg="batch != one by one with the same params")
    restored = pickle.loads(pickle.dumps(aug))
    assert torch.equal(restored(images, params=params), out), "a pickled copy replays differently"
    shared = make(**({} if same_on_batch is None else {"same_on_batch": True}))
    repeated = images[:1].repeat(len(images), 1, 1, 1)
    torch.manual_seed(2)
    result = shared(repeated)
    assert all(torch.equal(result[0], row) for row in result), "same_on_batch: samples got different draws"


def check_attack(make: Callable[[nn.Module], Any], model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    """Assert the torchattacks-attack contract for ``make(model)``; return the adversarial images."""
    attack = make(model)
    before = images.clone()
    snapshot = ModelSnapshot.take(model, [images])
    adv = attack(images, labels)
    assert_nothing_left(model, snapshot, "after the attack")
    assert torch.equal(images, before), "the input was modified in place"
    assert adv.shape == images.shape and adv.dtype == images.dtype and adv.device == images.device
    assert float(adv.min()) >= 0.0 and float(adv.max()) <= 1.0, "output outside [0, 1]"
    eps = getattr(attack, "eps", None)
    if eps is not None:
        distance = float((adv - images).abs().max())
        assert distance <= eps + 1e-6, f"||x' - x||_inf = {distance} > eps = {eps}"
    assert not torch.equal(adv, images), "the attack did nothing"
    return adv
