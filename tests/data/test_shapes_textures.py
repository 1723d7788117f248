from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from captum_wsam.data import SHAPES, TEXTURES, ShapesTextures, flip_labels
from captum_wsam.data.functional import mask_to_box, shape_coverage


def test_determinism_and_independence_of_n():
    a = ShapesTextures(n=600, size=32, seed=5)
    b = ShapesTextures(n=40, size=32, seed=5)
    assert torch.equal(a.images[:40], b.images)
    assert torch.equal(a.targets[:40], b.targets)
    c = ShapesTextures(n=40, size=32, seed=6)
    assert not torch.equal(c.images, b.images)


def test_item_format_and_ranges():
    data = ShapesTextures(n=20, size=48, seed=0)
    image, label, info = data[3]
    assert image.shape == (3, 48, 48) and image.dtype == torch.float32
    assert image.min() >= 0 and image.max() <= 1
    assert isinstance(label, int) and 0 <= label < 6
    assert info["mask"].shape == (1, 48, 48) and info["mask"].dtype == torch.bool
    assert info["shape"] == label and 0 <= info["texture"] < 6 and info["clean_label"] == label
    assert data.classes == SHAPES and len(TEXTURES) == 6
    assert len(ShapesTextures(n=3, size=32, return_info=False)[0]) == 2


def test_all_shape_and_texture_classes_occur():
    data = ShapesTextures(n=400, size=32, seed=0)
    assert set(data.shape_labels.tolist()) == set(range(6))
    assert set(data.texture_labels.tolist()) == set(range(6))


