"""StyleAugment: the Kornia contract (params replay, p, same_on_batch, containers), α convention, gradients, dtypes."""

from __future__ import annotations

import kornia.augmentation as K
import pytest
import torch
from torch import nn

from captum_wsam.augment import LinearStyleTransfer, StyleAugment, StyleBank


@pytest.fixture(scope="module")
def aug() -> StyleAugment:
    return StyleAugment(p=1.0)


@pytest.fixture
def x() -> torch.Tensor:
    return torch.rand(4, 3, 24, 24, generator=torch.Generator().manual_seed(0))


def test_alpha_one_returns_input_exactly_and_alpha_zero_changes_it(aug: StyleAugment, x: torch.Tensor) -> None:
    assert torch.equal(aug.stylize(x, 5, 1.0), x)
    full = aug.stylize(x, 5, 0.0)
    assert (full - x).abs().mean() > 0.02
    assert full.min() >= 0 and full.max() <= 1
    # "The less intensity, the more style": distance to the input shrinks as α grows.
    distances = [(aug.stylize(x, 5, a) - x).abs().mean().item() for a in (0.0, 0.5, 0.9)]
    assert distances[0] > distances[1] > distances[2] > 0


def test_forward_params_replay_bit_for_bit(x: torch.Tensor) -> None:
    aug = StyleAugment(p=0.5)
    out = aug(x)
    params = aug._params
    assert set(params) >= {"style_index", "alpha", "style_noise", "batch_prob"}
    assert params["style_noise"].shape == (4, len(aug.style_bank.vectors[0]))
    torch.manual_seed(123)  # the global RNG must not matter on replay
    assert torch.equal(aug(x, params=params), out)


def test_stylize_equals_forward_with_fixed_params_and_zero_noise(aug: StyleAugment, x: torch.Tensor) -> None:
    style, alpha = torch.tensor([0, 3, 7, 3]), torch.tensor([0.2, 0.5, 0.8, 1.0])
    params = {"style_index": style, "alpha": alpha, "style_noise": torch.zeros(4, aug.style_bank.vectors.shape[1])}
    torch.testing.assert_close(aug(x, params=params), aug.stylize(x, style, alpha), rtol=0, atol=0)
    no_noise_key = {"style_index": style, "alpha": alpha}
    torch.testing.assert_close(aug(x, params=no_noise_key), aug.stylize(x, style, alpha), rtol=0, atol=0)


def test_style_noise_changes_the_style(x: torch.Tensor) -> None:
    aug = StyleAugment(p=1.0, style_noise=0.5)
    params = {"style_index": torch.zeros(4, dtype=torch.long), "alpha": torch.zeros(4)}
    clean = aug(x, params=dict(params))
    noisy = aug(x, params={**params, "style_noise": torch.randn(4, aug.style_bank.vectors.shape[1])})
    assert not torch.allclose(clean, noisy, atol=1e-3) and torch.isfinite(noisy).all()


def test_gradcheck_wrt_input_and_alpha(aug: StyleAugment) -> None:
    x = torch.rand(1, 3, 8, 8, dtype=torch.float64) * 0.6 + 0.2
    alpha = torch.tensor([0.4], dtype=torch.float64)
    x.requires_grad_(True)
    alpha.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda inp, a: aug.stylize(inp, 2, a), (x, alpha), fast_mode=True)


def test_gradients_are_nonzero_through_forward(x: torch.Tensor) -> None:
    aug = StyleAugment(p=1.0)
    inputs = x.clone().requires_grad_(True)
    alpha = torch.full((4,), 0.5, requires_grad=True)
    out = aug(inputs, params={"style_index": torch.arange(4), "alpha": alpha})
    (out * torch.randn_like(out)).sum().backward()
    assert inputs.grad.abs().sum() > 0 and (alpha.grad != 0).all()


def test_stylize_grid_matches_stylize_and_computes_content_once(
    aug: StyleAugment, x: torch.Tensor, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []
    original = aug.transfer.prepare
    monkeypatch.setattr(aug.transfer, "prepare", lambda inputs: calls.append(1) or original(inputs))
    inputs = x[:2].clone().requires_grad_(True)
    grid = aug.stylize_grid(inputs, [1, 4], [0.0, 0.5, 1.0])
    assert grid.shape == (2, 3, 2, 3, 24, 24) and len(calls) == 1
    monkeypatch.undo()
    for s, style in enumerate([1, 4]):
        for a, alpha in enumerate([0.0, 0.5, 1.0]):
            torch.testing.assert_close(grid[s, a], aug.stylize(x[:2], style, alpha))
    grid.sum().backward()
    assert inputs.grad.abs().sum() > 0


def test_p_zero_and_p_one(x: torch.Tensor) -> None:
    assert torch.equal(StyleAugment(p=0.0)(x), x)
    out = StyleAugment(p=1.0, alpha=(0.0, 0.5))(x)
    assert all(not torch.allclose(o, i) for o, i in zip(out, x))


def test_partial_gate_only_touches_selected_samples(x: torch.Tensor) -> None:
    aug = StyleAugment(p=0.5, alpha=0.2)
    params = {"style_index": torch.arange(4), "alpha": torch.full((4,), 0.2),
              "batch_prob": torch.tensor([1.0, 0.0, 1.0, 0.0])}
    out = aug(x, params=params)
    assert torch.equal(out[1], x[1]) and torch.equal(out[3], x[3])
    torch.testing.assert_close(out[[0, 2]], aug.stylize(x[[0, 2]], torch.tensor([0, 2]), 0.2))


def test_same_on_batch(x: torch.Tensor) -> None:
    aug = StyleAugment(p=1.0, same_on_batch=True)
    aug(x)
    params = aug._params
    assert params["style_index"].unique().numel() == 1 and params["alpha"].unique().numel() == 1
    assert (params["style_noise"] == params["style_noise"][:1]).all()
    same = x[:1].expand(3, -1, -1, -1)
    out = aug(same)
    # same style for every row; batched kernels may round differently per batch position (seen: 5e-7 on AMD EPYC)
    torch.testing.assert_close(out[1:], out[:1].expand(2, -1, -1, -1), atol=1e-5, rtol=0)
    assert (out[0] - same[0]).abs().max() > 1e-2  # and it is stylized


def test_augmentation_sequential_round_trip_with_geometric_aug(x: torch.Tensor) -> None:
    seq = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), StyleAugment(p=1.0), K.RandomAffine(10.0, p=1.0))
    out = seq(x)
    assert out.shape == x.shape
    assert torch.equal(seq(x, params=seq._params), out)
    mask = torch.ones(4, 1, 24, 24)
    both = K.AugmentationSequential(K.RandomHorizontalFlip(p=1.0), StyleAugment(p=1.0), data_keys=["input", "mask"])
    img, msk = both(x, mask)
    assert img.shape == x.shape and msk.shape == mask.shape


