"""AdversarialTrainer: losses, presets, LP-A3 memories, resume equality, checkpoints, bad arguments."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
import torchattacks
from kornia.augmentation import ColorJiggle

import captum_wsam.train.checkpoint as checkpoint
from captum_wsam.attacks import LPA3, SAT
from captum_wsam.data import ShapesTextures
from captum_wsam.models import SmallCNN
from captum_wsam.train import AdversarialTrainer, CheckpointError, LPA3Trainer, SATTrainer, load_checkpoint


@pytest.fixture(scope="module")
def tiny_data() -> ShapesTextures:
    return ShapesTextures(n=48, size=32, seed=11)


def tiny_model(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(width=4, depth=2)


def sgd(model):
    return torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)


@pytest.mark.parametrize("loss", ["mixed", "trades"])
def test_loss_of_one_step_matches_formula(loss, tiny_data):
    model = tiny_model()
    attack = torchattacks.FGSM(model, eps=4 / 255)
    reference = copy.deepcopy(model)
    images, labels, _ = next(iter(torch.utils.data.DataLoader(tiny_data, batch_size=16)))
    trainer = AdversarialTrainer(model, sgd(model), attack, loss, alpha=0.3, beta=2.0, progress=False)
    model.train()
    step_loss, _ = trainer.train_step(images, labels, {}, epoch=0)
    reference.eval()
    adv = torchattacks.FGSM(reference, eps=4 / 255)(images, labels)
    reference.train()
    clean, robust = reference(images), reference(adv)
    if loss == "mixed":
        expected = 0.3 * F.cross_entropy(clean, labels) + 0.7 * F.cross_entropy(robust, labels)
    else:
        p = clean.softmax(1)
        expected = F.cross_entropy(clean, labels) + 2.0 * (p * (p.log() - robust.log_softmax(1))).sum(1).mean()
    torch.testing.assert_close(step_loss, expected.detach(), atol=1e-5, rtol=1e-5)


def test_sat_preset_sets_epoch_and_uses_masks(tiny_data):
    model = tiny_model()
    seen = {}

    class Recording(SAT):
        def forward(self, images, labels=None, masks=None, boxes=None, saliency_maps=None):
            seen.setdefault("epochs", []).append(self.epoch)
            seen["masks"] = masks
            return super().forward(images, labels, masks, boxes, saliency_maps)

    trainer = AdversarialTrainer(model, sgd(model), Recording(model), attack_inputs={"mask": "masks"},
                                 progress=False)
    trainer.fit(tiny_data, epochs=2, batch_size=24)
    assert seen["epochs"] == [0, 0, 1, 1] and seen["masks"].shape == (24, 1, 32, 32)
    preset = SATTrainer(tiny_model(), sgd(model), "trades", weak_saliency="box", progress=False)
    assert preset.loss == "trades" and preset.attack_inputs == {"box": "boxes"}


def test_augment_with_probability_and_callbacks(tiny_data):
    model = tiny_model()
    calls, records = [], []

    def augment(x):
        calls.append(len(x))
        return ColorJiggle(0.1, 0.1, p=1.0)(x)

    trainer = AdversarialTrainer(model, sgd(model), augment=augment, augment_p=0.5, progress=False,
                                 callbacks=[lambda t, r: records.append(r)], eval_data=tiny_data,
                                 eval_attacks={"FGSM": torchattacks.FGSM(model, eps=2 / 255)})
    history = trainer.fit(tiny_data, epochs=4, batch_size=16)
    assert 0 < len(calls) < 12 and records == history
    assert {"eval_accuracy", "robust/FGSM", "loss", "accuracy"} <= set(history[-1])
    assert not model.training
    assert not AdversarialTrainer(model, sgd(model), amp=True).amp  # AMP is CUDA-only: a no-op on the CPU


def test_lpa3_selects_unstable_samples_after_warmup(tiny_data, monkeypatch):
    model = tiny_model()
    sizes = []
    original = LPA3.forward

    def recording(self, images, labels=None):
        sizes.append(len(images))
        return original(self, images, labels)

    monkeypatch.setattr(LPA3, "forward", recording)
    trainer = LPA3Trainer(model, sgd(model), ratio=0.25, warmup=1, steps=2, progress=False)
    trainer.fit(tiny_data, epochs=3, batch_size=24)
    memory = trainer.lpa3_memory
    assert memory["instability"].shape == (48,) and (memory["instability"] > 0).all()
    # only in epoch 3 (epochs t > warmup = 1, 0-based): the official rule selects 48 - int(0.75 * 48) - 1 = 11
    assert len(sizes) == 2 and sum(sizes) == 11


def run(tmp_path, epochs, kind, resume=False, stop_after=None, seed=0):
    model = tiny_model(seed)
    optimizer = sgd(model)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)

    def stop(trainer, record):
        if stop_after is not None and record["epoch"] == stop_after:
            raise KeyboardInterrupt

    common = dict(scheduler=scheduler, progress=False, checkpoint_dir=tmp_path, callbacks=[stop])
    if kind == "sat":
        trainer = SATTrainer(model, optimizer, "pgd", steps=1, generator=torch.Generator().manual_seed(3), **common)
    else:
        trainer = LPA3Trainer(model, optimizer, ratio=0.3, warmup=1, steps=1, **common)
    data = ShapesTextures(n=32, size=32, seed=4)
    trainer.fit(data, epochs=epochs, batch_size=16, resume=resume)
    return model, trainer


@pytest.mark.parametrize("kind", ["sat", "lpa3"])
def test_interrupted_and_resumed_equals_uninterrupted(kind, tmp_path):
    torch.manual_seed(123)
    full, full_trainer = run(tmp_path / "full", 3, kind)
    torch.manual_seed(123)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", 3, kind, stop_after=2)
    torch.manual_seed(999)  # a different global state before resuming: the checkpoint restores it
    resumed, resumed_trainer = run(tmp_path / "cut", 3, kind, resume=True, seed=5)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert [r["loss"] for r in full_trainer.history] == [r["loss"] for r in resumed_trainer.history]
    if kind == "lpa3":
        assert torch.equal(full_trainer.lpa3_memory["instability"], resumed_trainer.lpa3_memory["instability"])
    else:  # PGD-SAT's saliency cache travels in the checkpoint
        assert full_trainer.saliency_cache == "log_prob" and full_trainer.saliency_memory["valid"].all()
        for key, value in full_trainer.saliency_memory.items():
            assert torch.equal(value, resumed_trainer.saliency_memory[key])


def test_corrupt_checkpoint_clear_error_and_previous_kept(tmp_path, monkeypatch):
    run(tmp_path, 1, "sat")
    path = tmp_path / "last.pt"
    good = path.read_bytes()
    assert load_checkpoint(path)["epoch"] == 1

    def failing_save(obj, handle):  # dies half-way through writing the next checkpoint
        handle.write(good[: len(good) // 2])
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        run(tmp_path, 2, "sat", resume=True)
    monkeypatch.undo()
    assert path.read_bytes() == good and sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    path.write_bytes(good[: len(good) // 2])  # a partial file
    with pytest.raises(CheckpointError, match="corrupt or partial"):
        run(tmp_path, 2, "sat", resume=True)
    torch.save({"format": "something else"}, path)
    with pytest.raises(CheckpointError, match="not a"):
        load_checkpoint(path)
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_bad_arguments_raise_clear_errors(tiny_data):
    model = tiny_model()
    with pytest.raises(ValueError, match="loss"):
        AdversarialTrainer(model, sgd(model), loss="hinge")
    with pytest.raises(ValueError, match="needs an adversarial attack"):
        AdversarialTrainer(model, sgd(model), loss="trades")
    with pytest.raises(ValueError, match="needs an adversarial attack"):
        AdversarialTrainer(model, sgd(model), LPA3(model), loss="mixed")
    with pytest.raises(ValueError, match="another module"):
        AdversarialTrainer(model, sgd(model), SAT(tiny_model(1)))
    with pytest.raises(ValueError, match="augment_p"):
        AdversarialTrainer(model, sgd(model), augment=lambda x: x, augment_p=1.5)
    with pytest.raises(TypeError, match="optimizer"):
        AdversarialTrainer(model, "sgd")
    with pytest.raises(ValueError, match="epochs"):
        AdversarialTrainer(model, sgd(model), progress=False).fit(tiny_data, epochs=0)
    trainer = AdversarialTrainer(model, sgd(model), SAT(model), attack_inputs={"segmentation": "masks"},
                                 progress=False)
    with pytest.raises(ValueError, match="segmentation"):
        trainer.fit(tiny_data, epochs=1)
    images, labels = tiny_data.tensors()
    with pytest.raises(ValueError, match="images must lie"):
        AdversarialTrainer(model, sgd(model), SAT(model), progress=False).fit(
            torch.utils.data.TensorDataset(images * 3, labels), epochs=1)


def test_style_augmented_training_with_style_augment(tiny_data):
    """Style-augmented training (seed 000): StyleAugment with its p and α range as the trainer's batch augmentation."""
    from captum_wsam.augment import StyleAugment

    model = tiny_model()
    augment = StyleAugment(alpha=(0.3, 0.8), p=0.5)
    before = [p.detach().clone() for p in model.parameters()]
    history = AdversarialTrainer(model, sgd(model), augment=augment, progress=False).fit(tiny_data, epochs=1,
                                                                                        batch_size=16)
    assert len(history) == 1 and all(torch.isfinite(torch.tensor(h["loss"])) for h in history)
    assert augment._params is not None and "alpha" in augment._params
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


