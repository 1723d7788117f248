"""Make ``style_grid.png``: StyleAugment styles × α on a ShapesTextures image and on a photograph.

The photograph is matplotlib's bundled sample ``grace_hopper.jpg`` (no download). Run from the repository root:
``python docs/figures/make_style_grid.py``.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.cbook as cbook
import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from captum_wsam.augment import StyleAugment
from captum_wsam.data import ShapesTextures

STYLES = [0, 7, 13, 20, 33, 41]
ALPHAS = [1.0, 0.8, 0.5, 0.3, 0.0]


def main() -> None:
    aug = StyleAugment()
    shape = ShapesTextures(n=1, size=96, seed=0).tensors()[0]
    photo = torch.from_numpy(plt.imread(cbook.get_sample_data("grace_hopper.jpg")).copy()).permute(2, 0, 1)
    photo = F.interpolate(photo[None].float() / 255, size=(160, 128), mode="bilinear", antialias=True).clamp(0, 1)
    grids = [aug.stylize_grid(image, STYLES, ALPHAS)[:, :, 0] for image in (shape, photo)]
    fig, axes = plt.subplots(len(STYLES), 2 * len(ALPHAS), figsize=(2 * len(ALPHAS) * 1.1, len(STYLES) * 1.25))
    for half, grid in enumerate(grids):
        for s, style in enumerate(STYLES):
            for a, alpha in enumerate(ALPHAS):
                ax = axes[s, half * len(ALPHAS) + a]
                ax.imshow(grid[s, a].permute(1, 2, 0).numpy())
                ax.set_xticks([])
                ax.set_yticks([])
                if s == 0:
                    ax.set_title(f"α={alpha}", fontsize=8)
                if a == 0 and half == 0:
                    ax.set_ylabel(aug.style_bank.names[style], fontsize=6)
    fig.suptitle("StyleAugment (TextureTransfer, the default): α = 1 is the input, α = 0 the full style", fontsize=10)
    fig.tight_layout()
    out = Path(__file__).with_name("style_grid.png")
    fig.savefig(out, dpi=110)
    print(out)


if __name__ == "__main__":
    main()