def test_works_as_a_layer_in_a_model(x: torch.Tensor) -> None:
    model = nn.Sequential(StyleAugment(p=1.0), nn.Conv2d(3, 2, 3), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    assert model(x).shape == (4, 2)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_dtypes_keep_dtype_and_have_no_nan(aug: StyleAugment, x: torch.Tensor, dtype: torch.dtype) -> None:
    inputs = x.to(dtype)
    out = aug(inputs)
    assert out.dtype == dtype and out.shape == x.shape and torch.isfinite(out.float()).all()
    flat = torch.full((2, 3, 16, 16), 0.5, dtype=dtype)
    assert torch.isfinite(aug.stylize(flat, 0, 0.0).float()).all()


def test_keepdim_and_unbatched_input(x: torch.Tensor) -> None:
    assert StyleAugment(p=1.0, keepdim=True)(x[0]).shape == (3, 24, 24)
    assert StyleAugment(p=1.0)(x[0]).shape == (1, 3, 24, 24)


def test_module_moves_bank_with_to(aug: StyleAugment) -> None:
    moved = StyleAugment(p=1.0).double()
    assert moved.style_bank.vectors.dtype == torch.float64
    assert "style_bank.vectors" in dict(moved.named_buffers())


def test_bad_arguments_raise_clear_errors(aug: StyleAugment, x: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="alpha"):
        StyleAugment(alpha=(0.5, 1.5))
    with pytest.raises(ValueError, match="alpha"):
        StyleAugment(alpha=(0.8, 0.2))
    with pytest.raises(ValueError, match="p must lie"):
        StyleAugment(p=2.0)
    with pytest.raises(ValueError, match="style_noise"):
        StyleAugment(style_noise=-1.0)
    with pytest.raises(TypeError, match="styles"):
        StyleAugment(styles=3)
    with pytest.raises(ValueError, match="vectors must not be empty"):
        StyleBank(torch.zeros(0, 10))
    with pytest.raises(ValueError, match="styles was built for"):
        StyleAugment(styles=StyleBank(torch.zeros(2, 10), config={"backend": "other"}))
    with pytest.raises(ValueError, match="input must be a 3-D or 4-D"):
        aug(torch.rand(2, 2, 3, 8, 8))
    with pytest.raises(TypeError, match="input must have a floating-point dtype"):
        aug(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="input must have 3 channels"):
        aug(torch.rand(1, 4, 8, 8))
    with pytest.raises(ValueError, match="inputs must be a 4-D"):
        aug.stylize(torch.rand(3, 8, 8), 0, 0.5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        aug.stylize(x, 0, 1.5)
    with pytest.raises(ValueError, match="alpha must lie in"):
        aug.stylize(x, 0, torch.tensor([0.1, 0.2, 0.3, -0.1]))
    with pytest.raises(ValueError, match="style must index the style bank"):
        aug.stylize(x, 48, 0.5)
    with pytest.raises(ValueError, match="alphas must hold at least one"):
        aug.stylize_grid(x, [0], [])
    with pytest.raises(TypeError, match="transfer must"):
        StyleAugment(transfer=nn.Identity())


def test_custom_transfer_configuration_builds_its_own_bank(x: torch.Tensor) -> None:
    transfer = LinearStyleTransfer(patch_size=2, levels=2)
    aug = StyleAugment(p=1.0, transfer=transfer, styles=torch.rand(3, 3, 32, 32))
    assert len(aug.style_bank) == 3 and aug.style_bank.config == transfer.config
    assert aug(x).shape == x.shape


def test_plot_style_grid(aug: StyleAugment, x: torch.Tensor) -> None:
    from captum_wsam.augment import plot_style_grid

    grid = aug.stylize_grid(x[:2], [0, 1], [1.0, 0.0])
    fig = plot_style_grid(grid, alphas=[1.0, 0.0], style_names=aug.style_bank.names[:2], image_index=1)
    assert len(fig.axes) == 4 and fig.axes[0].get_title() == "α=1"
    with pytest.raises(ValueError, match="image_index"):
        plot_style_grid(grid, image_index=2)
