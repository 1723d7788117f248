"""Checkpoints (issue 16, item 4): the whole file is validated before anything changes; every failure is a
``CheckpointError`` naming the part and the file; a non-finite loss never overwrites the last good checkpoint; stale
temporary files are cleaned."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from torch import nn

from captum_wsam.data import ShapesTextures
from captum_wsam.train import AdversarialTrainer, CheckpointError, LPA3Trainer, SATTrainer, load_checkpoint
from captum_wsam.train.checkpoint import CHECKPOINT_NAME, clean_stale_temp_files, save_atomic


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3, stride=4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 6))


def data(n: int = 8) -> ShapesTextures:
    return ShapesTextures(n=n, size=32, seed=2)


def lpa3(model, folder, **kwargs) -> LPA3Trainer:
    return LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9), steps=1, warmup=-1,
                       ratio=0.5, checkpoint_dir=folder, progress=False, **kwargs)


def snapshot(trainer) -> list[torch.Tensor]:
    values = [t.detach().clone() for t in trainer.model.state_dict().values()]
    for state in trainer.optimizer.state.values():
        values += [v.clone() for v in state.values() if isinstance(v, torch.Tensor)]
    return [*values, torch.get_rng_state()]


def assert_unchanged(before, trainer) -> None:
    after = snapshot(trainer)
    assert len(before) == len(after) and all(torch.equal(a, b) for a, b in zip(before, after))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """An LP-A3 run of one epoch with its checkpoint (memories included)."""
    folder = tmp_path_factory.mktemp("run")
    lpa3(tiny_model(), folder).fit(data(), epochs=1, batch_size=8)
    return folder / CHECKPOINT_NAME


def resumed_trainer(tmp_path, state, **kwargs):
    """A fresh trainer after one epoch of its own, then asked to resume from ``state`` written to a file."""
    model = tiny_model(1)
    trainer = lpa3(model, tmp_path / "other", **kwargs)
    trainer.fit(data(), epochs=1, batch_size=8)
    path = tmp_path / "edited.pt"
    torch.save(state, path)
    return trainer, path


@pytest.mark.parametrize(
    ("part", "edit"),
    [
        ("optimizer", lambda s: s["optimizer"]["param_groups"].append(dict(s["optimizer"]["param_groups"][0]))),
        ("optimizer", lambda s: s["optimizer"]["param_groups"][0]["params"].pop()),
        ("model", lambda s: s["model"].update({"0.weight": torch.zeros(5, 3, 3, 3)})),
        ("model", lambda s: s["model"].pop("3.bias")),
        ("model", lambda s: s["model"]["0.weight"].fill_(float("nan"))),
        ("rng", lambda s: s["rng"].update({"torch": torch.zeros(3, dtype=torch.uint8)})),
        ("rng", lambda s: s["rng"].update({"python": (3, (1, 2), None)})),
        ("lpa3", lambda s: s["lpa3"].update({"instability": s["lpa3"]["instability"][:-1]})),
        ("lpa3", lambda s: s["lpa3"]["probs"].fill_(float("nan"))),
        ("dataset_size", lambda s: s.update({"dataset_size": 99})),
        ("history", lambda s: s.update({"history": "none"})),
        ("epoch", lambda s: s.update({"epoch": -1})),
    ],
)
def test_bad_part_raises_before_anything_changes(part, edit, written, tmp_path):
    state = torch.load(written, weights_only=True)
    edit(state)
    trainer, path = resumed_trainer(tmp_path, state)
    before = snapshot(trainer)
    memory = {k: v.clone() for k, v in trainer.lpa3_memory.items()}
    with pytest.raises(CheckpointError, match=f"the {part} part") as caught:
        trainer.fit(data(), epochs=2, batch_size=8, resume=path)
    assert caught.value.part == part and caught.value.path == path and str(path) in str(caught.value)
    assert_unchanged(before, trainer)
    assert all(torch.equal(v, trainer.lpa3_memory[k]) for k, v in memory.items()) and len(trainer.history) == 1


def test_resume_on_a_data_set_of_another_size(written, tmp_path):
    # old checkpoints carry no dataset_size: the per-sample memory still catches the mismatch (was an IndexError)
    state = torch.load(written, weights_only=True)
    del state["dataset_size"]
    trainer = lpa3(tiny_model(), tmp_path)
    path = tmp_path / "old.pt"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match="the lpa3 part .* 8 rows .* 24 samples"):
        trainer.fit(data(24), epochs=2, batch_size=8, resume=path)
    sat = SATTrainer(tiny_model(), torch.optim.SGD(tiny_model().parameters(), lr=0.1), checkpoint_dir=tmp_path / "s",
                     progress=False)
    sat.fit(data(), epochs=1, batch_size=8)
    other = SATTrainer(sat.model, torch.optim.SGD(sat.model.parameters(), lr=0.1), progress=False)
    with pytest.raises(CheckpointError, match="dataset_size"):
        other.fit(data(24), epochs=2, batch_size=8, resume=tmp_path / "s" / CHECKPOINT_NAME)


def test_unreadable_files_name_the_file(tmp_path):
    path = tmp_path / "empty.pt"
    path.write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt is corrupt or partial") as caught:
        load_checkpoint(path)
    assert caught.value.part == "file"
    torch.save({"format": "x"}, path)
    with pytest.raises(CheckpointError, match="is not a") as caught:
        load_checkpoint(path)
    assert caught.value.part == "format"


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    model = tiny_model()
    trainer = AdversarialTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), checkpoint_dir=tmp_path,
                                 progress=False)
    trainer.fit(data(), epochs=1, batch_size=8)
    good = (tmp_path / CHECKPOINT_NAME).read_bytes()
    weights = [p.detach().clone() for p in model.parameters()]
    images, labels = data().tensors()
    images[3] = float("nan")
    poisoned = torch.utils.data.TensorDataset(images, labels)
    with pytest.raises(FloatingPointError, match=r"loss is nan in epoch 2.*last.pt is kept"):
        trainer.fit(torch.utils.data.DataLoader(poisoned, batch_size=8), epochs=3, resume=True)
    assert (tmp_path / CHECKPOINT_NAME).read_bytes() == good
    assert all(torch.equal(a, b) for a, b in zip(weights, model.parameters()))  # the step was not taken
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1


def test_stale_temp_files_are_cleaned(tmp_path):
    target = tmp_path / CHECKPOINT_NAME
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                          check=True).stdout.strip()
    stale = tmp_path / f".{CHECKPOINT_NAME}.tmp-{dead}"
    mine = tmp_path / f".{CHECKPOINT_NAME}.tmp-{os.getpid()}"
    alive = tmp_path / f".{CHECKPOINT_NAME}.tmp-{os.getppid()}"  # another running process may be writing it
    for path in (stale, mine, alive):
        path.write_bytes(b"partial")
    assert sorted(p.name for p in clean_stale_temp_files(target)) == sorted([stale.name, mine.name])
    assert alive.exists() and not stale.exists()
    stale.write_bytes(b"partial")
    model = tiny_model()
    AdversarialTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), checkpoint_dir=tmp_path,
                       progress=False).fit(data(), epochs=1, batch_size=8)
    assert not stale.exists() and target.exists()
    save_atomic({"a": 1}, tmp_path / "x.pt")
    assert not list(tmp_path.glob(".x.pt.tmp-*"))
