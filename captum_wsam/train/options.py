"""The training loop's configuration: argument checks (raised before any work) and the state they set up.

:class:`TrainerOptions` is the constructor of :class:`~captum_wsam.train.AdversarialTrainer` (its arguments are
documented there) and the small helpers that only read the configuration: which attack keywords a batch provides,
and when the SAT saliency cache applies.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from .._checks import check_choice, check_in_range, check_type
from ..attacks import LPA3
from ..attacks.sat import _SATBase
from ..data.batches import as_loader
from .memory import SaliencyCache, SelectionMemory


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class TrainerOptions:
    """Constructor and configuration of :class:`~captum_wsam.train.AdversarialTrainer` (see its Args)."""

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
        lpa3_confidence: float = 0.9,
        saliency_cache: str | None = None,
        eval_data: Dataset | DataLoader | None = None,
        eval_attacks: Mapping[str, Any] | None = None,
        progress: bool = True,
        amp: bool = False,
        callbacks: Sequence[Callable[..., None]] = (),
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
        check_type(lpa3_warmup, "lpa3_warmup", int)
        if isinstance(lpa3_warmup, bool) or lpa3_warmup < -1:
            raise ValueError(f"lpa3_warmup must be an integer >= -1, got {lpa3_warmup!r}")
        check_in_range(lpa3_weight, "lpa3_weight", 0.0, None)
        check_in_range(lpa3_momentum, "lpa3_momentum", 0.0, 1.0, high_inclusive=False)
        check_choice(lpa3_target, "lpa3_target", ("pred", "label"))
        check_in_range(lpa3_confidence, "lpa3_confidence", 0.0, 1.0)
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
        self.lpa3_confidence = float(lpa3_confidence)
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
        #: LP-A3's selection memory (``None`` without an LP-A3 attack)
        self.selection = SelectionMemory(lpa3_ratio, lpa3_momentum) if self.lpa3 else None
        #: SAT's saliency cache (``None`` without ``saliency_cache``)
        self.saliency_maps = SaliencyCache(saliency_cache) if saliency_cache is not None else None
        self.rank, self.world_size = _rank_and_world()
        self._warned_no_index = False
        self._dataset_size = 0
        self._saliency_source: Tensor | None = None
        self._cache_index_of_step: Tensor | None = None
        self._net: nn.Module = model

    @property
    def lpa3_memory(self) -> dict[str, Tensor] | None:
        """LP-A3's memories ``{"instability": (N,), "probs": (N, K)}`` (``None`` before the first LP-A3 step)."""
        return None if self.selection is None else self.selection.state_dict()

    @property
    def saliency_memory(self) -> dict[str, Tensor] | None:
        """The SAT saliency cache ``{"maps": int8 (N, C, H, W), "valid": bool (N,)}`` (``None`` when empty)."""
        return None if self.saliency_maps is None else self.saliency_maps.state_dict()

    def _loader(self, data: Dataset | DataLoader, batch_size: int) -> DataLoader:
        if self.world_size > 1 and not isinstance(data, DataLoader):
            if not isinstance(data, Dataset):
                raise TypeError(f"data must be a torch Dataset or DataLoader, got {type(data).__name__}")
            if batch_size % self.world_size:
                raise ValueError(f"batch_size must be divisible by the world size {self.world_size}, got {batch_size}")
            sampler = DistributedSampler(data, self.world_size, self.rank, shuffle=True, seed=self.seed)
            return DataLoader(data, batch_size=batch_size // self.world_size, sampler=sampler)
        return as_loader(data, batch_size, shuffle=True, seed=self.seed)

    def _attack_kwargs(self, info: Mapping[str, Any]) -> dict[str, Any]:
        kwargs = {}
        for key, argument in self.attack_inputs.items():
            if key not in info:
                raise ValueError(f"attack_inputs needs info[{key!r}] in every batch; the batch info has {sorted(info)}")
            kwargs[argument] = info[key].to(self.device)
        return kwargs

    def _cache_index(self, info: Mapping[str, Any]) -> Tensor | None:
        """Sample indices of the batch when the saliency cache applies to it, else ``None``."""
        if not self.saliency_cache or self.attack.targeted:  # targeted steps need the target class's saliency
            return None
        if "index" not in info:
            if not self._warned_no_index:
                warnings.warn("saliency_cache is on but the batches carry no info['index']: the saliency is computed "
                              "on the fly (slower); pass saliency_cache=None to silence this", stacklevel=4)
                self._warned_no_index = True
            return None
        index = torch.as_tensor(info["index"], device=self.device)
        if self._dataset_size and int(index.max()) >= self._dataset_size:
            raise ValueError(f"info['index'] must lie in [0, {self._dataset_size - 1}], got {int(index.max())}")
        return index

    def _cached_saliency(self, index: Tensor, images: Tensor) -> Tensor | None:
        if self.attack.p == 0:  # p_0 = 0: every element takes a random sign, no map is read (labels: checked by CE)
            return torch.zeros_like(images)
        return self.saliency_maps.read(index)


__all__ = ["TrainerOptions"]
