"""Argument checks, in one place (the way Kornia keeps ``KORNIA_CHECK``).

Every check raises before any work is done, with a message that names the argument and the value received:

>>> check_in_range(1.5, "alpha", 0.0, 1.0)
Traceback (most recent call last):
...
ValueError: alpha must lie in [0.0, 1.0], got 1.5
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor, nn


def _describe(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"Tensor(shape={tuple(value.shape)}, dtype={value.dtype}, device={value.device})"
    return repr(value)


def check_type(value: Any, name: str, types: type | tuple[type, ...]) -> None:
    """Raise ``TypeError`` unless ``value`` is an instance of ``types``."""
    if not isinstance(value, types):
        names = types.__name__ if isinstance(types, type) else " or ".join(t.__name__ for t in types)
        raise TypeError(f"{name} must be {names}, got {type(value).__name__}: {_describe(value)}")


def check_tensor(
    value: Any,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    floating: bool = False,
    allow_empty: bool = False,
) -> None:
    """Raise unless ``value`` is a tensor of the given rank (``ndim``) and, if asked, of floating dtype."""
    check_type(value, name, Tensor)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if value.dim() not in allowed:
            expected = " or ".join(f"{d}-D" for d in allowed)
            raise ValueError(f"{name} must be a {expected} tensor, got shape {tuple(value.shape)}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must have a floating-point dtype, got {value.dtype}")
    if not allow_empty and value.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(value.shape)}")


def check_images(value: Any, name: str = "inputs", *, channels: int | None = None) -> None:
    """Raise unless ``value`` is a non-empty float image batch of shape :math:`(B, C, H, W)`."""
    check_tensor(value, name, ndim=4, floating=True)
    if channels is not None and value.shape[1] != channels:
        raise ValueError(f"{name} must have {channels} channels, got shape {tuple(value.shape)}")


def check_unit_range(value: Tensor, name: str = "inputs", *, tol: float = 1e-6) -> None:
    """Raise unless every element of ``value`` lies in [0, 1] (up to ``tol``)."""
    if value.numel() and (value.min() < -tol or value.max() > 1 + tol):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{value.min().item():.4g}, {value.max().item():.4g}]"
        )


def check_finite(value: Any, name: str = "inputs") -> None:
    """Raise ``ValueError`` if a tensor (or any tensor of a tuple/list) holds NaN or ±inf.

    One fused reduction per tensor (``torch.isfinite(x).all()``), cheap next to any model pass; non-float tensors are
    finite by construction and skipped.

    >>> check_finite(torch.tensor([0.0, float("nan")]), "inputs")
    Traceback (most recent call last):
    ...
    ValueError: inputs must be finite, got 1 non-finite value(s) (NaN or inf) in a tensor of shape (2,)
    """
    if isinstance(value, (tuple, list)):
        for index, item in enumerate(value):
            check_finite(item, f"{name}[{index}]")
        return
    if not isinstance(value, Tensor) or not (value.is_floating_point() or value.is_complex()):
        return
    if not bool(torch.isfinite(value).all()):
        count = int((~torch.isfinite(value)).sum())
        raise ValueError(
            f"{name} must be finite, got {count} non-finite value(s) (NaN or inf) in a tensor of shape "
            f"{tuple(value.shape)}"
        )


def check_number(value: Any, name: str) -> None:
    """Raise ``TypeError`` unless ``value`` is a finite real number (bool excluded)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}: {_describe(value)}")
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value!r}")


def check_in_range(
    value: Any, name: str, low: float | None = None, high: float | None = None, *, low_inclusive: bool = True,
    high_inclusive: bool = True,
) -> None:
    """Raise unless ``low <= value <= high`` (bounds optional; strictness per side)."""
    check_number(value, name)
    too_low = low is not None and (value < low if low_inclusive else value <= low)
    too_high = high is not None and (value > high if high_inclusive else value >= high)
    if too_low or too_high:
        left = "[" if low_inclusive else "("
        right = "]" if high_inclusive else ")"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name} must lie in {left}{lo}, {hi}{right}, got {value!r}")


def check_positive_int(value: Any, name: str, *, allow_zero: bool = False) -> None:
    """Raise unless ``value`` is an ``int`` > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}: {_describe(value)}")
    if value < 0 or (value == 0 and not allow_zero):
        raise ValueError(f"{name} must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def check_choice(value: Any, name: str, choices: Iterable[Any]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``choices``."""
    options = tuple(choices)
    if value not in options:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, options))}; got {value!r}")


def check_range_pair(value: Any, name: str, low: float, high: float) -> tuple[float, float]:
    """Accept a number or a ``(min, max)`` pair inside ``[low, high]``; return it as an ordered pair."""
    pair = (value, value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value
    if isinstance(pair, Tensor):
        pair = tuple(pair.tolist())
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise TypeError(f"{name} must be a number or a (min, max) pair, got {_describe(value)}")
    for bound in pair:
        check_in_range(bound, name, low, high)
    if pair[0] > pair[1]:
        raise ValueError(f"{name} must be ordered as (min, max), got {tuple(pair)!r}")
    return float(pair[0]), float(pair[1])


def check_submodule(layer: Any, model: Any, name: str = "layer") -> None:
    """Raise unless ``layer`` is a module contained in ``model`` (when ``model`` is a module)."""
    check_type(layer, name, nn.Module)
    if isinstance(model, nn.Module) and not any(m is layer for m in model.modules()):
        raise ValueError(f"{name} must be a submodule of the model, got {type(layer).__name__} that is not in it")


def check_target(target: Any, num_classes: int, batch_size: int, name: str = "target") -> None:
    """Raise unless ``target`` (Captum convention) indexes a class of a ``num_classes``-way output.

    ``None`` is accepted; an int, a sequence of ``batch_size`` ints or a 1-D integer tensor of that length are checked
    for range.
    """
    if target is None:
        return
    if isinstance(target, Tensor):
        if target.is_floating_point() or target.is_complex():
            raise TypeError(f"{name} must hold integer class indices, got dtype {target.dtype}")
        values = target.reshape(-1)
        if target.dim() > 1 or values.numel() not in (1, batch_size):
            raise ValueError(f"{name} must hold 1 or {batch_size} class indices, got shape {tuple(target.shape)}")
    elif isinstance(target, bool):
        raise TypeError(f"{name} must be an int, a sequence of ints or a tensor, got bool")
    elif isinstance(target, int):
        values = torch.tensor([target])
    elif isinstance(target, (list, tuple)):
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in target):
            # Captum also allows tuples of indices for multi-dimensional outputs; those are not range-checked here.
            return
        if len(target) != batch_size:
            raise ValueError(f"{name} must hold {batch_size} class indices, got {len(target)}")
        values = torch.tensor(list(target))
    else:
        raise TypeError(f"{name} must be an int, a sequence of ints or a tensor, got {type(target).__name__}")
    if values.numel() and (values.min() < 0 or values.max() >= num_classes):
        bad = values[(values < 0) | (values >= num_classes)][0].item()
        raise ValueError(f"{name} must lie in [0, {num_classes - 1}] for a {num_classes}-class output, got {bad}")


__all__ = [
    "check_choice",
    "check_finite",
    "check_images",
    "check_in_range",
    "check_number",
    "check_positive_int",
    "check_range_pair",
    "check_submodule",
    "check_target",
    "check_tensor",
    "check_type",
    "check_unit_range",
]
