"""Run a model and capture one layer's output with a hook that is always removed (rule 7 of STYLE.md)."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from .._state import hook_handles


def forward_capture(model: nn.Module, layer: nn.Module | None, inputs: Tensor) -> tuple[Tensor, Tensor]:
    """Return ``(model(inputs), output of layer)``; the layer output is the model output when ``layer`` is ``None``.

    The caller is responsible for the model's modes and gradients (use :func:`captum_wsam._state.untouched`).
    """
    if layer is None:
        output = model(inputs)
        return output, output
    captured: list[Tensor] = []

    def keep(_module: nn.Module, _inputs: Any, output: Any) -> None:
        if not isinstance(output, Tensor):
            raise TypeError(f"layer must output a tensor, got {type(output).__name__}")
        captured.append(output)

    with hook_handles() as handles:
        handles.append(layer.register_forward_hook(keep))
        output = model(inputs)
    return output, captured[-1]
