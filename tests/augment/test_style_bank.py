"""StyleBank: encoding, noise, safe save/load, folders; the default procedural bank."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch
from PIL import Image

from captum_wsam.augment import LinearStyleTransfer, StyleBank, procedural_styles


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
