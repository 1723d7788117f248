"""One training loop for standard, adversarial, saliency-based (SAT), LP-A3 and style-augmented training.

Losses (per batch; :math:`x'` from the attack, :math:`J` the cross-entropy):

- ``"ce"`` without attack: :math:`J(x, y)`; with an attack (PGD-AT, Madry et al. 2018, arXiv:1706.06083; SAT and
  PGD-SAT, Mangla et al. 2020, arXiv:2006.07828): :math:`J(x', y)`;
- ``"mixed"`` (FGSM adversarial training, Goodfellow et al. 2015, "Explaining and Harnessing Adversarial Examples",
  arXiv:1412.6572): :math:`\\alpha J(x, y) + (1 - \\alpha) J(x', y)`;
- ``"trades"`` (TRADES and TRADES-SAT, Zhang et al. 2019, "Theoretically Principled Trade-off between Robustness and
  Accuracy", arXiv:1901.08573): :math:`J(x, y) + \\beta \\, \\mathrm{KL}(p(x) \\,\\|\\, p(x'))`;
- LP-A3 (Yang et al. 2022, arXiv:2211.00824), when the attack is an :class:`~captum_wsam.attacks.LPA3`:
  :math:`J(x, y) + w \\, J(x'_S, \\hat y_S)` on the set :math:`S` of the ``ratio`` most unstable samples (EMA of the
  KL change of their predictions), after ``warmup`` epochs. When the model has BatchNorm in training mode, a batch
  that selects a single sample (on any rank) adds no LP-A3 term: training-mode BatchNorm cannot normalize one sample
  (it raises at a :math:`1 \\times 1` map, as in ResNet's last stage on 32x32 images). The augmented samples pass
  through the model in a training forward of their own: BatchNorm normalizes them with their own batch statistics,
  as the auxiliary BatchNorm of the official code does, but (a generic trainer cannot add layers) through the model's
  own layers, whose running statistics they also update.

Style-augmented training (StyleAugment, seed 000 of the issue) is the ``augment`` argument: any batch callable
(a Kornia augmentation, :class:`~captum_wsam.augment.StyleAugment`) applied with probability ``augment_p`` per batch.
"""

from __future__ import annotations

import os
import random
import time
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.utils.data import DataLoader, Dataset, DistributedSampler
from tqdm.auto import tqdm

from .._checks import check_choice, check_in_range, check_positive_int, check_type
from ..attacks import LPA3, PGDSAT, SAT, TRADESSAT
from ..attacks import functional as AF
from ..attacks.sat import _SATBase
from .classifier import split_batch

CHECKPOINT_FORMAT = "captum_wsam.AdversarialTrainer/1"
CHECKPOINT_NAME = "last.pt"
_REQUIRED_KEYS = ("format", "epoch", "model", "optimizer", "scheduler", "scaler", "rng", "lpa3", "history")


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, partial or not an :class:`AdversarialTrainer` checkpoint."""


Callback = Callable[["AdversarialTrainer", dict[str, float]], None]


@contextmanager
def _modes_kept(model: nn.Module) -> Iterable[None]:
    # torchattacks' own attacks switch the model with model.eval()/model.train(); keep every module's own flag.
    flags = [(m, m.training) for m in model.modules()]
    try:
        yield
    finally:
        for module, flag in flags:
            module.training = flag


def _rank_and_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _atomic_save(obj: Any, path: Path) -> None:
    """Write ``obj`` to a temporary file in the same folder, flush it to disk, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(obj, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read an :class:`AdversarialTrainer` checkpoint with ``torch.load(..., weights_only=True)``.

    Args:
        path: the checkpoint file.

    Returns:
        The checkpoint dict (``epoch``, ``model``, ``optimizer``, ``scheduler``, ``scaler``, ``rng``, ``lpa3``,
        ``saliency`` (absent in checkpoints written before the SAT saliency cache existed), ``history``; and from
        distributed runs ``rng_ranks``, every rank's RNG states).

    Raises:
        FileNotFoundError: no file at ``path``.
        CheckpointError: the file is truncated, corrupt or of another format (the file is left in place).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     _ = Path(folder, "bad.pt").write_bytes(b"not a checkpoint")
        ...     load_checkpoint(Path(folder, "bad.pt"))
        Traceback (most recent call last):
        ...
        captum_wsam.train.adversarial.CheckpointError: checkpoint .../bad.pt is corrupt or partial ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, ...: one clear error for every cause
        raise CheckpointError(
            f"checkpoint {path} is corrupt or partial and cannot be read ({type(error).__name__}: {error}); "
            "it was left in place: delete it to fall back to training from scratch"
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} checkpoint (found {found!r})")
    missing = [k for k in _REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is partial: missing {missing}")
    return state


def _rng_state(generators: Mapping[str, torch.Generator | None]) -> dict[str, Any]:
    np_state = np.random.get_state()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
        "generators": {k: g.get_state() for k, g in generators.items() if g is not None},
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator | None]) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, *rest = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), *rest))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for key, value in state["generators"].items():
        if generators.get(key) is not None:
            generators[key].set_state(value)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


