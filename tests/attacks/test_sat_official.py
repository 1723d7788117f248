"""SAT family vs literal re-implementations of the official code (Mangla et al. 2020; Puneet2000/SAT_ECML2020).

The references below are written from the official ``attack.py`` (``AttackPGD.attack3``, ``AttackTRADES.attack3``),
the mixing of saliency and noise in ``student_adv.py`` / ``student_trades.py`` and the min–max scaling of
``gradcam.py`` (SmoothGrad, IG, Grad-CAM), in float64, one image at a time where the official code loops. The official
code draws from torch's global generator; here the same draws come from :class:`SATParams` so both sides see them.
Also: the hidden ``last_branch`` state is gone, sampled params replay, and non-finite inputs are rejected.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from captum_wsam.attacks import LPA3, PGDSAT, SAT, TRADESSAT, SATParams
from captum_wsam.attacks.sat import minmax_unit_saliency
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN

EPS = 8 / 255


@pytest.fixture
def model() -> SmallCNN:
    torch.manual_seed(0)
    return SmallCNN(width=4, depth=2).double().eval()


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    images, labels = ShapesTextures(n=6, size=32, seed=5).tensors()
    return images.double(), labels


# ---------------------------------------------------------------- literal official references (float64)
def official_minmax(saliency_map: torch.Tensor) -> torch.Tensor:
    """gradcam.py: ``m = m - m.min(); m = m / m.max()``, called on one image at a time."""
    out = []
    for m in saliency_map:
        m = m - m.min()
        out.append(m / m.max())
    return torch.stack(out)


def official_target_mask(saliency: torch.Tensor, w: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """student_adv.py: ``grad = (1 - w) * noise + w * target_mask`` with ``w ~ Bernoulli(p)``, noise = random signs."""
    return (1 - w) * noise + w * saliency


def official_pgd_attack3(net, inputs, targets, target_mask, start, coin, epsilon, step_size, num_steps):
    """attack.py, AttackPGD.attack3: random start, then either a full eps step (no projection) or PGD."""
    x = inputs.detach()
    x = x + start  # x + uniform_(-epsilon, epsilon)
    if coin == 1:
        x = x.detach() - epsilon * target_mask
        x = torch.clamp(x, 0, 1)
    else:
        for _ in range(num_steps):
            x.requires_grad_()
            loss = F.cross_entropy(net(x), targets, reduction="sum")
            grad = torch.autograd.grad(loss, [x])[0]
            x = x.detach() + step_size * torch.sign(grad.detach())
            x = torch.min(torch.max(x, inputs - epsilon), inputs + epsilon)
            x = torch.clamp(x, 0, 1)
    return x


def official_trades_attack3(net, inputs, target_mask, gaussian, coin, epsilon, step_size, num_steps):
    """attack.py, AttackTRADES.attack3: either the eps step without any start, or TRADES' KL PGD."""
    if coin == 1:
        return torch.clamp(inputs.detach() - epsilon * target_mask, 0, 1)
    x = inputs.detach()
    x_adv = x + 0.001 * gaussian
    for _ in range(num_steps):
        x_adv.requires_grad_()
        loss = F.kl_div(F.log_softmax(net(x_adv), dim=1), F.softmax(net(x), dim=1), reduction="sum")
        grad = torch.autograd.grad(loss, [x_adv])[0]
        x_adv = x_adv.detach() + step_size * torch.sign(grad.detach())
        x_adv = torch.min(torch.max(x_adv, x - epsilon), x + epsilon)
        x_adv = torch.clamp(x_adv, 0, 1)
    return x_adv


def teacher_map(images: torch.Tensor) -> torch.Tensor:
    """A CAM-like non-negative map with a per-image range (stands for SmoothGrad/IG/Grad-CAM output)."""
    g = torch.Generator().manual_seed(3)
    return torch.rand(images.shape[0], 1, *images.shape[-2:], generator=g, dtype=torch.float64) ** 2 * 5


def sample_branch(atk, images, branch: str) -> SATParams:
    for _ in range(50):
        params = atk.sample_params(images)
        if params.branch == branch:
            return params
    raise AssertionError(f"branch {branch} never drawn")


# ---------------------------------------------------------------- official=True equals the official code
@pytest.mark.parametrize("scaling", ["sign", "minmax"])
def test_official_pgd_sat_equals_official_attack3(model, batch, scaling):
    images, labels = batch
    maps = teacher_map(images) - (1.0 if scaling == "sign" else 0.0)  # signed map for sign, CAM-like for minmax
    atk = PGDSAT(model, eps=EPS, alpha=2 / 255, steps=3, epoch=7, saliency_scaling=scaling, official=True,
                 generator=torch.Generator().manual_seed(0))
    official_saliency = maps.sign() if scaling == "sign" else official_minmax(maps)
    for branch, coin in (("sat", 1), ("pgd", 0)):
        params = sample_branch(atk, images, branch)
        adv = atk(images, labels, saliency_maps=maps, params=params)
        mask = None
        if branch == "sat":
            mask = official_target_mask(official_saliency, params.use_saliency.double(), params.signs)
        ref = official_pgd_attack3(model, images, labels, mask, params.start, coin, EPS, 2 / 255, 3)
        torch.testing.assert_close(adv, ref, atol=1e-12, rtol=0)
    # the official SAT branch leaves the eps-ball (up to 2 eps); the default one stays in it
    params = sample_branch(atk, images, "sat")
    official = atk(images, labels, saliency_maps=maps, params=params)
    default = PGDSAT(model, eps=EPS, saliency_scaling=scaling)(images, labels, saliency_maps=maps, params=params)
    assert (official - images).abs().max() > EPS + 1e-3 and (official - images).abs().max() <= 2 * EPS + 1e-9
    assert (default - images).abs().max() <= EPS + 1e-9