# ------------------------------------------------------------------------------------------------- saliency cache
def batch_of(data, size=16):
    return next(iter(torch.utils.data.DataLoader(data, batch_size=size)))


@pytest.mark.parametrize("mode", ["log_prob", "logit"])
def test_saliency_cache_stores_sign_gradient_of_the_training_pass(mode, tiny_data):
    # eps = 0: x' = x, so the reference is the sign gradient at the clean batch on a copy of the model (train mode)
    model = tiny_model()
    reference = copy.deepcopy(model).train()
    images, labels, info = batch_of(tiny_data)
    trainer = AdversarialTrainer(model, sgd(model), SAT(model, eps=0.0), saliency_cache=mode, progress=False)
    model.train()
    trainer.train_step(images, labels, info, epoch=0)
    x = images.clone().requires_grad_(True)
    logits = reference(x)
    # log_prob: d log p(y|x) / dx (times 1 / B); logit: d f_y / dx
    score = -F.cross_entropy(logits, labels) if mode == "log_prob" else logits.gather(1, labels[:, None]).sum()
    expected = torch.autograd.grad(score, x)[0].sign().to(torch.int8)
    memory = trainer.saliency_memory
    rows = int(info["index"].max()) + 1  # outside fit the cache grows to the largest index seen
    assert memory["maps"].shape == (rows, 3, 32, 32) and memory["maps"].dtype == torch.int8
    assert torch.equal(memory["valid"], torch.isin(torch.arange(rows), info["index"]))
    assert torch.equal(memory["maps"][info["index"]], expected)
    assert (memory["maps"][info["index"]] != 0).float().mean() > 0.9  # a real map, not zeros


