"""Type aliases shared by the whole package (defined once, imported everywhere)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from torch import Tensor, nn

#: Captum's target convention: ``None``, one class index for the whole batch, one per sample
#: (list or 1-D tensor), or tuples for multi-dimensional outputs.
TargetType: TypeAlias = "int | tuple[int, ...] | Tensor | list[Any] | None"

#: A model or any callable mapping an input batch to logits (Captum's ``forward_func``).
ForwardFunc: TypeAlias = "nn.Module | Callable[..., Tensor]"

#: Loss taking ``(logits, target)`` and returning one value per sample (``reduction="none"``).
LossFunc: TypeAlias = Callable[[Tensor, Tensor], Tensor]

TensorOrTensors: TypeAlias = "Tensor | Sequence[Tensor]"

__all__ = ["ForwardFunc", "LossFunc", "TargetType", "TensorOrTensors"]
