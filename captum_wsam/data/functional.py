"""Pure tensor functions that draw the ShapesTextures images: shapes as signed distance fields, textures as patterns.

All functions are batched over :math:`N` samples and vectorized over pixels; randomness is never drawn here (the
dataset samples the parameters, then calls these functions), so the same parameters always give the same image.

Coordinates: pixel centres, ``x`` to the right and ``y`` downwards, in pixels.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "ring")
TEXTURES: tuple[str, ...] = ("flat", "stripes", "checkerboard", "dots", "grain", "waves")


def pixel_grid(size: int, device: torch.device | None = None, dtype: torch.dtype = torch.float32) -> Tensor:
    """Pixel-centre coordinates of a ``size``×``size`` image. Returns :math:`(2, H, W)` holding ``(x, y)``."""
    coords = torch.arange(size, device=device, dtype=dtype) + 0.5
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    return torch.stack((x, y))


def _local_coords(grid: Tensor, center: Tensor, angle: Tensor) -> tuple[Tensor, Tensor]:
    """Rotate the pixel grid by ``-angle`` around ``center``: :math:`(N, H, W)` local ``x``, ``y``."""
    dx = grid[0] - center[:, 0, None, None]
    dy = grid[1] - center[:, 1, None, None]
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    return cos * dx + sin * dy, -sin * dx + cos * dy


def _box_sdf(x: Tensor, y: Tensor, half_w: float, half_h: float) -> Tensor:
    qx, qy = x.abs() - half_w, y.abs() - half_h
    outside = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2)
    return outside + torch.maximum(qx, qy).clamp(max=0)


def _triangle_sdf(x: Tensor, y: Tensor, radius: float) -> Tensor:
    # Equilateral triangle pointing up (y grows downwards, hence -y), exact signed distance.
    k = math.sqrt(3.0)
    px, py = x.abs() - radius, -y + radius / k
    fold = px + k * py > 0
    px, py = torch.where(fold, (px - k * py) / 2, px), torch.where(fold, (-k * px - py) / 2, py)
    px = px - px.clamp(-2 * radius, 0)
    return -torch.sqrt(px**2 + py**2) * torch.sign(py)


def _star_sdf(x: Tensor, y: Tensor, points: int = 5, inner: float = 0.45) -> Tensor:
    # Radial star: boundary radius interpolates linearly in angle between tips (1) and valleys (inner). The
    # returned value is a Lipschitz-bounded approximation of the distance, exact on the boundary.
    radius = torch.sqrt(x**2 + y**2)
    theta = torch.atan2(x, -y)
    phase = torch.remainder(theta * points / (2 * math.pi), 1.0)
    boundary = inner + (1 - inner) * (2 * phase - 1).abs()
    return (radius - boundary) * 0.5


def shape_sdf(kind: int, x: Tensor, y: Tensor) -> Tensor:
    """Signed distance (negative inside) of the unit-size shape ``SHAPES[kind]`` at local coordinates ``x, y``."""
    name = SHAPES[kind]
    if name == "circle":
        return torch.sqrt(x**2 + y**2) - 0.95
    if name == "square":
        return _box_sdf(x, y, 0.78, 0.78)
    if name == "triangle":
        return _triangle_sdf(x, y + 0.2, 1.05)
    if name == "star":
        return _star_sdf(x, y)
    if name == "cross":
        return torch.minimum(_box_sdf(x, y, 0.95, 0.3), _box_sdf(x, y, 0.3, 0.95))
    if name == "ring":
        return (torch.sqrt(x**2 + y**2) - 0.72).abs() - 0.24
    raise ValueError(f"kind must index SHAPES (0..{len(SHAPES) - 1}), got {kind}")


def shape_coverage(kind: Tensor, center: Tensor, scale: Tensor, angle: Tensor, size: int) -> Tensor:
    """Anti-aliased coverage of each sample's shape.

    .. math:: \\text{cov}(p) = \\operatorname{clip}\\big(\\tfrac12 - s\\,d(R_{-\\theta}(p - c)/s),\\ 0,\\ 1\\big)

    with :math:`d` the unit shape's signed distance, :math:`s` the scale in pixels, :math:`c` the centre and
    :math:`\\theta` the rotation: a one-pixel linear ramp across the boundary.

    Args:
        kind: :math:`(N,)` shape indices into :data:`SHAPES`.
        center: :math:`(N, 2)` centres ``(x, y)`` in pixels.
        scale: :math:`(N,)` radius of the unit shape in pixels.
        angle: :math:`(N,)` rotation in radians.
        size: image side in pixels.

    Returns:
        :math:`(N, H, W)` coverage in [0, 1].

    Examples:
        >>> cov = shape_coverage(torch.tensor([0]), torch.tensor([[16.0, 16.0]]), torch.tensor([8.0]),
        ...                      torch.tensor([0.0]), 32)
        >>> cov.shape, bool(cov[0, 16, 16] == 1), bool(cov[0, 0, 0] == 0)
        (torch.Size([1, 32, 32]), True, True)
    """
    grid = pixel_grid(size, device=center.device, dtype=center.dtype)
    lx, ly = _local_coords(grid, center, angle)
    scale_ = scale[:, None, None]
    lx, ly = lx / scale_, ly / scale_
    out = torch.empty_like(lx)
    for k in kind.unique().tolist():
        idx = (kind == k).nonzero().squeeze(1)
        out[idx] = shape_sdf(int(k), lx[idx], ly[idx]) * scale_[idx]
    return (0.5 - out).clamp(0.0, 1.0)


def texture_pattern(kind: Tensor, frequency: Tensor, angle: Tensor, phase: Tensor, noise: Tensor) -> Tensor:
    """Procedural texture intensity in [0, 1] for each sample (to be mapped between two colours).

    Families (:data:`TEXTURES`): ``flat`` (0 everywhere), ``stripes`` :math:`\\sigma(4\\sin(2\\pi f u + \\phi))`,
    ``checkerboard`` (product of two rotated square waves), ``dots`` (a rotated lattice of discs), ``grain``
    (band-limited noise), ``waves`` :math:`\\tfrac12 + \\tfrac12\\sin(2\\pi f v + 1.5\\sin(2\\pi f u / 2))`; with
    :math:`(u, v)` the image coordinates in [0, 1] rotated by ``angle`` and :math:`f` in cycles per image.

    Args:
        kind: :math:`(N,)` indices into :data:`TEXTURES`.
        frequency: :math:`(N,)` cycles per image.
        angle: :math:`(N,)` orientation in radians.
        phase: :math:`(N,)` phase in radians.
        noise: :math:`(N, H, W)` white noise in [0, 1] (used by ``grain``; its size sets the image size).

    Returns:
        :math:`(N, H, W)` intensities in [0, 1].

    Examples:
        >>> n = torch.rand(2, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> t = texture_pattern(torch.tensor([1, 4]), torch.tensor([3.0, 3.0]), torch.zeros(2), torch.zeros(2), n)
        >>> t.shape, bool(t.min() >= 0), bool(t.max() <= 1)
        (torch.Size([2, 16, 16]), True, True)
    """
    size = noise.shape[-1]
    grid = pixel_grid(size, device=noise.device, dtype=noise.dtype) / size
    center = torch.full((len(kind), 2), 0.5, dtype=noise.dtype, device=noise.device)
    u, v = _local_coords(grid, center, angle)
    f, ph = frequency[:, None, None], phase[:, None, None]
    out = torch.zeros_like(noise)
    for k in kind.unique().tolist():
        idx = (kind == k).nonzero().squeeze(1)
        name = TEXTURES[int(k)]
        uu, vv, ff, pp = u[idx], v[idx], f[idx], ph[idx]
        if name == "flat":
            pattern = torch.zeros_like(uu)
        elif name == "stripes":
            pattern = torch.sigmoid(4 * torch.sin(2 * math.pi * ff * uu + pp))
        elif name == "checkerboard":
            wave = torch.sin(2 * math.pi * ff * uu + pp) * torch.sin(2 * math.pi * ff * vv + pp)
            pattern = torch.sigmoid(6 * wave)
        elif name == "dots":
            cu = torch.remainder(ff * uu + pp / (2 * math.pi), 1.0) - 0.5
            cv = torch.remainder(ff * vv, 1.0) - 0.5
            # one-pixel ramp at the disc's edge: a cell spans size / f pixels
            pattern = torch.sigmoid((0.3 - torch.sqrt(cu**2 + cv**2)) * 2 * size / ff)
        elif name == "grain":
            smooth = F.avg_pool2d(noise[idx, None], 3, stride=1, padding=1, count_include_pad=False)[:, 0]
            pattern = ((smooth - 0.5) * 3 + 0.5).clamp(0, 1)
        elif name == "waves":
            pattern = 0.5 + 0.5 * torch.sin(2 * math.pi * ff * vv + 1.5 * torch.sin(math.pi * ff * uu) + pp)
        else:  # pragma: no cover - guarded by the dataset
            raise ValueError(f"kind must index TEXTURES (0..{len(TEXTURES) - 1}), got {k}")
        out[idx] = pattern
    return out


def colorize(pattern: Tensor, low: Tensor, high: Tensor) -> Tensor:
    """Map intensities :math:`(N, H, W)` to RGB between two colours :math:`(N, 3)`: :math:`c_0 (1 - t) + c_1 t`.

    Returns :math:`(N, 3, H, W)`.
    """
    t = pattern[:, None]
    return low[:, :, None, None] * (1 - t) + high[:, :, None, None] * t


def mask_to_box(mask: Tensor) -> Tensor:
    """Bounding boxes ``(x_min, y_min, x_max, y_max)`` of :math:`(N, H, W)` masks (torchvision order, max exclusive).

    Empty masks give ``(0, 0, 0, 0)``.

    Examples:
        >>> m = torch.zeros(1, 8, 8, dtype=torch.bool); m[0, 2:5, 3:7] = True
        >>> mask_to_box(m).tolist()
        [[3.0, 2.0, 7.0, 5.0]]
    """
    _, h, w = mask.shape
    cols, rows = mask.any(dim=1), mask.any(dim=2)
    ar_w = torch.arange(w, device=mask.device)
    ar_h = torch.arange(h, device=mask.device)
    x_min = torch.where(cols, ar_w, w).min(dim=1).values
    x_max = torch.where(cols, ar_w + 1, 0).max(dim=1).values
    y_min = torch.where(rows, ar_h, h).min(dim=1).values
    y_max = torch.where(rows, ar_h + 1, 0).max(dim=1).values
    empty = ~cols.any(dim=1)
    box = torch.stack((x_min, y_min, x_max, y_max), dim=1).float()
    box[empty] = 0.0
    return box


__all__ = ["SHAPES", "TEXTURES", "colorize", "mask_to_box", "pixel_grid", "shape_coverage", "shape_sdf",
           "texture_pattern"]
