"""Shared wiring of the package's torchattacks attacks: argument checks and "model left as found" (no maths here)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_finite, check_images, check_in_range, check_tensor, check_type, check_unit_range
from .._state import kept_buffers, untouched


def check_eps(eps: Any, name: str = "eps") -> float:
    """Raise unless ``eps`` is a finite number >= 0; return it as float."""
    check_in_range(eps, name, 0.0, None)
    return float(eps)


def check_labels(labels: Any, batch_size: int, num_classes: int | None = None, name: str = "labels") -> None:
    """Raise unless ``labels`` is a 1-D integer tensor of ``batch_size`` class indices (< ``num_classes`` if known)."""
    check_tensor(labels, name, ndim=1)
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"{name} must hold integer class indices, got dtype {labels.dtype}")
    if labels.shape[0] != batch_size:
        raise ValueError(f"{name} must hold {batch_size} class indices (one per image), got {tuple(labels.shape)}")
    high = None if num_classes is None else num_classes - 1
    bad = labels < 0 if high is None else (labels < 0) | (labels > high)
    if bad.any():
        limit = "[0, inf)" if high is None else f"[0, {high}]"
        raise ValueError(f"{name} must lie in {limit}, got {labels[bad][0].item()}")


class ModelSafeMixin:
    """Mixin (put before ``torchattacks.Attack``): the call leaves the model exactly as found, even when it raises.

    torchattacks switches the whole model to eval mode and back with ``model.train()``; here every module keeps its own
    ``training`` flag, parameters keep ``requires_grad`` and ``.grad``, and buffers (BatchNorm running statistics,
    changed when :meth:`set_model_training_mode` asks for training-mode BatchNorm) are restored bitwise.
    """

    def __call__(self, inputs: Tensor, labels: Tensor | None = None, *args: Any, **kwargs: Any) -> Tensor:
        normalization_applied = self._normalization_applied
        try:
            # enable_grad: works inside the caller's no_grad blocks too
            with kept_buffers(self.model), untouched(self.model), torch.enable_grad():
                return super().__call__(inputs, labels, *args, **kwargs)
        finally:
            self._set_normalization_applied(normalization_applied)

    def _prepare(self, images: Any, labels: Any = None, require_labels: bool = False) -> tuple[Tensor, Tensor | None]:
        """Validate ``images`` (finite float :math:`(B, C, H, W)` in [0, 1]) and ``labels``; return detached copies."""
        check_images(images, "images")
        check_finite(images, "images")  # NaN compares False with both bounds: it would pass the range check
        check_unit_range(images, "images")
        if labels is None:
            if require_labels:
                raise ValueError(f"{self.attack} needs labels, got None")
        else:
            check_type(labels, "labels", Tensor)
            check_labels(labels, images.shape[0])
            labels = labels.detach().to(self.device)
        return images.detach().clone().to(self.device), labels


__all__ = ["ModelSafeMixin", "check_eps", "check_labels"]
