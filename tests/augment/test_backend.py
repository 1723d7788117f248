"""StyleBackend protocol: both shipped backends satisfy it; check_style_backend names every missing member."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch import Tensor, nn

from captum_wsam.augment import JacksonStyleNet, LinearStyleTransfer, StyleBackend, check_style_backend


@pytest.mark.parametrize("backend", [LinearStyleTransfer(), JacksonStyleNet(use_style_predictor=False)],
                         ids=["linear", "jackson"])
def test_shipped_backends_satisfy_protocol(backend: nn.Module) -> None:
    check_style_backend(backend)
    assert isinstance(backend, StyleBackend)
    assert isinstance(backend.config, dict) and backend.style_dim > 0


class Partial(nn.Module):
    def prepare(self, inputs: Tensor) -> Tensor:
        return inputs

    @property
    def style_dim(self) -> int:
        return 0


def test_names_every_missing_member() -> None:
    with pytest.raises(TypeError) as info:
        check_style_backend(Partial(), "backend")
    message = str(info.value)
    assert message.startswith("backend must implement the StyleBackend protocol")
    for member in ("render()", "encode_styles()", "default_style_bank()", "config", "style_dim (a positive int"):
        assert member in message
    assert "prepare()" not in message


class Complete(Partial):
    def render(self, content: Any, styles: Tensor, alpha: Tensor) -> Tensor:
        return content

    def encode_styles(self, images: Tensor) -> Tensor:
        return images.flatten(1)

    def default_style_bank(self) -> Any:
        return None

    @property
    def config(self) -> dict[str, Any]:
        return {"backend": "identity"}

    @property
    def style_dim(self) -> int:
        return 4


def test_complete_custom_backend_passes_and_non_modules_fail() -> None:
    check_style_backend(Complete())
    with pytest.raises(TypeError, match="transfer must be an nn.Module"):
        check_style_backend(lambda x: x)
    with pytest.raises(TypeError, match="config \\(a dict"):
        check_style_backend(type("BadConfig", (Complete,), {"config": property(lambda self: [1])})())
    assert torch.equal(Complete().render(torch.ones(1), torch.ones(1), torch.ones(1)), torch.ones(1))