def test_saliency_cache_feeds_the_next_epoch_and_is_exact_sat(tiny_data):
    model = tiny_model()
    seen = []

    class Recording(SAT):
        def forward(self, images, labels=None, masks=None, boxes=None, saliency_maps=None):
            seen.append((self.epoch, saliency_maps, images.clone()))
            return super().forward(images, labels, masks, boxes, saliency_maps)

    snapshots = []
    attack = Recording(model, eps=8 / 255, generator=torch.Generator().manual_seed(0))
    trainer = AdversarialTrainer(model, sgd(model), attack, saliency_cache="log_prob", progress=False,
                                 callbacks=[lambda t, r: snapshots.append({k: v.clone() for k, v in
                                                                           t.saliency_memory.items()})])
    loader = torch.utils.data.DataLoader(tiny_data, batch_size=16)  # fixed order: batch i is the same each epoch
    trainer.fit(loader, epochs=2)
    first, second = seen[:3], seen[3:]
    assert all(e == 0 and maps is not None and not maps.any() for e, maps, _ in first)  # p_0 = 0: no map is read
    assert snapshots[0]["valid"].all()
    for i, (epoch, maps, _) in enumerate(second):  # epoch 1 reads the maps written during epoch 0
        assert epoch == 1 and torch.equal(maps, snapshots[0]["maps"][16 * i: 16 * (i + 1)].float())
    assert not torch.equal(snapshots[0]["maps"], snapshots[1]["maps"])  # ... and refreshes them
    seen[:] = second
    # the attack with that map is exactly SAT with a given saliency map
    g = torch.Generator().manual_seed(5)
    adv = SAT(model, eps=8 / 255, epoch=1, generator=g)(seen[0][2], batch_of(tiny_data)[1], saliency_maps=seen[0][1])
    u = torch.rand(seen[0][2].shape, generator=torch.Generator().manual_seed(5))
    p = 1 - 0.6 ** 0.1
    direction = torch.where(u < p, seen[0][1], torch.where(u < (1 + p) / 2, 1.0, -1.0))
    torch.testing.assert_close(adv, (seen[0][2] - 8 / 255 * direction).clamp(0, 1))


