"""LPA3Trainer against a literal re-implementation of the official LP-A3 loop (issue 17, item 1).

The reference below follows ``FixMatch/fixmatch_LPA3.py`` of github.com/CausalLearning/LPA3 (Yang et al. 2022,
arXiv:2211.00824) line by line, with the supervised cross-entropy in place of FixMatch's losses, images in [0, 1]
(the official clamps to the normalized range) and, for exact equality, the attack's uniform start drawn from a seeded
generator (the official ``uniform_`` draws from the global CUDA stream). The official code also runs the attack
during the warm-up, without effect on the model; the trainer skips it, so the reference draws a start only when the
term is trained. The model has no BatchNorm, so the official auxiliary BatchNorm and the main one coincide.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from captum_wsam.attacks import LPA3
from captum_wsam.data import ShapesTextures
from captum_wsam.train import LPA3Trainer

BOUND, LAM, STEPS, RATIO, CONFIDENCE = 0.1, 0.1, 3, 0.5, 0.9


class Indexed(Dataset):
    """ShapesTextures in float64 with ``info["index"]`` (float64: differences are the algorithm's, not rounding)."""

    def __init__(self, n: int = 24) -> None:
        images, self.labels = ShapesTextures(n=n, size=32, seed=3).tensors()
        self.images = F.avg_pool2d(images, 2).double()  # 16 x 16: a fast test

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.images[i], self.labels[i], {"index": i}


@pytest.fixture(scope="module")
def pretrained() -> dict[str, torch.Tensor]:
    """A briefly trained model, confident enough that the official 0.9 mask keeps some steps' samples, not all."""
    data = Indexed()
    torch.manual_seed(0)
    model = bn_free_model()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(100):
        optimizer.zero_grad()
        F.cross_entropy(model(data.images), data.labels).backward()
        optimizer.step()
    return copy.deepcopy(model.state_dict())


def bn_free_model(state: dict[str, torch.Tensor] | None = None) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 6, 3, stride=2), nn.ReLU(), nn.Conv2d(6, 8, 3, stride=2), nn.ReLU(),
                          nn.Flatten(), nn.Linear(8 * 3 * 3, 6)).double()
    if state is not None:
        model.load_state_dict(state)
    return model


# --------------------------------------------------------------------------- the official loop, written out literally
def normalize_flatten_features(features, eps=1e-10):
    normalized = []
    for f in features:
        norm_factor = torch.sqrt(torch.sum(f ** 2, dim=1, keepdim=True)) + eps
        normalized.append((f / (norm_factor * (f.size()[2] * f.size()[3]) ** 0.5)).view(f.size()[0], -1))
    return torch.cat(normalized, dim=1)


def forward_with_features(model, layers, x):
    store = []
    handles = [layer.register_forward_hook(lambda _m, _i, out: store.append(out)) for layer in layers]
    try:
        return model(x), list(store)
    finally:
        for handle in handles:
            handle.remove()


def get_attack(model, layers, inputs, targets_u, y_ori, flat_feat_ori, generator):
    lower_limit, upper_limit = torch.zeros_like(inputs), torch.ones_like(inputs)
    perturbations = ((2 * torch.rand(inputs.shape, generator=generator) - 1) * 0.01).to(inputs.dtype)
    perturbations = torch.max(torch.min(perturbations, upper_limit - inputs), lower_limit - inputs)
    perturbations.requires_grad = True
    for attack_iter in range(STEPS):
        step_size = BOUND * 0.1 ** (attack_iter / STEPS)
        lam = LAM * 0.1 ** (1 - attack_iter / STEPS)
        if perturbations.grad is not None:
            perturbations.grad.data.zero_()
        logits_adv, feat_adv = forward_with_features(model, layers, inputs + perturbations)
        prob_adv = torch.softmax(logits_adv, dim=-1)
        y_adv = torch.log(torch.gather(prob_adv, 1, targets_u.view(-1, 1)).squeeze(dim=1))
        pip = (normalize_flatten_features(feat_adv) - flat_feat_ori).norm(dim=1).mean()
        constraint = y_ori - y_adv
        loss = -pip + lam * F.relu(constraint - BOUND).mean()
        loss.backward()
        grad = perturbations.grad.data
        grad_normed = grad / (grad.reshape(grad.size()[0], -1).norm(dim=1)[:, None, None, None] + 1e-8)
        with torch.no_grad():
            y_after = torch.log(torch.gather(torch.softmax(model(inputs + perturbations - grad_normed * 0.1), dim=1),
                                             1, targets_u.view(-1, 1)).squeeze(dim=1))
            dist_grads = torch.abs(y_adv - y_after) / 0.1
            norm = step_size / (dist_grads + 1e-4)
        perturbation_updates = -grad_normed * norm[:, None, None, None]
        perturbations.data = torch.max(torch.min(perturbations + perturbation_updates, upper_limit - inputs),
                                       lower_limit - inputs).detach()
    return (inputs + perturbations).detach()


