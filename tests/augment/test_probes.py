"""Zhang & Zhu probes as Kornia augmentations, tested the way Kornia tests its own (``BaseTester``: smoke,
consistency/replay, exception, gradcheck, module, dynamo), plus the geometric contract of ``RandomPatchShuffle``:
masks, keypoints and boxes follow the image, ``inverse`` undoes it, and its matrix claims no affine map."""

from __future__ import annotations

import kornia.augmentation as K
import numpy as np
import pytest
import torch
from kornia.geometry.boxes import Boxes
from kornia.geometry.keypoints import Keypoints
from torch._dynamo.testing import CompileCounter

from captum_wsam.augment import RandomPatchShuffle, RandomSaturation, Saturation
from captum_wsam.augment.functional import patch_shuffle, saturation


def shuffle_reference(image: torch.Tensor, grid: tuple[int, int], permutation: torch.Tensor) -> torch.Tensor:
    """Paper-literal patch shuffle: copy output cell j from input cell pi(j), one cell at a time (float64 loops)."""
    rows, cols = grid
    cell_h, cell_w = image.shape[-2] // rows, image.shape[-1] // cols
    out = image.clone()
    for b in range(image.shape[0]):
        for j in range(rows * cols):
            i = int(permutation[b, j])
            (rj, cj), (ri, ci) = divmod(j, cols), divmod(i, cols)
            out[b, :, rj * cell_h : (rj + 1) * cell_h, cj * cell_w : (cj + 1) * cell_w] = image[
                b, :, ri * cell_h : (ri + 1) * cell_h, ci * cell_w : (ci + 1) * cell_w
            ]
    return out


def pixel_grid(batch: int, height: int, width: int) -> torch.Tensor:
    """Every pixel centre ``(x, y)`` as keypoints :math:`(B, H W, 2)`."""
    ys, xs = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.stack([xs, ys], dim=-1).reshape(1, -1, 2).float().expand(batch, -1, -1).clone()


def fixed_params(aug: K.AugmentationBase2D, shape: tuple[int, ...], permutation: list[list[int]]) -> dict:
    params = aug.forward_parameters(torch.Size(shape))
    params["permutation"] = torch.tensor(permutation)
    return params


