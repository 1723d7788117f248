r"""Pure tensor maths of the texture-swapping style backend: soft patch swap on Laplacian bands.

Chen and Schmidt (2016), "Fast Patch-based Style Transfer of Arbitrary Style", arXiv:1612.04337, replace every
content patch by the style patch that correlates best with it ("style swap"):

.. math:: \phi_i^{\text{ss}} = \psi_{j^*},\qquad
          j^* = \arg\max_j \frac{\langle \phi_i,\ \psi_j\rangle}{\lVert\phi_i\rVert\,\lVert\psi_j\rVert},

with :math:`\phi_i` the content patches and :math:`\psi_j` the style patches, then overlap-average the swapped
patches back. Here the patches live in the detail bands of a Laplacian pyramid (Burt and Adelson 1983; the fixed
linear feature space of :mod:`captum_wsam.augment.functional`) instead of VGG features, and three changes make the
swap differentiable and able to create texture:

- **soft match**: :math:`\phi_i^{\text{ss}} = \sum_j \operatorname{softmax}_j(s_{ij}/\tau)\,\psi_j` (:math:`\tau`
  small: close to the hard swap, differentiable with respect to the content);
- **noise injection** where the content is flat: the matching vector is
  :math:`\tilde\phi_i = \phi_i + \lambda\,\bar\rho\,n_i` with :math:`\bar\rho` the mean style patch norm and
  :math:`n_i` a fixed unit-RMS pseudo-random direction, so a flat content patch (:math:`\phi_i \approx 0`) receives a
  style patch instead of the average of all of them (which is flat) -- texture appears where there was none;
- **windowed overlap-add**: patches of side :math:`k` at stride :math:`k/2`, weighted by
  :math:`w(r)\,w(c)` with :math:`w(t) = \sin^2(\pi (t + \tfrac12)/k)`, which sum to one over the two windows
  covering a pixel on each axis (:math:`\sin^2\theta + \cos^2\theta = 1`; Efros and Freeman 2001, "Image Quilting
  for Texture Synthesis and Transfer", blend overlapping patches likewise), so that a swapped texture keeps its
  contrast instead of being averaged away by :math:`k^2` stride-1 neighbours;
- **matching on the channel mean** of each patch (:math:`k^2` entries; all :math:`C k^2` entries are swapped).

The low-pass residual gets the style's colours by whitening–colouring (Li et al. 2017, arXiv:1705.08086):
:math:`o = \Sigma_z^{1/2}\Sigma_c^{-1/2}(c - \mu_c) + \mu_z` on its RGB values. Content and stylized pyramids are
then mixed band by band, texture first (:func:`texture_first_mix`): the detail bands take the style with weight
:math:`\min(1, g(1-\alpha))`, the residual with :math:`1-\alpha`; **α = 1 returns the input, α = 0 applies the full
style** (the WSAM seed's convention). Mixing features of this linear decoder is mixing pixels band by band; with
:math:`g = 1` it is the plain cross-fade :math:`\alpha x + (1-\alpha) o`, which leaves the content's texture at
contrast :math:`\alpha` on top of the new one (a classifier trained on that texture still reads it).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .functional import (
    gather_patches,
    laplacian_collapse,
    laplacian_pyramid,  # noqa: F401  (used by the doctests)
    regularize_covariance,
    sample_positions,
    symmetric_inverse_sqrt,
)
from .functional import symmetric_sqrt as _symmetric_sqrt


def blend_window(patch_size: int, dtype: torch.dtype = torch.float32, device: torch.device | None = None) -> Tensor:
    r"""Separable overlap-add window :math:`w(r)\,w(c)` with :math:`w(t) = \sin^2(\pi (t + \frac12)/k)`, flattened.

    Positive everywhere (every pixel of a patch gets some weight), so normalizing by the summed weights is finite.

    Returns:
        :math:`(k^2,)`.

    Examples:
        >>> w = blend_window(4)
        >>> w.shape, bool((w > 0).all()), bool(w.view(4, 4)[1, 1] > w.view(4, 4)[0, 0])
        (torch.Size([16]), True, True)
    """
    t = torch.arange(patch_size, dtype=dtype, device=device)
    one = torch.sin(math.pi * (t + 0.5) / patch_size) ** 2
    return (one[:, None] * one[None, :]).reshape(-1)


def matching_noise(count: int, dim: int, dtype: torch.dtype, device: torch.device, seed: int = 0) -> Tensor:
    r"""Fixed pseudo-random directions :math:`n_i` (standard normal entries) for the noise-injected match.

    A hash of the entry index, :math:`u = \operatorname{frac}(43758.5453\,\sin(12.9898\,i + 78.233\,s))`, turned
    Gaussian by Box–Muller: plain tensor operations (no ``torch.Generator``, no global RNG), so a stylization is a
    deterministic function of its inputs (params replay) and compiles with ``torch.compile(fullgraph=True)``.

    Returns:
        :math:`(\text{count}, \text{dim})`.

    Examples:
        >>> a = matching_noise(500, 8, torch.float32, torch.device("cpu"))
        >>> a.shape, bool(a.equal(matching_noise(500, 8, torch.float32, torch.device("cpu"))))
        (torch.Size([500, 8]), True)
        >>> bool(abs(float(a.mean())) < 0.1), bool(abs(float(a.std()) - 1) < 0.1)
        (True, True)
    """
    index = torch.arange(count * dim, dtype=torch.float64, device=device)

    def uniform(a: float, b: float) -> Tensor:
        return torch.frac(torch.sin(index * a + (seed + 1) * b).abs() * 43758.5453).clamp(1e-7, 1 - 1e-7)

    radius = (-2 * uniform(12.9898, 78.233).log()).sqrt()
    return (radius * torch.cos(2 * math.pi * uniform(39.3468, 11.135))).view(count, dim).to(dtype)


def soft_patch_swap(
    content: Tensor,
    style: Tensor,
    patch_size: int = 4,
    max_style_patches: int = 256,
    temperature: float = 0.02,
    noise_level: float = 0.5,
    seed: int = 0,
) -> Tensor:
    r"""Replace every patch of ``content`` by a soft best match among the patches of ``style`` (one band).

    .. math::

        \tilde\phi_i = \bar\phi_i + \lambda\,\bar\rho\,n_i,\qquad
        s_{ij} = \frac{\langle\tilde\phi_i, \bar\psi_j\rangle}{\lVert\tilde\phi_i\rVert\,
        \lVert\bar\psi_j\rVert},\qquad
        \phi_i^{\text{ss}} = \sum_j \operatorname{softmax}_j\!\big(s_{ij}/\tau\big)\,\psi_j,

    with :math:`\bar\phi, \bar\psi` the channel means of the patches (:math:`k^2` entries) and
    :math:`\bar\rho` the mean of :math:`\lVert\bar\psi_j\rVert`, then windowed overlap-add (stride :math:`k/2`,
    :func:`blend_window`) of :math:`\phi^{\text{ss}}`. Content patches are taken on a
    reflect-padded grid so that every pixel is covered; style patches are a fixed pseudo-random subset of at most
    ``max_style_patches`` stride-1 patches of ``style`` (:func:`~captum_wsam.augment.functional.sample_positions`,
    the same subset for every sample).

    Args:
        content: :math:`(B, C, H, W)` content band.
        style: :math:`(B, C, H_s, W_s)` style band, :math:`H_s, W_s \ge k`.
        patch_size: :math:`k` (even, >= 2).
        max_style_patches: :math:`M`, style patches matched per sample.
        temperature: :math:`\tau` of the soft match (cosine similarities lie in [-1, 1]).
        noise_level: :math:`\lambda`, the matching noise relative to the mean style patch norm.
        seed: seed of the fixed matching noise.

    Returns:
        :math:`(B, C, H, W)`, made of style patches only.

    Examples:
        >>> style = torch.zeros(1, 1, 16, 16); style[..., ::4, :] = 1.0  # horizontal lines
        >>> out = soft_patch_swap(torch.zeros(1, 1, 16, 16), style)  # a flat content band
        >>> out.shape, bool(out.std() > 0.1)  # texture where the content was flat
        (torch.Size([1, 1, 16, 16]), True)
    """
    batch, channels, height, width = content.shape
    k, half = patch_size, patch_size // 2
    # Reflect-pad by k/2 (plus up to a multiple of k/2): every pixel then lies under exactly two windows per axis.
    pad_h, pad_w = half + (-height) % half, half + (-width) % half
    padded = F.pad(content, (half, pad_w, half, pad_h), mode="reflect")
    grid = padded.unfold(2, k, half).unfold(3, k, half)  # (B, C, nh, nw, k, k), a view
    rows, cols = grid.shape[2], grid.shape[3]
    phi = grid.permute(0, 2, 3, 1, 4, 5).reshape(batch, rows * cols, channels, k * k)  # (B, L, C, k²)

    positions = sample_positions(style.shape[-2], style.shape[-1], k, max_style_patches, style.device)
    psi = gather_patches(style, positions, k)  # (B, M, C k²), only the sampled patches are read
    # Match on the channel mean of each patch (k² entries, 1/C of the cost); swap all channels.
    key = psi.view(batch, psi.shape[1], channels, k * k).mean(2)  # (B, M, k²)
    key = key / key.square().sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
    query = phi.mean(2)  # (B, L, k²)
    rho = psi.view(batch, psi.shape[1], channels, k * k).mean(2).square().sum(-1).clamp_min(1e-12).sqrt().mean(-1)
    noise = matching_noise(rows * cols, k * k, query.dtype, query.device, seed) / k
    query = query + noise_level * rho[:, None, None] * noise
    query = query / query.square().sum(-1, keepdim=True).clamp_min(1e-12).sqrt()
    weights = torch.softmax(query @ key.transpose(1, 2) / temperature, dim=-1)  # (B, L, M)
    swapped = (weights @ psi).view(batch, rows, cols, channels, k, k)

    # Windowed overlap-add: sin² windows at stride k/2 sum to one, so no normalization is needed.
    window = blend_window(k, swapped.dtype, swapped.device).view(k, k)
    swapped = (swapped * window).permute(0, 3, 1, 4, 2, 5)  # (B, C, nh, k, nw, k)
    quads = swapped.reshape(batch, channels, rows, 2, half, cols, 2, half)
    out = padded.new_zeros(batch, channels, rows + 1, half, cols + 1, half)
    for dr in (0, 1):
        for dc in (0, 1):
            out[:, :, dr : dr + rows, :, dc : dc + cols, :] += quads[:, :, :, dr, :, :, dc, :]
    out = out.view(batch, channels, (rows + 1) * half, (cols + 1) * half)
    return out[..., half : half + height, half : half + width]


def colour_transfer(content: Tensor, style: Tensor) -> Tensor:
    r"""Whitening–colouring of RGB values: :math:`o = \Sigma_z^{1/2}\Sigma_c^{-1/2}(c - \mu_c) + \mu_z`.

    Means and (regularized) :math:`3\times3` covariances are taken over the pixels of each sample.

    Args:
        content: :math:`(B, C, H, W)`.
        style: :math:`(B, C, H_s, W_s)`.

    Returns:
        :math:`(B, C, H, W)` with the style's colour mean and covariance.

    Examples:
        >>> content, style = torch.rand(2, 3, 8, 8, dtype=torch.float64), torch.rand(2, 3, 8, 8, dtype=torch.float64)
        >>> out = colour_transfer(content, style)
        >>> bool(torch.allclose(out.mean((2, 3)), style.mean((2, 3))))
        True
    """

    def stats(image: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        flat = image.flatten(2)  # (B, C, P)
        mean = flat.mean(-1, keepdim=True)
        centred = flat - mean
        covariance = regularize_covariance(centred @ centred.transpose(1, 2) / flat.shape[-1])
        return mean, centred, covariance

    _, centred, content_cov = stats(content)
    style_mean, _, style_cov = stats(style)
    transform = _symmetric_sqrt(style_cov) @ symmetric_inverse_sqrt(content_cov)
    return (transform @ centred + style_mean).view_as(content)


def texture_swap(
    content_bands: list[Tensor],
    style_bands: list[Tensor],
    copy_levels: int = 0,
    patch_size: int = 4,
    max_style_patches: int = 256,
    temperature: float = 0.02,
    noise_level: float = 0.5,
) -> list[Tensor]:
    r"""Stylized Laplacian pyramid from two pyramids of equal depth :math:`n`: the style's own band on the finest
    ``copy_levels`` detail levels, patch swap on the other detail levels, colour transfer on the residual.

    .. math:: t = \Big(\big[z_l\big]_{l < n_c},\ \big[\operatorname{swap}(c_l, z_l)\big]_{n_c \le l < n-1},\
              \operatorname{wct}(c_{n-1}, z_{n-1})\Big)

    Copying the finest band (pixel-scale grain and edge sharpness) costs nothing, where swapping it costs four times
    all coarser levels together; the content's edges are then carried by the swapped coarser bands.

    Args:
        content_bands: :math:`n` content bands :math:`(B, C, H_l, W_l)` (:func:`laplacian_pyramid`).
        style_bands: :math:`n` style bands of the same shapes.
        copy_levels: :math:`n_c`, finest detail levels taken from the style as they are (0: swap them all).
        patch_size: :math:`k` (see :func:`soft_patch_swap`).
        max_style_patches: style patches matched per level and sample.
        temperature: :math:`\tau` of the soft match.
        noise_level: :math:`\lambda`, the matching noise.

    Returns:
        :math:`n` bands of the shapes of ``content_bands``.

    Examples:
        >>> content = laplacian_pyramid(torch.rand(2, 3, 32, 32), 3)
        >>> style = laplacian_pyramid(torch.rand(2, 3, 32, 32), 3)
        >>> [tuple(band.shape) for band in texture_swap(content, style, copy_levels=1)]
        [(2, 3, 32, 32), (2, 3, 16, 16), (2, 3, 8, 8)]
    """
    depth = len(content_bands)
    out = []
    for level in range(depth - 1):
        if level < copy_levels:
            out.append(style_bands[level])
        else:
            out.append(soft_patch_swap(content_bands[level], style_bands[level], patch_size, max_style_patches,
                                       temperature, noise_level, seed=level))
    out.append(colour_transfer(content_bands[-1], style_bands[-1]))
    return out


def edge_weight(residual: Tensor, size: tuple[int, int], threshold: float) -> Tensor:
    r"""Where the content's low-pass image has a strong edge: :math:`m = \min(1, \lVert\nabla \bar r\rVert / \theta)`.

    :math:`\bar r` is the channel mean of the residual (the coarsest pyramid level), :math:`\nabla` forward
    differences (replicate padding), and the map is upsampled bilinearly to ``size``. Fine textures are gone from
    the residual, so :math:`m` marks the large-scale outlines: the shapes.

    Args:
        residual: :math:`(B, C, h, w)` the low-pass level of the content.
        size: ``(H, W)`` of the band the weight is for.
        threshold: :math:`\theta > 0`, the gradient (intensity per residual pixel) that counts as a full edge.

    Returns:
        :math:`(B, 1, H, W)` in [0, 1].

    Examples:
        >>> step = torch.zeros(1, 3, 8, 8); step[..., 4:] = 1.0
        >>> m = edge_weight(step, (16, 16), 0.5)
        >>> m.shape, bool(m[0, 0, 0, 6:8].min() > 0.7), bool(m[0, 0, :, :4].max() < 1e-3)
        (torch.Size([1, 1, 16, 16]), True, True)
    """
    grey = residual.mean(1, keepdim=True)
    dx = F.pad(grey[..., :, 1:] - grey[..., :, :-1], (0, 1, 0, 0), mode="replicate")
    dy = F.pad(grey[..., 1:, :] - grey[..., :-1, :], (0, 0, 0, 1), mode="replicate")
    magnitude = (dx.square() + dy.square() + 1e-12).sqrt()
    weight = (magnitude / threshold).clamp(max=1.0)
    return F.interpolate(weight, size=size, mode="bilinear", align_corners=False)


def texture_first_mix(content_bands: list[Tensor], styled_bands: list[Tensor], alpha: Tensor,
                      texture_gain: float = 2.0, edge_threshold: float | None = None) -> Tensor:
    r"""Mix two pyramids band by band, texture first, and collapse: detail bands reach the full style sooner.

    .. math:: o = U\big([(1 - s_l)\,c_l + s_l\,t_l]_l\big),\qquad
              s_l = \min\big(1,\ g\,(1-\alpha)\big)\ (l < n-1),\qquad s_{n-1} = 1 - \alpha

    with :math:`g` the ``texture_gain``; with ``edge_threshold`` :math:`\theta` the detail weights become
    :math:`s_l\,(1 - m_l)`, :math:`m_l` = :func:`edge_weight` of the content's residual, so that the content's
    large-scale outlines (its shapes) keep their own detail even at α = 0. With the default :math:`g = 2` the texture
    (detail bands) is fully the
    style's from α = 0.5 down, while the colours of the residual mix linearly. :math:`g = 1` is a plain cross-fade
    :math:`\alpha\,x + (1-\alpha)\,U(t)`. α = 1 gives :math:`U(c)` (the input up to round-off), α = 0 gives
    :math:`U(t)`.

    Args:
        content_bands: :math:`n` bands :math:`(B, C, H_l, W_l)`.
        styled_bands: :math:`n` bands of the same shapes (:func:`texture_swap`).
        alpha: :math:`(B,)` weight of the content, in [0, 1].
        texture_gain: :math:`g \ge 1`.
        edge_threshold: :math:`\theta` of :func:`edge_weight`, or ``None`` to swap the detail everywhere.

    Returns:
        :math:`(B, C, H, W)`, not clamped.

    Examples:
        >>> content = laplacian_pyramid(torch.zeros(1, 1, 8, 8), 2)
        >>> styled = laplacian_pyramid(torch.ones(1, 1, 8, 8), 2)
        >>> float(texture_first_mix(content, styled, torch.tensor([0.25])).mean())
        0.75
    """
    weight = (1 - alpha).view(-1, 1, 1, 1)
    detail = (texture_gain * weight).clamp(max=1.0)
    mixed = []
    for c, t in zip(content_bands[:-1], styled_bands[:-1]):
        keep = 0.0 if edge_threshold is None else edge_weight(content_bands[-1], tuple(c.shape[-2:]), edge_threshold)
        mixed.append(c + detail * (1 - keep) * (t - c))
    mixed.append(content_bands[-1] + weight * (styled_bands[-1] - content_bands[-1]))
    return laplacian_collapse(mixed)


__all__ = [
    "blend_window",
    "colour_transfer",
    "edge_weight",
    "matching_noise",
    "soft_patch_swap",
    "texture_first_mix",
    "texture_swap",
]
