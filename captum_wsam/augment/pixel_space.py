"""Pixel space and model space: styling works on [0, 1] pixels, models often see normalized tensors.

torchattacks' ``Attack.set_normalization_used(mean, std)`` convention, shared by :class:`~captum_wsam.augment.
StyleAugment`, :class:`~captum_wsam.attr.SAM`, :class:`~captum_wsam.attr.WSAM` and WSAM variance: with
``normalization=(mean, std)`` the tensors a user passes (and the model sees) are :math:`x = (p - \\mu) / s`, and
every style operation runs on the pixels :math:`p = x s + \\mu`, which must lie in [0, 1]. Without a normalization,
inputs are pixels and values outside [0, 1] are refused with an error that suggests ``normalization=``: an
ImageNet-normalized tensor (range about -2.1 to 2.6) would otherwise be stylized in the wrong space and clamped.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from .._checks import check_normalization


class PixelSpace:
    """Where styling happens: [0, 1] pixels, reached from normalized model inputs through ``(mean, std)``.

    torchattacks' ``set_normalization_used(mean, std)`` convention: with a normalization, inputs (and what the model
    sees) are :math:`x = (p - \\mu) / s`; styling works on :math:`p = x s + \\mu`. Without one, inputs are pixels.

    .. math:: p = x\\,s + \\mu, \\qquad x = (p - \\mu) / s

    Args:
        normalization: ``None`` or ``(mean, std)``, per-channel sequences or tensors.

    Examples:
        >>> space = PixelSpace(((0.5, 0.5, 0.5), (0.25, 0.25, 0.25)))
        >>> x = torch.zeros(1, 3, 2, 2)
        >>> pixels = space.to_pixels(x)
        >>> bool(torch.equal(pixels, torch.full_like(x, 0.5))), bool(torch.equal(space.to_model(pixels), x))
        (True, True)
    """

    def __init__(self, normalization: Any = None) -> None:
        check_normalization(normalization)
        self.normalization = normalization
        if normalization is None:
            self.mean: Tensor | None = None
            self.std: Tensor | None = None
        else:
            self.mean, self.std = (torch.as_tensor(part, dtype=torch.float64).detach().reshape(-1, 1, 1)
                                   for part in normalization)

    def _stats(self, like: Tensor) -> tuple[Tensor, Tensor]:
        assert self.mean is not None and self.std is not None
        channels = like.shape[-3]  # (..., C, H, W): batches and WSAM's (S, A, B, C, H, W) grids alike
        if self.mean.shape[0] not in (1, channels) or self.std.shape[0] not in (1, channels):
            raise ValueError(f"normalization must hold 1 or {channels} values per statistic for inputs of shape "
                             f"{tuple(like.shape)}, got mean {self.mean.reshape(-1).tolist()} and std "
                             f"{self.std.reshape(-1).tolist()}")
        return self.mean.to(like), self.std.to(like)

    def to_pixels(self, inputs: Tensor) -> Tensor:
        """:math:`p = x s + \\mu` (identity without normalization)."""
        if self.mean is None:
            return inputs
        mean, std = self._stats(inputs)
        return inputs * std + mean

    def to_model(self, pixels: Tensor) -> Tensor:
        """:math:`x = (p - \\mu) / s` (identity without normalization)."""
        if self.mean is None:
            return pixels
        mean, std = self._stats(pixels)
        return (pixels - mean) / std

    def check_range(self, pixels: Tensor, name: str = "inputs", tol: float = 1e-5) -> None:
        """Raise a ``ValueError`` naming the argument (suggesting ``normalization=``) unless pixels lie in [0, 1]."""
        low, high = float(pixels.min()), float(pixels.max())
        if low >= -tol and high <= 1 + tol:
            return
        if self.mean is None:
            raise ValueError(
                f"{name} must be images in [0, 1] (styling works in pixel space), got values in [{low:.4g}, "
                f"{high:.4g}]; for normalized inputs (e.g. ImageNet mean/std) pass normalization=(mean, std) so that "
                "styling happens on the pixels and the model still sees normalized tensors (under NoiseTunnel or "
                "sensitivity_max keep the noise small enough for the images to stay in [0, 1])"
            )
        raise ValueError(
            f"{name} must be normalized images whose pixels (x * std + mean) lie in [0, 1], got pixels in "
            f"[{low:.4g}, {high:.4g}] with normalization={self.normalization!r}; check the mean and std"
        )


__all__ = ["PixelSpace"]
