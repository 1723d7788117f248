r"""The cue-conflict stimuli of Geirhos et al. (2019) as a Dataset, and their 16 entry-level ImageNet categories.

Geirhos, Rubisch, Michaelis, Bethge, Wichmann and Brendel (2019), "ImageNet-trained CNNs are biased towards texture;
increasing shape bias improves accuracy and robustness", ICLR, arXiv:1811.12231, publish 1,280 style-transfer images
whose shape and texture come from two of 16 entry-level categories: one folder per shape category, files named
``<shape><i>-<texture><j>.png`` (e.g. ``cat/cat7-elephant1.png``). An ImageNet classifier is read on these 16
categories by averaging its softmax probabilities over each category's ImageNet classes (the mapping below, from the
authors' evaluation code) and taking the arg-max:

.. math:: \hat y = \arg\max_{k \in 16}\ \frac{1}{|I_k|}\sum_{i \in I_k} \operatorname{softmax}(f(x))_i .

The stimuli are not shipped: get them from the authors' ``texture-vs-shape`` repository (``stimuli/style-transfer-
preprocessed-512``) or ``model-vs-human`` and point :class:`CueConflictFolder` at the folder.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.utils.data import Dataset

from .._checks import check_positive_int

# ImageNet indices of the 16 entry-level categories of Geirhos et al. (2019): the mapping of their evaluation code
# (model-vs-human, ``helper/human_categories.py``); the decision for a category is the mean of its probabilities.
GEIRHOS_CATEGORIES: tuple[str, ...] = (
    "airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat",
    "chair", "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck",
)
GEIRHOS_IMAGENET_INDICES: dict[str, tuple[int, ...]] = {
    "airplane": (404,),
    "bear": (294, 295, 296, 297),
    "bicycle": (444, 671),
    "bird": (8, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 23, 24, 80, 81, 82, 83, 87, 88, 89, 90, 91, 92, 93, 94, 95,
             96, 98, 99, 100, 127, 128, 129, 130, 131, 132, 133, 135, 136, 137, 138, 139, 140, 141, 142, 143, 144,
             145),
    "boat": (472, 554, 625, 814, 914),
    "bottle": (440, 720, 737, 898, 899, 901, 907),
    "car": (436, 511, 817),
    "cat": (281, 282, 283, 284, 285, 286),
    "chair": (423, 559, 765, 857),
    "clock": (409, 530, 892),
    "dog": (152, 153, 154, 155, 156, 157, 158, 159, 160, 161, 162, 163, 164, 165, 166, 167, 168, 169, 170, 171, 172,
            173, 174, 175, 176, 177, 178, 179, 180, 181, 182, 183, 184, 185, 186, 187, 188, 189, 190, 191, 193, 194,
            195, 196, 197, 198, 199, 200, 201, 202, 203, 205, 206, 207, 208, 209, 210, 211, 212, 213, 214, 215, 216,
            217, 218, 219, 220, 221, 222, 223, 224, 225, 226, 228, 229, 230, 231, 232, 233, 234, 235, 236, 237, 238,
            239, 240, 241, 243, 244, 245, 246, 247, 248, 249, 250, 252, 253, 254, 255, 256, 257, 259, 261, 262, 263,
            265, 266, 267, 268),
    "elephant": (385, 386),
    "keyboard": (508, 878),
    "knife": (499,),
    "oven": (766,),
    "truck": (555, 569, 656, 675, 717, 734, 864, 867),
}

_STIMULUS = re.compile(r"^([a-z]+)(\d+)-([a-z]+)(\d+)$")
_SUFFIXES = (".png", ".jpg", ".jpeg")


def imagenet_to_geirhos16(probabilities: Tensor) -> Tensor:
    r"""Probabilities of the 16 entry-level categories: the mean over each category's ImageNet classes.

    .. math:: p_k = \frac{1}{|I_k|}\sum_{i \in I_k} p_i, \qquad k \in \texttt{GEIRHOS\_CATEGORIES}

    Args:
        probabilities: :math:`(N, 1000)` ImageNet softmax probabilities.

    Returns:
        :math:`(N, 16)`, columns in the order of :data:`GEIRHOS_CATEGORIES`.

    Examples:
        >>> p = torch.zeros(1, 1000); p[0, 404] = 1.0  # ImageNet class 404: airliner
        >>> GEIRHOS_CATEGORIES[int(imagenet_to_geirhos16(p).argmax())]
        'airplane'
    """
    if not isinstance(probabilities, Tensor) or probabilities.dim() != 2 or probabilities.shape[1] != 1000:
        shape = tuple(probabilities.shape) if isinstance(probabilities, Tensor) else type(probabilities).__name__
        raise ValueError(f"probabilities must be (N, 1000) ImageNet probabilities, got {shape}")
    columns = [probabilities[:, list(GEIRHOS_IMAGENET_INDICES[name])].mean(1) for name in GEIRHOS_CATEGORIES]
    return torch.stack(columns, dim=1)


class CueConflictFolder(Dataset):
    r"""The cue-conflict images of Geirhos et al. (2019) from a local folder, with both cue labels.

    Reads ``folder/<shape>/<shape><i>-<texture><j>.png`` for the 16 categories of :data:`GEIRHOS_CATEGORIES`
    (sorted file order). Items are ``(image, shape_label, info)`` with ``image`` float :math:`(3, S, S)` in [0, 1]
    (RGB, resized to ``size`` with antialiasing when it differs, then ``transform``), labels indexing
    :data:`GEIRHOS_CATEGORIES`, and ``info`` holding ``"shape"``, ``"texture"`` and ``"index"``. Same-category stimuli
    (``shape == texture``) are kept here and excluded by :func:`~captum_wsam.metrics.shape_bias`, as in the paper.

    Args:
        folder: the stimulus folder (16 sub-folders).
        size: side the images are resized to (the public stimuli are 224 × 224).
        transform: optional callable on each float image (e.g. ``torchvision.transforms.Normalize``).

    Examples:
        >>> import tempfile
        >>> from PIL import Image
        >>> root = Path(tempfile.mkdtemp())
        >>> (root / "cat").mkdir()
        >>> Image.new("RGB", (8, 8)).save(root / "cat" / "cat1-dog2.png")
        >>> data = CueConflictFolder(root, size=8)
        >>> image, label, info = data[0]
        >>> image.shape, GEIRHOS_CATEGORIES[label], GEIRHOS_CATEGORIES[info["texture"]]
        (torch.Size([3, 8, 8]), 'cat', 'dog')
    """

    def __init__(self, folder: str | os.PathLike[str], size: int = 224, transform: Any = None) -> None:
        root = Path(folder)
        if not root.is_dir():
            raise ValueError(f"folder must be an existing directory of cue-conflict images, got {str(folder)!r}")
        check_positive_int(size, "size")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable, got {type(transform).__name__}")
        files, shapes, textures = [], [], []
        for sub in sorted(p for p in root.iterdir() if p.is_dir()):
            if sub.name not in GEIRHOS_CATEGORIES:
                raise ValueError(f"folder {str(root)!r} has a sub-folder {sub.name!r} that is none of the 16 "
                                 f"categories {GEIRHOS_CATEGORIES}")
            for file in sorted(p for p in sub.iterdir() if p.suffix.lower() in _SUFFIXES):
                match = _STIMULUS.match(file.stem)
                if match is None or match.group(1) not in GEIRHOS_CATEGORIES or match.group(3) not in \
                        GEIRHOS_CATEGORIES:
                    raise ValueError(f"file {str(file)!r} is not named <shape><i>-<texture><j> with two of the 16 "
                                     "categories")
                if match.group(1) != sub.name:
                    raise ValueError(f"file {str(file)!r} has shape {match.group(1)!r} but lies in {sub.name!r}")
                files.append(file)
                shapes.append(GEIRHOS_CATEGORIES.index(match.group(1)))
                textures.append(GEIRHOS_CATEGORIES.index(match.group(3)))
        if not files:
            raise ValueError(f"folder {str(root)!r} holds no cue-conflict image")
        self.files, self.size, self.transform = files, size, transform
        self.shape_labels, self.texture_labels = torch.tensor(shapes), torch.tensor(textures)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, index: int) -> tuple[Tensor, int, dict[str, Any]]:
        import numpy as np
        from PIL import Image

        index = range(len(self.files))[index]
        with Image.open(self.files[index]) as handle:
            array = np.asarray(handle.convert("RGB"), dtype=np.float32) / 255.0
        image = torch.from_numpy(array).permute(2, 0, 1)
        if tuple(image.shape[-2:]) != (self.size, self.size):
            image = torch.nn.functional.interpolate(image[None], size=(self.size, self.size), mode="bilinear",
                                                    antialias=True, align_corners=False)[0].clamp(0.0, 1.0)
        if self.transform is not None:
            image = self.transform(image)
        shape, texture = int(self.shape_labels[index]), int(self.texture_labels[index])
        return image, shape, {"shape": shape, "texture": texture, "index": index}


__all__ = ["GEIRHOS_CATEGORIES", "GEIRHOS_IMAGENET_INDICES", "CueConflictFolder", "imagenet_to_geirhos16"]
