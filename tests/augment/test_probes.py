"""Zhang & Zhu probes as Kornia augmentations: formula, params replay, p, same_on_batch, masks, errors."""

from __future__ import annotations

import kornia.augmentation as K
import numpy as np
import pytest
import torch

from captum_wsam.augment import RandomPatchShuffle, RandomSaturation, Saturation


def test_saturation_levels_follow_the_paper_formula() -> None:
    x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
    for level in (1.0, 2.0, 8.0, 1024.0):
        u = 2 * x.numpy() - 1
        expected = (np.sign(u) * np.abs(u) ** (2 / level) + 1) / 2
        np.testing.assert_allclose(Saturation(level)(x).numpy(), expected, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(Saturation(2.0)(x), x)


def test_random_saturation_replay_range_and_gate() -> None:
    x = torch.rand(6, 3, 8, 8)
    aug = RandomSaturation(level=(8.0, 64.0), p=1.0)
    out = aug(x)
    levels = aug._params["level"]
    assert levels.shape == (6,) and (levels >= 8).all() and (levels <= 64).all() and levels.unique().numel() == 6
    assert torch.equal(aug(x, params=aug._params), out)
    for i in range(6):
        torch.testing.assert_close(out[i : i + 1], Saturation(float(levels[i]))(x[i : i + 1]))
    assert torch.equal(RandomSaturation(p=0.0)(x), x)
    same = RandomSaturation(p=1.0, same_on_batch=True)
    same(x)
    assert same._params["level"].unique().numel() == 1


def test_patch_shuffle_replay_masks_and_gate() -> None:
    x = torch.rand(4, 3, 8, 8)
    aug = RandomPatchShuffle(grid=4, p=1.0)
    out = aug(x)
    perm = aug._params["permutation"]
    assert perm.shape == (4, 16) and all(sorted(p.tolist()) == list(range(16)) for p in perm)
    assert torch.equal(aug(x, params=aug._params), out)
    seq = K.AugmentationSequential(RandomPatchShuffle(grid=(2, 2), p=1.0), data_keys=["input", "mask"])
    mask = x[:, :1] > 0.5
    img, msk = seq(x, mask.float())
    torch.testing.assert_close(msk, (img[:, :1] > 0.5).float())  # the mask moved with its pixels
    assert torch.equal(RandomPatchShuffle(p=0.0)(x), x)
    same = RandomPatchShuffle(p=1.0, same_on_batch=True)
    same(x)
    assert (same._params["permutation"] == same._params["permutation"][:1]).all()


def test_gradients_flow_and_half_precision_has_no_nan() -> None:
    x = torch.rand(2, 3, 8, 8, requires_grad=True)
    (RandomPatchShuffle(p=1.0)(x).sum() + Saturation(64.0)(x).sum()).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert torch.isfinite(Saturation(1024.0)(torch.rand(1, 3, 4, 4).half()).float()).all()


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="level"):
        RandomSaturation(level=(-1.0, 4.0))
    with pytest.raises(ValueError, match="level"):
        RandomSaturation(level=(64.0, 8.0))
    with pytest.raises(TypeError, match="level must be a number"):
        Saturation("high")
    with pytest.raises(ValueError, match="grid"):
        RandomPatchShuffle(grid=(0, 2))
    with pytest.raises(TypeError, match="grid"):
        RandomPatchShuffle(grid=(2, 2, 2))
    with pytest.raises(ValueError, match="p must lie"):
        RandomPatchShuffle(p=1.5)
    with pytest.raises(ValueError, match="input must be at least"):
        RandomPatchShuffle(grid=8, p=1.0)(torch.rand(1, 3, 4, 4))
