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


def check_style_index(style: Any, num_styles: int | None, name: str = "style") -> None:
    """Raise unless ``style`` is an index into a bank of ``num_styles`` styles or an integer tensor of such indices.

    ``num_styles=None`` (a bank without a size) checks the type only.

    >>> check_style_index(5, 4, "style")
    Traceback (most recent call last):
    ...
    ValueError: style must lie in [0, 3] for a bank of 4 styles, got 5
    """
    if isinstance(style, Tensor):
        if style.is_floating_point() or style.is_complex() or style.dtype == torch.bool:
            raise TypeError(f"{name} must hold integer style indices, got dtype {style.dtype}")
        if num_styles is not None and style.numel() and (style.min() < 0 or style.max() >= num_styles):
            raise ValueError(f"{name} must lie in [0, {num_styles - 1}] for a bank of {num_styles} styles, "
                             f"got {style.reshape(-1).tolist()}")
        return
    if isinstance(style, bool) or not isinstance(style, int):
        raise TypeError(f"{name} must be an int style index or an integer tensor, got {type(style).__name__}")
    if num_styles is not None and not 0 <= style < num_styles:
        raise ValueError(f"{name} must lie in [0, {num_styles - 1}] for a bank of {num_styles} styles, got {style}")


def check_alphas(alphas: Any, name: str = "alphas") -> tuple[float, ...]:
    """Check a non-empty sequence (or tensor) of style intensities α in [0, 1]; return them as floats.

    >>> check_alphas((0.2, 1.0))
    (0.2, 1.0)
    >>> check_alphas([0.5, 1.5])
    Traceback (most recent call last):
    ...
    ValueError: alphas must lie in [0.0, 1.0], got 1.5
    """
    if isinstance(alphas, Tensor):
        if not alphas.is_floating_point():
            raise TypeError(f"{name} must hold floating-point intensities, got dtype {alphas.dtype}")
        alphas = alphas.reshape(-1).tolist()
    if not isinstance(alphas, (list, tuple)):
        raise TypeError(f"{name} must be a sequence of numbers in [0, 1], got {type(alphas).__name__}")
    if len(alphas) == 0:
        raise ValueError(f"{name} must not be empty, got ()")
    for value in alphas:
        check_in_range(value, name, 0.0, 1.0)
    return tuple(float(a) for a in alphas)


def check_normalization(normalization: Any, channels: int | None = None, name: str = "normalization") -> None:
    """Raise unless ``normalization`` is ``None`` or a ``(mean, std)`` pair of per-channel sequences or tensors.

    torchattacks' ``set_normalization_used(mean, std)`` convention: every std must be finite and > 0; with
    ``channels`` both must hold one value per channel.

    >>> check_normalization(((0.5, 0.5, 0.5), (0.0, 1.0, 1.0)))
    Traceback (most recent call last):
    ...
    ValueError: normalization std must be finite and > 0, got [0.0, 1.0, 1.0]
    """
    if normalization is None:
        return
    if not isinstance(normalization, (tuple, list)) or len(normalization) != 2:
        raise TypeError(f"{name} must be a (mean, std) pair, got {_describe(normalization)}")
    values = []
    for part, label in zip(normalization, ("mean", "std")):
        if isinstance(part, Tensor):
            part = part.detach().reshape(-1).tolist()
        elif isinstance(part, (int, float)) and not isinstance(part, bool):
            part = [part]
        if not isinstance(part, (list, tuple)) or not part:
            raise TypeError(f"{name} {label} must be a non-empty sequence of numbers, got {_describe(part)}")
        for value in part:
            check_number(value, f"{name} {label}")
        values.append([float(v) for v in part])
    std = values[1]
    if any(s <= 0 for s in std):
        raise ValueError(f"{name} std must be finite and > 0, got {std}")
    if channels is not None:
        for part, label in zip(values, ("mean", "std")):
            if len(part) not in (1, channels):
                raise ValueError(f"{name} {label} must hold 1 or {channels} values (one per channel), got {part}")


def check_grad_allowed(name: str) -> None:
    """Raise ``RuntimeError`` under ``torch.inference_mode()``, where no gradient can be computed at all.

    ``torch.no_grad()`` is fine: the methods turn gradients on for their own passes (as Captum's do).
    """
    if torch.is_inference_mode_enabled():
        raise RuntimeError(
            f"{name} computes gradients, which torch.inference_mode() forbids; call it outside inference mode "
            "(torch.no_grad() is fine: gradients are turned on for its own passes)"
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
    "check_alphas",
    "check_choice",
    "check_finite",
    "check_grad_allowed",
    "check_images",
    "check_in_range",
    "check_normalization",
    "check_number",
    "check_positive_int",
    "check_range_pair",
    "check_style_index",
    "check_submodule",
    "check_target",
    "check_tensor",
    "check_type",
    "check_unit_range",
]