class AdversarialTrainer:
    """One loop for standard, FGSM-mixed, PGD-AT, TRADES, SAT-family, LP-A3 and style-augmented training.

    .. math::

        \\mathcal{L} = \\begin{cases} J(x, y) \\text{ or } J(x', y) & \\texttt{loss="ce"} \\\\
        \\alpha J(x, y) + (1 - \\alpha) J(x', y) & \\texttt{loss="mixed"} \\\\
        J(x, y) + \\beta\\, \\mathrm{KL}(p(x) \\| p(x')) & \\texttt{loss="trades"} \\end{cases}
        \\; + \\; [t \\ge t_w]\\, w\\, J(x'_S, \\hat y_S) \\text{ (LP-A3)}

    ``attack`` is any ``torchattacks.Attack`` built on ``model`` (``FGSM``, ``PGD``, ``TPGD``, or this package's
    :class:`~captum_wsam.attacks.SAT`, :class:`~captum_wsam.attacks.PGDSAT`, :class:`~captum_wsam.attacks.TRADESSAT`,
    :class:`~captum_wsam.attacks.LPA3`); attacks with ``set_epoch`` get the epoch. ``attack_inputs`` maps keys of the
    batch's ``info`` dict to attack keyword arguments (``{"mask": "masks"}`` for SAT's weak saliency from
    ShapesTextures masks).

    Checkpoints (``checkpoint_dir``) are written atomically at the end of every epoch (temporary file, ``fsync``,
    rename): model, optimizer, scheduler, AMP scaler, RNG states (torch, CUDA, NumPy, Python, the DataLoader's and the
    attack's generators), LP-A3 memories, the SAT saliency cache and history. ``fit(..., resume=True)`` continues from
    ``last.pt``; on the CPU with the same settings an interrupted and resumed run ends with bitwise the same weights as
    an uninterrupted one.

    Distributed: under ``torchrun`` (a process group initialized) the model is wrapped in ``DistributedDataParallel``
    and a Dataset is sharded with a ``DistributedSampler`` (``batch_size`` is the global batch, split evenly over the
    ranks); history, LP-A3 memories and the SAT saliency cache are reduced over ranks and rank 0 writes the checkpoints,
    which hold every rank's RNG states (a run resumed with the same world size continues each rank's own streams).
    Gradients equal the single-process ones for losses that are means over the batch, except through BatchNorm batch
    statistics (per rank; use ``SyncBatchNorm`` on GPUs), random attack draws (per-rank generators) and float summation
    order.

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
        lpa3_ratio: fraction of the training set augmented by LP-A3 (most unstable samples).
        lpa3_warmup: epochs before the LP-A3 loss starts (memories are updated during the warm-up).
        lpa3_weight: weight :math:`w` of the LP-A3 loss.
        lpa3_momentum: EMA momentum of the instability memory (0.01 as in the official code).
        lpa3_target: labels LP-A3 preserves and trains on: ``"pred"`` (model predictions, official) or ``"label"``.
        saliency_cache: SAT family with the model's own gradient saliency only (see :class:`SATTrainer`): keep each
            sample's sign saliency map between epochs, refreshed by its training step, instead of an extra forward
            and backward per step. ``"log_prob"``: :math:`\\operatorname{sign} \\nabla_{x'} \\log p(y|x')`, read off
            the training backward itself (no extra pass; needs ``loss="ce"``); ``"logit"``:
            :math:`\\operatorname{sign} \\nabla_x f_y(x)` (the paper's logit gradient), one input-only backward on the
            retained graph, at the clean images for ``"mixed"``/``"trades"``, else at :math:`x'`; ``None``: no cache.
            Needs ``info["index"]`` in the batches (batches without it get on-the-fly saliency, with a warning);
            memory: one int8 per input element of the training set.
        eval_data: optional Dataset/DataLoader evaluated after every epoch (``eval_accuracy``).
        eval_attacks: optional ``{name: attack}`` for robust accuracy on ``eval_data`` (``robust/<name>``).
        progress: show a tqdm bar per epoch (rank 0 only).
        amp: mixed precision (float16 autocast and gradient scaling) when the model is on CUDA; no-op on the CPU.
        callbacks: callables ``(trainer, record)`` run after every epoch (after the checkpoint is written).
        checkpoint_dir: folder for ``last.pt`` (``None``: no checkpoints).
        seed: seed of the shuffling and of the trainer's own random draws.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
        >>> trainer = AdversarialTrainer(model, optimizer, SAT(model, eps=4 / 255), progress=False)
        >>> history = trainer.fit(ShapesTextures(n=16, size=32), epochs=1, batch_size=8)
        >>> sorted(history[0])
        ['accuracy', 'epoch', 'loss', 'lr', 'time']
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        attack: Any = None,
        loss: str = "ce",
        *,
        alpha: float = 0.5,
        beta: float = 1.0,
        scheduler: Any = None,
        scheduler_step: str = "epoch",
        augment: Callable[[Tensor], Tensor] | None = None,
        augment_p: float = 1.0,
        attack_inputs: Mapping[str, str] | None = None,
        lpa3_ratio: float = 0.1,
        lpa3_warmup: int = 5,
        lpa3_weight: float = 1.0,
        lpa3_momentum: float = 0.01,
        lpa3_target: str = "pred",
        saliency_cache: str | None = None,
        eval_data: Dataset | DataLoader | None = None,
        eval_attacks: Mapping[str, Any] | None = None,
        progress: bool = True,
        amp: bool = False,
        callbacks: Sequence[Callback] = (),
        checkpoint_dir: str | os.PathLike | None = None,
        seed: int = 0,
    ) -> None:
        check_type(model, "model", nn.Module)
        check_type(optimizer, "optimizer", torch.optim.Optimizer)
        check_choice(loss, "loss", ("ce", "mixed", "trades"))
        if attack is not None and not callable(attack):
            raise TypeError(f"attack must be a torchattacks attack (callable), got {type(attack).__name__}")
        self.lpa3 = isinstance(attack, LPA3)
        if loss in ("mixed", "trades") and (attack is None or self.lpa3):
            raise ValueError(f"loss={loss!r} needs an adversarial attack (not None and not LPA3), got {attack!r}")
        if attack is not None and getattr(attack, "model", model) is not model:
            raise ValueError("attack must be built on the trained model (attack.model is another module)")
        check_in_range(alpha, "alpha", 0.0, 1.0)
        check_in_range(beta, "beta", 0.0, None)
        check_choice(scheduler_step, "scheduler_step", ("batch", "epoch"))
        if augment is not None and not callable(augment):
            raise TypeError(f"augment must be callable, got {type(augment).__name__}")
        check_in_range(augment_p, "augment_p", 0.0, 1.0)
        attack_inputs = dict(attack_inputs or {})
        if attack_inputs and attack is None:
            raise ValueError(f"attack_inputs={attack_inputs!r} given without an attack")
        check_in_range(lpa3_ratio, "lpa3_ratio", 0.0, 1.0, low_inclusive=False)
        check_positive_int(lpa3_warmup, "lpa3_warmup", allow_zero=True)
        check_in_range(lpa3_weight, "lpa3_weight", 0.0, None)
        check_in_range(lpa3_momentum, "lpa3_momentum", 0.0, 1.0, high_inclusive=False)
        check_choice(lpa3_target, "lpa3_target", ("pred", "label"))
        check_choice(saliency_cache, "saliency_cache", (None, "log_prob", "logit"))
        if saliency_cache is not None:
            if not isinstance(attack, _SATBase) or attack.saliency is not None or attack.saliency_scaling != "sign":
                raise ValueError(
                    f"saliency_cache={saliency_cache!r} needs a SAT, PGDSAT or TRADESSAT attack with the model's own "
                    f"gradient saliency (saliency=None, saliency_scaling='sign'), got {attack!r}"
                )
            if set(attack_inputs.values()) & {"masks", "boxes", "saliency_maps"}:
                raise ValueError(f"saliency_cache has nothing to cache with attack_inputs={attack_inputs!r}")
            if saliency_cache == "log_prob" and loss != "ce":
                raise ValueError(f"saliency_cache='log_prob' reads d CE / d x' of loss='ce'; with loss={loss!r} use "
                                 "saliency_cache='logit'")
        for name, callback in enumerate(callbacks):
            if not callable(callback):
                raise TypeError(f"callbacks[{name}] must be callable, got {type(callback).__name__}")
        if eval_attacks and eval_data is None:
            raise ValueError("eval_attacks needs eval_data")
        check_type(seed, "seed", int)
        self.model, self.optimizer, self.attack, self.loss = model, optimizer, attack, loss
        self.alpha, self.beta = float(alpha), float(beta)
        self.scheduler, self.scheduler_step = scheduler, scheduler_step
        self.augment, self.augment_p = augment, float(augment_p)
        self.attack_inputs = attack_inputs
        self.lpa3_ratio, self.lpa3_warmup, self.lpa3_weight = float(lpa3_ratio), lpa3_warmup, float(lpa3_weight)
        self.lpa3_momentum, self.lpa3_target = float(lpa3_momentum), lpa3_target
        self.saliency_cache = saliency_cache
        self.eval_data, self.eval_attacks = eval_data, dict(eval_attacks or {})
        self.progress, self.callbacks = progress, list(callbacks)
        self.checkpoint_dir = None if checkpoint_dir is None else Path(checkpoint_dir)
        self.seed = seed
        self.device = next(model.parameters()).device
        self.amp = bool(amp) and self.device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.generator = torch.Generator().manual_seed(seed)
        self.history: list[dict[str, float]] = []
        self.lpa3_memory: dict[str, Tensor] | None = None
        self.saliency_memory: dict[str, Tensor] | None = None
        self._warned_no_index = False
        self._threshold = float("inf")
        self._dataset_size = 0
        self.rank, self.world_size = _rank_and_world()
        self._net: nn.Module = model

    # ---------------------------------------------------------------------------------------------------- data
    def _loader(self, data: Dataset | DataLoader, batch_size: int) -> DataLoader:
        if isinstance(data, DataLoader):
            return data
        check_type(data, "data", Dataset)
        if self.world_size > 1:
            if batch_size % self.world_size:
                raise ValueError(f"batch_size must be divisible by the world size {self.world_size}, got {batch_size}")
            sampler = DistributedSampler(data, self.world_size, self.rank, shuffle=True, seed=self.seed)
            return DataLoader(data, batch_size=batch_size // self.world_size, sampler=sampler)
        return DataLoader(data, batch_size=batch_size, shuffle=True, generator=torch.Generator().manual_seed(self.seed))

    def _generators(self, loader: DataLoader) -> dict[str, torch.Generator | None]:
        sampler_generator = getattr(loader.sampler, "generator", None)
        return {
            "trainer": self.generator,
            "loader": loader.generator if isinstance(loader.generator, torch.Generator) else None,
            "sampler": sampler_generator if isinstance(sampler_generator, torch.Generator) else None,
            "attack": getattr(self.attack, "generator", None) if isinstance(
                getattr(self.attack, "generator", None), torch.Generator) else None,
        }

    # ------------------------------------------------------------------------------------------------ checkpoint
    def state_dict(
        self, epoch: int, loader: DataLoader, rng_ranks: Sequence[dict[str, Any]] | None = None
    ) -> dict[str, Any]:
        """Everything needed to resume after ``epoch`` epochs (tensors and plain Python values only).

        ``rng_ranks`` (distributed runs): every rank's RNG states, stored as ``rng_ranks`` next to this process's
        ``rng`` so that each rank resumes its own random streams.
        """
        state = {
            "format": CHECKPOINT_FORMAT,
            "epoch": epoch,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": _rng_state(self._generators(loader)),
            "lpa3": None if self.lpa3_memory is None else dict(self.lpa3_memory),
            "saliency": None if self.saliency_memory is None else dict(self.saliency_memory),
            "history": [dict(r) for r in self.history],
        }
        if rng_ranks is not None:
            state["rng_ranks"] = list(rng_ranks)
        return state

    def save_checkpoint(self, epoch: int, loader: DataLoader) -> Path | None:
        """Atomically write ``checkpoint_dir/last.pt`` (rank 0); the previous file stays until the new one is whole."""
        if self.checkpoint_dir is None:
            return None
        path = self.checkpoint_dir / CHECKPOINT_NAME
        rng_ranks = None
        if self.world_size > 1:  # every rank's random streams (attack draws, dropout, ...) go into rank 0's file
            rng_ranks = [None] * self.world_size
            dist.all_gather_object(rng_ranks, _rng_state(self._generators(loader)))
        if self.rank == 0:
            _atomic_save(self.state_dict(epoch, loader, rng_ranks), path)
        if self.world_size > 1:
            dist.barrier()
        return path

    def _restore(self, state: Mapping[str, Any], loader: DataLoader) -> int:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        ranks = state.get("rng_ranks")  # a distributed run resumed with the same world size: each rank its own streams
        rng = ranks[self.rank] if ranks is not None and len(ranks) == self.world_size else state["rng"]
        _set_rng_state(rng, self._generators(loader))
        self.lpa3_memory = None if state["lpa3"] is None else {k: v.to(self.device) for k, v in state["lpa3"].items()}
        saliency = state.get("saliency")  # absent from checkpoints written before the cache existed
        self.saliency_memory = None if saliency is None else {k: v.to(self.device) for k, v in saliency.items()}
        self.history = [dict(r) for r in state["history"]]
        return int(state["epoch"])

    # -------------------------------------------------------------------------------------------------- pieces
    def _attack_call(self, images: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
        with _modes_kept(self.model):
            return self.attack(images, labels, **kwargs).detach()

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

    def _lpa3_update(self, index: Tensor, logits: Tensor, size: int) -> Tensor:
        """Update the instability memory with this batch; return which samples are selected for LP-A3."""
        probs = logits.detach().float().softmax(1)
        if self.lpa3_memory is None:
            classes = probs.shape[1]
            self.lpa3_memory = {
                "instability": torch.zeros(size, device=self.device),
                "probs": torch.full((size, classes), 1.0 / classes, device=self.device),
            }
        memory = self.lpa3_memory
        selected = memory["instability"][index] >= self._threshold
        change = AF.prediction_instability(probs, memory["probs"][index])
        index_all, change_all, probs_all = self._gather(index), self._gather(change), self._gather(probs)
        memory["instability"][index_all] = AF.ema_update(memory["instability"][index_all], change_all,
                                                         self.lpa3_momentum)
        memory["probs"][index_all] = probs_all
        return selected

    def _cache_index(self, info: Mapping[str, Any]) -> Tensor | None:
        """Sample indices of the batch when the saliency cache applies to it, else ``None``."""
        if not self.saliency_cache or self.attack.targeted:  # targeted steps need the target class's saliency
            return None
        if "index" not in info:
            if not self._warned_no_index:
                warnings.warn("saliency_cache is on but the batches carry no info['index']: the saliency is computed "
                              "on the fly (slower); pass saliency_cache=None to silence this", stacklevel=3)
                self._warned_no_index = True
            return None
        index = torch.as_tensor(info["index"], device=self.device)
        if self._dataset_size and int(index.max()) >= self._dataset_size:
            raise ValueError(f"info['index'] must lie in [0, {self._dataset_size - 1}], got {int(index.max())}")
        return index

    def _cached_saliency(self, index: Tensor, images: Tensor) -> Tensor | None:
        if self.attack.p == 0:  # p_0 = 0: every element takes a random sign, no map is read (labels: checked by CE)
            return torch.zeros_like(images)
        memory = self.saliency_memory
        if memory is None or not bool(memory["valid"][index].all()):
            return None  # a sample not seen yet (first epochs, or a resumed run without a cache): on the fly
        return memory["maps"][index].float()

    def _store_saliency(self, index: Tensor, gradient: Tensor) -> None:
        """Write sign(gradient) of this batch (all ranks' batches under DDP) into the saliency cache."""
        signs = gradient.detach().nan_to_num(0.0).sign().to(torch.int8)  # AMP overflow steps: no NaN in the cache
        index_all, signs_all = self._gather(index), self._gather(signs)
        size = max(self._dataset_size, int(index_all.max()) + 1)
        memory = self.saliency_memory
        if memory is None or memory["valid"].shape[0] < size:  # first write, or train_step called outside fit
            grown = {"maps": torch.zeros((size, *signs.shape[1:]), dtype=torch.int8, device=self.device),
                     "valid": torch.zeros(size, dtype=torch.bool, device=self.device)}
            if memory is not None:
                for key, value in memory.items():
                    grown[key][: value.shape[0]] = value
            self.saliency_memory = grown
        self.saliency_memory["maps"][index_all] = signs_all
        self.saliency_memory["valid"][index_all] = True

    def train_step(self, images: Tensor, labels: Tensor, info: Mapping[str, Any], epoch: int) -> tuple[Tensor, Tensor]:
        """One optimization step on a batch; returns the loss (detached) and the logits used for accuracy."""
        apply = self.augment is not None and (
            self.augment_p >= 1 or bool(torch.rand((), generator=self.generator) < self.augment_p)
        )
        if apply:
            with torch.no_grad():
                images = self.augment(images)
        kwargs = {}
        for key, argument in self.attack_inputs.items():
            if key not in info:
                raise ValueError(f"attack_inputs needs info[{key!r}] in every batch; the batch info has {sorted(info)}")
            kwargs[argument] = info[key].to(self.device)
        cache_index = self._cache_index(info)
        if cache_index is not None:
            cached = self._cached_saliency(cache_index, images)
            if cached is not None:
                kwargs["saliency_maps"] = cached
        adv = None
        if self.attack is not None and not self.lpa3:
            adv = self._attack_call(images, labels, **kwargs)
        net = self._net
        # the cache is refreshed at x' ("ce"), or at the clean images the loss also sees ("mixed", "trades")
        source = None
        if cache_index is not None:
            if self.loss == "ce":
                adv = source = adv.requires_grad_(True)
            else:
                images = source = images.detach().requires_grad_(True)
        with self._autocast():
            if self.loss == "ce":
                logits = net(images if adv is None else adv)
                loss = F.cross_entropy(logits, labels)
            else:
                logits, adv_logits = net(images), net(adv)
                clean = F.cross_entropy(logits, labels)
                if self.loss == "mixed":
                    loss = self.alpha * clean + (1 - self.alpha) * F.cross_entropy(adv_logits, labels)
                else:
                    kl = F.kl_div(F.log_softmax(adv_logits, 1), F.softmax(logits, 1), reduction="batchmean")
                    loss = clean + self.beta * kl
            if self.lpa3:
                if "index" not in info:
                    raise ValueError("LP-A3 needs the sample index in the batch info: info['index']")
                index = torch.as_tensor(info["index"], device=self.device)
                selected = self._lpa3_update(index, logits, self._dataset_size)
                count = int(selected.sum())
                if count == 1:  # training-mode BatchNorm cannot normalize one sample: such a batch adds no LP-A3 term
                    count = 0 if any(isinstance(m, _BatchNorm) and m.training for m in self.model.modules()) else 1
                if self._all_ranks(epoch >= self.lpa3_warmup and count > 0):
                    targets = (logits.detach().argmax(1) if self.lpa3_target == "pred" else labels)[selected]
                    augmented = self._attack_call(images[selected], targets, **kwargs)
                    loss = loss + self.lpa3_weight * F.cross_entropy(net(augmented), targets)
        if source is not None and self.saliency_cache == "logit":  # one input-only backward on the retained graph
            score = self.scaler.scale(logits.gather(1, labels[:, None]).sum())  # scaled: no fp16 underflow
            self._store_saliency(cache_index, torch.autograd.grad(score, source, retain_graph=True)[0])
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if source is not None and self.saliency_cache == "log_prob":  # d CE / d x' came with the weight gradients
            self._store_saliency(cache_index, -source.grad)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if self.scheduler is not None and self.scheduler_step == "batch":
            self.scheduler.step()
        return loss.detach(), logits.detach()

    def evaluate(self) -> dict[str, float]:
        """Accuracy (and robust accuracies) on ``eval_data``; the model's modes are restored."""
        from ..metrics.robust_accuracy import robust_accuracy

        result = robust_accuracy(self.model, self.eval_data, self.eval_attacks)
        record = {"eval_accuracy": result.pop("clean")}
        record.update({f"robust/{name}": value for name, value in result.items()})
        return record

    # ----------------------------------------------------------------------------------------------------- fit
    def fit(
        self, data: Dataset | DataLoader, epochs: int, batch_size: int = 64, resume: bool | str | os.PathLike = False
    ) -> list[dict[str, float]]:
        """Train for ``epochs`` epochs in total (a resumed run continues up to ``epochs``); return the history.

        Args:
            data: Dataset or DataLoader of ``(image, label[, info])`` items.
            epochs: total number of epochs.
            batch_size: (global) batch size when ``data`` is a Dataset.
            resume: ``True`` to continue from ``checkpoint_dir/last.pt`` when it exists, or a checkpoint path.

        Returns:
            One record per epoch: ``epoch``, ``loss``, ``accuracy`` (running training accuracy on the inputs of the
            first loss term), ``lr``, ``time`` (s), and with ``eval_data`` ``eval_accuracy`` and ``robust/<name>``.
        """
        check_positive_int(epochs, "epochs")
        check_positive_int(batch_size, "batch_size")
        loader = self._loader(data, batch_size)
        self._dataset_size = len(loader.dataset)
        if self.world_size > 1 and self._net is self.model:
            self._net = nn.parallel.DistributedDataParallel(self.model)
        start = 0
        if resume:
            if resume is True:
                path = None if self.checkpoint_dir is None else self.checkpoint_dir / CHECKPOINT_NAME
                if path is None:
                    raise ValueError("resume=True needs checkpoint_dir")
            else:
                path = Path(resume)
            if path.exists() or resume is not True:
                start = self._restore(load_checkpoint(path), loader)
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
        if self.lpa3 and self.lpa3_memory is not None:
            self._threshold = AF.selection_threshold(self.lpa3_memory["instability"], self.lpa3_ratio)
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


class SATTrainer(AdversarialTrainer):
    """Preset: SAT, PGD-SAT or TRADES-SAT training (Mangla et al. 2020, arXiv:2006.07828).

    .. math::

        \\text{SAT / PGD-SAT: } J(x', y), \\qquad \\text{TRADES-SAT: } J(x, y) + \\beta\\,\\mathrm{KL}(p(x) \\|
        p(x'))

    with :math:`x'` from :class:`~captum_wsam.attacks.SAT`, :class:`~captum_wsam.attacks.PGDSAT` or
    :class:`~captum_wsam.attacks.TRADESSAT`, whose :math:`p_t = 1 - a^{t/10}` follows the epoch.

    Saliency cache (the default with the model's own gradient saliency): SAT takes one saliency map per sample as
    given ("s is given to us in the form of a saliency map"), so the model acts as its own teacher with maps one
    epoch old: the map used at epoch :math:`t` was taken in the training step of the same sample at epoch
    :math:`t - 1`. For SAT and PGD-SAT (``saliency_cache="log_prob"``) it is
    :math:`\\operatorname{sign} \\nabla_{x'} \\log p(y|x')`, which the training backward delivers with the weight
    gradients (:math:`-\\nabla_{x'} J`; :math:`x'` is within :math:`\\epsilon` of :math:`x`): a step costs no extra
    pass. For TRADES-SAT (``"logit"``) it is the paper's :math:`\\operatorname{sign} \\nabla_x f_y(x)` at the clean
    image, from one input-only backward on the retained graph. BatchNorm is in training mode in both. Epoch 0 needs
    no map (:math:`p_0 = 0`). ``saliency_cache=None`` computes :math:`\\nabla_x f_y(x)` of the current model on the
    fly in every step (one more forward and backward, evaluation-mode BatchNorm). The cache assumes that a sample's
    image stays aligned from one epoch to the next: with random crops or flips in the Dataset, a map would be applied
    to a moved image, so use ``saliency_cache=None`` there (photometric augmentation, such as ``augment=StyleAugment``,
    is fine).

    Args:
        model: classifier.
        optimizer: optimizer over ``model``'s parameters.
        variant: ``"sat"``, ``"pgd"`` (PGD-SAT) or ``"trades"`` (TRADES-SAT).
        eps: :math:`\\epsilon` (default 8/255).
        weak_saliency: ``None`` (saliency from ``saliency``/the model), ``"mask"`` or ``"box"`` (from the batch's
            ``info``, as ShapesTextures provides).
        saliency: Captum attribution on a teacher (see :class:`~captum_wsam.attacks.SAT`).
        saliency_scaling: ``"sign"`` or ``"minmax"``.
        saliency_cache: ``"auto"`` (default): ``"log_prob"`` for SAT and PGD-SAT, ``"logit"`` for TRADES-SAT when
            the saliency is the model's own gradient (no ``weak_saliency``, no ``saliency``, ``"sign"`` scaling),
            else ``None``; or ``"log_prob"``, ``"logit"``, ``None`` (see above and :class:`AdversarialTrainer`).
        a: schedule base.
        sat_prob: probability of the SAT branch for PGD-SAT/TRADES-SAT.
        steps: PGD steps of PGD-SAT/TRADES-SAT.
        beta: TRADES weight.
        generator: optional CPU generator of the attack's random draws.
        **kwargs: further :class:`AdversarialTrainer` arguments.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> trainer = SATTrainer(model, torch.optim.SGD(model.parameters(), lr=0.05), weak_saliency="mask",
        ...                      progress=False)
        >>> len(trainer.fit(ShapesTextures(n=16, size=32), epochs=1, batch_size=8))
        1
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        variant: str = "sat",
        *,
        eps: float = 8 / 255,
        weak_saliency: str | None = None,
        saliency: Any = None,
        saliency_scaling: str = "sign",
        saliency_cache: str | None = "auto",
        a: float = 0.6,
        sat_prob: float = 0.5,
        steps: int = 5,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        check_choice(variant, "variant", ("sat", "pgd", "trades"))
        check_choice(weak_saliency, "weak_saliency", (None, "mask", "box"))
        if saliency_cache == "auto":
            own = weak_saliency is None and saliency is None and saliency_scaling == "sign"
            saliency_cache = None if not own else "logit" if variant == "trades" else "log_prob"
        common = {"eps": eps, "a": a, "saliency": saliency, "saliency_scaling": saliency_scaling,
                  "generator": generator}
        if variant == "sat":
            attack = SAT(model, **common)
        elif variant == "pgd":
            attack = PGDSAT(model, steps=steps, sat_prob=sat_prob, **common)
        else:
            attack = TRADESSAT(model, steps=steps, sat_prob=sat_prob, **common)
        inputs = {} if weak_saliency is None else {weak_saliency: "masks" if weak_saliency == "mask" else "boxes"}
        super().__init__(model, optimizer, attack, "trades" if variant == "trades" else "ce", beta=beta,
                         attack_inputs=inputs, saliency_cache=saliency_cache, **kwargs)


class LPA3Trainer(AdversarialTrainer):
    """Preset: LP-A3 training (Yang et al. 2022, arXiv:2211.00824).

    .. math:: \\mathcal{L} = J(x, y) + [t \\ge t_w] \\, w \\, J(x'_S, \\hat y_S)

    where :math:`S` holds the ``ratio`` most unstable samples (EMA of the KL change of their predicted
    distributions between visits, threshold recomputed each epoch), :math:`\\hat y` the model's predictions and
    :math:`x'` the :class:`~captum_wsam.attacks.LPA3` augmentation preserving :math:`\\hat y`.

    Args:
        model: classifier.
        optimizer: optimizer over ``model``'s parameters.
        bound: label-preservation bound :math:`b`.
        lam: Lagrange multiplier :math:`\\lambda`.
        steps: fast-Lagrangian steps.
        layers: feature layers of :math:`\\phi` (default: the model's 4-D children).
        ratio: selected fraction.
        warmup: epochs before the LP-A3 loss starts.
        weight: :math:`w`.
        momentum: EMA momentum of the instability memory.
        target: labels the augmentation preserves and trains on: ``"pred"`` (:math:`\\hat y`, the official code,
            which runs inside semi-supervised methods) or ``"label"`` (:math:`y`). With labels at hand, ``"label"``
            did better in the README's reproduction (60 % label noise: above standard training for 3 seeds, where
            ``"pred"`` fell below it).
        generator: optional CPU generator of the attack's random start.
        **kwargs: further :class:`AdversarialTrainer` arguments.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> trainer = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05), warmup=1, ratio=0.5,
        ...                       progress=False)
        >>> len(trainer.fit(ShapesTextures(n=16, size=32), epochs=2, batch_size=8))
        2
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        bound: float = 0.1,
        lam: float = 0.1,
        steps: int = 5,
        layers: Sequence[nn.Module] | None = None,
        ratio: float = 0.1,
        warmup: int = 5,
        weight: float = 1.0,
        momentum: float = 0.01,
        target: str = "pred",
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        attack = LPA3(model, layers=layers, bound=bound, lam=lam, steps=steps, generator=generator)
        super().__init__(model, optimizer, attack, "ce", lpa3_ratio=ratio, lpa3_warmup=warmup, lpa3_weight=weight,
                         lpa3_momentum=momentum, lpa3_target=target, **kwargs)


__all__ = ["AdversarialTrainer", "CheckpointError", "LPA3Trainer", "SATTrainer", "load_checkpoint"]
