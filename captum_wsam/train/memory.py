"""Per-sample state of a training method, kept between epochs: LP-A3's selection memory and SAT's saliency cache.

Each is a small object the loop calls (``start_epoch``, ``update``/``store``, ``read``) and checkpoints
(``state_dict`` / ``validate_state`` / ``load_state_dict``); the maths is in :mod:`captum_wsam.train.functional`. A
new method adds its own object through :meth:`AdversarialTrainer.sample_memories
<captum_wsam.train.AdversarialTrainer.sample_memories>`: anything with these four methods is checkpointed and
validated against the data set size on resume.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

from . import functional as TF

Gather = Callable[[Tensor], Tensor]


def _identity(tensor: Tensor) -> Tensor:
    return tensor


@runtime_checkable
class SampleMemory(Protocol):
    """What the loop needs from a per-sample state: checkpointing with validation before anything is changed."""

    def state_dict(self) -> dict[str, Tensor] | None: ...

    def validate_state(self, state: Any, dataset_size: int) -> None: ...

    def load_state_dict(self, state: Mapping[str, Tensor] | None, device: torch.device) -> None: ...


def _check_state(state: Any, keys: tuple[str, ...], rows: int, what: str) -> None:
    """Raise ``ValueError`` unless ``state`` is ``{key: finite tensor with rows rows}`` for exactly ``keys``."""
    if not isinstance(state, Mapping) or set(state) != set(keys):
        found = sorted(state) if isinstance(state, Mapping) else type(state).__name__
        raise ValueError(f"{what} must hold the tensors {list(keys)}, got {found}")
    for key in keys:
        value = state[key]
        if not isinstance(value, Tensor):
            raise ValueError(f"{what}[{key!r}] must be a tensor, got {type(value).__name__}")
        if value.dim() == 0 or value.shape[0] != rows:
            found = value.shape[0] if value.dim() else "no"
            raise ValueError(f"{what}[{key!r}] has {found} rows for a data set of {rows} samples; "
                             "resume on the data set the checkpoint was written with")
        if value.is_floating_point() and not bool(torch.isfinite(value).all()):
            raise ValueError(f"{what}[{key!r}] holds non-finite values")


class SelectionMemory:
    """LP-A3's per-sample selection memory (Yang et al. 2022, arXiv:2211.00824; official ``fixmatch_LPA3.py``).

    .. math::

        \\Delta_i \\leftarrow \\mu \\Delta_i + (1 - \\mu) \\mathrm{KL}(p_t(x_i) \\| p_{t-1}(x_i)), \\qquad
        S_t = \\{ i : \\Delta_i > \\tau_t \\}

    with :math:`\\tau_t` from :func:`~captum_wsam.train.functional.instability_threshold` at the start of every
    epoch after the first; in the first epoch every sample is selected (the official ``threshold = 1`` above every
    stored value). The selection of a batch is read before the batch updates the memory, as in the official loop.

    Args:
        ratio: selected fraction :math:`r \\in (0, 1]`.
        momentum: :math:`\\mu \\in [0, 1)` (0.01 as in the official code).

    Examples:
        >>> memory = SelectionMemory(ratio=0.5, momentum=0.01)
        >>> probs = torch.tensor([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.6, 0.4]])
        >>> memory.update(torch.arange(4), probs, size=4).tolist()  # first epoch: all selected
        [True, True, True, True]
        >>> memory.start_epoch()
        >>> memory.update(torch.arange(4), probs.flip(1), size=4).tolist()  # N - int((1 - r) N) - 1 = 1 sample
        [True, False, False, False]
    """

    def __init__(self, ratio: float, momentum: float) -> None:
        self.ratio, self.momentum = float(ratio), float(momentum)
        self.instability: Tensor | None = None
        self.probs: Tensor | None = None
        self.threshold = float("-inf")

    def start_epoch(self) -> None:
        """Recompute :math:`\\tau` from the memory (no memory yet: select every sample)."""
        if self.instability is not None:
            self.threshold = TF.instability_threshold(self.instability, self.ratio)

    def update(self, index: Tensor, probs: Tensor, size: int, gather: Gather = _identity) -> Tensor:
        """Return which samples of the batch are selected, then update their memories (all ranks' via ``gather``).

        Args:
            index: :math:`(B,)` sample indices in the data set.
            probs: :math:`(B, K)` current predicted probabilities.
            size: data set size :math:`N` (the memory is created on the first call).
            gather: concatenates a tensor over the ranks (identity in one process).

        Returns:
            :math:`(B,)` boolean selection.
        """
        probs = probs.detach().to(torch.promote_types(probs.dtype, torch.float32))  # half -> float32, float64 kept
        if self.instability is None or self.probs is None:
            classes = probs.shape[1]
            self.instability = torch.zeros(size, device=probs.device, dtype=probs.dtype)
            self.probs = torch.full((size, classes), 1.0 / classes, device=probs.device, dtype=probs.dtype)
        if int(index.max()) >= self.instability.shape[0] or int(index.min()) < 0:
            raise ValueError(f"info['index'] must lie in [0, {self.instability.shape[0] - 1}], got "
                             f"{int(index.max()) if int(index.max()) >= 0 else int(index.min())}")
        selected = self.instability[index] > self.threshold
        change = TF.prediction_instability(probs, self.probs[index])
        index_all, change_all, probs_all = gather(index), gather(change), gather(probs)
        self.instability[index_all] = TF.ema_update(self.instability[index_all], change_all, self.momentum)
        self.probs[index_all] = probs_all
        return selected

    def state_dict(self) -> dict[str, Tensor] | None:
        """``{"instability": (N,), "probs": (N, K)}`` or ``None`` before the first update."""
        if self.instability is None or self.probs is None:
            return None
        return {"instability": self.instability, "probs": self.probs}

    def validate_state(self, state: Any, dataset_size: int) -> None:
        """Raise ``ValueError`` unless ``state`` fits a data set of ``dataset_size`` samples (``None`` is valid)."""
        if state is not None:
            _check_state(state, ("instability", "probs"), dataset_size, "the LP-A3 memory")
            if state["probs"].dim() != 2:
                raise ValueError(f"the LP-A3 memory['probs'] must be (N, K), got {tuple(state['probs'].shape)}")

    def load_state_dict(self, state: Mapping[str, Tensor] | None, device: torch.device) -> None:
        """Replace the memory by ``state`` (validated before with :meth:`validate_state`)."""
        self.instability = None if state is None else state["instability"].to(device).clone()
        self.probs = None if state is None else state["probs"].to(device).clone()


class SaliencyCache:
    """SAT's per-sample sign-saliency maps, one epoch old (see :class:`~captum_wsam.train.SATTrainer`).

    .. math:: s_i \\leftarrow \\operatorname{sign} g_i \\in \\{-1, 0, 1\\}^{C \\times H \\times W} \\text{ (int8)}

    where :math:`g_i` is the gradient the training step of sample :math:`i` delivered (``"log_prob"`` or
    ``"logit"``, see :class:`~captum_wsam.train.AdversarialTrainer`).

    Args:
        mode: ``"log_prob"`` or ``"logit"``.

    Examples:
        >>> cache = SaliencyCache("logit")
        >>> cache.store(torch.tensor([1]), torch.tensor([[[[0.5, -2.0]]]]), size=3)
        >>> cache.read(torch.tensor([1])).tolist(), cache.read(torch.tensor([0, 1])) is None
        ([[[[1.0, -1.0]]]], True)
    """

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.maps: Tensor | None = None
        self.valid: Tensor | None = None

    def read(self, index: Tensor) -> Tensor | None:
        """The cached maps of ``index`` as float, or ``None`` when one of them was never stored."""
        if self.maps is None or self.valid is None or not bool(self.valid[index].all()):
            return None
        return self.maps[index].float()

    def store(self, index: Tensor, gradient: Tensor, size: int = 0, gather: Gather = _identity) -> None:
        """Write ``sign(gradient)`` of the batch (all ranks' via ``gather``); the cache grows to the largest index."""
        signs = gradient.detach().nan_to_num(0.0).sign().to(torch.int8)  # AMP overflow steps: no NaN in the cache
        index_all, signs_all = gather(index), gather(signs)
        rows = max(size, int(index_all.max()) + 1)
        if self.maps is None or self.valid is None or self.valid.shape[0] < rows:
            maps = torch.zeros((rows, *signs.shape[1:]), dtype=torch.int8, device=signs.device)
            valid = torch.zeros(rows, dtype=torch.bool, device=signs.device)
            if self.maps is not None and self.valid is not None:
                maps[: self.maps.shape[0]], valid[: self.valid.shape[0]] = self.maps, self.valid
            self.maps, self.valid = maps, valid
        self.maps[index_all] = signs_all
        self.valid[index_all] = True

    def state_dict(self) -> dict[str, Tensor] | None:
        """``{"maps": int8 (N, C, H, W), "valid": bool (N,)}`` or ``None`` before the first store."""
        if self.maps is None or self.valid is None:
            return None
        return {"maps": self.maps, "valid": self.valid}

    def validate_state(self, state: Any, dataset_size: int) -> None:
        """Raise ``ValueError`` unless ``state`` fits a data set of ``dataset_size`` samples (``None`` is valid)."""
        if state is not None:
            _check_state(state, ("maps", "valid"), dataset_size, "the SAT saliency cache")
            if state["maps"].dtype != torch.int8 or state["valid"].dtype != torch.bool:
                raise ValueError(f"the SAT saliency cache must hold int8 maps and a bool mask, got "
                                 f"{state['maps'].dtype} and {state['valid'].dtype}")

    def load_state_dict(self, state: Mapping[str, Tensor] | None, device: torch.device) -> None:
        """Replace the cache by ``state`` (validated before with :meth:`validate_state`)."""
        self.maps = None if state is None else state["maps"].to(device).clone()
        self.valid = None if state is None else state["valid"].to(device).clone()


__all__ = ["SaliencyCache", "SampleMemory", "SelectionMemory"]
