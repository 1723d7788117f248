r"""StyleBank: precomputed style vectors :math:`\bar z_i` for :class:`~captum_wsam.augment.StyleAugment`.

Jackson, Abarghouei, Bonner, Breckon and Obara (2019), "Style Augmentation: Data Augmentation via Style
Randomization", CVPR Workshops, arXiv:1809.05375, randomize the style of training images by drawing style vectors;
the WSAM seed (Moreno-Vera, Medina and Poco) draws them around precomputed style vectors,

.. math:: \hat z_i = \bar z_i + \mathcal N(0, \sigma^2),

which is what a bank stores: one row :math:`\bar z_i` per style, encoded by a transfer backend
(:meth:`LinearStyleTransfer.encode_styles <captum_wsam.augment.LinearStyleTransfer.encode_styles>`, or the
style predictor of :class:`~captum_wsam.augment.JacksonStyleNet`). The default bank of the weight-free backend is made
on the spot from the procedural textures of :mod:`captum_wsam.data.functional` (no download). Banks are saved as
plain tensors and loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_positive_int, check_tensor, check_type
from ..data.functional import TEXTURES, colorize, texture_pattern

_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FORMAT_VERSION = 1


def procedural_styles(count: int = 48, size: int = 128, seed: int = 0) -> tuple[Tensor, list[str]]:
    r"""Style images made from two layers of the data module's procedural textures, each between two colours.

    .. math:: s = (1 - w)\,\big(c_0 (1 - t_1) + c_1 t_1\big) + w\,\big(c_2 (1 - t_2) + c_3 t_2\big)

    with :math:`t_1, t_2` two patterned texture families of :data:`~captum_wsam.data.functional.TEXTURES` (every
    ordered pair of distinct families except ``flat``, cycling), random frequencies, orientations, phases, mixing
    weight :math:`w`, and colour pairs with a dark :math:`c_0, c_2 \in [0, 0.45]^3` and a light
    :math:`c_1, c_3 \in [0.55, 1]^3` end, so that every style has contrast at every scale.

    Args:
        count: number of styles.
        size: image side in pixels.
        seed: all randomness comes from a generator seeded with it.

    Returns:
        ``(images, names)``: :math:`(\text{count}, 3, \text{size}, \text{size})` in [0, 1] and names such as
        ``"stripes+dots-07"``.

    Examples:
        >>> images, names = procedural_styles(count=4, size=32)
        >>> images.shape, names[0], bool(images.min() >= 0), bool(images.max() <= 1)
        (torch.Size([4, 3, 32, 32]), 'stripes+checkerboard-00', True, True)
    """
    check_positive_int(count, "count")
    check_positive_int(size, "size")
    g = torch.Generator().manual_seed(seed)
    patterned = torch.tensor([i for i, name in enumerate(TEXTURES) if name != "flat"])
    n = len(patterned)
    index = torch.arange(count)
    first_slot = index % n
    first = patterned[first_slot]
    second = patterned[(first_slot + 1 + (index // n) % (n - 1)) % n]

    def layer(kind: Tensor) -> Tensor:
        frequency = 2.0 + 14.0 * torch.rand(count, generator=g)
        angle = torch.pi * torch.rand(count, generator=g)
        phase = 2 * torch.pi * torch.rand(count, generator=g)
        noise = torch.rand(count, size, size, generator=g)
        pattern = texture_pattern(kind, frequency, angle, phase, noise)
        low, high = 0.45 * torch.rand(count, 3, generator=g), 0.55 + 0.45 * torch.rand(count, 3, generator=g)
        return colorize(pattern, low, high)

    weight = (0.25 + 0.5 * torch.rand(count, generator=g)).view(count, 1, 1, 1)
    images = ((1 - weight) * layer(first) + weight * layer(second)).clamp(0.0, 1.0)
    names = [f"{TEXTURES[a]}+{TEXTURES[b]}-{i:02d}" for i, (a, b) in enumerate(zip(first.tolist(), second.tolist()))]
    return images, names


_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def _read_style_image(file: Path, size: int) -> Tensor:
    r"""Decode one style image to :math:`(3, \text{size}, \text{size})` float in [0, 1], shrinking while decoding.

    The centre square is cut and box-averaged to between ``size`` and ``2 size - 1`` pixels in the file's own
    integer mode (JPEG: the decoder's ``draft`` already reads a 1/2, 1/4 or 1/8 scale), so the float tensor never
    has the full resolution; an antialiased bilinear resize then gives ``size``. 16-bit greyscale (``I;16``/``I``)
    is scaled by :math:`1/65535`; palette images are expanded through their palette; transparent images (``LA``,
    ``RGBA``, palette with transparency) are composited over white, :math:`c = \alpha\,c_{\text{rgb}} + (1-\alpha)`.
    """
    from PIL import Image

    with Image.open(file) as handle:
        if handle.format == "JPEG":
            handle.draft("RGB" if handle.mode in ("RGB", "YCbCr") else handle.mode, (size, size))
        image = handle
        if image.mode == "P":
            image = image.convert("RGBA" if "transparency" in image.info else "RGB")
        elif image.mode == "PA":
            image = image.convert("RGBA")
        elif image.mode not in (*_SIXTEEN_BIT_MODES, "L", "LA", "RGB", "RGBA"):
            image = image.convert("RGB")  # 1, CMYK, YCbCr, F, ...
        width, height = image.size
        side = min(width, height)
        left, top = (width - side) // 2, (height - side) // 2
        reduced = side // max(1, side // size)
        image = image.resize((reduced, reduced), Image.Resampling.BOX, box=(left, top, left + side, top + side))
    import numpy as np

    scale = 65535.0 if image.mode in _SIXTEEN_BIT_MODES else 255.0
    pixels = torch.from_numpy(np.asarray(image).astype(np.float32)) / scale
    pixels = pixels.unsqueeze(-1) if pixels.dim() == 2 else pixels
    if image.mode in ("LA", "RGBA"):
        colour, alpha = pixels[..., :-1], pixels[..., -1:]
        pixels = alpha * colour + (1 - alpha)
    pixels = pixels.permute(2, 0, 1).expand(3, -1, -1).clamp(0.0, 1.0)
    return F.interpolate(pixels[None], size=(size, size), mode="bilinear", antialias=True, align_corners=False)[0]


def load_image_folder(folder: str | os.PathLike[str], size: int = 128) -> tuple[Tensor, list[str]]:
    r"""Read every PNG/JPEG image of ``folder`` (sorted by name) as RGB, centre-cropped to a square and resized.

    Large images are shrunk while they are decoded (JPEG ``draft``, then an integer box reduction before any float
    conversion), so an 8000×8000 file never becomes a full-size float tensor. 16-bit PNGs keep their range
    (scaled by :math:`1/65535`, not clipped), palette images go through their palette, and transparent pixels are
    composited over white.

    Args:
        folder: a folder of ``.png``/``.jpg``/``.jpeg`` files; other files are ignored.
        size: side of the square output in pixels.

    Returns:
        ``(images, names)``: :math:`(S, 3, \text{size}, \text{size})` float in [0, 1] and the file stems.

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> folder = tempfile.mkdtemp()
        >>> Image.new("I;16", (40, 30), 32768).save(f"{folder}/grey16.png")
        >>> images, names = load_image_folder(folder, size=8)
        >>> images.shape, names, round(float(images.mean()), 3)
        (torch.Size([1, 3, 8, 8]), ['grey16'], 0.5)
    """
    check_positive_int(size, "size")
    path = Path(folder)
    if not path.is_dir():
        raise ValueError(f"styles must be an image tensor or an existing folder, got {str(folder)!r}")
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in _IMAGE_SUFFIXES)
    if not files:
        raise ValueError(f"styles folder {str(folder)!r} holds no {'/'.join(_IMAGE_SUFFIXES)} image")
    images = []
    for file in files:
        try:
            images.append(_read_style_image(file, size))
        except (OSError, ValueError) as error:
            raise ValueError(f"style image {str(file)!r} cannot be decoded: {error}") from error
    return torch.stack(images), [f.stem for f in files]


class StyleBank(nn.Module):
    r"""A table of style vectors :math:`\bar z_i` (one row per style) with names and the backend configuration.

    The vectors are a buffer: they move with ``.to(device)`` and appear in ``state_dict()``. Sampling a style with
    noise (the seed's :math:`\hat z = \bar z + \mathcal N(0,\sigma^2)`) scales standard-normal noise per coordinate
    by ``style_noise`` times the spread of that coordinate across the bank (:attr:`noise_scale`).

    Args:
        vectors: :math:`(S, V)` float, :math:`S \ge 1`.
        names: ``S`` names (default ``style_0``, ...).
        config: the transfer configuration the vectors were encoded with (``transfer.config``).

    Examples:
        >>> from captum_wsam.augment import LinearStyleTransfer
        >>> bank = StyleBank.from_images(torch.rand(3, 3, 64, 64), transfer=LinearStyleTransfer())
        >>> len(bank), bank.vectors.shape, bank.names[0]
        (3, torch.Size([3, 2268]), 'style_0')
    """

    vectors: Tensor

    def __init__(
        self, vectors: Tensor, names: Sequence[str] | None = None, config: Mapping[str, Any] | None = None
    ) -> None:
        super().__init__()
        check_tensor(vectors, "vectors", ndim=2, floating=True)
        names = [f"style_{i}" for i in range(len(vectors))] if names is None else list(names)
        if len(names) != len(vectors) or not all(isinstance(name, str) for name in names):
            raise ValueError(f"names must be {len(vectors)} strings, got {names!r}")
        self.register_buffer("vectors", vectors.detach().clone())
        self.names = names
        self.config = dict(config or {})

    def __len__(self) -> int:
        return self.vectors.shape[0]

    @property
    def noise_scale(self) -> Tensor:
        """:math:`(V,)` standard deviation of every coordinate across the styles (zeros for a one-style bank)."""
        if len(self) < 2:
            return torch.zeros_like(self.vectors[0])
        return self.vectors.std(dim=0)

    def sample(self, index: Tensor, noise: Tensor | None = None, style_noise: float = 0.0) -> Tensor:
        r"""Style vectors :math:`\hat z = \bar z_{\text{index}} + \sigma_{\text{noise}}\,s \odot \varepsilon`.

        Args:
            index: :math:`(B,)` long style indices.
            noise: :math:`(B, V)` standard-normal draws :math:`\varepsilon` (``None``: no noise).
            style_noise: :math:`\sigma_{\text{noise}}`, relative to :attr:`noise_scale` :math:`s`.

        Returns:
            :math:`(B, V)`.
        """
        chosen = self.vectors[index.to(self.vectors.device)]
        if noise is None or style_noise == 0:
            return chosen
        return chosen + style_noise * self.noise_scale * noise.to(chosen)

    def check_compatible(self, transfer: nn.Module, name: str = "styles") -> None:
        """Raise ``ValueError`` unless the bank was encoded for ``transfer``'s configuration."""
        expected = getattr(transfer, "config", {})
        if self.config != expected:
            raise ValueError(f"{name} was built for {self.config}, but the transfer expects {expected}")
        if self.vectors.shape[1] != transfer.style_dim:
            raise ValueError(f"{name} vectors have {self.vectors.shape[1]} columns, the transfer needs "
                             f"{transfer.style_dim}")

    @classmethod
    def from_images(
        cls,
        images: Tensor | str | os.PathLike[str],
        transfer: nn.Module,
        names: Sequence[str] | None = None,
        size: int = 128,
    ) -> StyleBank:
        r"""Encode style images with a transfer backend: :math:`\bar z_i = \mathrm{encode\_styles}(s_i)`.

        The bank knows no backend of its own (a backend's ``default_style_bank`` builds a bank, so a default here
        would make the two modules import each other): pass the one the bank is for, e.g.
        ``LinearStyleTransfer()`` (the :class:`~captum_wsam.augment.StyleAugment` default) or a
        :class:`~captum_wsam.augment.JacksonStyleNet`.

        Args:
            images: a :math:`(S, 3, H, W)` tensor in [0, 1], or a folder of PNG/JPEG files resized to ``size``.
            transfer: the backend (:class:`~captum_wsam.augment.backend.StyleBackend`) whose ``encode_styles`` makes
                the vectors and whose ``config`` the bank records.
            names: ``S`` style names (default: the file stems, or ``style_0``, ...).
            size: side the folder images are resized to.

        Returns:
            A :class:`StyleBank` of :math:`S` vectors :math:`(S, V)`.
        """
        if not callable(getattr(transfer, "encode_styles", None)):
            raise TypeError(f"transfer must be a style backend with encode_styles() (e.g. LinearStyleTransfer()), "
                            f"got {type(transfer).__name__}")
        if isinstance(images, (str, os.PathLike)):
            images, folder_names = load_image_folder(images, size)
            names = folder_names if names is None else names
        check_type(images, "images", Tensor)
        with torch.no_grad():
            vectors = transfer.encode_styles(images)
        return cls(vectors, names, transfer.config)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the bank (tensors, names and config only) for :meth:`load`."""
        payload = {"format_version": _FORMAT_VERSION, "vectors": self.vectors.detach().cpu(), "names": self.names,
                   "config": self.config}
        torch.save(payload, path)

    @classmethod
    def load(cls, path: str | os.PathLike[str], map_location: str | torch.device | None = "cpu") -> StyleBank:
        r"""Read a bank written by :meth:`save` with ``torch.load(weights_only=True)`` (no code is executed).

        The whole payload is validated before a bank is built, and every error names the file: the keys
        (exactly ``format_version``, ``vectors``, ``names``, ``config``), ``vectors`` a finite non-empty 2-D float
        tensor :math:`(S, V)`, ``names`` :math:`S` strings, ``config`` a dict with string keys.

        Args:
            path: a file written by :meth:`save`.
            map_location: passed to ``torch.load``.

        Returns:
            The :class:`StyleBank`.

        Examples:
            >>> import tempfile
            >>> file = tempfile.mkdtemp() + "/bank.pt"
            >>> StyleBank(torch.eye(2), ["a", "b"], {"levels": 3}).save(file)
            >>> bank = StyleBank.load(file)
            >>> bank.names, bank.vectors.shape, bank.config
            (['a', 'b'], torch.Size([2, 2]), {'levels': 3})
        """
        name = str(path)
        try:
            payload = torch.load(path, map_location=map_location, weights_only=True)
        except FileNotFoundError:
            raise
        except pickle.UnpicklingError as error:  # weights_only refused an object (or the bytes are no pickle)
            raise pickle.UnpicklingError(f"StyleBank file {name!r} cannot be read safely: {error}") from error
        except (EOFError, OSError, RuntimeError, ValueError) as error:  # empty, truncated, not a torch file
            raise ValueError(f"StyleBank file {name!r} is empty, truncated or not a torch file "
                             f"({type(error).__name__}: {error})") from error
        expected = {"format_version", "vectors", "names", "config"}
        if not isinstance(payload, dict) or payload.get("format_version") != _FORMAT_VERSION:
            got = sorted(map(str, payload)) if isinstance(payload, dict) else type(payload).__name__
            raise ValueError(f"StyleBank file {name!r} is not a StyleBank file (format_version {_FORMAT_VERSION}), "
                             f"got {got}")
        missing, unexpected = expected - set(payload), set(payload) - expected
        if missing or unexpected:
            raise ValueError(f"StyleBank file {name!r} lacks the keys {sorted(missing)} / has unexpected keys "
                             f"{sorted(map(str, unexpected))}")
        vectors, names, config = payload["vectors"], payload["names"], payload["config"]
        if not isinstance(vectors, Tensor) or vectors.dim() != 2 or not vectors.is_floating_point() or not len(vectors):
            got = f"shape {tuple(vectors.shape)}, dtype {vectors.dtype}" if isinstance(vectors, Tensor) else vectors
            raise ValueError(f"StyleBank file {name!r}: vectors must be a non-empty 2-D float tensor (S, V), got {got}")
        if not bool(torch.isfinite(vectors).all()):
            count = int((~torch.isfinite(vectors)).sum())
            raise ValueError(f"StyleBank file {name!r}: vectors must be finite, got {count} NaN/inf value(s)")
        if not isinstance(names, list) or len(names) != len(vectors) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"StyleBank file {name!r}: names must be a list of {len(vectors)} strings (one per "
                             f"vector), got {names!r}")
        if not isinstance(config, dict) or not all(isinstance(key, str) for key in config):
            raise ValueError(f"StyleBank file {name!r}: config must be a dict with string keys, got {config!r}")
        return cls(vectors, names, config)

    def extra_repr(self) -> str:
        return f"styles={len(self)}, dim={self.vectors.shape[1]}, config={self.config}"


__all__ = ["StyleBank", "load_image_folder", "procedural_styles"]
