"""How removed pixels are filled: RISE's blurred canvas and ROAD's noisy linear imputation.

- *blur* -- Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation of Black-box Models",
  BMVC, arXiv:1806.07421. Insertion starts from :math:`\\text{blur}(x)_c = x_c * g` with a Gaussian kernel :math:`g`
  (side 11, :math:`\\sigma = 5`).
- *noisy linear imputation* -- Rong, Leemann, Nguyen, Fiedler, Seidel, Kasneci & Kasneci (2022), "A Consistent and
  Efficient Evaluation Strategy for Attribution Methods", ICML, arXiv:2202.00449 (ROAD). Each removed pixel is the
  weighted mean of its 8 neighbours (1/6 direct, 1/12 diagonal), solved jointly over the removed set :math:`R`, plus
  Gaussian noise:

  .. math::

      \\Big(\\sum_{j \\in \\mathcal N(i)} w_{ij}\\Big) u_i - \\sum_{j \\in \\mathcal N(i) \\cap R} w_{ij} u_j
      = \\sum_{j \\in \\mathcal N(i) \\setminus R} w_{ij} x_j \\quad (i \\in R), \\qquad
      \\tilde x_i = u_i + \\varepsilon_i, \\; \\varepsilon_i \\sim \\mathcal N(0, \\sigma^2)

  solved for all images and channels at once by Jacobi-preconditioned conjugate gradients on convolutions.

Used by :func:`captum_wsam.metrics.faithfulness.deletion_insertion` and :func:`captum_wsam.metrics.faithfulness.road`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_images, check_in_range, check_positive_int, check_type

#: ROAD imputes up to this many elements (images x channels x pixels) in one conjugate-gradient solve.
IMPUTATION_ELEMENTS = 2**23
ROAD_NEIGHBOUR_WEIGHTS = ((1 / 12, 1 / 6, 1 / 12), (1 / 6, 0.0, 1 / 6), (1 / 12, 1 / 6, 1 / 12))


def gaussian_blur(inputs: Tensor, kernel_size: int = 11, sigma: float = 5.0) -> Tensor:
    """Per-channel Gaussian blur with zero padding: RISE's insertion canvas (kernel 11, :math:`\\sigma = 5`).

    .. math:: \\text{blur}(x)_c = x_c * g, \\qquad g_{ij} \\propto \\exp\\!\\big(-(i^2 + j^2) / 2\\sigma^2\\big)

    Args:
        inputs: :math:`(N, C, H, W)` images.
        kernel_size: odd side of the kernel.
        sigma: standard deviation in pixels.

    Returns:
        Shape and dtype of ``inputs``.

    Examples:
        >>> gaussian_blur(torch.rand(2, 3, 16, 16)).shape
        torch.Size([2, 3, 16, 16])
    """
    check_images(inputs, "inputs")
    check_positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be odd, got {kernel_size}")
    check_in_range(sigma, "sigma", 0.0, None, low_inclusive=False)
    offsets = torch.arange(kernel_size, dtype=inputs.dtype, device=inputs.device) - kernel_size // 2
    line = torch.exp(-(offsets**2) / (2 * sigma**2))
    kernel = line[:, None] * line[None, :]
    kernel = (kernel / kernel.sum()).expand(inputs.shape[1], 1, kernel_size, kernel_size)
    return F.conv2d(inputs, kernel, padding=kernel_size // 2, groups=inputs.shape[1])


def _neighbour_sum(values: Tensor, weights: Tensor) -> Tensor:
    """:math:`\\sum_j w_{ij} v_j` over the 8 neighbours of every pixel (zero outside the image), per channel."""
    b, c, h, w = values.shape
    return F.conv2d(values.reshape(b * c, 1, h, w), weights, padding=1).reshape(b, c, h, w)


def noisy_linear_imputation(
    inputs: Tensor,
    removed: Tensor,
    noise: float = 0.01,
    generator: torch.Generator | None = None,
    tol: float = 1e-5,
    max_iter: int | None = None,
) -> Tensor:
    """ROAD's noisy linear imputation (Rong et al. 2022, arXiv:2202.00449): removed pixels from their neighbours.

    .. math::

        d_i u_i - \\sum_{j \\in \\mathcal N(i) \\cap R} w_{ij} u_j = \\sum_{j \\in \\mathcal N(i) \\setminus R} w_{ij}
        x_j, \\quad d_i = \\sum_{j \\in \\mathcal N(i)} w_{ij}, \\qquad
        \\tilde x = x \\odot (1 - r) + (u + \\sigma \\varepsilon) \\odot r

    with weights :math:`w = 1/6` for the 4 direct and :math:`1/12` for the 4 diagonal neighbours inside the image, and
    :math:`r` the removed pixels (all channels). Each channel of each image is one symmetric positive definite system
    (as long as one pixel is kept), solved by Jacobi-preconditioned conjugate gradients on all images and channels at
    once (in float32, or the inputs' dtype if wider) until the residual is below ``tol`` times the right-hand side;
    the default leaves errors around :math:`10^{-5}`, far below the noise.

    Args:
        inputs: :math:`(N, C, H, W)` images.
        removed: boolean :math:`(N, H, W)`, the pixels to impute; at least one pixel per image must be kept.
        noise: :math:`\\sigma`, standard deviation of the Gaussian noise added to imputed pixels.
        generator: random generator of the noise (``None``: the global one).
        tol: relative residual at which conjugate gradients stop.
        max_iter: iteration cap (default :math:`H W`, the bound of exact arithmetic).

    Returns:
        Shape and dtype of ``inputs``; kept pixels are unchanged.

    Examples:
        >>> x = torch.ones(1, 3, 8, 8)
        >>> removed = torch.zeros(1, 8, 8, dtype=torch.bool); removed[0, 2:6, 2:6] = True
        >>> imputed = noisy_linear_imputation(x, removed, noise=0.0)
        >>> bool(torch.allclose(imputed, x, atol=1e-6))
        True
    """
    check_images(inputs, "inputs")
    check_type(removed, "removed", Tensor)
    if removed.dtype != torch.bool or removed.shape != (inputs.shape[0], *inputs.shape[2:]):
        raise ValueError(f"removed must be a boolean tensor of shape {(inputs.shape[0], *inputs.shape[2:])}, got "
                         f"shape {tuple(removed.shape)} and dtype {removed.dtype}")
    if bool(removed.flatten(1).all(1).any()):
        raise ValueError("removed must keep at least one pixel per image (nothing to impute from)")
    check_in_range(noise, "noise", 0.0, None)
    check_in_range(tol, "tol", 0.0, None, low_inclusive=False)
    if max_iter is not None:
        check_positive_int(max_iter, "max_iter")
    h, w = inputs.shape[-2:]
    dtype = torch.promote_types(inputs.dtype, torch.float32)
    tiny = torch.finfo(dtype).tiny
    x = inputs.detach().to(dtype)
    weights = torch.tensor(ROAD_NEIGHBOUR_WEIGHTS, dtype=dtype, device=x.device)[None, None]
    r = removed[:, None].to(x.device, dtype)
    degree = _neighbour_sum(torch.ones(1, 1, h, w, dtype=dtype, device=x.device), weights)

    def operator(u: Tensor) -> Tensor:
        return r * (degree * u - _neighbour_sum(r * u, weights))

    def dot(a: Tensor, b: Tensor) -> Tensor:
        return (a * b).sum((2, 3), keepdim=True)

    rhs = r * _neighbour_sum((1 - r) * x, weights)
    solution = torch.zeros_like(x)
    residual = rhs.clone()
    precondition = r / degree
    z = precondition * residual
    direction = z.clone()
    rz = dot(residual, z)
    threshold = tol * dot(rhs, rhs).sqrt()
    for _ in range(max_iter or h * w):
        if bool((dot(residual, residual).sqrt() <= threshold).all()):
            break
        product = operator(direction)
        curvature = dot(direction, product)
        step = torch.where(curvature > 0, rz / curvature.clamp(min=tiny), 0.0)
        solution = solution + step * direction
        residual = residual - step * product
        z = precondition * residual
        rz_next = dot(residual, z)
        direction = z + torch.where(rz > 0, rz_next / rz.clamp(min=tiny), 0.0) * direction
        rz = rz_next
    if noise > 0:
        epsilon = torch.randn(x.shape, generator=generator, dtype=dtype, device="cpu").to(x.device)
        solution = solution + noise * epsilon
    return (x * (1 - r) + solution * r).to(inputs.dtype)


__all__ = ["IMPUTATION_ELEMENTS", "ROAD_NEIGHBOUR_WEIGHTS", "gaussian_blur", "noisy_linear_imputation"]
