"""TextureTransfer: soft patch swap against a literal float64 loop, texture creation, α, gradients, dtypes, workers."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from captum_wsam.augment import LinearStyleTransfer, StyleAugment, StyleBank, TextureTransfer
from captum_wsam.augment.backend import StyleBackend
from captum_wsam.augment.functional import sample_positions
from captum_wsam.augment.texture_functional import blend_window, colour_transfer, matching_noise, soft_patch_swap


def _literal_soft_patch_swap(content, style, k, max_style_patches, temperature, noise_level, seed):
    """Chen & Schmidt's style swap, made soft and noise-injected, written pixel by pixel (float64, loops)."""
    batch, channels, height, width = content.shape
    half = k // 2
    pad_h, pad_w = half + (-height) % half, half + (-width) % half
    padded = F.pad(content, (half, pad_w, half, pad_h), mode="reflect")
    rows, cols = (padded.shape[-2] - k) // half + 1, (padded.shape[-1] - k) // half + 1
    positions = sample_positions(style.shape[-2], style.shape[-1], k, max_style_patches, torch.device("cpu"))
    noise = matching_noise(rows * cols, k * k, torch.float64, torch.device("cpu"), seed) / k
    w1 = [math.sin(math.pi * (t + 0.5) / k) ** 2 for t in range(k)]
    out = torch.zeros(batch, channels, padded.shape[-2], padded.shape[-1], dtype=torch.float64)
    for b in range(batch):
        style_patches = []
        for p in positions.tolist():
            r, c = divmod(p, style.shape[-1])
            style_patches.append(style[b, :, r : r + k, c : c + k])
        keys = [s.mean(0).flatten() for s in style_patches]
        rho = sum(float(key.norm()) for key in keys) / len(keys)
        for i in range(rows):
            for j in range(cols):
                patch = padded[b, :, i * half : i * half + k, j * half : j * half + k]
                query = patch.mean(0).flatten() + noise_level * rho * noise[i * cols + j]
                sims = torch.stack([query @ key / (query.norm() * key.norm()) for key in keys])
                weights = torch.softmax(sims / temperature, 0)
                swapped = sum(w * s for w, s in zip(weights, style_patches))
                for u in range(k):
                    for v in range(k):
                        out[b, :, i * half + u, j * half + v] += w1[u] * w1[v] * swapped[:, u, v]
    return out[..., half : half + height, half : half + width]


@pytest.mark.parametrize("size", [(12, 12), (10, 14)])
def test_soft_patch_swap_equals_literal_loop(size: tuple[int, int]) -> None:
    g = torch.Generator().manual_seed(0)
    content = torch.rand(2, 3, *size, generator=g, dtype=torch.float64) - 0.5
    style = torch.rand(2, 3, 9, 11, generator=g, dtype=torch.float64) - 0.5
    args = dict(max_style_patches=20, temperature=0.1, noise_level=0.7, seed=3)
    fast = soft_patch_swap(content, style, 4, **args)
    slow = _literal_soft_patch_swap(content, style, 4, args["max_style_patches"], args["temperature"],
                                    args["noise_level"], args["seed"])
    torch.testing.assert_close(fast, slow, rtol=1e-10, atol=1e-12)


def test_windows_sum_to_one_at_half_stride() -> None:
    one = torch.tensor([math.sin(math.pi * (t + 0.5) / 6) ** 2 for t in range(6)], dtype=torch.float64)
    torch.testing.assert_close(blend_window(6, torch.float64).view(6, 6), torch.outer(one, one))
    torch.testing.assert_close(one[:3] + one[3:], torch.ones(3, dtype=torch.float64))


def test_colour_transfer_matches_style_mean_and_covariance() -> None:
    g = torch.Generator().manual_seed(1)
    content = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)
    style = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64) * torch.tensor([0.2, 1.0, 0.5]).view(3, 1, 1)
    out = colour_transfer(content, style).flatten(2)
    target = style.flatten(2)
    torch.testing.assert_close(out.mean(-1), target.mean(-1))
    cov = lambda f: (f - f.mean(-1, keepdim=True)) @ (f - f.mean(-1, keepdim=True)).transpose(1, 2) / f.shape[-1]  # noqa: E731
    torch.testing.assert_close(cov(out), cov(target), rtol=0, atol=1e-3)