def test_sat_trainer_cache_defaults_and_costs_no_extra_forward(tiny_data):
    model = tiny_model()
    assert SATTrainer(model, sgd(model), progress=False).saliency_cache == "log_prob"
    assert SATTrainer(model, sgd(model), "pgd", progress=False).saliency_cache == "log_prob"
    assert SATTrainer(model, sgd(model), "trades", progress=False).saliency_cache == "logit"
    assert SATTrainer(model, sgd(model), weak_saliency="mask", progress=False).saliency_cache is None
    assert SATTrainer(model, sgd(model), saliency_cache=None, progress=False).saliency_cache is None
    calls = []
    handle = model.register_forward_pre_hook(lambda m, i: calls.append(len(i[0])))
    trainer = SATTrainer(model, sgd(model), generator=torch.Generator().manual_seed(0), progress=False)
    trainer.fit(tiny_data, epochs=2, batch_size=16)
    handle.remove()
    assert calls == [16] * 6  # one forward per step: the saliency comes from the training pass
    online = SATTrainer(model, sgd(model), saliency_cache=None, progress=False)
    calls.clear()
    handle = model.register_forward_pre_hook(lambda m, i: calls.append(len(i[0])))
    online.fit(tiny_data, epochs=1, batch_size=16)
    handle.remove()
    assert calls == [16] * 6  # epoch 0 with p_0 = 0 still computes the map on the fly: 2 forwards per step


def test_saliency_cache_without_index_warns_and_falls_back(tiny_data):
    model = tiny_model()
    images, labels = tiny_data.tensors()
    trainer = SATTrainer(model, sgd(model), progress=False)
    with pytest.warns(UserWarning, match="info\\['index'\\]"):
        trainer.fit(torch.utils.data.TensorDataset(images, labels), epochs=2, batch_size=16)
    assert trainer.saliency_memory is None and len(trainer.history) == 2


def test_indexed_dataset_gives_a_plain_dataset_the_saliency_cache(tiny_data):
    """``IndexedDataset(TensorDataset(...))`` trains exactly like ShapesTextures, which carries info['index'] itself."""
    import warnings

    from captum_wsam.data import IndexedDataset

    images, labels = tiny_data.tensors()
    results = []
    for data in (tiny_data, IndexedDataset(torch.utils.data.TensorDataset(images, labels))):
        model = tiny_model()
        trainer = SATTrainer(model, sgd(model), progress=False)
        torch.manual_seed(3)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # no "carry no info['index']" warning
            trainer.fit(data, epochs=2, batch_size=16)
        assert trainer.saliency_memory is not None and trainer.saliency_memory["valid"].all()
        results.append(trainer.saliency_memory["maps"])
    torch.testing.assert_close(results[0], results[1])


def test_saliency_cache_bad_arguments(tiny_data):
    model = tiny_model()
    with pytest.raises(ValueError, match="saliency_cache"):
        AdversarialTrainer(model, sgd(model), SAT(model), saliency_cache="gradient")
    with pytest.raises(ValueError, match="model's own"):
        AdversarialTrainer(model, sgd(model), LPA3(model), saliency_cache="logit")
    with pytest.raises(ValueError, match="model's own"):
        AdversarialTrainer(model, sgd(model), SAT(model, saliency=lambda x, y: x), saliency_cache="logit")
    with pytest.raises(ValueError, match="nothing to cache"):
        AdversarialTrainer(model, sgd(model), SAT(model), attack_inputs={"mask": "masks"}, saliency_cache="logit")
    with pytest.raises(ValueError, match="loss='trades'"):
        SATTrainer(model, sgd(model), "trades", saliency_cache="log_prob")


