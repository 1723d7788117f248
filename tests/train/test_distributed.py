"""AdversarialTrainer under DistributedDataParallel: 2 gloo processes on the CPU equal 1 process; per-rank resume."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torchattacks
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from captum_wsam.data import ShapesTextures
from captum_wsam.train import AdversarialTrainer, LPA3Trainer, SATTrainer


def bn_free_model() -> nn.Module:
    # BatchNorm statistics are per rank under DDP, so the equality test uses a model without BatchNorm.
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1), nn.ReLU(), nn.MaxPool2d(4),
        nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 6),
    )


def pgd_trainer(model: nn.Module) -> AdversarialTrainer:
    attack = torchattacks.PGD(model, eps=4 / 255, alpha=2 / 255, steps=2, random_start=False)
    return AdversarialTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), attack, progress=False, seed=3)


@contextlib.contextmanager
def process_group(rank: int, world_size: int, port: int) -> Iterator[None]:
    """A gloo process group on this machine for one spawned worker, destroyed on exit."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        yield
    finally:
        dist.destroy_process_group()


def worker(rank: int, world_size: int, port: int, folder: str) -> None:
    with process_group(rank, world_size, port):
        data = ShapesTextures(n=32, size=32, seed=9)
        model = bn_free_model()
        history = pgd_trainer(model).fit(data, epochs=2, batch_size=16)
        lpa3_model = bn_free_model()
        lpa3 = LPA3Trainer(lpa3_model, torch.optim.SGD(lpa3_model.parameters(), lr=0.1), warmup=1, ratio=0.25,
                           steps=1, progress=False, checkpoint_dir=folder)
        lpa3.fit(data, epochs=2, batch_size=16)
        sat_model = bn_free_model()
        sat = SATTrainer(sat_model, torch.optim.SGD(sat_model.parameters(), lr=0.1), progress=False)
        sat.fit(data, epochs=2, batch_size=16)  # the saliency cache is gathered over ranks
        torch.save({"model": model.state_dict(), "history": history, "memory": lpa3.lpa3_memory,
                    "saliency": sat.saliency_memory, "sat_model": sat_model.state_dict()},
                   os.path.join(folder, f"rank{rank}.pt"))


def test_two_gloo_processes_equal_one_process(tmp_path):
    port = 29500 + os.getpid() % 1000
    mp.spawn(worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    # reference: one process, the same global batches (DistributedSampler order with one replica, batch 16)
    data = ShapesTextures(n=32, size=32, seed=9)
    model = bn_free_model()
    loader = DataLoader(data, batch_size=16, sampler=DistributedSampler(data, num_replicas=1, rank=0, seed=3))
    history = pgd_trainer(model).fit(loader, epochs=2)
    for name, value in model.state_dict().items():
        assert torch.equal(rank0["model"][name], rank1["model"][name])  # replicas stay in sync
        torch.testing.assert_close(rank0["model"][name], value, atol=1e-5, rtol=1e-4)  # summation order only
    for single, distributed in zip(history, rank0["history"]):
        assert abs(single["loss"] - distributed["loss"]) < 1e-4 and single["accuracy"] == distributed["accuracy"]
    # LP-A3 memories are gathered over ranks: identical on both, every sample seen
    assert torch.equal(rank0["memory"]["instability"], rank1["memory"]["instability"])
    assert (rank0["memory"]["instability"] > 0).all()
    for key in ("maps", "valid"):  # SAT's saliency cache too, and the replicas stay in sync with it
        assert torch.equal(rank0["saliency"][key], rank1["saliency"][key])
    assert rank0["saliency"]["valid"].all() and (rank0["saliency"]["maps"] != 0).any()
    for name, value in rank0["sat_model"].items():
        assert torch.equal(value, rank1["sat_model"][name])
    assert (tmp_path / "last.pt").exists()


def resume_worker(rank: int, world_size: int, port: int, folder: str) -> None:
    data = ShapesTextures(n=32, size=32, seed=9)

    def run(subfolder: str, seed: int, stop_after: int | None = None, resume: bool = False) -> nn.Module:
        model = bn_free_model()  # seeds the global RNG itself, so the per-rank seed comes after it
        torch.manual_seed(seed)
        attack = torchattacks.PGD(model, eps=4 / 255, alpha=2 / 255, steps=2, random_start=True)  # global RNG

        def stop(trainer, record):
            if stop_after is not None and record["epoch"] == stop_after:
                raise KeyboardInterrupt

        trainer = AdversarialTrainer(model, torch.optim.SGD(model.parameters(), lr=0.1), attack, progress=False,
                                     checkpoint_dir=os.path.join(folder, subfolder), callbacks=[stop])
        trainer.fit(data, epochs=3, batch_size=16, resume=resume)
        return model

    with process_group(rank, world_size, port):
        full = run("full", 100 + rank)  # different random streams per rank: the random starts differ
        with contextlib.suppress(KeyboardInterrupt):
            run("cut", 100 + rank, stop_after=2)
        resumed = run("cut", 7, resume=True)  # the same seed on both ranks: only the checkpoint restores each stream
        torch.save({"full": full.state_dict(), "resumed": resumed.state_dict()},
                   os.path.join(folder, f"resume{rank}.pt"))


def test_two_gloo_processes_resume_each_ranks_random_streams(tmp_path):
    port = 30600 + os.getpid() % 1000
    mp.spawn(resume_worker, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    state = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)
    assert len(state["rng_ranks"]) == 2
    assert not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])
    for rank in (0, 1):
        result = torch.load(tmp_path / f"resume{rank}.pt", weights_only=True)
        for name, value in result["full"].items():
            assert torch.equal(value, result["resumed"][name])
