from __future__ import annotations

import pytest
import torch

from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN, create_model, list_models
from captum_wsam.train import accuracy, train_classifier


@pytest.mark.parametrize("name", list_models())
def test_registry_models_run_at_small_sizes(name):
    model = create_model(name, num_classes=6).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64))
    assert out.shape == (2, 6) and torch.isfinite(out).all()


def test_small_cnn_layers_are_named():
    model = SmallCNN()
    names = dict(model.named_modules())
    for name in ("block1.conv", "block4.bn", "block4.relu", "pool", "classifier"):
        assert name in names
    assert model.last_conv_block is model.block4


def test_small_cnn_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        SmallCNN(width=0)
    with pytest.raises(TypeError, match="depth"):
        SmallCNN(depth=2.0)
    with pytest.raises(ValueError, match="name"):
        create_model("resnet9000")


def test_small_cnn_reaches_95_percent_on_shapes_64():
    """The acceptance figure of the foundation: >= 95 % test accuracy on ShapesTextures(shape, 64x64), < 60 s."""
    torch.manual_seed(0)
    train = ShapesTextures(n=4000, size=64, seed=0)
    test = ShapesTextures(n=1000, size=64, seed=1)
    model = SmallCNN()
    train_classifier(model, train, epochs=6, batch_size=64, lr=5e-3, progress=False)
    assert accuracy(model, test) >= 0.95
