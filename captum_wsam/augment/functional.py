r"""Pure tensor maths of the augmentations, one module per concept, re-exported here under the old path.

- :mod:`captum_wsam.augment.patch_features`: the Laplacian pyramid (Burt and Adelson 1983), patch statistics and
  symmetric matrix powers :math:`A^{\pm 1/2}`: the fixed, weight-free encoder;
- :mod:`captum_wsam.augment.linear_transfer_functional`: linear style transfer (Li, Liu, Kautz and Yang 2019,
  arXiv:1808.04537) with the α-mixed whitening–colouring statistics of the WSAM seed,

  .. math:: o = U\big(T\,(C(c) - \mu_c)\big) + \alpha\,\mu_c + (1 - \alpha)\,\mu_z, \qquad
            T = \big(\alpha\,\Sigma_c + (1 - \alpha)\,\Sigma_z\big)^{1/2}\,\Sigma_c^{-1/2}

  (**α = 1 returns the input, α = 0 applies the full style**);
- :mod:`captum_wsam.augment.probes_functional`: the probes of Zhang and Zhu (2019, arXiv:1905.09797), saturation
  :math:`x \mapsto \tfrac12\big(\operatorname{sign}(2x-1)\,|2x-1|^{2/p} + 1\big)` and :math:`n\times n` patch
  shuffling.

``from captum_wsam.augment.functional import linear_style_transfer`` (and every other name below) keeps working.

Examples:
    >>> import torch
    >>> x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    >>> style = content_statistics(torch.rand(1, 3, 16, 16, dtype=torch.float64), whiten=False)
    >>> same = linear_style_transfer(x, style.means, style.covariances, torch.ones(1, dtype=torch.float64))
    >>> bool(torch.allclose(same, x, atol=1e-8)), patch_shuffle(x, (2, 2), torch.tensor([[3, 2, 1, 0]])).shape
    (True, torch.Size([1, 3, 16, 16]))
"""

from __future__ import annotations

from .linear_transfer_functional import (
    ContentStatistics,
    apply_patch_transform,
    content_statistics,
    linear_style_transfer,
    patch_transform_kernel,
    stylize_from_statistics,
    whitening_colouring,
)
from .patch_features import (
    gather_patches,
    laplacian_collapse,
    laplacian_pyramid,
    patch_statistics,
    pyramid_depth,
    regularize_covariance,
    sample_positions,
    symmetric_inverse_sqrt,
    symmetric_sqrt,
)
from .probes_functional import patch_shuffle, saturation

__all__ = [
    "ContentStatistics",
    "apply_patch_transform",
    "content_statistics",
    "gather_patches",
    "laplacian_collapse",
    "laplacian_pyramid",
    "linear_style_transfer",
    "patch_shuffle",
    "patch_statistics",
    "patch_transform_kernel",
    "pyramid_depth",
    "regularize_covariance",
    "sample_positions",
    "saturation",
    "stylize_from_statistics",
    "symmetric_inverse_sqrt",
    "symmetric_sqrt",
    "whitening_colouring",
]
