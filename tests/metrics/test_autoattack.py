"""robust_accuracy(model, data, "autoattack"): equals torchattacks' own AutoAttack, flags gradient masking, is safe.

The reference is ``torchattacks.AutoAttack(version="standard")`` (its ``MultiAttack`` keeps, per sample, the first
successful attack of APGD-CE, APGD-T, FAB-T, Square) run on the correctly classified samples, with the same seed and
iteration counts. Sizes are tiny (12 images at 16x16, linear or one-conv models, a few iterations) so the file runs in
seconds.
"""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from captum_wsam.data import ShapesTextures
from captum_wsam.metrics import format_table, robust_accuracy
from captum_wsam.metrics.autoattack import AutoAttackResult, project
from tests.helpers import assert_model_untouched

FAST = {"steps": 5, "n_queries": 30, "masking_steps": (2, 4)}


def small_images(n: int = 12) -> torch.Tensor:
    return F.avg_pool2d(ShapesTextures(n=n, size=32, seed=3).tensors()[0], 2)  # 16x16: FAB-T's Jacobians stay cheap


@pytest.fixture
def model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 6)).eval()


@pytest.fixture
def images() -> torch.Tensor:
    return small_images()


def own_labels(model: nn.Module, images: torch.Tensor, wrong: int = 3) -> torch.Tensor:
    """The model's predictions with the first ``wrong`` labels changed: clean accuracy (12 - wrong) / 12."""
    with torch.no_grad():
        labels = model(images).argmax(1)
    labels[:wrong] = (labels[:wrong] + 1) % 6
    return labels


@pytest.mark.parametrize(("norm", "eps"), [("Linf", 2 / 255), pytest.param("L2", 0.15, marks=pytest.mark.slow)])
def test_equals_torchattacks_autoattack_per_sample_worst_case(model, images, norm, eps):
    labels = own_labels(model, images)
    result = robust_accuracy(model, TensorDataset(images, labels), "autoattack", eps=eps, norm=norm, batch_size=12,
                             masking_check=False, **{k: v for k, v in FAST.items() if k != "masking_steps"})
    assert isinstance(result, AutoAttackResult) and result.masking is None
    reference = torchattacks.AutoAttack(model, norm=norm, eps=eps, version="standard", n_classes=6, seed=0)
    for part in reference._autoattack.attacks:  # the same iteration budget as above
        part.steps = FAST["steps"]
        part.n_queries = FAST["n_queries"]
    correct = labels == model(images).argmax(1)
    adv = reference(images[correct], labels[correct])
    assert (adv - images[correct]).flatten(1).norm(p=float("inf") if norm == "Linf" else 2, dim=1).max() <= eps + 1e-5
    with torch.no_grad():
        survivors = int((model(adv).argmax(1) == labels[correct]).sum())
    assert result.clean == pytest.approx(9 / 12)
    assert result.robust == pytest.approx(survivors / 12)
    assert result.robust < result.clean  # the attacks do something at this radius
    steps = list(result.after_attack.values())
    assert list(result.after_attack) == ["APGD-CE", "APGD-T", "FAB-T", "Square"]
    assert all(a >= b for a, b in itertools.pairwise(steps)) and steps[-1] == result.robust
    assert dict(result) == {"clean": result.clean, "AutoAttack": result.robust}
    assert "| m | 75.0 |" in format_table({"m": result})


def test_healthy_model_is_not_flagged_and_accuracy_falls_to_zero(model, images):
    labels = own_labels(model, images, wrong=0)
    result = robust_accuracy(model, TensorDataset(images, labels), "autoattack", eps=2 / 255, **FAST)
    report = result.masking
    assert report.accuracy_vs_eps[-1] == 0.0 and report.eps_grid[-1] == pytest.approx(32 / 255)
    assert list(report.accuracy_vs_eps) == sorted(report.accuracy_vs_eps, reverse=True)
    assert report.black_box_gap == pytest.approx(report.white_box - result.robust)
    assert not report.suspicious, report.flags


class Quantized(nn.Module):
    """Input quantization (a classic obfuscated-gradient defence): round() has zero gradient almost everywhere."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(torch.round(x * 4) / 4)


def test_gradient_masking_is_flagged(model, images):
    masked = Quantized(model).eval()
    labels = own_labels(masked, images, wrong=0)
    result = robust_accuracy(masked, TensorDataset(images, labels), "autoattack", eps=8 / 255, steps=5,
                             n_queries=100, masking_steps=(2, 4), eps_multiples=(1, 2))
    report = result.masking
    assert report.suspicious
    assert report.white_box > result.robust  # Square (black-box) beat the white-box attacks
    assert any("black-box Square" in flag for flag in report.flags)
    assert any("should reach 0" in flag for flag in report.flags)  # zero gradients: PGD cannot grow with eps


def test_model_untouched_and_global_rng_restored():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                          nn.Linear(4 * 16 * 16, 6)).train()
    model[1].eval()  # per-module flags must survive, not just model.training
    images = small_images(6)
    labels = torch.arange(6)

    def call(target):
        state = torch.get_rng_state()
        out = robust_accuracy(model, DataLoader(TensorDataset(images, target), batch_size=4), "autoattack", **FAST)
        assert torch.equal(torch.get_rng_state(), state)  # torchattacks seeds the global generator: given back
        return out

    result = assert_model_untouched(model, call, labels, invalid_target=torch.full_like(labels, 10**6))
    assert result.n == 6 and 0 <= result.robust <= result.clean <= 1


def test_bad_arguments_and_non_finite_images(model, images):
    labels = torch.zeros(12, dtype=torch.long)
    data = TensorDataset(images, labels)
    with pytest.raises(ValueError, match="attacks must be one of 'autoattack'"):
        robust_accuracy(model, data, "autoatack")
    with pytest.raises(ValueError, match="norm"):
        robust_accuracy(model, data, "autoattack", norm="L1")
    with pytest.raises(ValueError, match="eps"):
        robust_accuracy(model, data, "autoattack", eps=0.0)
    with pytest.raises(ValueError, match="eps applies to the 'autoattack' preset only"):
        robust_accuracy(model, data, {}, eps=0.1)
    with pytest.raises(TypeError, match="steps"):
        robust_accuracy(model, data, "autoattack", steps=2.5)
    with pytest.raises(TypeError, match="data"):
        robust_accuracy(model, [1, 2], "autoattack")
    poisoned = images.clone()
    poisoned[4, 0, 0, 0] = float("nan")
    for attacks in ("autoattack", {"FGSM": torchattacks.FGSM(model, eps=1 / 255)}):
        with pytest.raises(ValueError, match="images must be finite"):
            robust_accuracy(model, TensorDataset(poisoned, labels), attacks)


def test_projection_keeps_the_ball():
    torch.manual_seed(0)
    x = torch.rand(3, 3, 8, 8)
    far = torch.rand(3, 3, 8, 8)
    linf = project(far, x, 0.05, "Linf")
    l2 = project(far, x, 0.5, "L2")
    assert (linf - x).abs().max() <= 0.05 + 1e-7 and (l2 - x).flatten(1).norm(dim=1).max() <= 0.5 + 1e-6
    assert torch.equal(project(x, x, 0.1, "L2"), x)