def test_mask_and_box_agree_with_image():
    data = ShapesTextures(n=50, size=64, seed=1)
    for i in range(50):
        _, _, info = data[i]
        mask, box = info["mask"][0], info["box"]
        ys, xs = mask.nonzero(as_tuple=True)
        assert mask.sum() > 20, "object too small"
        assert box.tolist() == [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
        assert not mask[0].any() and not mask[-1].any(), "object touches the border"
    # object pixels and background pixels differ in brightness on average (one dark, one light)
    images = data.images.float() / 255
    obj = (images.mean(1) * data.masks).sum((1, 2)) / data.masks.sum((1, 2))
    bg = (images.mean(1) * ~data.masks).sum((1, 2)) / (~data.masks).sum((1, 2))
    assert ((obj - bg).abs() > 0.15).float().mean() > 0.95


def test_anti_aliasing_gives_partial_coverage():
    cov = shape_coverage(torch.tensor([0]), torch.tensor([[16.3, 16.7]]), torch.tensor([9.1]), torch.tensor([0.4]), 32)
    partial = ((cov > 0) & (cov < 1)).sum()
    assert partial > 10


def test_mask_to_box_empty():
    assert mask_to_box(torch.zeros(1, 4, 4, dtype=torch.bool)).tolist() == [[0.0, 0.0, 0.0, 0.0]]


def test_label_by_texture():
    data = ShapesTextures(n=30, size=32, label_by="texture", seed=2)
    assert torch.equal(data.targets, data.texture_labels)
    assert data.classes == TEXTURES


def test_cue_conflict_returns_two_different_labels():
    data = ShapesTextures(n=200, size=32, cue_conflict=True, seed=3)
    assert (data.shape_labels != data.texture_labels).all()
    _, label, info = data[0]
    assert label == info["shape"] != info["texture"]
    batch = next(iter(DataLoader(data, batch_size=8)))
    assert batch[2]["texture"].shape == (8,) and batch[2]["mask"].shape == (8, 1, 32, 32)


def test_cue_agreement():
    data = ShapesTextures(n=200, size=32, cue_agreement=1.0, seed=3)
    assert torch.equal(data.shape_labels, data.texture_labels)
    half = ShapesTextures(n=400, size=32, cue_agreement=0.5, seed=3)
    frac = (half.shape_labels == half.texture_labels).float().mean()
    assert 0.45 < frac < 0.7  # 0.5 forced + 1/6 of the rest by chance


def test_label_noise_is_exact_symmetric_and_seeded():
    data = ShapesTextures(n=1000, size=32, label_noise=0.8, seed=4)
    assert int(data.noisy.sum()) == 800
    assert torch.equal(data.clean_targets, data.shape_labels)
    changed = data.targets[data.noisy]
    assert set(changed.tolist()) == set(range(6))
    assert (data.targets[data.noisy] != data.clean_targets[data.noisy]).all()
    again = ShapesTextures(n=1000, size=32, label_noise=0.8, seed=4)
    assert torch.equal(again.targets, data.targets)
    _, label, info = data[int(data.noisy.nonzero()[0])]
    assert label != info["clean_label"]
    # symmetric: every wrong class receives about the same share
    offsets = (data.targets[data.noisy] - data.clean_targets[data.noisy]) % 6
    counts = torch.bincount(offsets, minlength=6)[1:]
    assert counts.min() > 120


def test_flip_labels_zero_rate_is_identity():
    y = torch.arange(6)
    assert torch.equal(flip_labels(y, 0.0, 6, seed=0), y)


def test_transform_is_applied():
    data = ShapesTextures(n=2, size=32, transform=lambda x: x * 0)
    assert data[0][0].abs().sum() == 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"size": 16}, ValueError, "size"),
        ({"size": 300}, ValueError, "size"),
        ({"n": 0}, ValueError, "n must"),
        ({"label_by": "colour"}, ValueError, "label_by"),
        ({"label_noise": 1.5}, ValueError, "label_noise"),
        ({"cue_agreement": -0.1}, ValueError, "cue_agreement"),
        ({"n": 2.5}, TypeError, "n must"),
        ({"transform": 3}, TypeError, "transform"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        ShapesTextures(**kwargs)


def test_index_out_of_range():
    with pytest.raises(IndexError, match="index"):
        ShapesTextures(n=3, size=32)[3]


def test_texture_shortcut_ties_texture_to_shape_and_conflicts_break_it():
    aligned = ShapesTextures(n=200, size=32, seed=3, texture_shortcut=True)
    assert torch.equal(aligned.texture_labels, aligned.shape_labels % len(TEXTURES))
    conflict = ShapesTextures(n=200, size=32, seed=3, texture_shortcut=True, cue_conflict=True)
    assert (conflict.texture_labels != conflict.shape_labels).all()
    assert torch.equal(conflict.shape_labels, aligned.shape_labels)  # same draws, only the textures differ
    # The background carries the object's family: a flat object ("circle" class) sits on a flat background.
    flat = (aligned.texture_labels == TEXTURES.index("flat")).nonzero().flatten()
    images = aligned.images[flat].float()
    background = ~aligned.masks[flat][:, None].expand_as(images)
    for img, m in zip(images, background):
        pixels = img[m].view(3, -1)
        same = ((pixels - pixels.median(dim=1, keepdim=True).values).abs() <= 1).all(0)
        assert float(same.float().mean()) > 0.9  # one colour, up to anti-aliasing at the object's border
    assert len(flat) > 0
    assert "texture_shortcut=True" in repr(aligned)


@pytest.mark.slow
def test_texture_shortcut_makes_a_smallcnn_texture_biased():
    from captum_wsam.metrics import shape_bias
    from captum_wsam.models import SmallCNN
    from captum_wsam.train import accuracy, train_classifier

    torch.manual_seed(0)
    model = SmallCNN()
    train_classifier(model, ShapesTextures(n=1200, size=48, texture_shortcut=True, seed=0), epochs=5, lr=5e-3,
                     progress=False)
    assert accuracy(model, ShapesTextures(n=300, size=48, texture_shortcut=True, seed=1)) > 0.85  # it learned
    assert shape_bias(model, ShapesTextures(n=300, size=48, texture_shortcut=True, cue_conflict=True, seed=2)) <= 0.35