def test_official_trades_sat_equals_official_attack3(model, batch):
    images, labels = batch
    atk = TRADESSAT(model, eps=EPS, alpha=2 / 255, steps=3, epoch=7, official=True,
                    generator=torch.Generator().manual_seed(0))
    grad_sign = torch.func.grad(lambda x: model(x).gather(1, labels[:, None]).sum())(images).sign()
    for branch in ("sat", "trades"):
        params = sample_branch(atk, images, branch)
        adv = atk(images, labels, params=params)
        if branch == "sat":
            assert params.start is None  # the official TRADES-SAT has no random start
            mask = official_target_mask(grad_sign, params.use_saliency.double(), params.signs)
            ref = official_trades_attack3(model, images, mask, None, 1, EPS, 2 / 255, 3)
            moved = (adv - images).abs()
            interior = (images - EPS * mask > 0) & (images - EPS * mask < 1) & (mask != 0)
            torch.testing.assert_close(moved[interior], torch.full_like(moved[interior], EPS))  # |delta| = eps
        else:
            ref = official_trades_attack3(model, images, None, params.start / 0.001, 0, EPS, 2 / 255, 3)
        torch.testing.assert_close(adv, ref, atol=1e-12, rtol=0)
    default = TRADESSAT(model, eps=EPS, epoch=7, generator=torch.Generator().manual_seed(0))
    params = sample_branch(default, images, "sat")
    assert params.start is not None  # default: uniform start, then projection
    assert ((default(images, labels, params=params) - images).abs().max()) <= EPS + 1e-9


def test_minmax_scaling_is_official_unit_range_and_signed_is_an_option(model, batch):
    images, labels = batch
    maps = teacher_map(images)
    torch.testing.assert_close(minmax_unit_saliency(maps), official_minmax(maps))
    p = SAT(model, eps=EPS, epoch=1000, generator=torch.Generator().manual_seed(0)).sample_params(images)
    unit = SAT(model, eps=EPS, epoch=1000, saliency_scaling="minmax")(images, labels, saliency_maps=maps, params=p)
    torch.testing.assert_close(unit, (images - EPS * official_minmax(maps)).clamp(0, 1))
    assert (unit <= images + 1e-12).all()  # [0, 1] scaling only darkens
    signed = SAT(model, eps=EPS, epoch=1000, saliency_scaling="minmax_signed")(
        images, labels, saliency_maps=maps, params=p)
    torch.testing.assert_close(signed, (images - EPS * (2 * official_minmax(maps) - 1)).clamp(0, 1))
    # a Captum-style callable teacher goes through the same scaling
    teacher = SAT(model, eps=EPS, epoch=1000, saliency=lambda x, y: teacher_map(x), saliency_scaling="minmax")
    torch.testing.assert_close(teacher(images, labels, params=p), unit)
    assert torch.equal(minmax_unit_saliency(torch.ones(2, 1, 3, 3)), torch.zeros(2, 1, 3, 3))


# ---------------------------------------------------------------- sampled params, no hidden state
def test_params_replay_and_bad_params(model, batch):
    images, labels = batch
    atk = TRADESSAT(model, eps=EPS, steps=2, generator=torch.Generator().manual_seed(4))
    params = atk.sample_params(images)
    assert isinstance(params, SATParams) and params.branch in ("sat", "trades")
    torch.testing.assert_close(atk(images, labels, params=params), atk(images, labels, params=params))
    assert not hasattr(atk, "last_branch") and "last_branch" not in vars(atk)
    with pytest.raises(TypeError, match="params"):
        atk(images, labels, params={"branch": "sat"})
    with pytest.raises(ValueError, match="params.branch"):
        atk(images, labels, params=SATParams("pgd", start=torch.zeros_like(images)))
    with pytest.raises(ValueError, match="params.use_saliency"):
        atk(images, labels, params=SATParams("sat"))
    with pytest.raises(ValueError, match=r"params.start must have the shape"):
        atk(images, labels, params=SATParams("trades", start=torch.zeros(1, 3, 32, 32)))
    with pytest.raises(TypeError, match="official"):
        PGDSAT(model, official=1)


# ---------------------------------------------------------------- non-finite inputs (issue 16)
@pytest.mark.parametrize("kind", ["SAT", "PGDSAT", "TRADESSAT", "LPA3"])
@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_images_raise_before_any_work(kind, bad, batch):
    images, labels = batch
    model = SmallCNN(width=4, depth=2).double().eval()
    atk = {"SAT": SAT, "PGDSAT": PGDSAT, "TRADESSAT": TRADESSAT, "LPA3": LPA3}[kind](model)
    poisoned = images.clone()
    poisoned[0, 1, 2, 3] = bad
    calls = []
    handle = model.register_forward_pre_hook(lambda *_: calls.append(1))
    try:
        with pytest.raises(ValueError, match="images must be finite"):
            atk(poisoned, labels)
    finally:
        handle.remove()
    assert calls == []  # raised before any model pass


def test_non_finite_saliency_maps_raise(model, batch):
    images, labels = batch
    maps = teacher_map(images)
    maps[1, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="saliency_maps must be finite"):
        SAT(model)(images, labels, saliency_maps=maps)
    with pytest.raises(ValueError, match="saliency map must be finite"):
        SAT(model, saliency=lambda x, y: maps)(images, labels)
