"""Activation maximization (Yosinski et al. 2015): literal update, increasing objective, model left untouched."""

from __future__ import annotations

import pytest
import torch
from scipy import stats
from torch import nn

from captum_wsam.visualize.activation_maximization import activation_maximization, plot_activation_maximization
from tests.helpers import assert_model_untouched


def test_matches_literal_update_on_a_linear_model() -> None:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 6 * 6, 4)).double()
    result = activation_maximization(model.float(), target=2, steps=4, lr=0.1, l2=0.05, blur_every=0, jitter=0,
                                     size=(6, 6), init_std=0.1, seed=3, progress=False)
    weight = model[1].weight.detach().double()[2].view(1, 3, 6, 6)  # the gradient of logit 2
    noise = torch.randn(1, 3, 6, 6, generator=torch.Generator().manual_seed(3)).double()
    image = (0.5 + 0.1 * noise).clamp(0, 1)
    history = []
    for _ in range(4):
        history.append((model.double()(image)[0, 2]).item())
        image = image + 0.1 * weight / weight.abs().mean()
        image = (0.5 + 0.95 * (image - 0.5)).clamp(0, 1)
    torch.testing.assert_close(result.image.double(), image, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(result.history.double(), torch.tensor(history, dtype=torch.float64), atol=1e-4,
                               rtol=1e-5)


@pytest.mark.parametrize("target", [0, 4])
def test_target_logit_increases_over_steps(trained_cnn: nn.Module, target: int) -> None:
    result = activation_maximization(trained_cnn, target=target, steps=24, progress=False)
    history = result.history
    assert stats.spearmanr(history.numpy(), range(len(history))).statistic > 0.7
    assert history[-6:].mean() > history[:6].mean() + 5
    assert result.image.min() >= 0 and result.image.max() <= 1
    with torch.no_grad():
        assert trained_cnn(result.image).argmax(1).item() == target


def test_channel_objective_increases(trained_cnn: nn.Module) -> None:
    result = activation_maximization(trained_cnn, layer=trained_cnn.block3, channel=5, steps=16, progress=False)
    assert result.history[-4:].mean() > result.history[:4].mean()
    again = activation_maximization(trained_cnn, layer=trained_cnn.block3, channel=5, steps=16, progress=False)
    assert torch.equal(result.image, again.image)  # seeded


def test_model_untouched(trained_cnn: nn.Module) -> None:
    model = trained_cnn

    def call(target: int) -> object:
        return activation_maximization(model, target=target, steps=2, progress=False)

    assert_model_untouched(model, call, 1, invalid_target=6)
    assert_model_untouched(model, lambda c: activation_maximization(model, layer=model.block2, channel=c, steps=2,
                                                                   progress=False), 3, invalid_target=999)


def test_plot_and_bad_inputs(trained_cnn: nn.Module) -> None:
    import matplotlib.pyplot as plt

    result = activation_maximization(trained_cnn, target=0, steps=2, progress=False)
    assert len(plot_activation_maximization(result).axes) == 2
    plt.close("all")
    with pytest.raises(ValueError, match="either target"):
        activation_maximization(trained_cnn)
    with pytest.raises(ValueError, match="channel must be given"):
        activation_maximization(trained_cnn, layer=trained_cnn.block1)
    with pytest.raises(ValueError, match="layer must be a submodule"):
        activation_maximization(trained_cnn, layer=nn.Linear(2, 2), channel=0)
    with pytest.raises(ValueError, match="l2 must lie"):
        activation_maximization(trained_cnn, target=0, l2=1.0)
    with pytest.raises(TypeError, match="size must be"):
        activation_maximization(trained_cnn, target=0, size="big")
    with pytest.raises(ValueError, match="value_range must satisfy"):
        activation_maximization(trained_cnn, target=0, value_range=(1.0, 0.0))
