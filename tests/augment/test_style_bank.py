"""StyleBank: encoding, noise, safe save/load, folders; the default procedural bank."""

from __future__ import annotations

import pickle
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from captum_wsam.augment import LinearStyleTransfer, StyleBank, procedural_styles
from captum_wsam.augment.style_bank import load_image_folder


def test_default_bank_has_at_least_32_distinct_named_styles() -> None:
    bank = LinearStyleTransfer().default_style_bank()
    assert len(bank) >= 32 and len(set(bank.names)) == len(bank)
    assert torch.cdist(bank.vectors, bank.vectors).add(torch.eye(len(bank)) * 1e9).min() > 1e-3
    assert torch.equal(bank.vectors, LinearStyleTransfer().default_style_bank().vectors)  # deterministic
    images, names = procedural_styles(count=6, size=32, seed=1)
    assert images.shape == (6, 3, 32, 32) and len(names) == 6


def test_encode_decode_round_trip_of_statistics() -> None:
    transfer = LinearStyleTransfer()
    images = torch.rand(2, 3, 32, 32, dtype=torch.float64)
    means, covariances = transfer.decode_styles(transfer.encode_styles(images))
    from captum_wsam.augment.functional import content_statistics, regularize_covariance

    stats = content_statistics(images, 3, 3, max_positions=10**6, whiten=False)
    for got, expected in zip(means, stats.means):
        torch.testing.assert_close(got, expected)
    for got, expected in zip(covariances, stats.covariances):
        torch.testing.assert_close(got, regularize_covariance(expected))


def test_sample_adds_scaled_noise() -> None:
    bank = StyleBank(torch.tensor([[0.0, 1.0], [2.0, 1.0]]))
    torch.testing.assert_close(bank.noise_scale, torch.tensor([2.0**0.5, 0.0]))
    out = bank.sample(torch.tensor([0, 1]), torch.ones(2, 2), style_noise=0.5)
    torch.testing.assert_close(out, torch.tensor([[0.5 * 2**0.5, 1.0], [2 + 0.5 * 2**0.5, 1.0]]))
    torch.testing.assert_close(StyleBank(torch.ones(1, 3)).noise_scale, torch.zeros(3))


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    bank = StyleBank.from_images(torch.rand(3, 3, 32, 32), LinearStyleTransfer(), names=["a", "b", "c"])
    bank.save(tmp_path / "bank.pt")
    loaded = StyleBank.load(tmp_path / "bank.pt")
    assert torch.equal(loaded.vectors, bank.vectors) and loaded.names == ["a", "b", "c"]
    assert loaded.config == LinearStyleTransfer().config


class _Payload:
    def __reduce__(self):  # executed by a full unpickler, refused by weights_only=True
        return (print, ("code ran",))


def test_load_refuses_pickled_code_and_wrong_files(tmp_path: Path) -> None:
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "vectors": torch.zeros(1, 2), "names": ["x"], "config": _Payload()}, evil)
    with pytest.raises(pickle.UnpicklingError):
        StyleBank.load(evil)
    torch.save({"something": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a StyleBank file"):
        StyleBank.load(tmp_path / "other.pt")
    torch.save({"format_version": 1, "vectors": torch.zeros(1, 2)}, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match="lacks the keys"):
        StyleBank.load(tmp_path / "partial.pt")


def test_from_folder(tmp_path: Path) -> None:
    for i, size in enumerate([(40, 50), (64, 36)]):
        pixels = (torch.rand(*size, 3) * 255).to(torch.uint8).numpy()
        Image.fromarray(pixels).save(tmp_path / f"style{i}.{'png' if i == 0 else 'jpg'}")
    (tmp_path / "notes.txt").write_text("not an image")
    bank = StyleBank.from_images(tmp_path, LinearStyleTransfer(), size=32)
    assert len(bank) == 2 and bank.names == ["style0", "style1"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="holds no"):
        StyleBank.from_images(empty, LinearStyleTransfer(), size=32)
    with pytest.raises(ValueError, match="existing folder"):
        StyleBank.from_images(tmp_path / "missing", LinearStyleTransfer())


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="vectors must not be empty"):
        StyleBank(torch.zeros(0, 4))
    with pytest.raises(TypeError, match="vectors must have a floating-point dtype"):
        StyleBank(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="names must be 2 strings"):
        StyleBank(torch.zeros(2, 4), names=["only one"])
    with pytest.raises(TypeError, match="transfer must be a style backend with encode_styles.*got Identity"):
        StyleBank.from_images(torch.rand(1, 3, 32, 32), torch.nn.Identity())
    with pytest.raises(TypeError, match="transfer"):  # the bank has no backend of its own (no import circle)
        StyleBank.from_images(torch.rand(1, 3, 32, 32))  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="images must be at least 16×16"):
        LinearStyleTransfer().encode_styles(torch.rand(1, 3, 8, 8))
    with pytest.raises(ValueError, match="styles must have 2268 columns"):
        LinearStyleTransfer().decode_styles(torch.zeros(1, 10))


# ---------------------------------------------------------------------------- issue 16: load validation, decoding
def _save_payload(path: Path, **changes: object) -> Path:
    payload = {"format_version": 1, "vectors": torch.rand(2, 3), "names": ["a", "b"], "config": {"levels": 3}}
    payload.update(changes)
    torch.save({k: v for k, v in payload.items() if v is not _DROP}, path)
    return path


