"""robust_accuracy: equals a direct computation, leaves the model untouched, rejects bad arguments."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from torch.utils.data import DataLoader

from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import format_table, plot_robust_accuracy, robust_accuracy
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched


def test_matches_direct_computation_and_leaves_model_untouched():
    torch.manual_seed(0)
    model = SmallCNN(width=4, depth=2).train()
    data = ShapesTextures(n=20, size=32, seed=3)
    images, labels = data.tensors()
    attacks = {"FGSM 2/255": torchattacks.FGSM(model, eps=2 / 255), "PGD 2/255": torchattacks.PGD(
        model, eps=2 / 255, alpha=1 / 255, steps=2, random_start=False)}

    def call(target):
        loader = DataLoader(torch.utils.data.TensorDataset(images, target), batch_size=8)
        return robust_accuracy(model, loader, attacks)

    table = assert_model_untouched(model, call, labels, invalid_target=torch.full_like(labels, 10**6))
    model.eval()
    with torch.no_grad():
        clean = (model(images).argmax(1) == labels).float().mean().item()
    fgsm = (model(torchattacks.FGSM(model, eps=2 / 255)(images, labels)).argmax(1) == labels).float().mean().item()
    assert list(table) == ["clean", "FGSM 2/255", "PGD 2/255"]
    assert table["clean"] == pytest.approx(clean) and table["FGSM 2/255"] == pytest.approx(fgsm)
    assert table["PGD 2/255"] <= table["clean"]
    assert "| Method | clean |" in format_table({"m": table})
    assert plot_robust_accuracy({"m": table}).get_ylabel() == "accuracy (%)"


def test_bad_arguments():
    model = SmallCNN(width=4, depth=2)
    data = ShapesTextures(n=4, size=32)
    with pytest.raises(TypeError, match="attacks"):
        robust_accuracy(model, data, [torchattacks.FGSM(model)])
    with pytest.raises(TypeError, match=r"attacks\['x'\]"):
        robust_accuracy(model, data, {"x": 3})
    with pytest.raises(TypeError, match="model"):
        robust_accuracy("model", data, {})


def test_loader_keyword_still_works_with_a_deprecation_warning():
    model = SmallCNN(width=4, depth=2)
    data = ShapesTextures(n=4, size=32)
    with pytest.warns(DeprecationWarning, match="loader"):
        old = robust_accuracy(model, loader=data, attacks={})
    assert old == robust_accuracy(model, data, {})