def test_saliency_cache_grows_when_train_step_is_called_outside_fit(tiny_data):
    model = tiny_model()
    trainer = AdversarialTrainer(model, sgd(model), SAT(model), saliency_cache="log_prob", progress=False)
    loader = torch.utils.data.DataLoader(tiny_data, batch_size=16)
    for images, labels, info in loader:  # no fit: the dataset size is unknown, indices grow batch by batch
        trainer.train_step(images, labels, info, epoch=3)
    assert trainer.saliency_memory["valid"].shape == (48,) and trainer.saliency_memory["valid"].all()
    first = trainer.saliency_memory["maps"][:16]
    assert (first != 0).any()


def test_interrupted_mid_epoch_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    # killed in the middle of epoch 3: the run resumes from the end of epoch 2 and replays the same batches and draws
    torch.manual_seed(123)
    full, _ = run(tmp_path / "full", 3, "sat")
    original, calls = SATTrainer.train_step, []

    def dying(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 6:  # 2 steps per epoch: the first step of epoch 3 has run, the second dies
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(SATTrainer, "train_step", dying)
    torch.manual_seed(123)
    with pytest.raises(KeyboardInterrupt):
        run(tmp_path / "cut", 3, "sat")
    monkeypatch.setattr(SATTrainer, "train_step", original)
    assert load_checkpoint(tmp_path / "cut" / "last.pt")["epoch"] == 2
    resumed, _ = run(tmp_path / "cut", 3, "sat", resume=True, seed=5)
    for a, b in zip(full.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)


def test_lpa3_skips_a_single_selected_sample_under_training_batchnorm(tiny_data, monkeypatch):
    # a BatchNorm on a 1x1 map (ResNet's last stage at 32x32) raises on one sample in training mode: one selected
    # sample adds no LP-A3 term (the step is the plain step); two selected samples are augmented
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, stride=4), torch.nn.AdaptiveAvgPool2d(1),
                                torch.nn.BatchNorm2d(4), torch.nn.Flatten(), torch.nn.Linear(4, 6))
    calls = []
    original = LPA3.forward
    monkeypatch.setattr(LPA3, "forward", lambda self, x, y=None: calls.append(len(x)) or original(self, x, y))
    trainer = LPA3Trainer(model, sgd(model), warmup=0, steps=1, progress=False)
    images, labels, info = next(iter(torch.utils.data.DataLoader(tiny_data, batch_size=8)))
    for chosen in (1, 2):
        size = len(tiny_data)
        instability = torch.zeros(size)
        instability[info["index"][:chosen]] = 1.0
        state = {"instability": instability, "probs": torch.full((size, 6), 1 / 6)}
        trainer.selection.validate_state(state, size)
        trainer.selection.load_state_dict(state, torch.device("cpu"))
        trainer.selection.threshold = 0.5  # as start_epoch would set it
        model.train()
        loss, _ = trainer.train_step(images, labels, info, epoch=1)
        assert torch.isfinite(loss)
    assert calls == [2]
    with pytest.raises(ValueError, match="more than 1 value"):  # what the guard avoids
        model(images[:1])


@pytest.mark.parametrize("variant", ["pgd", "trades"])
def test_sat_trainer_passes_official_to_the_attack(variant):
    model = tiny_model()
    assert SATTrainer(model, sgd(model), variant, official=True, progress=False).attack.official
    assert not SATTrainer(model, sgd(model), variant, progress=False).attack.official


def test_sat_trainer_official_needs_a_pgd_or_trades_variant():
    model = tiny_model()
    with pytest.raises(ValueError, match="official=True applies to variant='pgd' or 'trades'"):
        SATTrainer(model, sgd(model), official=True)
    with pytest.raises(TypeError, match="official"):
        SATTrainer(model, sgd(model), "pgd", official="yes")