_DROP = object()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vectors": torch.rand(4)}, "non-empty 2-D float tensor"),
        ({"vectors": torch.zeros(2, 3, dtype=torch.long)}, "non-empty 2-D float tensor"),
        ({"vectors": torch.tensor([[0.0, float("nan"), 1.0], [0.0, 1.0, float("inf")]])}, "finite, got 2 NaN/inf"),
        ({"names": ["only one"]}, "names must be a list of 2 strings"),
        ({"names": "ab"}, "names must be a list of 2 strings"),
        ({"config": ["levels", 3]}, "config must be a dict"),
        ({"config": _DROP}, r"lacks the keys \['config'\]"),
        ({"extra": torch.zeros(1)}, r"unexpected keys \['extra'\]"),
    ],
    ids=["1-D", "integer", "non-finite", "names-length", "names-type", "config-type", "missing-key", "extra-key"],
)
def test_load_validates_the_payload_and_names_the_file(tmp_path: Path, changes: dict, message: str) -> None:
    path = _save_payload(tmp_path / "bank.pt", **changes)
    with pytest.raises(ValueError, match=message) as info:
        StyleBank.load(path)
    assert str(path) in str(info.value)


def test_load_names_the_file_for_empty_foreign_and_unsafe_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty, truncated or not a torch file") as info:
        StyleBank.load(empty)
    assert str(empty) in str(info.value)
    foreign = tmp_path / "list.pt"
    torch.save([torch.zeros(2)], foreign)
    with pytest.raises(ValueError, match=r"not a StyleBank file.*got list") as info:
        StyleBank.load(foreign)
    assert str(foreign) in str(info.value)
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint at all")
    with pytest.raises((ValueError, pickle.UnpicklingError)) as info:
        StyleBank.load(text)
    assert str(text) in str(info.value)
    evil = tmp_path / "evil.pt"
    torch.save({"format_version": 1, "vectors": torch.zeros(1, 2), "names": ["x"], "config": _Payload()}, evil)
    with pytest.raises(pickle.UnpicklingError, match="cannot be read safely") as info:
        StyleBank.load(evil)
    assert str(evil) in str(info.value)


def test_folder_decodes_16_bit_png_without_clipping(tmp_path: Path) -> None:
    ramp = np.linspace(0, 65535, 64 * 64).round().astype(np.uint16).reshape(64, 64)
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    images, _ = load_image_folder(tmp_path, size=64)
    expected = torch.from_numpy(ramp.astype(np.float64) / 65535).float()
    torch.testing.assert_close(images[0], expected.expand(3, -1, -1), atol=1e-3, rtol=0)
    assert float((images == 1).float().mean()) < 0.01  # was 99.6 % white when clipped to 8 bits


def test_folder_decodes_palette_and_transparent_images(tmp_path: Path) -> None:
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[:, :4] = (200, 40, 10)
    rgb[:, 4:] = (10, 90, 250)
    Image.fromarray(rgb).save(tmp_path / "a_rgb.png")
    Image.fromarray(rgb).quantize(colors=2).save(tmp_path / "b_palette.png")
    rgba = np.concatenate([rgb, np.full((8, 8, 1), 255, dtype=np.uint8)], axis=-1)
    rgba[:, 4:, 3] = 0  # the right half transparent: white after compositing
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "c_rgba.png")
    la = np.stack([np.full((8, 8), 51, dtype=np.uint8), np.full((8, 8), 128, dtype=np.uint8)], axis=-1)
    Image.fromarray(la, mode="LA").save(tmp_path / "d_la.png")
    transparent_palette = Image.fromarray(rgba, mode="RGBA").quantize(colors=3)
    transparent_palette.info["transparency"] = transparent_palette.getpixel((6, 0))
    transparent_palette.save(tmp_path / "e_palette_transparent.png", transparency=transparent_palette.getpixel((6, 0)))
    images, names = load_image_folder(tmp_path, size=8)
    assert names == ["a_rgb", "b_palette", "c_rgba", "d_la", "e_palette_transparent"]
    reference = torch.from_numpy(rgb).permute(2, 0, 1).float() / 255
    torch.testing.assert_close(images[0], reference)
    torch.testing.assert_close(images[1], reference, atol=2 / 255, rtol=0)  # through the palette, not its indices
    torch.testing.assert_close(images[2][:, :, :4], reference[:, :, :4])
    torch.testing.assert_close(images[2][:, :, 4:], torch.ones(3, 8, 4))
    alpha = 128 / 255
    torch.testing.assert_close(images[3], torch.full((3, 8, 8), alpha * 0.2 + (1 - alpha)))
    torch.testing.assert_close(images[4][:, :, 4:], torch.ones(3, 8, 4))


@pytest.mark.parametrize("suffix", ["png", "jpg"])
def test_large_images_are_shrunk_while_decoding(tmp_path: Path, suffix: str, monkeypatch: pytest.MonkeyPatch) -> None:
    side, size = 3000, 64
    ramp = np.linspace(0, 255, side, dtype=np.float32).astype(np.uint8)
    Image.fromarray(np.broadcast_to(ramp[None, :, None], (side, side, 3)).copy()).save(tmp_path / f"big.{suffix}")
    arrays: list[tuple[int, ...]] = []
    original = torch.from_numpy

    def spy(array: np.ndarray) -> torch.Tensor:
        arrays.append(array.shape)
        return original(array)

    monkeypatch.setattr(torch, "from_numpy", spy)
    tracemalloc.start()
    try:
        images, _ = load_image_folder(tmp_path, size=size)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert images.shape == (1, 3, size, size)
    assert arrays and all(np.prod(shape) <= (2 * size) ** 2 * 4 for shape in arrays), arrays
    assert peak < 2 * 2**20  # numpy never held a full-size array (a float32 copy would be 103 MiB)
    torch.testing.assert_close(images[0, 0, 0], torch.linspace(0, 1, size), atol=0.03, rtol=0)


def test_folder_names_an_undecodable_file(tmp_path: Path) -> None:
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(ValueError, match="broken.png.*cannot be decoded"):
        load_image_folder(tmp_path, size=8)
