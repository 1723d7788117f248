r"""TextureTransfer: the weight-free, texture-swapping default backend of :class:`~captum_wsam.augment.StyleAugment`.

Chen and Schmidt (2016), "Fast Patch-based Style Transfer of Arbitrary Style", arXiv:1612.04337 ("style swap"),
done on the detail bands of a Laplacian pyramid with a soft, noise-injected match and windowed overlap-add
(:mod:`captum_wsam.augment.texture_functional` has the maths), colour by whitening–colouring of the low-pass
residual, and a band-by-band, texture-first mix with the input:

.. math:: t = \big([C_l(z)]_{l<n_c},\ [\operatorname{swap}(C_l(x), C_l(z))]_{n_c\le l<n-1},\
          \operatorname{wct}(C_{n-1}(x), C_{n-1}(z))\big),\qquad
          o_\alpha = \operatorname{clamp}_{[0,1]}\,U\big([(1-s_l)\,C_l(x) + s_l\,t_l]_l\big)

with :math:`s_l = \min(1, g(1-\alpha))` on the detail bands ("texture first", :math:`g = 2`) and
:math:`s_{n-1} = 1-\alpha` on the residual (colours); the finest :math:`n_c` detail bands (default 1:
pixel-scale grain) are copied from the style.

Unlike :class:`~captum_wsam.augment.LinearStyleTransfer`, whose output is a linear map of the content's own patch
features (it recolours and re-contrasts, but cannot draw stripes where there were dots, nor texture where the content
is flat), every detail patch of the output here is a patch of the style image: the texture is replaced, the shapes
stay where the content's strong edges are (they match style patches with the same edges). A style vector is the
style image itself at ``tile_size`` × ``tile_size`` pixels, flattened; it is resized to the content's size when
applied, so a style keeps its scale relative to the image.

**α is the weight of the image's own style: α = 1 returns the input, α = 0 applies the full style.**
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_images, check_in_range, check_positive_int, check_tensor
from .backend import StyleBackendModule
from .functional import laplacian_pyramid
from .texture_functional import texture_first_mix, texture_swap

if TYPE_CHECKING:
    from .style_bank import StyleBank


@dataclass(frozen=True)
class TextureContent:
    """What a stylization needs from the content images, computed once (:meth:`TextureTransfer.prepare`).

    Attributes:
        image: :math:`(B, 3, H, W)` the content.
        bands: its Laplacian pyramid, ``n`` tensors :math:`(B, 3, H_l, W_l)`.
    """

    image: Tensor
    bands: list[Tensor]


@functools.lru_cache(maxsize=4)
def _default_bank_vectors(tile_size: int) -> tuple[Tensor, tuple[str, ...]]:
    # Cached because every StyleAugment() builds a bank; StyleBank copies the tensor, so the cache is never exposed.
    from .style_bank import procedural_styles

    images, names = procedural_styles(count=48, size=tile_size)
    return images.flatten(1), tuple(names)


class TextureTransfer(StyleBackendModule):
    r"""Weight-free texture transfer: soft patch swap on Laplacian detail bands, colour transfer on the residual.

    .. math:: o_\alpha = \operatorname{clamp}_{[0,1]}\,U\big([(1-s_l)\,C_l(x) + s_l\,t_l]_l\big),\qquad
              s_l = \min\big(1, g(1-\alpha)\big)\ (l < n-1),\quad s_{n-1} = 1-\alpha

    where :math:`t` is the stylized pyramid: the style's own finest :math:`n_c` bands, the swapped coarser detail
    bands and the colour-transferred residual,
    with :math:`\operatorname{swap}` the soft, noise-injected style swap of Chen and Schmidt (2016) on
    :math:`k\times k` patches at stride :math:`k/2` (:func:`~captum_wsam.augment.texture_functional.soft_patch_swap`)
    and :math:`\operatorname{wct}` RGB whitening–colouring. Deterministic (the matching noise and the style-patch
    subset are fixed pseudo-random draws), differentiable with respect to the image and α (and the style vector), no
    NaN on flat images, output in [0, 1].

    **α convention (the WSAM seed's): α is the weight of the image's own style. α = 1 gives back the input,
    α = 0 applies the full style.**

    Args:
        tile_size: side of the stored style image; a style vector has :math:`3\,T^2` entries.
        patch_size: :math:`k`, even, >= 2 (the texture element that is swapped, per pyramid level).
        levels: maximum pyramid depth :math:`n` (small images use fewer levels).
        max_style_patches: style patches matched per level and sample.
        temperature: :math:`\tau` of the soft match; smaller is closer to the hard swap.
        noise_level: :math:`\lambda`, the matching noise relative to the style's patch norm: 0 matches by structure
            only (a flat region stays flat), larger values draw more random style patches.
        copy_levels: finest detail levels taken from the style as they are instead of swapped (pixel-scale grain;
            1 costs a quarter of swapping every level).
        texture_gain: :math:`g`: the detail bands take the style with weight :math:`\min(1, g(1-\alpha))`, the
            colours with :math:`1-\alpha` (texture first; 1 is a plain cross-fade).
        edge_threshold: keep the content's own detail along the large-scale edges of its low-pass image (its
            shapes; :func:`~captum_wsam.augment.texture_functional.edge_weight`), ``None`` to swap everywhere.

    Examples:
        >>> transfer = TextureTransfer()
        >>> styles = transfer.encode_styles(torch.rand(2, 3, 64, 64))
        >>> out = transfer(torch.rand(2, 3, 32, 32), styles, torch.tensor([0.0, 0.5]))
        >>> styles.shape, out.shape, bool(out.min() >= 0) and bool(out.max() <= 1)
        (torch.Size([2, 49152]), torch.Size([2, 3, 32, 32]), True)
    """

    def __init__(
        self,
        tile_size: int = 128,
        patch_size: int = 8,
        levels: int = 3,
        max_style_patches: int = 256,
        temperature: float = 0.02,
        noise_level: float = 0.5,
        copy_levels: int = 1,
        texture_gain: float = 2.0,
        edge_threshold: float | None = 0.4,
    ) -> None:
        super().__init__()
        check_positive_int(tile_size, "tile_size")
        check_positive_int(patch_size, "patch_size")
        if patch_size < 2 or patch_size % 2:
            raise ValueError(f"patch_size must be even and >= 2, got {patch_size}")
        if tile_size < 2 * patch_size:
            raise ValueError(f"tile_size must be at least 2 * patch_size = {2 * patch_size}, got {tile_size}")
        check_positive_int(levels, "levels")
        check_positive_int(max_style_patches, "max_style_patches")
        check_in_range(temperature, "temperature", 0.0, None, low_inclusive=False)
        check_in_range(noise_level, "noise_level", 0.0)
        check_positive_int(copy_levels, "copy_levels", allow_zero=True)
        check_in_range(texture_gain, "texture_gain", 1.0)
        if edge_threshold is not None:
            check_in_range(edge_threshold, "edge_threshold", 0.0, None, low_inclusive=False)
        self.tile_size = tile_size
        self.patch_size = patch_size
        self.levels = levels
        self.max_style_patches = max_style_patches
        self.temperature = float(temperature)
        self.noise_level = float(noise_level)
        self.copy_levels = copy_levels
        self.texture_gain = float(texture_gain)
        self.edge_threshold = None if edge_threshold is None else float(edge_threshold)
        self.channels = 3

    @property
    def style_dim(self) -> int:
        """Length of a style vector: :math:`3\\,T^2` (the style tile's pixels)."""
        return self.channels * self.tile_size**2

    @property
    def config(self) -> dict[str, Any]:
        """What a :class:`~captum_wsam.augment.StyleBank` must match to be used with this transfer."""
        return {"backend": "texture", "tile_size": self.tile_size}

    def encode_styles(self, images: Tensor) -> Tensor:
        r"""Style vectors: the style images resized (antialiased) to ``tile_size`` × ``tile_size``, flattened.

        Args:
            images: :math:`(S, 3, H, W)` in [0, 1].

        Returns:
            :math:`(S, 3\,T^2)`.
        """
        check_images(images, "images", channels=self.channels)
        tiles = F.interpolate(images, size=(self.tile_size, self.tile_size), mode="bilinear", antialias=True,
                              align_corners=False)
        return tiles.clamp(0.0, 1.0).flatten(1)

    def decode_styles(self, styles: Tensor) -> Tensor:
        """Style tiles :math:`(B, 3, T, T)` in [0, 1] from style vectors :math:`(B, 3T^2)` (noise clamped away)."""
        check_tensor(styles, "styles", ndim=2, floating=True)
        if styles.shape[1] != self.style_dim:
            raise ValueError(f"styles must have {self.style_dim} columns for {self.config}, got {tuple(styles.shape)}")
        return styles.view(-1, self.channels, self.tile_size, self.tile_size).clamp(0.0, 1.0)

    def _depth(self, height: int, width: int) -> int:
        """Pyramid depth: at most ``levels``, every swapped detail band at least ``patch_size`` wide (the residual
        is only recoloured, so it may be smaller)."""
        depth, side = 1, min(height, width)
        while depth < self.levels and side >= self.patch_size:
            side, depth = (side + 1) // 2, depth + 1
        return depth

    def prepare(self, inputs: Tensor) -> TextureContent:
        """Content side, computed once per image: its Laplacian pyramid."""
        check_images(inputs, "inputs", channels=self.channels)
        return TextureContent(inputs, laplacian_pyramid(inputs, self._depth(*inputs.shape[-2:])))

    def render(self, content: TextureContent, styles: Tensor, alpha: Tensor) -> Tensor:
        """Stylize prepared content with per-sample style vectors :math:`(B, V)` and α :math:`(B,)`."""
        image = content.image
        tiles = self.decode_styles(styles).to(image)
        style = F.interpolate(tiles, size=tuple(image.shape[-2:]), mode="bilinear", antialias=True,
                              align_corners=False)
        style_bands = laplacian_pyramid(style, len(content.bands))
        styled = texture_swap(content.bands, style_bands, self.copy_levels, self.patch_size,
                              self.max_style_patches, self.temperature, self.noise_level)
        alpha = alpha.to(image)
        out = texture_first_mix(content.bands, styled, alpha, self.texture_gain, self.edge_threshold).clamp(0.0, 1.0)
        return torch.where((alpha == 1).view(-1, 1, 1, 1), image, out)

    def default_style_bank(self) -> StyleBank:
        """The built-in bank: 48 procedural texture styles at ``tile_size`` pixels
        (:func:`~captum_wsam.augment.style_bank.procedural_styles`), made on the spot (no download), once per process
        and tile size; every call returns a fresh copy."""
        from .style_bank import StyleBank

        vectors, names = _default_bank_vectors(self.tile_size)
        return StyleBank(vectors, names, self.config)

    def extra_repr(self) -> str:
        return (f"tile_size={self.tile_size}, patch_size={self.patch_size}, levels={self.levels}, "
                f"max_style_patches={self.max_style_patches}, temperature={self.temperature}, "
                f"noise_level={self.noise_level}, copy_levels={self.copy_levels}, texture_gain={self.texture_gain}, "
                f"edge_threshold={self.edge_threshold}")


__all__ = ["TextureContent", "TextureTransfer"]
