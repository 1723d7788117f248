"""SAT, PGD-SAT and TRADES-SAT: torchattacks contract, ε-ball, saliency sources, model left untouched, bad inputs."""

from __future__ import annotations

import pytest
import torch
import torchattacks
from captum.attr import IntegratedGradients, LayerGradCam, Saliency
from torch import nn

from captum_wsam.attacks import LPA3, PGDSAT, SAT, TRADESSAT
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN
from tests.helpers import assert_model_untouched

EPS = 4 / 255


@pytest.fixture
def model() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(width=4, depth=2).eval()


@pytest.fixture
def batch():
    data = ShapesTextures(n=6, size=32, seed=5)
    images, labels = data.tensors()
    masks = torch.stack([data[i][2]["mask"] for i in range(6)])
    boxes = torch.stack([data[i][2]["box"] for i in range(6)])
    return images, labels, masks, boxes


def make(kind: str, model: nn.Module, **kwargs):
    g = torch.Generator().manual_seed(0)
    if kind == "LPA3":
        return LPA3(model, eps=kwargs.get("eps", EPS), bound=0.5, generator=g)
    return {"SAT": SAT, "PGDSAT": PGDSAT, "TRADESSAT": TRADESSAT}[kind](model, generator=g, **kwargs)


@pytest.mark.parametrize("kind", ["SAT", "PGDSAT", "TRADESSAT", "LPA3"])
@pytest.mark.parametrize("eps", [1 / 255, 8 / 255])
def test_eps_ball_and_unit_range(kind, eps, model, batch):
    images, labels, *_ = batch
    atk = make(kind, model, eps=eps, **({} if kind == "LPA3" else {"epoch": 20}))
    for _ in range(2):  # PGD-SAT / TRADES-SAT: usually both branches
        adv = atk(images, labels)
        assert adv.shape == images.shape and adv.dtype == images.dtype
        assert (adv - images).abs().max() <= eps + 1e-6
        assert adv.min() >= 0 and adv.max() <= 1
    assert isinstance(atk, torchattacks.attack.Attack) and kind in repr(atk)


@pytest.mark.parametrize("kind", ["SAT", "PGDSAT", "TRADESSAT", "LPA3"])
def test_model_untouched_by_attack_generation(kind, batch):
    images, labels, *_ = batch
    torch.manual_seed(0)
    model = SmallCNN(width=4, depth=2).train()
    model.block1.bn.eval()  # per-module flags must survive, not just model.training
    model.classifier.weight.grad = torch.ones_like(model.classifier.weight)
    atk = make(kind, model)
    atk.set_model_training_mode(model_training=True, batchnorm_training=True)  # BN stats would move: restored
    assert_model_untouched(model, lambda target: atk(images, target), labels,
                           invalid_target=torch.full_like(labels, 10**6), inputs=[images])


def test_sat_is_paper_formula_with_gradient_saliency(model, batch):
    images, labels, *_ = batch
    atk = SAT(model, eps=EPS, epoch=7, generator=torch.Generator().manual_seed(1))
    adv = atk(images, labels)
    # reference: Captum Saliency (signed gradient of the label logit), same random draws, float64 arithmetic
    grad = Saliency(model).attribute(images, target=labels, abs=False)
    g = torch.Generator().manual_seed(1)
    u = torch.rand(images.shape, generator=g)
    use = u < 1 - 0.6**0.7  # follows the saliency w.p. p_t; otherwise a fair sign from the same draw
    signs = torch.where(u < (1 + 1 - 0.6**0.7) / 2, 1.0, -1.0).double()
    direction = torch.where(use, grad.sign().double(), signs)
    ref = (images.double() - EPS * direction).clamp(0, 1)
    torch.testing.assert_close(adv.double(), ref, atol=1e-6, rtol=0)


def test_p_schedule_drives_saliency_share(model, batch):
    images, labels, *_ = batch
    grad_sign = Saliency(model).attribute(images, target=labels, abs=False).sign()
    shares = []
    for epoch in (0, 10, 60):
        adv = SAT(model, eps=EPS, epoch=epoch, generator=torch.Generator().manual_seed(0))(images, labels)
        moved = (adv - images).sign()
        interior = (images > EPS) & (images < 1 - EPS) & (grad_sign != 0)
        shares.append((moved[interior] == -grad_sign[interior]).double().mean().item())
    p = [1 - 0.6 ** (t / 10) for t in (0, 10, 60)]
    for share, pt in zip(shares, p):  # follows saliency w.p. p, or agrees by chance w.p. (1 - p) / 2
        assert abs(share - (pt + (1 - pt) / 2)) < 0.03


def test_weak_saliency_from_masks_and_boxes(model, batch):
    images, labels, masks, boxes = batch
    atk = SAT(model, eps=EPS, epoch=1000)  # p_t = 1: the direction is the weak saliency itself
    adv = atk(images, labels, masks=masks)
    expected = (images - EPS * (masks.float() * 2 - 1)).clamp(0, 1)
    torch.testing.assert_close(adv, expected)
    inside_box = torch.zeros_like(masks)
    for i, (x0, y0, x1, y1) in enumerate(boxes.long().tolist()):
        inside_box[i, :, y0:y1, x0:x1] = True
    expected_box = (images - EPS * (inside_box.float() * 2 - 1)).clamp(0, 1)
    torch.testing.assert_close(atk(images, labels, boxes=boxes), expected_box)
    assert torch.equal(atk(images, labels, masks=masks[:, 0]), adv)  # (B, H, W) masks too


