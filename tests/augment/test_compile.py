"""Every augmentation of the package as Kornia users run it: compiled with ``torch.compile(fullgraph=True)`` on the
apply path Kornia's own dynamo tests compile (the module's ``forward`` with parameters drawn beforehand by
``forward_parameters``), without touching any process-global setting, and refusing non-finite input at the entry."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import nn
from torch._dynamo.testing import CompileCounter

from captum_wsam.augment import (
    LinearStyleTransfer,
    RandomPatchShuffle,
    RandomSaturation,
    Saturation,
    StyleAugment,
)

#: name -> factory; p = 1 and p < 1 both, so that the per-sample gate is traced as well
AUGMENTATIONS: dict[str, Callable[[], nn.Module]] = {
    "Saturation": lambda: Saturation(8.0),
    "Saturation-p0.5": lambda: Saturation(8.0, p=0.5),
    "RandomSaturation": lambda: RandomSaturation(p=1.0),
    "RandomPatchShuffle": lambda: RandomPatchShuffle(grid=2, p=1.0),
    "RandomPatchShuffle-p0.5": lambda: RandomPatchShuffle(grid=2, p=0.5),
    "StyleAugment-linear": lambda: StyleAugment(p=1.0, transfer=LinearStyleTransfer()),
    "StyleAugment-linear-p0.5": lambda: StyleAugment(p=0.5, transfer=LinearStyleTransfer()),
    "StyleAugment": lambda: StyleAugment(p=1.0),
}

#: process-global setters an augmentation must never call (the old StyleAugment called ``set_num_threads``)
GLOBAL_SETTERS = (
    "set_num_threads",
    "set_num_interop_threads",
    "set_default_dtype",
    "set_default_device",
    "use_deterministic_algorithms",
    "set_float32_matmul_precision",
    "set_flush_denormal",
    "manual_seed",
    "set_rng_state",
)


def global_settings() -> tuple:
    return (
        torch.get_num_threads(),
        torch.get_num_interop_threads(),
        torch.get_default_dtype(),
        torch.is_grad_enabled(),
        torch.are_deterministic_algorithms_enabled(),
        torch.get_float32_matmul_precision(),
        torch.is_anomaly_enabled(),
        torch.backends.mkldnn.enabled,
    )


def images() -> torch.Tensor:
    return torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_forward_with_params_compiles_fullgraph(name: str) -> None:
    aug = AUGMENTATIONS[name]()
    x = images()
    params = aug.forward_parameters(x.shape)
    if "batch_prob" in params and aug.p < 1:
        params["batch_prob"] = torch.tensor([True, False])  # one sample skipped, one transformed
    counter = CompileCounter()
    compiled = torch.compile(aug, backend=counter, fullgraph=True)
    try:
        expected = aug(x, params=params)
        torch.testing.assert_close(compiled(x, params=params), expected)
        torch.testing.assert_close(compiled(x, params=params), expected)  # replay: the same graph
        assert counter.frame_count == 1
    finally:
        torch._dynamo.reset()


@pytest.mark.parametrize("name", list(AUGMENTATIONS))
def test_changes_no_process_global_setting(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    aug = AUGMENTATIONS[name]()
    x = images()
    params = aug.forward_parameters(x.shape)  # sampling draws from the global RNG (Kornia's convention), not here
    calls: list[str] = []
    for setter in GLOBAL_SETTERS:
        original = getattr(torch, setter)

        def spy(*args: object, _name: str = setter, _original: Callable = original, **kwargs: object) -> object:
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(torch, setter, spy)
    before, rng = global_settings(), torch.get_rng_state()
    aug(x, params=params)
    assert calls == [], f"{name} called {calls}"
    assert global_settings() == before
    assert torch.equal(torch.get_rng_state(), rng)  # applying given params draws nothing


@pytest.mark.parametrize("name", ["Saturation", "RandomSaturation", "RandomPatchShuffle", "StyleAugment"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_input_is_refused_at_the_entry(name: str, bad: float) -> None:
    aug = AUGMENTATIONS[name]()
    x = images()
    x[0, 1, 2, 3] = bad
    with pytest.raises(ValueError, match=r"input must be finite, got 1 non-finite"):
        aug(x)
