r"""LinearStyleTransfer: the weight-free default backend of :class:`~captum_wsam.augment.StyleAugment`.

Li, Liu, Kautz and Yang (2019), "Learning Linear Transformations for Fast Image and Video Style Transfer", CVPR,
arXiv:1808.04537 (the transfer used by the WSAM code of Moreno-Vera, Medina and Poco), with the α-mixed
whitening–colouring statistics of the WSAM seed and of Li et al. (2017), "Universal Style Transfer via Feature
Transforms", arXiv:1705.08086:

.. math::

    o = U\big(T\,(C(c) - \mu_c)\big) + \alpha\,\mu_c + (1-\alpha)\,\mu_z,\qquad
    T = \Sigma_t^{1/2}\Sigma_c^{-1/2},\qquad \Sigma_t = \alpha\,\Sigma_c + (1-\alpha)\,\Sigma_z .

The learned VGG encoder/decoder of the paper is replaced by a fixed linear pair that needs no weights: :math:`C`
cuts every Laplacian-pyramid level into :math:`k\times k\times3` patches and :math:`U` overlap-averages them back
(its exact inverse); see :mod:`captum_wsam.augment.linear_transfer_functional` for the maths. A style :math:`z`
is, per level, the patch mean :math:`\mu_z` and the colouring matrix :math:`\Sigma_z^{1/2}`, flattened into one
vector so that the Gaussian style noise of the seed, :math:`\hat z = \bar z + \mathcal N(0, \sigma^2)`, applies to
it directly (:math:`\Sigma_{\hat z} = \operatorname{sym}(\hat z_{\Sigma})^2` stays positive semi-definite).

**α is the weight of the image's own style: α = 1 returns the input, α = 0 applies the full style.**
"""

from __future__ import annotations

import functools
from typing import Any

import torch
from torch import Tensor

from .._checks import check_images, check_positive_int, check_tensor
from .backend import StyleBackendModule
from .linear_transfer_functional import ContentStatistics, content_statistics, stylize_from_statistics
from .patch_features import regularize_covariance
from .patch_features import symmetric_sqrt as _symmetric_sqrt
from .style_bank import StyleBank, procedural_styles


@functools.lru_cache(maxsize=4)
def _default_bank_vectors(patch_size: int, levels: int) -> tuple[Tensor, tuple[str, ...]]:
    # Cached because every StyleAugment() builds a bank; StyleBank copies the tensor, so the cache is never exposed.
    size = max(96, (patch_size + 1) * 2 ** (levels - 1))
    with torch.no_grad():
        images, names = procedural_styles(count=48, size=size)
        vectors = LinearStyleTransfer(patch_size, levels).encode_styles(images)
    return vectors, tuple(names)