def official_loop(model, loader, epochs, warmup, generator, lr=0.05):
    """Returns the number of samples augmented per batch (0 when the LP-A3 term is not trained)."""
    layers = [model[1], model[3]]
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    size, classes = len(loader.dataset), model[-1].out_features
    mem_logits = (torch.ones([size, classes], dtype=torch.int64) + 0.01).double()  # float64 run
    mem_tc = torch.zeros(size, dtype=torch.float64)
    threshold = 1
    augmented, masked = [], []
    for epoch in range(epochs):
        if epoch > 0:  # the official code recomputes the threshold when the unlabeled loader is exhausted
            _, indices = torch.sort(mem_tc, descending=True)
            kt = (1 - RATIO) * size
            threshold = copy.deepcopy(mem_tc)[indices[int(kt)]]
        for inputs, targets_x, info in loader:
            index = info["index"]
            model.train()
            with torch.no_grad():
                logits_ori, feat_ori = forward_with_features(model, layers, inputs)
                _, targets_uadv = torch.max(logits_ori, 1)
                flat_feat_ori = normalize_flatten_features(feat_ori)
                prob = torch.softmax(logits_ori, dim=-1)
                y_w = torch.log(torch.gather(prob, 1, targets_uadv.view(-1, 1)).squeeze(dim=1))
                at = F.kl_div(mem_logits[index].log(), prob, reduction="none").mean(dim=1)
                mask_smooth = (mem_tc[index]).lt(threshold)
            run_adv = mask_smooth.sum() > 0
            train_adv = run_adv and epoch > warmup
            if train_adv:
                inputs_adv = get_attack(model, layers, inputs[mask_smooth], targets_uadv[mask_smooth],
                                        y_w[mask_smooth], flat_feat_ori[mask_smooth], generator)
            logits = model(inputs)
            l_ce = F.cross_entropy(logits, targets_x, reduction="mean")
            pseudo_label = torch.softmax(logits.detach(), dim=-1)
            max_probs, targets_u = torch.max(pseudo_label, dim=-1)
            mask_lpa3 = (max_probs[mask_smooth].ge(CONFIDENCE)).double()
            if train_adv:
                logits_adv = model(inputs_adv)
                l_adv = (F.cross_entropy(logits_adv, targets_u[mask_smooth], reduction="none") * mask_lpa3).mean()
                loss = l_ce + l_adv
                augmented.append(int(mask_smooth.sum()))
                masked.append(float(mask_lpa3.mean()))
            else:
                loss = l_ce
                augmented.append(0)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                mem_tc[index] = 0.01 * mem_tc[index] - 0.99 * at
                mem_logits[index] = prob
    return augmented, masked


# ----------------------------------------------------------------------------------------------------------- tests
def trainer_run(model, loader, epochs, warmup, generator, monkeypatch, **kwargs):
    sizes = []
    original = LPA3.forward

    def recording(self, images, labels=None):
        sizes.append(len(images))
        return original(self, images, labels)

    monkeypatch.setattr(LPA3, "forward", recording)
    trainer = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05), bound=BOUND, lam=LAM, steps=STEPS,
                          layers=[model[1], model[3]], ratio=RATIO, warmup=warmup, generator=generator,
                          progress=False, **kwargs)
    history = trainer.fit(loader, epochs=epochs)
    monkeypatch.setattr(LPA3, "forward", original)
    return trainer, sizes, history


