"""A small deterministic, differentiable stylizer with StyleAugment's ``stylize``/``stylize_grid`` contract.

Used by the SAM/WSAM tests where the point is the attribution maths, not the style transfer: each style is a target
per-channel mean and standard deviation (AdaIN-like colour/contrast transfer), blended with the image by α
(α = 1 returns the input exactly, α = 0 the full style), content statistics computed once per image in
``stylize_grid``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class ColourStyles(nn.Module):
    """``num_styles`` colour/contrast styles drawn from ``seed``: ``style_bank`` has shape (S, 2, 3) (mean, std)."""

    def __init__(self, num_styles: int = 8, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        means = 0.2 + 0.6 * torch.rand(num_styles, 3, generator=g)
        stds = 0.05 + 0.3 * torch.rand(num_styles, 3, generator=g)
        self.register_buffer("style_bank", torch.stack([means, stds], dim=1))

    @staticmethod
    def _content(inputs: Tensor) -> tuple[Tensor, Tensor]:
        mean = inputs.mean(dim=(-2, -1), keepdim=True)
        std = inputs.std(dim=(-2, -1), keepdim=True) + 1e-5
        return mean, std

    def _transfer(self, inputs: Tensor, mean: Tensor, std: Tensor, style: int, alpha: float | Tensor) -> Tensor:
        target = self.style_bank[style].to(inputs)
        full = (inputs - mean) / std * target[1][:, None, None] + target[0][:, None, None]
        return inputs + (1 - alpha) * (full - inputs)

    def stylize(self, inputs: Tensor, style: int | Tensor, alpha: float | Tensor) -> Tensor:
        mean, std = self._content(inputs)
        return self._transfer(inputs, mean, std, int(style), alpha)

    def stylize_grid(self, inputs: Tensor, styles: Sequence[int] | Tensor, alphas: Sequence[float] | Tensor) -> Tensor:
        mean, std = self._content(inputs)
        return torch.stack([
            torch.stack([self._transfer(inputs, mean, std, int(s), float(a)) for a in alphas]) for s in styles
        ])

    def forward(self, inputs: Tensor) -> Tensor:
        return self.stylize(inputs, 0, 0.5)
