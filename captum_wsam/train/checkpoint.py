"""Checkpoints of the training loop: atomic save, whole validation before anything is restored, RNG states.

A checkpoint (``last.pt``) holds the model, optimizer, scheduler, AMP scaler, RNG states (torch, CUDA, NumPy, Python
and the trainer's, loader's, sampler's and attack's generators), every per-sample memory of the method, the data set
size and the history. :func:`save_atomic` writes it to a temporary file in the same folder, ``fsync`` s it and
renames it over the previous one; :func:`validate_checkpoint` checks every part against the trainer it is going to be
loaded into and raises :class:`CheckpointError` naming the part and the file before anything is changed.

.. math:: \\text{resume}(\\text{save}(\\theta_t, \\text{RNG}_t, m_t)) = (\\theta_t, \\text{RNG}_t, m_t)
          \\text{ bitwise}
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .memory import SampleMemory

CHECKPOINT_FORMAT = "captum_wsam.AdversarialTrainer/1"
CHECKPOINT_NAME = "last.pt"
REQUIRED_KEYS = ("format", "epoch", "model", "optimizer", "scheduler", "scaler", "rng", "lpa3", "history")
_TEMP_MARK = ".tmp-"


class CheckpointError(RuntimeError):
    """A checkpoint file is corrupt, partial, of another format, or does not fit the trainer it is loaded into.

    Attributes:
        part: the part that failed (``"file"``, ``"model"``, ``"optimizer"``, ``"rng"``, a memory name, ...).
        path: the checkpoint file.
    """

    def __init__(self, message: str, part: str = "file", path: str | os.PathLike | None = None) -> None:
        super().__init__(message)
        self.part, self.path = part, None if path is None else Path(path)


def _temp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_TEMP_MARK}{os.getpid()}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def clean_stale_temp_files(path: str | os.PathLike) -> list[Path]:
    """Delete temporary files that an interrupted :func:`save_atomic` of ``path`` left behind; return them.

    A temporary file is stale when the process that wrote it (its name ends with the writer's process id) is this
    process or no longer runs.
    """
    path = Path(path)
    removed = []
    if not path.parent.is_dir():
        return removed
    for candidate in path.parent.glob(f".{path.name}{_TEMP_MARK}*"):
        pid = candidate.name.rsplit(_TEMP_MARK, 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid() or not _pid_alive(int(pid)):
            candidate.unlink(missing_ok=True)
            removed.append(candidate)
    return removed


def save_atomic(obj: Any, path: str | os.PathLike) -> None:
    """Write ``obj`` to a temporary file next to ``path``, flush it to disk, then rename it over ``path``.

    The previous file stays whole until the new one is complete; the temporary file is removed on any failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_path(path)
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
    """Read a training checkpoint with ``torch.load(..., weights_only=True)`` and check its format and keys.

    Args:
        path: the checkpoint file.

    Returns:
        The checkpoint dict (``epoch``, ``model``, ``optimizer``, ``scheduler``, ``scaler``, ``rng``, ``lpa3``,
        ``saliency`` (absent in checkpoints written before the SAT saliency cache existed), ``dataset_size`` (absent
        in older ones), ``history``; and from distributed runs ``rng_ranks``, every rank's RNG states).

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
        captum_wsam.train.checkpoint.CheckpointError: checkpoint .../bad.pt is corrupt or partial ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file {str(path)!r} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip, bad pickle, ...: one clear error for every cause
        raise CheckpointError(
            f"checkpoint {path} is corrupt or partial and cannot be read ({type(error).__name__}: {error}); "
            "it was left in place: delete it to fall back to training from scratch", "file", path
        ) from error
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} is not a {CHECKPOINT_FORMAT} checkpoint (found {found!r})", "format",
                              path)
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is partial: missing {missing}", "file", path)
    return state


# --------------------------------------------------------------------------------------------------------------- RNG
def rng_state(generators: Mapping[str, torch.Generator | None]) -> dict[str, Any]:
    """Every random state a training run draws from: torch, CUDA, NumPy, Python and the named ``generators``."""
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


def _numpy_state(entry: Any) -> tuple[Any, ...]:
    name, keys, *rest = entry
    return (name, keys.numpy().astype(np.uint32), *rest)


def validate_rng_state(state: Any, generators: Mapping[str, torch.Generator | None]) -> None:
    """Raise ``ValueError`` unless every entry of ``state`` can be set, trying each on a throw-away generator."""
    if not isinstance(state, Mapping) or not {"torch", "numpy", "python", "generators"} <= set(state):
        raise ValueError(f"needs torch, numpy, python and generators entries, got {type(state).__name__}")
    try:
        torch.Generator().set_state(state["torch"])
        np.random.RandomState().set_state(_numpy_state(state["numpy"]))
        version, internal, gauss = state["python"]
        random.Random().setstate((version, tuple(internal), gauss))
        for key, value in state["generators"].items():
            generator = generators.get(key)
            if generator is not None:
                torch.Generator(generator.device).set_state(value)
    except Exception as error:
        raise ValueError(f"malformed ({type(error).__name__}: {error})") from error


def set_rng_state(state: Mapping[str, Any], generators: Mapping[str, torch.Generator | None]) -> None:
    """Restore what :func:`rng_state` returned (validate it first with :func:`validate_rng_state`)."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(_numpy_state(state["numpy"]))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    for key, value in state["generators"].items():
        generator = generators.get(key)
        if generator is not None:
            generator.set_state(value)
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# -------------------------------------------------------------------------------------------------------- validation
def _check_model(saved: Any, model: nn.Module) -> None:
    if not isinstance(saved, Mapping):
        raise ValueError(f"must be a state_dict, got {type(saved).__name__}")
    current = model.state_dict()
    missing, unexpected = sorted(set(current) - set(saved)), sorted(set(saved) - set(current))
    if missing or unexpected:
        raise ValueError(f"keys differ from the model's: missing {missing[:5]}, unexpected {unexpected[:5]}")
    for key, value in current.items():
        other = saved[key]
        if not isinstance(other, torch.Tensor) or other.shape != value.shape:
            shape = tuple(other.shape) if isinstance(other, torch.Tensor) else type(other).__name__
            raise ValueError(f"{key!r} has shape {shape}, the model's {tuple(value.shape)}")
        if other.is_floating_point() and not bool(torch.isfinite(other).all()):
            raise ValueError(f"{key!r} holds non-finite values")


def _check_optimizer(saved: Any, optimizer: torch.optim.Optimizer) -> None:
    if not isinstance(saved, Mapping) or not {"state", "param_groups"} <= set(saved):
        raise ValueError("must be an optimizer state_dict with 'state' and 'param_groups'")
    groups = optimizer.param_groups
    if len(saved["param_groups"]) != len(groups):
        raise ValueError(f"has {len(saved['param_groups'])} parameter groups, the optimizer {len(groups)}")
    params = []
    for i, (theirs, ours) in enumerate(zip(saved["param_groups"], groups)):
        if len(theirs["params"]) != len(ours["params"]):
            raise ValueError(f"parameter group {i} has {len(theirs['params'])} parameters, the optimizer's "
                             f"{len(ours['params'])}")
        params.extend(zip(theirs["params"], ours["params"]))
    by_id = dict(params)
    for pid, entry in saved["state"].items():
        if pid not in by_id:
            raise ValueError(f"holds state for an unknown parameter id {pid!r}")
        shape = by_id[pid].shape
        for name, value in entry.items():
            if isinstance(value, torch.Tensor) and value.dim() > 0 and value.shape != shape:
                raise ValueError(f"state {name!r} of parameter {pid} has shape {tuple(value.shape)}, the parameter "
                                 f"{tuple(shape)}")


def validate_checkpoint(
    state: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: Any,
    generators: Mapping[str, torch.Generator | None],
    memories: Mapping[str, SampleMemory],
    dataset_size: int,
    rank: int = 0,
    world_size: int = 1,
) -> None:
    """Check every part of ``state`` against the trainer it is loaded into; raise before anything is changed.

    Raises:
        CheckpointError: naming the part (``model``, ``optimizer``, ``scheduler``, ``scaler``, ``rng``,
            ``dataset_size``, a memory name, ``history``, ``epoch``) and the file.
    """
    checks: list[tuple[str, Any]] = [
        ("epoch", lambda: _check_epoch(state["epoch"])),
        ("dataset_size", lambda: _check_size(state.get("dataset_size"), dataset_size)),
        ("model", lambda: _check_model(state["model"], model)),
        ("optimizer", lambda: _check_optimizer(state["optimizer"], optimizer)),
        ("scheduler", lambda: _check_mapping(state["scheduler"], scheduler)),
        ("scaler", lambda: _check_mapping(state["scaler"], object())),
        ("rng", lambda: validate_rng_state(_rank_rng(state, rank, world_size), generators)),
        ("history", lambda: _check_history(state["history"])),
    ]
    checks += [(name, lambda name=name, memory=memory: memory.validate_state(state.get(name), dataset_size))
               for name, memory in memories.items()]
    for part, check in checks:
        try:
            check()
        except CheckpointError:
            raise
        except Exception as error:
            raise CheckpointError(f"checkpoint {path}: the {part} part does not fit this trainer: {error}", part,
                                  path) from error


def _rank_rng(state: Mapping[str, Any], rank: int, world_size: int) -> Any:
    """This rank's RNG states (a distributed run resumed with the same world size continues each rank's streams)."""
    ranks = state.get("rng_ranks")
    return ranks[rank] if isinstance(ranks, list) and len(ranks) == world_size else state["rng"]


def _check_epoch(epoch: Any) -> None:
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"must be an integer >= 0, got {epoch!r}")


def _check_size(saved: Any, dataset_size: int) -> None:
    if saved is not None and saved != dataset_size:
        raise ValueError(f"was written for a data set of {saved} samples, this one has {dataset_size}")


def _check_mapping(saved: Any, owner: Any) -> None:
    if owner is not None and saved is not None and not isinstance(saved, Mapping):
        raise ValueError(f"must be a state_dict, got {type(saved).__name__}")


def _check_history(history: Any) -> None:
    if not isinstance(history, list) or not all(isinstance(r, Mapping) for r in history):
        raise ValueError(f"must be a list of records, got {type(history).__name__}")


__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "CheckpointError",
    "clean_stale_temp_files",
    "load_checkpoint",
    "rng_state",
    "save_atomic",
    "set_rng_state",
    "validate_checkpoint",
    "validate_rng_state",
]