@pytest.mark.parametrize(("epochs", "warmup"), [(3, 0), (1, -1)])
def test_trainer_equals_the_official_loop(epochs, warmup, pretrained, monkeypatch):
    data = Indexed()
    loader = DataLoader(data, batch_size=8)  # fixed order: both loops see the same batches
    reference = bn_free_model(pretrained)
    augmented, masked = official_loop(reference, loader, epochs, warmup, torch.Generator().manual_seed(7))
    model = bn_free_model(pretrained)
    trainer, sizes, _ = trainer_run(model, loader, epochs, warmup, torch.Generator().manual_seed(7), monkeypatch)
    assert sizes == [n for n in augmented if n > 0]  # the same samples selected in the same steps
    if warmup == -1:  # epoch 0 selects every sample (official threshold = 1), trained at once with warmup=-1
        assert augmented == [8, 8, 8]
    else:  # epoch 0 selects all but warms up; then N - int((1 - r) N) - 1 = 11 of 24 per epoch
        assert augmented[:3] == [0, 0, 0] and sum(augmented[3:6]) == 11 and sum(augmented[6:]) == 11
    assert any(m > 0 for m in masked) and any(m < 1 for m in masked)  # the 0.9 mask keeps some, drops others
    # the attack normalizes features in another (equal in exact arithmetic) way: ~1e-11 per attack, grown by
    # training to ~1e-7; a different rule (no mask, another warm-up boundary or selection) moves weights by ~1e-2
    for ours, theirs in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)
    assert trainer.attack.feasible is False  # the official attack returns the last iterate


def test_trainer_exposes_every_attack_argument():
    model = bn_free_model()
    layers = [model[1]]
    trainer = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), bound=0.2, lam=0.3, steps=2,
                          layers=layers, feasible=True, h=0.05, init=0.02, eps=8 / 255, confidence=0.5,
                          progress=False)
    attack = trainer.attack
    assert (attack.bound, attack.lam, attack.steps, attack.h, attack.init) == (0.2, 0.3, 2, 0.05, 0.02)
    assert attack.layers == layers and attack.feasible is True and attack.eps == pytest.approx(8 / 255)
    assert trainer.lpa3_confidence == 0.5
    default = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), progress=False)
    assert (default.attack.bound, default.attack.lam, default.attack.steps, default.attack.feasible) == (
        0.1, 0.1, 5, False)
    assert (default.lpa3_ratio, default.lpa3_warmup, default.lpa3_momentum, default.lpa3_confidence) == (
        0.1, 5, 0.01, 0.9)
    with pytest.raises(ValueError, match="attack_batchnorm"):
        LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), attack_batchnorm="frozen")
    with pytest.raises(ValueError, match="lpa3_warmup"):
        LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), warmup=-2)


def test_attack_runs_on_training_batchnorm_with_auxiliary_statistics():
    # official: the attack goes through auxiliary BatchNorm layers in training mode (batch statistics, its own
    # running statistics); here the model's BatchNorm runs in training mode and its running statistics stay as they are
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
                          nn.Flatten(), nn.Linear(4, 6))
    images = torch.rand(6, 3, 16, 16)
    labels = torch.randint(0, 6, (6,))
    trainer = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), steps=2, layers=[model[2]],
                          generator=torch.Generator().manual_seed(1), progress=False)
    model.train()
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    adv = trainer.attack_batch(images, labels)
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in buffers.items())
    assert model.training and model[1].training
    literal = copy.deepcopy(model).train()  # the same attack with training-mode BatchNorm, statistics thrown away
    expected = LPA3(literal, layers=[literal[2]], steps=2, feasible=False, generator=torch.Generator().manual_seed(1))
    expected.set_model_training_mode(model_training=True, batchnorm_training=True)
    torch.testing.assert_close(adv, expected(images, labels))
    eval_mode = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.1), steps=2, layers=[model[2]],
                            attack_batchnorm="eval", generator=torch.Generator().manual_seed(1), progress=False)
    assert not torch.allclose(eval_mode.attack_batch(images, labels), adv)  # running statistics: another result
