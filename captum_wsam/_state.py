"""Context managers that touch a user's model and always put it back (rule 7 of STYLE.md).

Every method of the package that registers hooks, switches modes, freezes parameters or runs a backward pass does so
inside one of these, so that the model leaves a call exactly as it came in, even when the call raises.

Reentrant and thread-safe: each manager that changes a model holds that model's own reentrant lock
(:func:`exclusive`) from its snapshot to its restore. Nested managers in one thread therefore restore in stack order,
and calls from several threads on one model run one after the other, each seeing and restoring the model's true
state (without the lock, thread B would snapshot the eval mode and frozen parameters thread A had set, and restore
them for good). Models are keyed weakly by identity; nothing is stored on the model.

>>> import torch
>>> model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.BatchNorm1d(2)).train()
>>> with eval_mode(model), frozen_parameters(model):
...     model.training, model[0].weight.requires_grad
(False, False)
>>> model.training, model[0].weight.requires_grad
(True, True)
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn
from torch.utils.hooks import RemovableHandle

_LOCKS: weakref.WeakKeyDictionary[nn.Module, threading.RLock] = weakref.WeakKeyDictionary()
_LOCKS_GUARD = threading.Lock()


def _lock_owner(model: nn.Module) -> nn.Module:
    """The module whose lock guards ``model``: a ``DataParallel``/DDP wrapper shares the lock of the wrapped model."""
    inner = getattr(model, "module", None)
    return inner if isinstance(inner, nn.Module) else model


def model_lock(model: object) -> threading.RLock | None:
    """The reentrant lock of ``model`` (created on first use; ``None`` for a callable that is not an ``nn.Module``)."""
    if not isinstance(model, nn.Module):
        return None
    owner = _lock_owner(model)
    with _LOCKS_GUARD:
        lock = _LOCKS.get(owner)
        if lock is None:
            lock = threading.RLock()
            _LOCKS[owner] = lock
        return lock


@contextmanager
def exclusive(model: object) -> Iterator[None]:
    """Hold ``model``'s reentrant lock: other threads' guarded calls on the same model wait; the same thread may nest.

    Every other manager of this module that changes a model takes this lock itself; use it directly around work that
    patches a model outside them (e.g. replacing ``forward``) so that it is serialized with them.

    >>> layer = torch.nn.Linear(2, 2)
    >>> with exclusive(layer), exclusive(layer):  # reentrant
    ...     model_lock(layer) is model_lock(layer)
    True
    """
    lock = model_lock(model)
    if lock is None:
        yield
        return
    with lock:
        yield


@contextmanager
def eval_mode(model: object) -> Iterator[None]:
    """Put every submodule in eval mode; restore each module's own ``training`` flag on exit.

    Restoring per module (not ``model.train(was_training)``) keeps a frozen BatchNorm inside a model in train mode
    frozen.
    """
    if not isinstance(model, nn.Module):
        yield
        return
    with exclusive(model):
        flags = [(m, m.training) for m in model.modules()]
        try:
            model.eval()
            yield
        finally:
            for module, flag in flags:
                module.training = flag


@contextmanager
def frozen_parameters(model: object) -> Iterator[None]:
    """Set ``requires_grad=False`` on all parameters (no weight gradients are computed); restore on exit."""
    if not isinstance(model, nn.Module):
        yield
        return
    with exclusive(model):
        flags = [(p, p.requires_grad) for p in model.parameters()]
        try:
            for p, _ in flags:
                p.requires_grad_(False)
            yield
        finally:
            for p, flag in flags:
                p.requires_grad_(flag)


@contextmanager
def kept_buffers(model: object) -> Iterator[None]:
    """Restore every buffer of ``model`` bitwise on exit (BatchNorm running statistics, ``num_batches_tracked``).

    >>> bn = torch.nn.BatchNorm1d(2).train()
    >>> with kept_buffers(bn):
    ...     _ = bn(torch.randn(4, 2) + 5)
    >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
    ([0.0, 0.0], 0)
    """
    with exclusive(model):
        buffers = [(b, b.detach().clone()) for b in model.buffers()] if isinstance(model, nn.Module) else []
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, value in buffers:
                    if not torch.equal(buffer, value):
                        buffer.copy_(value)


@contextmanager
def preserved_grads(tensors: Iterable[Tensor]) -> Iterator[None]:
    """Restore ``.grad`` of ``tensors`` on exit: ``None`` stays ``None``, existing gradients keep their values."""
    saved = [(t, t.grad, None if t.grad is None else t.grad.detach().clone()) for t in tensors]
    try:
        yield
    finally:
        for tensor, grad, values in saved:
            if grad is not None and values is not None:
                with torch.no_grad():
                    grad.copy_(values)
            tensor.grad = grad


@contextmanager
def hook_handles() -> Iterator[list[RemovableHandle]]:
    """Collect hook handles in a list and remove every one of them on exit.

    >>> layer = torch.nn.Linear(2, 2)
    >>> with hook_handles() as handles:
    ...     handles.append(layer.register_forward_hook(lambda *args: None))
    ...     len(layer._forward_hooks)
    1
    >>> len(layer._forward_hooks)
    0
    """
    handles: list[RemovableHandle] = []
    try:
        yield handles
    finally:
        for handle in handles:
            handle.remove()


@contextmanager
def untouched(model: object, *inputs: Tensor) -> Iterator[None]:
    """Everything a method may change while attributing, restored on exit: modes, ``requires_grad`` and ``.grad``.

    Each module keeps its ``training`` flag; parameters and leaf inputs keep ``requires_grad`` and ``.grad``. Hooks are
    not covered here: register them through :func:`hook_handles` inside this block (the model's lock is held, so
    another thread's hooks never see this thread's forward passes).
    """
    with exclusive(model):
        modules = list(model.modules()) if isinstance(model, nn.Module) else []
        params = list(model.parameters()) if isinstance(model, nn.Module) else []
        tensors = [t for t in inputs if isinstance(t, Tensor)]
        modes = [(m, m.training) for m in modules]
        flags = [(t, t.requires_grad) for t in params + tensors if t.is_leaf]
        with preserved_grads(params + tensors):
            try:
                yield
            finally:
                for module, flag in modes:
                    module.training = flag
                for tensor, flag in flags:
                    tensor.requires_grad_(flag)


__all__ = [
    "eval_mode",
    "exclusive",
    "frozen_parameters",
    "hook_handles",
    "kept_buffers",
    "model_lock",
    "preserved_grads",
    "untouched",
]