class LinearStyleTransfer(StyleBackendModule):
    r"""Weight-free linear style transfer on multi-scale patch features (whitening–colouring, α-mixed statistics).

    .. math:: o = U\big(T\,(C(c)-\mu_c)\big) + \alpha\,\mu_c + (1-\alpha)\,\mu_z,\quad
              T = \big(\alpha\Sigma_c + (1-\alpha)\Sigma_z\big)^{1/2}\,\Sigma_c^{-1/2}

    at every Laplacian-pyramid level; each level costs one :math:`(2k-1)\times(2k-1)` convolution per image.
    Statistics are estimated on at most ``max_positions`` patches per level (a fixed pseudo-random subset, so the
    result is deterministic). Differentiable with respect to the image, the style vector and α; no NaN on flat
    images; output clamped to [0, 1].

    **α convention (the WSAM seed's): α is the weight of the image's own style. α = 1 gives back the input,
    α = 0 applies the full style.**

    Args:
        patch_size: :math:`k` (odd or even, >= 1); features have :math:`D = 3k^2` entries.
        levels: maximum pyramid depth (small images use fewer levels).
        max_positions: patches per level used for the content statistics.

    Examples:
        >>> transfer = LinearStyleTransfer()
        >>> styles = transfer.encode_styles(torch.rand(2, 3, 64, 64))
        >>> out = transfer(torch.rand(2, 3, 32, 32), styles, torch.tensor([0.0, 0.5]))
        >>> styles.shape, out.shape
        (torch.Size([2, 2268]), torch.Size([2, 3, 32, 32]))
    """

    def __init__(self, patch_size: int = 3, levels: int = 3, max_positions: int = 4096) -> None:
        super().__init__()
        check_positive_int(patch_size, "patch_size")
        check_positive_int(levels, "levels")
        check_positive_int(max_positions, "max_positions")
        self.patch_size = patch_size
        self.levels = levels
        self.max_positions = max_positions
        self.channels = 3

    @property
    def feature_dim(self) -> int:
        """:math:`D = 3k^2`, the length of one patch feature."""
        return self.channels * self.patch_size**2

    @property
    def style_dim(self) -> int:
        """Length of a style vector: :math:`L\\,(D + D^2)` (per level the mean and the colouring matrix)."""
        return self.levels * (self.feature_dim + self.feature_dim**2)

    @property
    def config(self) -> dict[str, Any]:
        """What a :class:`~captum_wsam.augment.StyleBank` must match to be used with this transfer."""
        return {"backend": "linear", "patch_size": self.patch_size, "levels": self.levels}

    def encode_styles(self, images: Tensor) -> Tensor:
        r"""Style vectors :math:`z = [\mu_z^{(l)}, \Sigma_z^{(l)\,1/2}]_l` of style images (all patches are used).

        Args:
            images: :math:`(S, 3, H, W)` in [0, 1] (statistics on at most 65,536 patches per level), large enough
                for ``levels`` pyramid levels
                (:math:`\min(H, W) \ge (k+1)\,2^{L-1}`).

        Returns:
            :math:`(S, L(D + D^2))`.
        """
        check_images(images, "images", channels=self.channels)
        stats = content_statistics(images, self.patch_size, self.levels, max_positions=65536, whiten=False)
        if len(stats.bands) != self.levels:
            need = (self.patch_size + 1) * 2 ** (self.levels - 1)
            raise ValueError(
                f"images must be at least {need}×{need} for {self.levels} pyramid levels, got {tuple(images.shape)}"
            )
        parts = []
        for mean, covariance in zip(stats.means, stats.covariances):
            parts += [mean, _symmetric_sqrt(covariance).flatten(1)]
        return torch.cat(parts, dim=1)

    def decode_styles(self, styles: Tensor) -> tuple[list[Tensor], list[Tensor]]:
        r"""Per-level means :math:`\mu_z` and regularized covariances :math:`\Sigma_z = \operatorname{sym}(R)^2` of
        style vectors (the inverse of :meth:`encode_styles` for noise-free vectors, up to the ridge).

        Args:
            styles: :math:`(B, L(D + D^2))`.

        Returns:
            ``(means, covariances)``: ``L`` tensors :math:`(B, D)` and ``L`` tensors :math:`(B, D, D)`.
        """
        check_tensor(styles, "styles", ndim=2, floating=True)
        if styles.shape[1] != self.style_dim:
            raise ValueError(f"styles must have {self.style_dim} columns for {self.config}, got {tuple(styles.shape)}")
        dim = self.feature_dim
        means, covariances = [], []
        for level in styles.split(dim + dim * dim, dim=1):
            root = level[:, dim:].reshape(-1, dim, dim)
            root = (root + root.transpose(1, 2)) / 2
            means.append(level[:, :dim])
            covariances.append(regularize_covariance(root @ root))
        return means, covariances

    def prepare(self, inputs: Tensor) -> ContentStatistics:
        """Content side, computed once per image: pyramid, patch means, covariances and whitening matrices."""
        return content_statistics(inputs, self.patch_size, self.levels, self.max_positions)

    def render(self, content: ContentStatistics, styles: Tensor, alpha: Tensor) -> Tensor:
        """Stylize prepared content with per-sample style vectors :math:`(B, V)` and α :math:`(B,)`."""
        means, covariances = self.decode_styles(styles)
        return stylize_from_statistics(content, means, covariances, alpha)

    def default_style_bank(self) -> StyleBank:
        """The built-in bank: 48 procedural texture styles at 96×96 or larger
        (:func:`~captum_wsam.augment.style_bank.procedural_styles`), made on the spot (no download), encoded once per
        process and configuration; every call returns a fresh copy."""
        vectors, names = _default_bank_vectors(self.patch_size, self.levels)
        return StyleBank(vectors, names, self.config)

    def extra_repr(self) -> str:
        return f"patch_size={self.patch_size}, levels={self.levels}, max_positions={self.max_positions}"


__all__ = ["LinearStyleTransfer"]
