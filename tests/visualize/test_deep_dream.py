"""DeepDream (Mordvintsev et al. 2015): literal single-octave update, amplified activations, model untouched."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from captum_wsam.visualize.deep_dream import deep_dream, octave_sizes
from tests.helpers import assert_model_untouched


def _energy(model: nn.Module, layer: nn.Module, image: Tensor) -> Tensor:
    captured = []
    handle = layer.register_forward_hook(lambda _m, _i, out: captured.append(out))
    try:
        with torch.no_grad():
            model(image)
    finally:
        handle.remove()
    return captured[0].pow(2).flatten(1).mean(1)


def test_single_octave_matches_literal_update() -> None:
    torch.manual_seed(2)
    conv = nn.Conv2d(3, 2, 3, padding=1).double()
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(2 * 8 * 8, 3)).double()
    image = torch.rand(2, 3, 8, 8, dtype=torch.float64) * 0.5 + 0.25
    ours = deep_dream(model, image, conv, steps=3, octaves=1, lr=0.05, jitter=0, progress=False)
    dream = image.clone()
    for _ in range(3):
        dream.requires_grad_(True)
        energy = 0.5 * conv(dream).pow(2).flatten(1).mean(1).sum()
        (gradient,) = torch.autograd.grad(energy, dream)
        scale = gradient.abs().flatten(1).mean(1).view(-1, 1, 1, 1)
        dream = (dream.detach() + 0.05 * gradient / (scale + 1e-8)).clamp(0, 1)
    torch.testing.assert_close(ours, dream)


def test_octave_sizes() -> None:
    assert octave_sizes((32, 40), 3, 2.0) == [(32, 40), (16, 20), (8, 10)]


def test_dream_amplifies_the_layer_and_leaves_model_untouched(trained_cnn: nn.Module, images: Tensor) -> None:
    layer = trained_cnn.block2

    def call(steps: int) -> Tensor:
        return deep_dream(trained_cnn, images, layer, steps=steps, octaves=2, progress=False)

    dream = assert_model_untouched(trained_cnn, call, 4, invalid_target=0, inputs=[images])
    assert dream.shape == images.shape and dream.dtype == images.dtype
    assert dream.min() >= 0 and dream.max() <= 1
    assert (_energy(trained_cnn, layer, dream) > 1.2 * _energy(trained_cnn, layer, images)).all()


def test_bad_inputs(trained_cnn: nn.Module, images: Tensor) -> None:
    with pytest.raises(ValueError, match="image must be a 4-D"):
        deep_dream(trained_cnn, images[0], trained_cnn.block2)
    with pytest.raises(ValueError, match="layer must be a submodule"):
        deep_dream(trained_cnn, images, nn.ReLU())
    with pytest.raises(ValueError, match="octave_scale must lie"):
        deep_dream(trained_cnn, images, trained_cnn.block2, octave_scale=1.0)
