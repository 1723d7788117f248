from __future__ import annotations

import pytest
import torch

from captum_wsam.models import SmallCNN
from captum_wsam.train import accuracy, predict, split_batch, train_classifier


def test_trained_fixture_learns(trained_cnn, shapes_test):
    assert accuracy(trained_cnn, shapes_test) > 0.9


def test_predict_restores_modes():
    model = SmallCNN(width=4).train()
    model.block1.bn.eval()
    predict(model, torch.rand(3, 3, 32, 32))
    assert model.training and not model.block1.bn.training


def test_split_batch_formats():
    x, y = torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)
    assert split_batch((x, y))[2] == {}
    assert split_batch([x, y, {"mask": 1}])[2] == {"mask": 1}
    with pytest.raises(TypeError, match="batch"):
        split_batch(x)


def test_train_bad_arguments(shapes_test):
    with pytest.raises(ValueError, match="epochs"):
        train_classifier(SmallCNN(), shapes_test, epochs=0)
    with pytest.raises(ValueError, match="lr"):
        train_classifier(SmallCNN(), shapes_test, lr=0.0)
    with pytest.raises(TypeError, match="model"):
        train_classifier("model", shapes_test)


def test_train_applies_batch_augmentation(shapes_test):
    seen = []

    def augment(x):
        seen.append(x.shape)
        return x.flip(-1)

    train_classifier(SmallCNN(width=4), shapes_test, epochs=1, batch_size=100, progress=False, augment=augment)
    assert seen == [(100, 3, 32, 32)] * 3
    with pytest.raises(TypeError, match="augment"):
        train_classifier(SmallCNN(width=4), shapes_test, augment=3)
