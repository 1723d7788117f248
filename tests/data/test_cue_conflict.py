"""CueConflictFolder and the 16-category mapping: a generated stimulus folder, the paper's protocol end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from captum_wsam.data import GEIRHOS_CATEGORIES, CueConflictFolder, imagenet_to_geirhos16
from captum_wsam.data.cue_conflict import GEIRHOS_IMAGENET_INDICES
from captum_wsam.metrics import shape_bias

STIMULI = [("cat", 1, "elephant", 2), ("cat", 2, "cat", 5), ("elephant", 1, "clock", 1), ("knife", 3, "bear", 7),
           ("truck", 1, "bird", 9)]


def _write(root: Path, size: int = 16, mode: str = "RGB") -> None:
    for i, (shape, a, texture, b) in enumerate(STIMULI):
        (root / shape).mkdir(exist_ok=True)
        value = np.full((size, size, 3), 40 * i, dtype=np.uint8)
        Image.fromarray(value).convert(mode).save(root / shape / f"{shape}{a}-{texture}{b}.png")


class _FollowCue(nn.Module):
    """An 'ImageNet classifier' that puts all its mass on one ImageNet class of the chosen cue's category.

    The stimulus index is read off the grey level written by ``_write`` (40 * i / 255)."""

    def __init__(self, folder: CueConflictFolder, cue: str) -> None:
        super().__init__()
        labels = folder.shape_labels if cue == "shape" else folder.texture_labels
        self.register_buffer("targets", torch.tensor(
            [GEIRHOS_IMAGENET_INDICES[GEIRHOS_CATEGORIES[int(k)]][-1] for k in labels]))
        self.bias = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        index = (x[:, 0, 0, 0] * 255 / 40).round().long()
        return nn.functional.one_hot(self.targets[index], 1000).float() * 20 + self.bias


def test_folder_reads_labels_and_images(tmp_path: Path) -> None:
    _write(tmp_path)
    data = CueConflictFolder(tmp_path, size=16)
    assert len(data) == len(STIMULI)
    names = sorted(f"{s}{a}-{t}{b}" for s, a, t, b in STIMULI)
    assert [f.stem for f in data.files] == names
    image, label, info = data[0]
    assert image.shape == (3, 16, 16) and image.dtype == torch.float32
    assert GEIRHOS_CATEGORIES[label] == "cat" and GEIRHOS_CATEGORIES[info["texture"]] == "elephant"


def test_palette_images_are_read_as_rgb_and_resized(tmp_path: Path) -> None:
    _write(tmp_path, size=20, mode="P")
    image, _, _ = CueConflictFolder(tmp_path, size=8)[1]
    assert image.shape == (3, 8, 8) and 0 <= float(image.min()) <= float(image.max()) <= 1


@pytest.mark.parametrize("cue, expected", [("shape", 1.0), ("texture", 0.0)])
def test_geirhos_protocol_counts_conflicts_only(tmp_path: Path, cue: str, expected: float) -> None:
    _write(tmp_path)
    folder = CueConflictFolder(tmp_path, size=16)
    result = shape_bias(_FollowCue(folder, cue), tmp_path, protocol="geirhos", batch_size=2, return_counts=True)
    assert result["shape_bias"] == expected
    assert result["images"] == len(STIMULI) - 1  # cat2-cat5 is a same-category stimulus: excluded


def test_mapping_averages_probabilities_per_category() -> None:
    p = torch.zeros(2, 1000)
    p[0, GEIRHOS_IMAGENET_INDICES["dog"][:3]] = 0.2  # 0.6 mass on dog spread over 3 of its 109 classes
    p[0, GEIRHOS_IMAGENET_INDICES["knife"][0]] = 0.1  # 0.1 on knife's single class
    p[1, 404] = 1.0
    out = imagenet_to_geirhos16(p)
    dog, knife = GEIRHOS_CATEGORIES.index("dog"), GEIRHOS_CATEGORIES.index("knife")
    torch.testing.assert_close(out[0, dog], torch.tensor(0.6 / 109))
    assert int(out[0].argmax()) == knife  # the mean, not the sum, decides (the authors' aggregation)
    assert GEIRHOS_CATEGORIES[int(out[1].argmax())] == "airplane"
    assert sum(len(v) for v in GEIRHOS_IMAGENET_INDICES.values()) == 207
    assert len(set().union(*GEIRHOS_IMAGENET_INDICES.values())) == 207


def test_bad_folders_raise(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="folder must be an existing directory"):
        CueConflictFolder(tmp_path / "missing")
    with pytest.raises(ValueError, match="holds no cue-conflict image"):
        CueConflictFolder(tmp_path)
    (tmp_path / "cat").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / "dog1-cat2.png")
    with pytest.raises(ValueError, match="has shape 'dog' but lies in 'cat'"):
        CueConflictFolder(tmp_path)
    (tmp_path / "cat" / "dog1-cat2.png").unlink()
    Image.new("RGB", (4, 4)).save(tmp_path / "cat" / "cat1.png")
    with pytest.raises(ValueError, match="not named"):
        CueConflictFolder(tmp_path)
    (tmp_path / "cat" / "cat1.png").unlink()
    (tmp_path / "zebra").mkdir()
    with pytest.raises(ValueError, match="zebra"):
        CueConflictFolder(tmp_path)
    with pytest.raises(ValueError, match="only with protocol='geirhos'"):
        shape_bias(nn.Identity(), tmp_path)
    with pytest.raises(ValueError, match="probabilities must be"):
        imagenet_to_geirhos16(torch.zeros(2, 16))
