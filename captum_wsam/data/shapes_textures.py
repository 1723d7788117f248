"""ShapesTextures: a procedural, seeded image data set with independent shape and texture cues.

Built for this package's tests, tutorials and demo (no download): each image shows one anti-aliased object of one of
six shapes at a random position, scale and rotation, filled with one of six procedural textures, on a background
with an independently drawn texture. The two cues can be labelled separately (``label_by``), aligned
(``cue_agreement``) or put in conflict (``cue_conflict``, as in Geirhos et al. 2019, "ImageNet-trained CNNs are biased
towards texture; increasing shape bias improves accuracy and robustness", arXiv:1811.12231). Every item also carries
the object's mask and bounding box (weak saliency for SAT, Mangla et al. 2020) and, with ``label_noise``, the clean
label next to the noisy one (the noisy-label study of LP-A3, Yang et al. 2022).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from .._checks import check_choice, check_in_range, check_positive_int, check_type
from .functional import SHAPES, TEXTURES, colorize, mask_to_box, shape_coverage, texture_pattern

_CHUNK = 512  # samples drawn from one generator: sample i does not depend on n


def _chunk_generator(seed: int, chunk: int) -> torch.Generator:
    mixed = (seed * 0x9E3779B97F4A7C15 + (chunk + 1) * 0xBF58476D1CE4E5B9) % (2**63 - 1)
    return torch.Generator().manual_seed(mixed)


def _sample_texture_params(kind: Tensor, g: torch.Generator) -> dict[str, Tensor]:
    n = len(kind)
    return {
        "kind": kind,
        "frequency": 3.0 + 7.0 * torch.rand(n, generator=g),
        "angle": math.pi * torch.rand(n, generator=g),
        "phase": 2 * math.pi * torch.rand(n, generator=g),
    }


def _sample_colors(light: Tensor, g: torch.Generator) -> tuple[Tensor, Tensor]:
    # Two colours per sample inside the dark half [0, 0.5] or the light half [0.5, 1] of the cube: low in the
    # lower part of that half, high in the upper part, so every texture stays visible.
    n = len(light)
    offset = light.float()[:, None] * 0.5
    low = offset + 0.22 * torch.rand(n, 3, generator=g)
    high = offset + 0.3 + 0.2 * torch.rand(n, 3, generator=g)
    return low, high


def _grain_noise(seed: int, first_index: int, kinds: Tensor, size: int, stream: int) -> Tensor:
    # Per-sample generators for the only per-pixel randomness, drawn just for samples that use it, so that item i
    # does not depend on how many items are rendered with it.
    noise = torch.zeros(len(kinds), size, size)
    for j in (kinds == TEXTURES.index("grain")).nonzero().flatten().tolist():
        g = _chunk_generator(seed, -(2 * (first_index + j) + stream + 16))
        noise[j] = torch.rand(size, size, generator=g)
    return noise


def render_chunk(
    seed: int,
    chunk: int,
    count: int,
    size: int,
    cue_conflict: bool,
    cue_agreement: float,
    texture_shortcut: bool = False,
) -> dict:
    """Draw the first ``count`` items of chunk ``chunk`` (a pure function of its arguments).

    Parameters are sampled for the whole chunk of 512 (cheap) so that item ``i`` never depends on ``count``. With
    ``texture_shortcut`` the background takes the object's texture family (its own colours, frequency and
    orientation), so that texture covers the whole image; every other draw is unchanged.
    """
    g = _chunk_generator(seed, chunk)
    total = count
    count = _CHUNK
    n_shapes, n_textures = len(SHAPES), len(TEXTURES)
    shape = torch.randint(n_shapes, (count,), generator=g)
    texture = torch.randint(n_textures, (count,), generator=g)
    agree = torch.rand(count, generator=g) < cue_agreement
    other = (shape + 1 + torch.randint(n_textures - 1, (count,), generator=g)) % n_textures
    texture = other if cue_conflict else torch.where(agree, shape % n_textures, texture)
    background = torch.randint(n_textures, (count,), generator=g)
    if texture_shortcut:
        texture = other if cue_conflict else shape % n_textures
        background = texture
    scale = size * (0.2 + 0.12 * torch.rand(count, generator=g))
    margin = scale * 1.05 + 1
    center = margin[:, None] + (size - 2 * margin)[:, None] * torch.rand(count, 2, generator=g)
    angle = 2 * math.pi * torch.rand(count, generator=g)
    light_object = torch.rand(count, generator=g) < 0.5
    obj_params = _sample_texture_params(texture, g)
    bg_params = _sample_texture_params(background, g)
    obj_low, obj_high = _sample_colors(light_object, g)
    bg_low, bg_high = _sample_colors(~light_object, g)
    keep = slice(0, total)
    shape, texture, center, scale, angle = shape[keep], texture[keep], center[keep], scale[keep], angle[keep]
    obj_params = {k: v[keep] for k, v in obj_params.items()}
    bg_params = {k: v[keep] for k, v in bg_params.items()}
    obj_low, obj_high, bg_low, bg_high = obj_low[keep], obj_high[keep], bg_low[keep], bg_high[keep]
    obj_noise = _grain_noise(seed, chunk * _CHUNK, texture, size, 0)
    bg_noise = _grain_noise(seed, chunk * _CHUNK, bg_params["kind"], size, 1)

    coverage = shape_coverage(shape, center, scale, angle, size)
    obj = colorize(texture_pattern(noise=obj_noise, **obj_params), obj_low, obj_high)
    bg = colorize(texture_pattern(noise=bg_noise, **bg_params), bg_low, bg_high)
    image = bg + coverage[:, None] * (obj - bg)
    mask = coverage >= 0.5
    return {
        "image": (image.clamp(0, 1) * 255).round().to(torch.uint8),
        "mask": mask,
        "box": mask_to_box(mask),
        "shape": shape,
        "texture": texture,
    }


class ShapesTextures(Dataset):
    """Procedural RGB images of textured shapes on textured backgrounds, fully determined by ``seed``.

    Classes: ``SHAPES = ("circle", "square", "triangle", "star", "cross", "ring")`` and
    ``TEXTURES = ("flat", "stripes", "checkerboard", "dots", "grain", "waves")``; object and background textures and
    colours are drawn independently, the object always contrasting with the background (one is in the dark half of the
    colour cube, the other in the light half).

    Each item is ``(image, label, info)`` (or ``(image, label)`` with ``return_info=False``):

    - ``image``: float :math:`(3, H, W)` in [0, 1] (after ``transform`` if given);
    - ``label``: int, the (possibly noisy) label of the cue chosen by ``label_by``;
    - ``info``: dict with ``"mask"`` bool :math:`(1, H, W)` (object pixels), ``"box"`` float :math:`(4,)`
      ``(x_min, y_min, x_max, y_max)`` in pixels (max exclusive), ``"shape"`` and ``"texture"`` (the two cue labels,
      always both present), ``"clean_label"`` (label before noise) and ``"index"``.

    The default ``DataLoader`` collation turns ``info`` into a dict of batched tensors.

    Args:
        n: number of images.
        size: image side in pixels, 32 to 224.
        label_by: ``"shape"`` (default) or ``"texture"``.
        cue_conflict: draw the object's texture from a class different from its shape class (Geirhos-style
            cue-conflict set; read both labels from ``info``).
        cue_agreement: probability that the object's texture class equals its shape class (ignored with
            ``cue_conflict``); 1.0 makes both cues predictive, the training set of a shape-bias experiment.
        texture_shortcut: make texture the easier cue, as it is on ImageNet: the object's texture family is its
            shape class's (``TEXTURES[shape]``) and the background carries the same family (own colours, frequency,
            orientation), so texture fills the image while shape is one object. With ``cue_conflict`` object and
            background both carry the texture of a different class: the cue-conflict set of this setting.
            ``cue_agreement`` is ignored. A SmallCNN trained on it is texture-biased (shape bias well below 0.5).
        label_noise: fraction :math:`r` of labels replaced by a different class drawn uniformly (symmetric noise);
            exactly ``round(r * n)`` labels change. Clean labels stay in ``clean_targets``.
        seed: everything derives from it; item ``i`` does not depend on ``n``.
        transform: optional callable applied to the float image.
        return_info: return the ``info`` dict as third element.
        progress: show a progress bar while generating.

    Examples:
        >>> data = ShapesTextures(n=8, size=32, seed=0)
        >>> image, label, info = data[0]
        >>> image.shape, image.dtype, 0 <= label < 6, info["mask"].shape, info["box"].shape
        (torch.Size([3, 32, 32]), torch.float32, True, torch.Size([1, 32, 32]), torch.Size([4]))
        >>> bool((ShapesTextures(n=4, size=32, seed=0)[0][0] == image).all())
        True
    """

    shapes = SHAPES
    textures = TEXTURES

    def __init__(
        self,
        n: int = 2000,
        size: int = 64,
        label_by: str = "shape",
        cue_conflict: bool = False,
        cue_agreement: float = 0.0,
        texture_shortcut: bool = False,
        label_noise: float = 0.0,
        seed: int = 0,
        transform: Callable[[Tensor], Tensor] | None = None,
        return_info: bool = True,
        progress: bool = False,
    ) -> None:
        check_positive_int(n, "n")
        check_positive_int(size, "size")
        if not 32 <= size <= 224:
            raise ValueError(f"size must lie in [32, 224], got {size}")
        check_choice(label_by, "label_by", ("shape", "texture"))
        check_type(cue_conflict, "cue_conflict", bool)
        check_in_range(cue_agreement, "cue_agreement", 0.0, 1.0)
        check_type(texture_shortcut, "texture_shortcut", bool)
        check_in_range(label_noise, "label_noise", 0.0, 1.0)
        check_positive_int(seed, "seed", allow_zero=True)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        self.n, self.size, self.label_by, self.seed = n, size, label_by, seed
        self.cue_conflict, self.cue_agreement, self.label_noise = cue_conflict, cue_agreement, label_noise
        self.texture_shortcut = texture_shortcut
        self.transform, self.return_info = transform, return_info

        parts = []
        chunks = range(math.ceil(n / _CHUNK))
        for c in tqdm(chunks, desc="ShapesTextures", disable=not progress, leave=False):
            parts.append(render_chunk(
                seed, c, min(_CHUNK, n - c * _CHUNK), size, cue_conflict, cue_agreement, texture_shortcut
            ))
        self.images = torch.cat([p["image"] for p in parts])
        self.masks = torch.cat([p["mask"] for p in parts])
        self.boxes = torch.cat([p["box"] for p in parts])
        self.shape_labels = torch.cat([p["shape"] for p in parts])
        self.texture_labels = torch.cat([p["texture"] for p in parts])
        self.clean_targets = self.shape_labels if label_by == "shape" else self.texture_labels
        self.targets = flip_labels(self.clean_targets, label_noise, self.num_classes, seed)

    @property
    def classes(self) -> tuple[str, ...]:
        """Names of the classes of ``label_by``."""
        return SHAPES if self.label_by == "shape" else TEXTURES

    @property
    def num_classes(self) -> int:
        """Number of classes of ``label_by`` (6)."""
        return len(self.classes)

    @property
    def noisy(self) -> Tensor:
        """Bool :math:`(N,)`: which labels the label noise changed."""
        return self.targets != self.clean_targets

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[Tensor, int] | tuple[Tensor, int, dict[str, Any]]:
        if not -self.n <= index < self.n:
            raise IndexError(f"index must lie in [-{self.n}, {self.n - 1}], got {index}")
        index = index % self.n
        image = self.images[index].float() / 255.0
        if self.transform is not None:
            image = self.transform(image)
        label = int(self.targets[index])
        if not self.return_info:
            return image, label
        info = {
            "mask": self.masks[index][None],
            "box": self.boxes[index],
            "shape": int(self.shape_labels[index]),
            "texture": int(self.texture_labels[index]),
            "clean_label": int(self.clean_targets[index]),
            "index": index,
        }
        return image, label, info

    def tensors(self) -> tuple[Tensor, Tensor]:
        """All images as one float :math:`(N, 3, H, W)` tensor in [0, 1] and the labels :math:`(N,)` (no transform)."""
        return self.images.float() / 255.0, self.targets.clone()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n={self.n}, size={self.size}, label_by={self.label_by!r}, "
            f"cue_conflict={self.cue_conflict}, cue_agreement={self.cue_agreement}, "
            f"texture_shortcut={self.texture_shortcut}, label_noise={self.label_noise}, "
            f"seed={self.seed})"
        )


def flip_labels(labels: Tensor, rate: float, num_classes: int, seed: int) -> Tensor:
    """Symmetric label noise: exactly ``round(rate * N)`` labels, chosen at random, move to a different class.

    The new class is uniform over the ``num_classes - 1`` other classes.

    Examples:
        >>> y = torch.zeros(10, dtype=torch.long)
        >>> int((flip_labels(y, 0.3, 6, seed=0) != y).sum())
        3
    """
    check_in_range(rate, "rate", 0.0, 1.0)
    count = round(rate * len(labels))
    if count == 0:
        return labels.clone()
    g = _chunk_generator(seed, -7)
    chosen = torch.randperm(len(labels), generator=g)[:count]
    shift = 1 + torch.randint(num_classes - 1, (count,), generator=g)
    noisy = labels.clone()
    noisy[chosen] = (labels[chosen] + shift) % num_classes
    return noisy


def texture_swatches(kinds: Tensor, size: int = 64, seed: int = 0) -> Tensor:
    """Full-frame swatches of given texture families, drawn as :class:`ShapesTextures` draws its textures.

    Frequency, orientation, phase and the two colours (one random half of the colour cube) are random per swatch
    (seeded), so only the family is shared between swatches of one kind: the style images of a texture-transfer
    test, where a classifier must name the family whatever the colours.

    Args:
        kinds: :math:`(N,)` indices into ``TEXTURES``.
        size: side in pixels.
        seed: all randomness comes from it.

    Returns:
        :math:`(N, 3, \\text{size}, \\text{size})` float in [0, 1].

    Examples:
        >>> swatches = texture_swatches(torch.tensor([1, 3]), size=32)
        >>> swatches.shape, bool(swatches.min() >= 0), bool(swatches.max() <= 1)
        (torch.Size([2, 3, 32, 32]), True, True)
    """
    check_type(kinds, "kinds", Tensor)
    if kinds.dim() != 1 or kinds.is_floating_point() or (kinds.numel() and not 0 <= int(kinds.min()) <= int(
            kinds.max()) < len(TEXTURES)):
        raise ValueError(f"kinds must be a (N,) integer tensor of indices into TEXTURES, got {kinds!r}")
    check_positive_int(size, "size")
    g = _chunk_generator(seed, -3)
    kinds = kinds.long().cpu()
    params = _sample_texture_params(kinds, g)
    low, high = _sample_colors(torch.rand(len(kinds), generator=g) < 0.5, g)
    noise = _grain_noise(seed, 0, kinds, size, 2)
    return colorize(texture_pattern(noise=noise, **params), low, high).clamp(0.0, 1.0)


__all__ = ["ShapesTextures", "flip_labels", "render_chunk", "texture_swatches"]
