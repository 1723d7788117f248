"""Make ``style_backends.png``: TextureTransfer (default) next to LinearStyleTransfer on scikit-image photographs.

Rows: the photographs ``astronaut``, ``chelsea`` and ``coffee``; column groups: the styles ``brick``, ``gravel`` and
``grass`` (scikit-image's bundled textures, no download), each at α = 0 (full style) with both backends. Run from the
repository root: ``python docs/figures/make_style_backends.py`` (needs scikit-image, a dev extra).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import skimage.data
import torch
import torch.nn.functional as F

from captum_wsam.augment import LinearStyleTransfer, StyleAugment, TextureTransfer

PHOTOS = ("astronaut", "chelsea", "coffee")
STYLES = ("brick", "gravel", "grass")


def _image(name: str, size: int) -> torch.Tensor:
    array = torch.from_numpy(getattr(skimage.data, name)().copy()).float() / 255
    image = array[None].expand(3, -1, -1) if array.dim() == 2 else array.permute(2, 0, 1)
    side = min(image.shape[-2:])
    image = image[:, :side, :side]
    return F.interpolate(image[None], size=(size, size), mode="bilinear", antialias=True)[0].clamp(0, 1)


def main() -> None:
    photos = torch.stack([_image(name, 160) for name in PHOTOS])
    styles = torch.stack([_image(name, 128) for name in STYLES])
    backends = {"TextureTransfer": TextureTransfer(), "LinearStyleTransfer": LinearStyleTransfer()}
    columns = [("input", None, None)] + [(f"{style}\n{name}", name, s) for s, style in enumerate(STYLES)
                                         for name in backends]
    fig, axes = plt.subplots(len(PHOTOS) + 1, len(columns), figsize=(1.45 * len(columns), 1.5 * (len(PHOTOS) + 1)))
    augments = {name: StyleAugment(transfer=transfer, styles=styles) for name, transfer in backends.items()}
    for c, (title, name, style) in enumerate(columns):
        axes[0, c].imshow(styles[style].permute(1, 2, 0) if style is not None else torch.ones(8, 8, 3))
        axes[0, c].set_title(title, fontsize=7)
        for r in range(len(PHOTOS)):
            image = photos[r] if name is None else augments[name].stylize(photos[r : r + 1], style, 0.0)[0]
            axes[r + 1, c].imshow(image.permute(1, 2, 0).numpy())
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0, 0].set_ylabel("style", fontsize=7)
    fig.suptitle("α = 0 (full style): TextureTransfer swaps the texture; LinearStyleTransfer recolours only",
                 fontsize=9)
    fig.tight_layout()
    out = Path(__file__).with_name("style_backends.png")
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
