"""LP-A3: label preservation, feature distance increase, and the fast-Lagrangian steps against a float64 reference."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from captum_wsam.attacks import LPA3
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = SmallCNN(width=4, depth=2).eval()
    images, _ = ShapesTextures(n=6, size=32, seed=7).tensors()
    return model, images


def _features(model, x):
    out = []
    h = model.block1(x)
    out.append(h)
    h = model.block2(h)
    out.append(h)
    h = model.pool(h)
    out.append(h)
    return model.classifier(model.flatten(h)), out


def _phi(features):
    parts = []
    for f in features:  # paper-literal: unit channel vectors, divided by sqrt(HW)
        n = torch.sqrt((f**2).sum(1, keepdim=True)) + 1e-10
        parts.append((f / (n * (f.shape[2] * f.shape[3]) ** 0.5)).flatten(1))
    return torch.cat(parts, 1)


def test_label_preserved_and_features_moved(setup):
    model, images = setup
    bound = 0.05
    atk = LPA3(model, bound=bound, lam=1.0, generator=torch.Generator().manual_seed(0))
    adv = atk(images)
    with torch.no_grad():
        logits, feats = _features(model, images)
        labels = logits.argmax(1)
        adv_logits, adv_feats = _features(model, adv)
        picked = labels[:, None]
        drop = F.log_softmax(logits, 1).gather(1, picked) - F.log_softmax(adv_logits, 1).gather(1, picked)
        distance = (_phi(adv_feats) - _phi(feats)).norm(dim=1)
    assert (drop <= bound + 1e-5).all()
    assert (distance > 0).sum() >= 4 and distance.mean() > 0.05
    start_only = LPA3(model, bound=bound, steps=1, lam=1.0, init=0.01, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        start_distance = (_phi(_features(model, start_only(images))[1]) - _phi(feats)).norm(dim=1)
    assert distance.mean() > start_distance.mean()  # more steps move the features further


def test_fast_lagrangian_matches_float64_reference(setup):
    model, images = setup
    model = SmallCNN(width=4, depth=2).double().eval()
    x = images.double()
    bound, lam, steps, h = 0.1, 0.5, 3, 0.1
    atk = LPA3(model, bound=bound, lam=lam, steps=steps, feasible=False, generator=torch.Generator().manual_seed(4))
    adv = atk(x)
    with torch.no_grad():
        logits, feats = _features(model, x)
        y = logits.argmax(1)
        logp0 = F.log_softmax(logits, 1)[torch.arange(6), y]
        phi0 = _phi(feats)
    start = (2 * torch.rand(x.shape, generator=torch.Generator().manual_seed(4)) - 1) * 0.01
    ref = (x + start.double()).clamp(0, 1)
    for i in range(steps):
        step, mult = bound * 0.1 ** (i / steps), lam * 0.1 ** (1 - i / steps)
        ref.requires_grad_(True)
        lg, ft = _features(model, ref)
        logp = F.log_softmax(lg, 1)[torch.arange(6), y]
        loss = (-(_phi(ft) - phi0).norm(dim=1) + mult * torch.relu(logp0 - logp - bound)).sum()
        grad = torch.autograd.grad(loss, ref)[0]
        with torch.no_grad():
            unit = grad / (grad.flatten(1).norm(dim=1).view(-1, 1, 1, 1) + 1e-8)
            after = F.log_softmax(model(ref - h * unit), 1)[torch.arange(6), y]
            sens = (logp - after).abs() / h
            ref = (ref - unit * (step / (sens + 1e-4)).view(-1, 1, 1, 1)).clamp(0, 1)
    torch.testing.assert_close(adv, ref.detach())


@pytest.mark.parametrize("feasible, passes", [(False, 1 + 2 * 3), (True, 1 + 2 * 3 + 1)])
def test_model_passes(setup, feasible, passes):
    # the official count: a reference pass, then per step one pass with gradient and one probe; feasible=True adds one
    # pass to certify the last iterate, feasible=False returns it unevaluated as the official code does
    model, images = setup
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        LPA3(model, steps=3, feasible=feasible, generator=torch.Generator().manual_seed(0))(images)
    finally:
        handle.remove()
    assert len(calls) == passes


def test_layers_labels_and_errors(setup):
    model, images = setup
    labels = torch.zeros(6, dtype=torch.long)
    atk = LPA3(model, layers=[model.block2, model.classifier], bound=0.2, generator=torch.Generator().manual_seed(0))
    adv = atk(images, labels)
    with torch.no_grad():
        drop = F.log_softmax(model(images), 1)[:, 0] - F.log_softmax(model(adv), 1)[:, 0]
    assert (drop <= 0.2 + 1e-5).all()
    with pytest.raises(ValueError, match="layers"):
        LPA3(model, layers=[torch.nn.Conv2d(1, 1, 1)])
    with pytest.raises(ValueError, match="bound"):
        LPA3(model, bound=0.0)
    with pytest.raises(ValueError, match="labels"):
        atk(images, labels + 6)
    with pytest.raises(TypeError, match="labels"):
        atk(images, labels.float())


class _HalfMasked(torch.nn.Module):
    """Zeroes the left half of a feature map: those channel vectors are exactly zero (as behind a dead ReLU)."""

    def forward(self, x):
        mask = torch.ones_like(x[:1, :1])
        mask[..., : x.shape[-1] // 2] = 0
        return x * mask


def test_zero_feature_vectors_do_not_stall_the_search():
    # sqrt(sum f^2) has a 0/0 = NaN backward at a zero vector: every step after the start was NaN and the attack
    # returned the random start (|x' - x| <= init); the fixed normalization keeps the gradient finite
    torch.manual_seed(0)
    masked = _HalfMasked()
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), masked, torch.nn.Conv2d(4, 4, 3, padding=1),
                                torch.nn.Flatten(), torch.nn.Linear(4 * 8 * 8, 3)).eval()
    images = torch.rand(4, 3, 8, 8)
    adv = LPA3(model, layers=[masked], bound=0.5, generator=torch.Generator().manual_seed(0))(images)
    assert torch.isfinite(adv).all()
    assert ((adv - images).abs().amax(dim=(1, 2, 3)) > 0.1).all()