def test_captum_attribution_as_saliency_source(model, batch):
    images, labels, *_ = batch
    torch.manual_seed(1)
    teacher = SmallCNN(width=4, depth=2).train()
    ig = IntegratedGradients(teacher)
    atk = SAT(model, eps=EPS, epoch=1000, saliency=ig, saliency_kwargs={"n_steps": 8})
    adv = atk(images, labels)
    assert teacher.training  # the teacher's mode is restored
    with torch.no_grad():
        teacher.eval()
        ref_map = IntegratedGradients(teacher).attribute(images, target=labels, n_steps=8)
    torch.testing.assert_close(adv, (images - EPS * ref_map.sign()).clamp(0, 1))
    cam = LayerGradCam(teacher, teacher.block2)
    adv_cam = SAT(model, eps=EPS, epoch=1000, saliency=cam, saliency_scaling="minmax")(images, labels)
    assert adv_cam.shape == images.shape and (adv_cam - images).abs().max() <= EPS + 1e-6
    precomputed = SAT(model, eps=EPS, epoch=1000)(images, labels, saliency_maps=ref_map)
    torch.testing.assert_close(precomputed, adv)


def test_targeted_mode_moves_towards_target(model, batch):
    images, labels, *_ = batch
    atk = SAT(model, eps=8 / 255, epoch=1000)
    atk.set_mode_targeted_by_function(lambda x, y: (y + 1) % 6, quiet=True)
    target = (labels + 1) % 6
    grad = Saliency(model).attribute(images, target=target, abs=False)
    torch.testing.assert_close(atk(images, labels), (images + 8 / 255 * grad.sign()).clamp(0, 1))
    with pytest.raises(ValueError, match="weak saliency"):
        atk(images, labels, masks=torch.ones(6, 1, 32, 32, dtype=torch.bool))
    with pytest.raises(ValueError, match="Targeted"):
        TRADESSAT(model).set_mode_targeted_random(quiet=True)


def test_normalization_used_matches_normalizing_model(batch):
    images, labels, *_ = batch
    torch.manual_seed(0)
    inner = SmallCNN(width=4, depth=2).eval()
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)

    class Normalized(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            return self.inner((x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1))

    plain = SAT(Normalized(), epoch=5, generator=torch.Generator().manual_seed(0))(images, labels)
    atk = SAT(inner, epoch=5, generator=torch.Generator().manual_seed(0))
    atk.set_normalization_used(mean, std)
    normalized_in = (images - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    out = atk(normalized_in, labels) * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    torch.testing.assert_close(out, plain, atol=1e-5, rtol=0)


def test_pgd_sat_branches_and_pgd_branch_is_madry_pgd(model, batch):
    images, labels, *_ = batch
    atk = PGDSAT(model, eps=EPS, alpha=1 / 255, steps=3, generator=torch.Generator().manual_seed(0))
    branches = set()
    for _ in range(8):
        params = atk.sample_params(images)
        adv = atk(images, labels, params=params)
        branches.add(params.branch)
        torch.testing.assert_close(atk(images, labels, params=params), adv)  # same params: same images
    assert branches == {"sat", "pgd"}
    with pytest.raises(AttributeError, match="params.branch"):  # no hidden state left on the attack
        atk.last_branch  # noqa: B018
    pgd_only = PGDSAT(model, eps=EPS, alpha=1 / 255, steps=3, sat_prob=0.0, generator=torch.Generator().manual_seed(2))
    adv = pgd_only(images, labels)
    g = torch.Generator().manual_seed(2)
    start = (2 * torch.rand(images.shape, generator=g) - 1) * EPS
    torch.rand((), generator=g)
    ref = (images + start).clamp(0, 1)
    for _ in range(3):  # Madry et al. 2018: signed ascent on CE, projected on the ε-ball and [0, 1]
        ref.requires_grad_(True)
        grad = torch.autograd.grad(nn.functional.cross_entropy(model(ref), labels), ref)[0]
        ref = (images + (ref.detach() + grad.sign() / 255 - images).clamp(-EPS, EPS)).clamp(0, 1)
    torch.testing.assert_close(adv, ref)


def test_bad_inputs_raise_clear_errors(model, batch):
    images, labels, masks, _ = batch
    with pytest.raises(ValueError, match="eps"):
        SAT(model, eps=-0.1)
    with pytest.raises(ValueError, match="eps"):
        LPA3(model, eps=-1.0)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        SAT(model)(images * 2, labels)
    with pytest.raises(ValueError, match=r"images must lie in \[0, 1\]"):
        LPA3(model)(images - 0.5, labels)
    with pytest.raises(ValueError, match="labels"):
        SAT(model)(images, labels[:3])
    with pytest.raises(ValueError, match="labels"):
        PGDSAT(model, sat_prob=0.0)(images, labels + 100)
    with pytest.raises(ValueError, match="masks"):
        SAT(model)(images, labels, masks=masks[:2])
    with pytest.raises(ValueError, match="saliency_scaling"):
        SAT(model, saliency_scaling="abs")
    with pytest.raises(TypeError, match="saliency"):
        SAT(model, saliency=3)
    with pytest.raises(ValueError, match="at most one"):
        SAT(model)(images, labels, masks=masks, boxes=torch.zeros(6, 4))