class TestRandomPatchShuffle:
    def test_smoke(self) -> None:
        aug = RandomPatchShuffle(grid=(2, 3), p=0.5, same_on_batch=False, keepdim=True)
        assert aug.grid == (2, 3) and isinstance(aug, K.GeometricAugmentationBase2D)
        assert aug(torch.rand(3, 6, 9)).shape == (3, 6, 9)  # keepdim: a (C, H, W) input stays 3-D
        assert RandomPatchShuffle(grid=3, p=1.0)(torch.rand(2, 1, 6, 6)).shape == (2, 1, 6, 6)

    @pytest.mark.parametrize("size", [(8, 8), (9, 11)])
    def test_matches_the_literal_reference(self, size: tuple[int, int]) -> None:
        x = torch.rand(3, 2, *size, dtype=torch.float64)
        aug = RandomPatchShuffle(grid=(2, 3), p=1.0)
        out = aug(x)
        torch.testing.assert_close(out, shuffle_reference(x, (2, 3), aug._params["permutation"]), rtol=0, atol=0)

    def test_consistency_replay_gate_and_same_on_batch(self) -> None:
        x = torch.rand(4, 3, 8, 8)
        aug = RandomPatchShuffle(grid=4, p=1.0)
        out = aug(x)
        perm = aug._params["permutation"]
        assert perm.shape == (4, 16) and all(sorted(p.tolist()) == list(range(16)) for p in perm)
        assert torch.equal(aug(x, params=aug._params), out)
        assert torch.equal(RandomPatchShuffle(p=0.0)(x), x)
        same = RandomPatchShuffle(p=1.0, same_on_batch=True)
        same(x)
        assert (same._params["permutation"] == same._params["permutation"][:1]).all()

    def test_exception(self) -> None:
        with pytest.raises(ValueError, match="grid"):
            RandomPatchShuffle(grid=(0, 2))
        with pytest.raises(TypeError, match="grid"):
            RandomPatchShuffle(grid=(2, 2, 2))
        with pytest.raises(ValueError, match="p must lie"):
            RandomPatchShuffle(p=1.5)
        with pytest.raises(TypeError, match="keepdim"):
            RandomPatchShuffle(keepdim=1)
        with pytest.raises(ValueError, match="input must be at least"):
            RandomPatchShuffle(grid=8, p=1.0)(torch.rand(1, 3, 4, 4))

    @pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
    def test_non_finite_input_is_refused_at_the_entry(self, bad: float) -> None:
        x = torch.rand(2, 3, 8, 8)
        x[1, 2, 3, 4] = bad
        with pytest.raises(ValueError, match="input must be finite"):
            RandomPatchShuffle(p=1.0)(x)
        with pytest.raises(ValueError, match="input must be finite"):
            K.AugmentationSequential(RandomPatchShuffle(p=1.0))(x)

    def test_gradcheck(self) -> None:
        x = torch.rand(2, 1, 4, 4, dtype=torch.float64, requires_grad=True)
        aug = RandomPatchShuffle(grid=2, p=1.0)
        params = aug.forward_parameters(x.shape)
        assert torch.autograd.gradcheck(lambda t: aug(t, params=params), (x,), fast_mode=True)

    def test_module_is_the_functional(self) -> None:
        x = torch.rand(2, 3, 8, 8)
        aug = RandomPatchShuffle(grid=2, p=1.0)
        params = fixed_params(aug, x.shape, [[3, 2, 1, 0], [1, 0, 2, 3]])
        torch.testing.assert_close(aug(x, params=params), patch_shuffle(x, (2, 2), params["permutation"]))

    def test_dynamo(self) -> None:
        x = torch.rand(2, 3, 8, 8)
        for aug in (RandomPatchShuffle(grid=2, p=1.0), RandomPatchShuffle(grid=2, p=0.5)):
            params = aug.forward_parameters(x.shape)
            counter = CompileCounter()
            compiled = torch.compile(aug, backend=counter, fullgraph=True)
            torch.testing.assert_close(compiled(x, params=params), aug(x, params=params), rtol=0, atol=0)
            torch.testing.assert_close(compiled(x, params=params), aug(x, params=params), rtol=0, atol=0)
            assert counter.frame_count == 1  # one graph, no recompilation on replay

    # ------------------------------------------------------------------ geometric contract
    def test_mask_follows_the_image_in_augmentation_sequential(self) -> None:
        x = torch.rand(4, 3, 8, 8)
        seq = K.AugmentationSequential(RandomPatchShuffle(grid=(2, 2), p=1.0), data_keys=["input", "mask"])
        img, msk = seq(x, (x[:, :1] > 0.5).float())
        torch.testing.assert_close(msk, (img[:, :1] > 0.5).float())

    def test_patch_sequential_refuses_masks_instead_of_leaving_them_behind(self) -> None:
        x = torch.rand(2, 3, 8, 8)
        inner = K.PatchSequential(RandomPatchShuffle(grid=2, p=1.0), grid_size=(2, 2), patchwise_apply=False)
        assert not torch.equal(inner(x), x)  # images are shuffled patch by patch
        with pytest.warns(UserWarning, match="Geometric"):
            seq = K.AugmentationSequential(inner, data_keys=["input", "mask"])
        with pytest.raises(NotImplementedError, match="geometric"):
            seq(x, x[:, :1])

    @pytest.mark.parametrize(("size", "grid", "p"), [((8, 8), (2, 2), 1.0), ((9, 10), (2, 3), 1.0), ((8, 8), 2, 0.5)])
    def test_keypoints_follow_their_pixels(self, size: tuple[int, int], grid: tuple[int, int], p: float) -> None:
        height, width = size
        torch.manual_seed(1)
        x = torch.rand(6, 3, height, width, dtype=torch.float64)
        points = pixel_grid(6, height, width).double()
        seq = K.AugmentationSequential(RandomPatchShuffle(grid=grid, p=p), data_keys=["input", "keypoints"])
        img, moved = seq(x, points)
        assert moved.dtype == points.dtype and torch.equal(moved, moved.round())
        for b in range(6):
            src, dst = points[b].long(), moved[b].long()
            assert torch.equal(img[b, :, dst[:, 1], dst[:, 0]], x[b, :, src[:, 1], src[:, 0]])

    def test_keypoint_moves_to_the_inverse_permuted_cell(self) -> None:
        aug = RandomPatchShuffle(grid=2, p=1.0)
        params = fixed_params(aug, (1, 1, 8, 8), [[1, 2, 3, 0]])  # output cell j holds input cell pi(j)
        # input cell 0 -> output cell pi^-1(0) = 3, cell 3 -> 2; sub-pixel offsets are kept;
        # x = 3.6 lies in pixel 4, so in cell 1 -> 0
        points = Keypoints(torch.tensor([[[0.25, 1.5], [3.6, 0.0], [7.0, 7.0]]]))
        out = aug.transform_keypoints(points, params, aug.flags)
        torch.testing.assert_close(out.data, torch.tensor([[[4.25, 5.5], [-0.4, 0.0], [3.0, 7.0]]]))

    def test_boxes_inside_a_cell_move_with_it_and_spanning_boxes_are_refused(self) -> None:
        x = torch.rand(2, 3, 8, 8)
        aug = RandomPatchShuffle(grid=2, p=1.0)
        seq = K.AugmentationSequential(aug, data_keys=["input", "bbox_xyxy"])
        boxes = torch.tensor([[[1.0, 1.0, 3.0, 4.0]], [[4.0, 4.0, 8.0, 8.0]]])
        img, moved = seq(x, boxes)
        perm = seq._params[0].data["permutation"]
        for b in range(2):
            source = 0 if b == 0 else 3
            target = int(perm[b].argsort()[source])
            shift = torch.tensor([(target % 2 - source % 2) * 4.0, (target // 2 - source // 2) * 4.0])
            torch.testing.assert_close(moved[b, 0], boxes[b, 0] + shift.repeat(2))
            # the box still frames the same pixels
            x1, y1, x2, y2 = (int(v) for v in boxes[b, 0])
            u1, v1, u2, v2 = (int(v) for v in moved[b, 0])
            assert torch.equal(img[b, :, v1:v2, u1:u2], x[b, :, y1:y2, x1:x2])
        with pytest.raises(ValueError, match="inside one cell.*box 0 of sample 1"):
            seq(x, torch.tensor([[[0.0, 0.0, 2.0, 2.0]], [[2.0, 2.0, 6.0, 6.0]]]))

    def test_spanning_box_of_a_skipped_sample_is_accepted(self) -> None:
        aug = RandomPatchShuffle(grid=2, p=0.5)
        params = fixed_params(aug, (2, 3, 8, 8), [[1, 0, 2, 3], [1, 0, 2, 3]])
        params["batch_prob"] = torch.tensor([True, False])
        boxes = Boxes.from_tensor(torch.tensor([[[0.0, 0.0, 2.0, 2.0]], [[2.0, 2.0, 6.0, 6.0]]]), mode="xyxy")
        out = aug.transform_boxes(boxes, params, aug.flags).to_tensor("xyxy")
        torch.testing.assert_close(out, torch.tensor([[[4.0, 0.0, 6.0, 2.0]], [[2.0, 2.0, 6.0, 6.0]]]))

    @pytest.mark.parametrize("p", [1.0, 0.5])
    def test_sequential_inverse_restores_image_mask_keypoints_and_boxes(self, p: float) -> None:
        torch.manual_seed(3)
        x = torch.rand(6, 3, 9, 10)
        mask = (torch.rand(6, 1, 9, 10) > 0.5).float()
        points = pixel_grid(6, 9, 10)
        boxes = torch.tensor([[[1.0, 1.0, 3.0, 3.0]]]).repeat(6, 1, 1)
        seq = K.AugmentationSequential(RandomPatchShuffle(grid=(2, 3), p=p),
                                       data_keys=["input", "mask", "keypoints", "bbox_xyxy"])
        out = seq(x, mask, points, boxes)
        assert not torch.equal(out[0], x)
        restored = seq.inverse(*out)
        for got, expected in zip(restored, (x, mask, points, boxes)):
            assert torch.equal(got, expected)

    def test_module_inverse_and_keepdim(self) -> None:
        aug = RandomPatchShuffle(grid=3, p=1.0, keepdim=True)
        x = torch.rand(3, 9, 9)
        out = aug(x)
        assert out.shape == x.shape and not torch.equal(out, x)
        assert torch.equal(aug.inverse(out, params=aug._params), x)
        with pytest.raises(NotImplementedError, match="permutation"):
            aug.inverse_transform(out[None], aug.flags)

    def test_transform_matrix_claims_no_affine_map(self) -> None:
        aug = RandomPatchShuffle(grid=2, p=0.5)
        params = fixed_params(aug, (2, 3, 8, 8), [[1, 0, 2, 3], [1, 0, 2, 3]])
        params["batch_prob"] = torch.tensor([True, False])
        aug(torch.rand(2, 3, 8, 8), params=params)
        assert aug.transform_matrix[0].isnan().all()  # a shuffled sample has no affine matrix
        torch.testing.assert_close(aug.transform_matrix[1], torch.eye(3))  # a skipped one is untouched
        seq = K.AugmentationSequential(RandomPatchShuffle(p=1.0), K.RandomHorizontalFlip(p=1.0))
        seq(torch.rand(1, 3, 8, 8))
        assert seq.transform_matrix.isnan().all()  # the composed matrix cannot pass for a real one


class TestSaturation:
    def test_smoke(self) -> None:
        x = torch.rand(2, 3, 8, 8)
        assert Saturation(8.0)(x).shape == x.shape and Saturation(8.0, p=0.5).p == 0.5
        assert RandomSaturation(level=(8.0, 64.0), p=1.0, keepdim=True)(x[0]).shape == (3, 8, 8)

    def test_levels_follow_the_paper_formula(self) -> None:
        x = torch.rand(2, 3, 8, 8, dtype=torch.float64)
        for level in (1.0, 2.0, 8.0, 1024.0):
            u = 2 * x.numpy() - 1
            expected = (np.sign(u) * np.abs(u) ** (2 / level) + 1) / 2
            np.testing.assert_allclose(Saturation(level)(x).numpy(), expected, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(Saturation(2.0)(x), x)

    def test_p_is_kornias_probability(self) -> None:
        x = torch.rand(64, 1, 2, 2)
        assert torch.equal(Saturation(1024.0, p=0.0)(x), x)
        torch.testing.assert_close(Saturation(1024.0, p=1.0)(x), saturation(x, 1024.0))
        torch.manual_seed(0)
        aug = Saturation(1024.0, p=0.5)
        out = aug(x)
        gate = aug._params["batch_prob"] > 0.5
        assert 0 < int(gate.sum()) < 64  # sampled per image, not one coin for the batch
        torch.testing.assert_close(out[gate], saturation(x[gate], 1024.0))
        assert torch.equal(out[~gate], x[~gate])

    def test_random_level_replay_range_and_gate(self) -> None:
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

    def test_exception(self) -> None:
        with pytest.raises(ValueError, match="level"):
            RandomSaturation(level=(-1.0, 4.0))
        with pytest.raises(ValueError, match="level"):
            RandomSaturation(level=(64.0, 8.0))
        with pytest.raises(TypeError, match="level must be a number"):
            Saturation("high")
        with pytest.raises(ValueError, match="p must lie"):
            Saturation(8.0, p=2.0)
        for aug in (Saturation(8.0), RandomSaturation(p=1.0)):
            with pytest.raises(ValueError, match="input must be finite"):
                aug(torch.tensor([0.2, float("nan")]).view(1, 1, 1, 2))

    def test_gradcheck(self) -> None:
        x = (0.55 + 0.4 * torch.rand(1, 2, 3, 3, dtype=torch.float64)).requires_grad_()  # away from the kink at 0.5
        assert torch.autograd.gradcheck(Saturation(6.0), (x,), fast_mode=True)

    def test_gradients_flow_and_half_precision_has_no_nan(self) -> None:
        x = torch.rand(2, 3, 8, 8, requires_grad=True)
        (RandomPatchShuffle(p=1.0)(x).sum() + Saturation(64.0)(x).sum()).backward()
        assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
        assert torch.isfinite(Saturation(1024.0)(torch.rand(1, 3, 4, 4).half()).float()).all()

    def test_module_is_the_functional(self) -> None:
        x = torch.rand(3, 3, 4, 4)
        aug = RandomSaturation(p=1.0)
        out = aug(x)
        torch.testing.assert_close(out, saturation(x, aug._params["level"]))

    def test_dynamo(self) -> None:
        x = torch.rand(2, 3, 4, 4)
        for aug in (Saturation(8.0), Saturation(8.0, p=0.5), RandomSaturation(p=1.0)):
            params = aug.forward_parameters(x.shape)
            counter = CompileCounter()
            compiled = torch.compile(aug, backend=counter, fullgraph=True)
            torch.testing.assert_close(compiled(x, params=params), aug(x, params=params))
            assert counter.frame_count == 1
