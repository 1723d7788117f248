"""The training loop: epochs, steps, augmentation, AMP, DDP, callbacks and checkpoints, with two override points.

A training method plugs in through :meth:`AdversarialTrainer.compute_loss` (its loss, from the formulas of
:mod:`captum_wsam.train.functional`) and :meth:`AdversarialTrainer.sample_memories` (its per-sample state, objects of
:mod:`captum_wsam.train.memory`, checkpointed and validated by :mod:`captum_wsam.train.checkpoint`), as a Kornia
augmentation plugs in through ``apply_transform``. The built-in methods (standard, FGSM-mixed, PGD-AT, TRADES, the
SAT family, LP-A3) are configured by the arguments; :mod:`captum_wsam.train.presets` holds the SAT and LP-A3 presets.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checks import check_positive_int
from .._compat import BatchNorm
from ..data.batches import split_batch
from . import checkpoint as ckpt
from . import functional as TF
from .evaluation import accuracy
from .memory import SampleMemory
from .options import TrainerOptions

Callback = Callable[["AdversarialTrainer", dict[str, float]], None]


class AdversarialTrainer(TrainerOptions):
    """One loop for standard, FGSM-mixed, PGD-AT, TRADES, SAT-family, LP-A3 and style-augmented training.

    .. math::

        \\mathcal{L} = \\begin{cases} J(x, y) \\text{ or } J(x', y) & \\texttt{loss="ce"} \\\\
        \\alpha J(x, y) + (1 - \\alpha) J(x', y) & \\texttt{loss="mixed"} \\\\
        J(x, y) + \\beta\\, \\mathrm{KL}(p(x) \\| p(x')) & \\texttt{loss="trades"} \\end{cases}
        \\; + \\; [t > t_w]\\, w\\, \\frac{1}{|S|} \\sum_{i \\in S} \\mathbb{1}[c_i \\ge \\tau_c]\\,
        J(x'_i, \\hat y_i) \\text{ (LP-A3)}

    (formulas and papers in :mod:`captum_wsam.train.functional`). ``attack`` is any ``torchattacks.Attack`` built on
    ``model`` (``FGSM``, ``PGD``, ``TPGD``, or :class:`~captum_wsam.attacks.SAT`, :class:`~captum_wsam.attacks.PGDSAT`,
    :class:`~captum_wsam.attacks.TRADESSAT`, :class:`~captum_wsam.attacks.LPA3`); attacks with ``set_epoch`` get the
    epoch. ``attack_inputs`` maps keys of the batch's ``info`` dict to attack keyword arguments (``{"mask": "masks"}``
    for SAT's weak saliency from ShapesTextures masks). With an :class:`~captum_wsam.attacks.LPA3` attack the loop
    follows the official LP-A3 code (:class:`~captum_wsam.train.LPA3Trainer` describes it). When the model has
    BatchNorm in training mode, a batch that selects a single sample adds no LP-A3 term (training-mode BatchNorm
    cannot normalize one sample at a :math:`1 \\times 1` map).

    Override points (for a new method, instead of new flags): :meth:`compute_loss` returns the loss and the logits
    used for the running accuracy; :meth:`after_backward` reads gradients of the step; :meth:`sample_memories` names
    the per-sample state objects (:class:`~captum_wsam.train.memory.SampleMemory`) that are checkpointed and checked
    against the data set size on resume.

    Checkpoints (``checkpoint_dir``) are written atomically at the end of every epoch. ``fit(..., resume=True)``
    validates the whole of ``last.pt`` first (a :class:`CheckpointError` names the part and the file; nothing is
    changed), then continues; on the CPU an interrupted and resumed run ends with bitwise the same weights as an
    uninterrupted one. A non-finite loss stops training with ``FloatingPointError``
    before the step, so the last checkpoint stays the last good one.

    Distributed: under ``torchrun`` the model is wrapped in ``DistributedDataParallel`` and a Dataset is sharded with a
    ``DistributedSampler`` (``batch_size`` is the global batch); history and per-sample memories are reduced over
    ranks and rank 0 writes checkpoints holding every rank's RNG states. Gradients equal the single-process ones for
    mean losses, except through BatchNorm batch statistics, per-rank attack draws and float summation order.

    Args:
        model: classifier returning logits; trained in place and left in eval mode after :meth:`fit`.
        optimizer: optimizer over ``model``'s parameters.
        attack: ``None`` (standard training) or a torchattacks attack on ``model``.
        loss: ``"ce"``, ``"mixed"`` or ``"trades"`` (the last two need an attack that is not LP-A3).
        alpha: weight :math:`\\alpha \\in [0, 1]` of the clean term of ``"mixed"``.
        beta: weight :math:`\\beta \\ge 0` of the KL term of ``"trades"``.
        scheduler: optional LR scheduler, stepped every batch or every epoch (``scheduler_step``).
        scheduler_step: ``"batch"`` or ``"epoch"``.
        augment: optional batch augmentation ``images -> images`` (Kornia augmentation, StyleAugment, ...).
        augment_p: probability that ``augment`` is applied to a batch (drawn from the trainer's seeded generator).
        attack_inputs: ``{info key: attack keyword}`` passed from the batch's ``info`` to the attack.
        lpa3_ratio: fraction :math:`r` of the training set LP-A3 selects (the most unstable samples).
        lpa3_warmup: the LP-A3 loss is trained in epochs :math:`t > t_w` (0-based, the official boundary); ``-1``
            trains it from the first epoch, in which every sample is selected.
        lpa3_weight: weight :math:`w` of the LP-A3 loss.
        lpa3_momentum: EMA momentum :math:`\\mu` of the instability memory (0.01 as in the official code).
        lpa3_target: labels LP-A3 preserves and trains on: ``"pred"`` (model predictions, official) or ``"label"``.
        lpa3_confidence: :math:`\\tau_c`: a selected sample's LP-A3 term counts when the clean prediction's
            probability of its target is at least this (0.9, the official ``threshold_lpa3``; 0 keeps all).
        saliency_cache: SAT family with the model's own gradient saliency only (see :class:`SATTrainer`): keep each
            sample's sign saliency map between epochs, refreshed by its training step. ``"log_prob"``:
            :math:`\\operatorname{sign} \\nabla_{x'} \\log p(y|x')`, read off the training backward (no extra pass;
            needs ``loss="ce"``); ``"logit"``: :math:`\\operatorname{sign} \\nabla_x f_y(x)`, one input-only backward
            on the retained graph, at the clean images for ``"mixed"``/``"trades"``, else at :math:`x'`; ``None``: no
            cache. Needs ``info["index"]`` (batches without it get on-the-fly saliency, with a warning).
        eval_data: optional Dataset/DataLoader evaluated after every epoch (``eval_accuracy``).
        eval_attacks: optional ``{name: attack}`` for robust accuracy on ``eval_data`` (``robust/<name>``).
        progress: show a tqdm bar per epoch (rank 0 only).
        amp: mixed precision (float16 autocast and gradient scaling) when the model is on CUDA; no-op on the CPU.
        callbacks: callables ``(trainer, record)`` run after every epoch (after the checkpoint is written).
        checkpoint_dir: folder for ``last.pt`` (``None``: no checkpoints).
        seed: seed of the shuffling and of the trainer's own random draws.

    Examples:
        >>> from captum_wsam.attacks import SAT
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        >>> trainer = AdversarialTrainer(model, optimizer, SAT(model, eps=4 / 255), progress=False)
        >>> history = trainer.fit(ShapesTextures(n=16, size=32), epochs=1, batch_size=8)
        >>> sorted(history[0])
        ['accuracy', 'epoch', 'loss', 'lr', 'time']
    """

    # --------------------------------------------------------------------------------------------- override points
    def compute_loss(
        self, images: Tensor, labels: Tensor, info: Mapping[str, Any], epoch: int
    ) -> tuple[Tensor, Tensor]:
        """Override point: the method's loss for one (augmented) batch, and the logits for the running accuracy.

        The default builds the attack, the base loss (``"ce"``, ``"mixed"``, ``"trades"``), the SAT cache refresh and
        the LP-A3 term from the constructor's arguments. An override may call :meth:`attack_batch` and
        :meth:`forward` and keep its per-sample state in an object listed by :meth:`sample_memories`.
        """
        kwargs = self._attack_kwargs(info)
        cache_index = self._cache_index(info)
        if cache_index is not None:
            cached = self._cached_saliency(cache_index, images)
            if cached is not None:
                kwargs["saliency_maps"] = cached
        adv = None if self.attack is None or self.lpa3 else self.attack_batch(images, labels, **kwargs)
        self._saliency_source = None  # refreshed at x' ("ce"), or at the clean images the loss also sees
        if cache_index is not None:
            if self.loss == "ce":
                adv = self._saliency_source = adv.requires_grad_(True)
            else:
                images = self._saliency_source = images.detach().requires_grad_(True)
        with self._autocast():
            if self.loss == "ce":
                logits = self.forward(images if adv is None else adv)
                loss = TF.adversarial_loss(logits, labels)
            else:
                logits, adv_logits = self.forward(images), self.forward(adv)
                loss = (TF.mixed_loss(logits, adv_logits, labels, self.alpha) if self.loss == "mixed" else
                        TF.trades_loss(logits, adv_logits, labels, self.beta))
            if self.lpa3:
                loss = loss + self._lpa3_term(images, labels, logits, info, epoch, kwargs)
        if cache_index is not None and self.saliency_cache == "logit":  # one input-only backward, retained graph
            score = self.scaler.scale(logits.gather(1, labels[:, None]).sum())  # scaled: no fp16 underflow
            gradient = torch.autograd.grad(score, self._saliency_source, retain_graph=True)[0]
            self.saliency_maps.store(cache_index, gradient, self._dataset_size, self._gather)
        self._cache_index_of_step = cache_index
        return loss, logits

    def after_backward(self) -> None:
        """Override point: read gradients of the step (the default stores the ``"log_prob"`` SAT saliency)."""
        if self._cache_index_of_step is not None and self.saliency_cache == "log_prob":  # d CE / d x'
            self.saliency_maps.store(self._cache_index_of_step, -self._saliency_source.grad, self._dataset_size,
                                     self._gather)
        self._saliency_source = self._cache_index_of_step = None

    def sample_memories(self) -> dict[str, SampleMemory]:
        """Override point: per-sample state objects by checkpoint key (``"lpa3"``, ``"saliency"``, yours)."""
        memories: dict[str, SampleMemory] = {}
        if self.selection is not None:
            memories["lpa3"] = self.selection
        if self.saliency_maps is not None:
            memories["saliency"] = self.saliency_maps
        return memories

    # ------------------------------------------------------------------------------------------------------ pieces
    def attack_batch(self, images: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
        """The attack's output on a batch (detached); every module's ``training`` flag is kept."""
        with _modes_kept(self.model):
            return self.attack(images, labels, **kwargs).detach()

    def forward(self, images: Tensor) -> Tensor:
        """The (DDP-wrapped) model's logits."""
        return self._net(images)

    def _autocast(self) -> Any:
        return torch.autocast("cuda", dtype=torch.float16) if self.amp else nullcontext()

    def _all_ranks(self, flag: bool) -> bool:
        if self.world_size == 1:
            return flag
        value = torch.tensor([int(flag)], device=self.device)
        dist.all_reduce(value, op=dist.ReduceOp.MIN)
        return bool(value.item())

    def _gather(self, tensor: Tensor) -> Tensor:
        if self.world_size == 1:
            return tensor
        parts = [torch.empty_like(tensor) for _ in range(self.world_size)]
        dist.all_gather(parts, tensor.contiguous())
        return torch.cat(parts)

    def _lpa3_term(self, images: Tensor, labels: Tensor, logits: Tensor, info: Mapping[str, Any], epoch: int,
                   kwargs: dict[str, Any]) -> Tensor | float:
        if "index" not in info:
            raise ValueError("LP-A3 needs the sample index in the batch info: info['index']")
        index = torch.as_tensor(info["index"], device=self.device)
        probs = logits.detach().softmax(1, dtype=torch.promote_types(logits.dtype, torch.float32))
        selected = self.selection.update(index, probs, self._dataset_size, self._gather)
        count = int(selected.sum())
        if count == 1 and any(isinstance(m, BatchNorm) and m.training for m in self.model.modules()):
            count = 0  # training-mode BatchNorm cannot normalize one sample: such a batch adds no LP-A3 term
        if not self._all_ranks(epoch > self.lpa3_warmup and count > 0):
            return 0.0
        targets = (probs.argmax(1) if self.lpa3_target == "pred" else labels)[selected]
        confidence = probs[selected].gather(1, targets[:, None])[:, 0]
        augmented = self.attack_batch(images[selected], targets, **kwargs)
        return self.lpa3_weight * TF.lpa3_loss(self.forward(augmented), targets, confidence, self.lpa3_confidence)

    # --------------------------------------------------------------------------------------------------- the step
    def train_step(self, images: Tensor, labels: Tensor, info: Mapping[str, Any], epoch: int) -> tuple[Tensor, Tensor]:
        """One optimization step on a batch; returns the loss (detached) and the logits used for accuracy.

        Raises:
            FloatingPointError: the loss is not finite (nothing is stepped).
        """
        if self.augment is not None and (
            self.augment_p >= 1 or bool(torch.rand((), generator=self.generator) < self.augment_p)
        ):
            with torch.no_grad():
                images = self.augment(images)
        loss, logits = self.compute_loss(images, labels, info, epoch)
        if not bool(torch.isfinite(loss.detach())):
            last = "" if self.checkpoint_dir is None else f"; {self.checkpoint_dir / ckpt.CHECKPOINT_NAME} is kept"
            raise FloatingPointError(f"the training loss is {loss.item()} in epoch {epoch + 1}: training stopped "
                                     f"before the step{last}. Lower the learning rate or check the data")
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.after_backward()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and self.scheduler_step == "batch":
            self.scheduler.step()
        return loss.detach(), logits.detach()

    def evaluate(self) -> dict[str, float]:
        """Accuracy (and robust accuracies) on ``eval_data``; the model's state is restored."""
        record = {"eval_accuracy": accuracy(self.model, self.eval_data)}
        record.update({f"robust/{name}": accuracy(self.model, self.eval_data, attack=attack)
                       for name, attack in self.eval_attacks.items()})
        return record

    # ------------------------------------------------------------------------------------------------ checkpoints
    def _generators(self, loader: DataLoader) -> dict[str, torch.Generator | None]:
        def generator(value: Any) -> torch.Generator | None:
            return value if isinstance(value, torch.Generator) else None

        return {"trainer": self.generator, "loader": generator(loader.generator),
                "sampler": generator(getattr(loader.sampler, "generator", None)),
                "attack": generator(getattr(self.attack, "generator", None))}

    def state_dict(self, epoch: int, loader: DataLoader, rng_ranks: Sequence[dict[str, Any]] | None = None
                   ) -> dict[str, Any]:
        """Everything needed to resume after ``epoch`` epochs (tensors and plain Python values only)."""
        state = {"format": ckpt.CHECKPOINT_FORMAT, "epoch": epoch, "model": self.model.state_dict(),
                 "optimizer": self.optimizer.state_dict(),
                 "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
                 "scaler": self.scaler.state_dict(), "rng": ckpt.rng_state(self._generators(loader)),
                 "lpa3": None, "saliency": None, "dataset_size": self._dataset_size,
                 "history": [dict(r) for r in self.history]}
        state.update({name: memory.state_dict() for name, memory in self.sample_memories().items()})
        if rng_ranks is not None:
            state["rng_ranks"] = list(rng_ranks)
        return state

    def save_checkpoint(self, epoch: int, loader: DataLoader) -> Path | None:
        """Atomically write ``checkpoint_dir/last.pt`` (rank 0); the previous file stays until the new one is whole."""
        if self.checkpoint_dir is None:
            return None
        path = self.checkpoint_dir / ckpt.CHECKPOINT_NAME
        rng_ranks = None
        if self.world_size > 1:  # every rank's random streams (attack draws, dropout, ...) go into rank 0's file
            rng_ranks = [None] * self.world_size
            dist.all_gather_object(rng_ranks, ckpt.rng_state(self._generators(loader)))
        if self.rank == 0:
            ckpt.save_atomic(self.state_dict(epoch, loader, rng_ranks), path)
        if self.world_size > 1:
            dist.barrier()
        return path

    def load_state(self, state: Mapping[str, Any], loader: DataLoader, path: str | os.PathLike = "<memory>") -> int:
        """Validate the whole checkpoint ``state`` against this trainer, then restore it; return its epoch."""
        generators = self._generators(loader)
        memories = self.sample_memories()
        ckpt.validate_checkpoint(state, path, model=self.model, optimizer=self.optimizer, scheduler=self.scheduler,
                                 generators=generators, memories=memories, dataset_size=self._dataset_size,
                                 rank=self.rank, world_size=self.world_size)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        ckpt.set_rng_state(ckpt._rank_rng(state, self.rank, self.world_size), generators)
        for name, memory in memories.items():
            memory.load_state_dict(state.get(name), self.device)
        self.history = [dict(r) for r in state["history"]]
        return int(state["epoch"])

    # -------------------------------------------------------------------------------------------------------- fit
    def fit(self, data: Dataset | DataLoader, epochs: int, batch_size: int = 64,
            resume: bool | str | os.PathLike = False) -> list[dict[str, float]]:
        """Train for ``epochs`` epochs in total (a resumed run continues up to ``epochs``); return the history.

        Args:
            data: Dataset or DataLoader of ``(image, label[, info])`` items.
            epochs: total number of epochs.
            batch_size: (global) batch size when ``data`` is a Dataset.
            resume: ``True`` to continue from ``checkpoint_dir/last.pt`` when it exists, or a checkpoint path.

        Returns:
            One record per epoch: ``epoch``, ``loss``, ``accuracy`` (running training accuracy on the inputs of the
            first loss term), ``lr``, ``time`` (s), and with ``eval_data`` ``eval_accuracy`` and ``robust/<name>``.

        Raises:
            CheckpointError: the checkpoint to resume from is unreadable or does not fit (nothing was changed).
            FloatingPointError: a non-finite loss (the last checkpoint is kept).
        """
        check_positive_int(epochs, "epochs")
        check_positive_int(batch_size, "batch_size")
        loader = self._loader(data, batch_size)
        self._dataset_size = len(loader.dataset)
        start = 0
        if resume:
            if resume is True and self.checkpoint_dir is None:
                raise ValueError("resume=True needs checkpoint_dir")
            path = self.checkpoint_dir / ckpt.CHECKPOINT_NAME if resume is True else Path(resume)
            if path.exists() or resume is not True:
                start = self.load_state(ckpt.load_checkpoint(path), loader, path)
        if self.checkpoint_dir is not None and self.rank == 0:
            ckpt.clean_stale_temp_files(self.checkpoint_dir / ckpt.CHECKPOINT_NAME)
        if self.world_size > 1 and self._net is self.model:
            self._net = nn.parallel.DistributedDataParallel(self.model)
        for epoch in range(start, epochs):
            self._run_epoch(loader, epoch, epochs)
        self.model.eval()
        return self.history

    def _run_epoch(self, loader: DataLoader, epoch: int, epochs: int) -> None:
        began = time.perf_counter()
        if hasattr(self.attack, "set_epoch"):
            self.attack.set_epoch(epoch)
        if hasattr(loader.sampler, "set_epoch"):
            loader.sampler.set_epoch(epoch)
        if self.selection is not None:
            self.selection.start_epoch()
        self.model.train()
        totals = torch.zeros(3, dtype=torch.float64)
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{epochs}", disable=not self.progress or self.rank != 0,
                   leave=False)
        for batch in bar:
            images, labels, info = split_batch(batch)
            images, labels = images.to(self.device), labels.to(self.device)
            loss, logits = self.train_step(images, labels, info, epoch)
            totals += torch.tensor([loss.item() * len(labels), (logits.argmax(1) == labels).sum().item(), len(labels)],
                                   dtype=torch.float64)
        if self.scheduler is not None and self.scheduler_step == "epoch":
            self.scheduler.step()
        if self.world_size > 1:
            dist.all_reduce(totals)
        record = {"epoch": float(epoch + 1), "loss": (totals[0] / totals[2]).item(),
                  "accuracy": (totals[1] / totals[2]).item(), "lr": float(self.optimizer.param_groups[0]["lr"])}
        if self.eval_data is not None:
            record.update(self.evaluate())
        record["time"] = time.perf_counter() - began
        self.history.append(record)
        self.save_checkpoint(epoch + 1, loader)
        for callback in self.callbacks:
            callback(self, record)


@contextmanager
def _modes_kept(model: nn.Module) -> Iterator[None]:
    """Every module's own ``training`` flag restored on exit (torchattacks switches whole models)."""
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


__all__ = ["AdversarialTrainer", "Callback"]