def _stripes(size: int = 64, period: int = 8) -> torch.Tensor:
    rows = (torch.arange(size) // (period // 2)) % 2
    return rows.float().view(1, 1, size, 1).expand(1, 3, size, size).clone()


def test_creates_texture_where_the_content_is_flat_linear_does_not() -> None:
    flat = torch.full((1, 3, 48, 48), 0.5)
    striped = _stripes()
    texture = StyleAugment(transfer=TextureTransfer(), styles=striped).stylize(flat, 0, 0.0)
    linear = StyleAugment(transfer=LinearStyleTransfer(), styles=striped).stylize(flat, 0, 0.0)
    # Row profile of the output: stripes along the rows show as a large spread of row means.
    assert texture.mean(dim=(1, 3)).std() > 0.15
    assert linear.mean(dim=(1, 3)).std() < 0.02


def test_dots_become_stripes() -> None:
    size = 48
    y, x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    dots = (((y % 8 - 3.5) ** 2 + (x % 8 - 3.5) ** 2) < 6).float().expand(1, 3, size, size)
    out = StyleAugment(transfer=TextureTransfer(), styles=_stripes()).stylize(dots, 0, 0.0)
    # Horizontal stripes: much more variation down the columns than along the rows.
    down, along = (out[..., 1:, :] - out[..., :-1, :]).abs().mean(), (out[..., 1:] - out[..., :-1]).abs().mean()
    assert down > 2 * along


def test_alpha_one_is_identity_and_distance_grows_as_alpha_falls() -> None:
    aug = StyleAugment(p=1.0)
    x = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert isinstance(aug.transfer, TextureTransfer) and isinstance(aug.transfer, StyleBackend)
    assert torch.equal(aug.stylize(x, 4, 1.0), x)
    assert torch.equal(aug.transfer(x, aug.style_bank.vectors[:3], torch.ones(3)), x)
    distances = [(aug.stylize(x, 4, a) - x).abs().mean().item() for a in (0.0, 0.25, 0.5, 0.75)]
    assert distances == sorted(distances, reverse=True) and distances[-1] > 0


def test_gradcheck_wrt_input_and_alpha() -> None:
    transfer = TextureTransfer(tile_size=16, patch_size=4, levels=2, max_style_patches=12, temperature=0.2)
    g = torch.Generator().manual_seed(3)
    style = transfer.encode_styles(torch.rand(1, 3, 16, 16, generator=g, dtype=torch.float64) * 0.2 + 0.4)
    x = (torch.rand(1, 3, 12, 12, generator=g, dtype=torch.float64) * 0.2 + 0.4).requires_grad_()
    alpha = torch.tensor([0.4], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda i, a: transfer(i, style, a), (x, alpha), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_inputs(dtype: torch.dtype) -> None:
    aug = StyleAugment(p=1.0)
    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    out = aug.stylize(x.to(dtype), 1, 0.3)
    assert out.dtype == dtype and torch.isfinite(out.float()).all()
    torch.testing.assert_close(out.float(), aug.stylize(x, 1, 0.3), atol=2e-2, rtol=0)


def test_same_on_batch_and_replay() -> None:
    aug = StyleAugment(p=1.0, same_on_batch=True)
    x = torch.rand(1, 3, 32, 32).expand(4, -1, -1, -1).contiguous()
    out = aug(x)
    assert all(torch.equal(out[0], out[i]) for i in range(1, 4))
    torch.manual_seed(7)
    assert torch.equal(aug(x, params=aug._params), out)


class _Styled(Dataset):
    def __init__(self) -> None:
        self.aug = StyleAugment(p=1.0, keepdim=True)

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> torch.Tensor:
        image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(index))
        return self.aug.stylize(image[None], index, 0.2)[0]


def test_dataloader_workers_match_the_main_process() -> None:
    data = _Styled()
    in_workers = torch.cat(list(DataLoader(data, batch_size=2, num_workers=2)))
    torch.testing.assert_close(in_workers, torch.stack([data[i] for i in range(4)]))


def test_bank_and_argument_checks() -> None:
    transfer = TextureTransfer(tile_size=32)
    bank = StyleBank.from_images(torch.rand(2, 3, 40, 40), transfer=transfer)
    assert bank.vectors.shape == (2, transfer.style_dim) and bank.config == {"backend": "texture", "tile_size": 32}
    with pytest.raises(ValueError, match="styles was built for"):
        StyleAugment(transfer=TextureTransfer(), styles=bank)
    with pytest.raises(ValueError, match="patch_size"):
        TextureTransfer(patch_size=3)
    with pytest.raises(ValueError, match="tile_size"):
        TextureTransfer(tile_size=8, patch_size=8)
    with pytest.raises(ValueError, match="temperature"):
        TextureTransfer(temperature=0.0)
    with pytest.raises(ValueError, match="styles must have"):
        transfer(torch.rand(1, 3, 16, 16), torch.rand(1, 5), torch.zeros(1))
