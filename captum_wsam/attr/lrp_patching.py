r"""Per-thread ``forward`` patches and a shared evaluation mode: how the LRP attributions change a model's
computation for the length of one call and leave it exactly as it was (also when two threads explain one model).

Paper: C. J. Anders, D. Neumann, W. Samek, K.-R. Müller, S. Lapuschkin (2021), "Software for Dataset-wide XAI: From
Local Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy", arXiv:2106.13200 (rules as temporary
modifications of a model's modules). A patched module :math:`m` computes, for the calling thread only, the layer's
output with the rule's gradient, so that one backward pass gives

.. math:: R_x = x \odot \frac{\partial \tilde f_c}{\partial x}, \qquad \tilde f_c(x) = f_c(x) \ \text{(same values)},

while other threads keep running :math:`m`'s own ``forward``. Re-exported by :mod:`captum_wsam.attr.lrp_canonizers`
(their former home).
"""

from __future__ import annotations

import threading
import types
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from torch import nn

from .._state import exclusive


class _Dispatch:
    """The ``forward`` installed on a patched module: each thread runs its own patch (or the module's own forward)."""

    def __init__(self, module: nn.Module) -> None:
        self.had_own = "forward" in vars(module)
        self.previous = vars(module).get("forward")
        self.fallback = self.previous if self.had_own else types.MethodType(type(module).forward, module)
        self.stacks: dict[int, list[Callable[..., Any]]] = {}
        self.count = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        stack = self.stacks.get(threading.get_ident())
        return (stack[-1] if stack else self.fallback)(*args, **kwargs)


#: One lock and one table for every patched module of the process: patches are per thread, so that concurrent calls
#: on one model (and plain ``model(x)`` calls from other threads) never see each other's forwards (issue 16).
_LOCK = threading.Lock()
_DISPATCH: weakref.WeakKeyDictionary[nn.Module, _Dispatch] = weakref.WeakKeyDictionary()
_EVAL: weakref.WeakKeyDictionary[nn.Module, list[Any]] = weakref.WeakKeyDictionary()


class ForwardPatch:
    """Replace ``module.forward`` for the calling thread only; :meth:`remove` restores it (a ``RemovableHandle``
    look-alike).

    The first patch of a module installs a small dispatcher as its instance ``forward``; other threads keep running
    the module's own forward, and the last :meth:`remove` puts the module back exactly as it was. Patches nest
    (the latest wins) and are thread-safe.

    Examples:
        >>> import torch
        >>> layer = nn.Linear(2, 2)
        >>> patch = ForwardPatch(layer, lambda x: x)
        >>> x = torch.ones(1, 2)
        >>> torch.equal(layer(x), x), "forward" in vars(layer)
        (True, True)
        >>> patch.remove()
        >>> "forward" in vars(layer)
        False
    """

    def __init__(self, module: nn.Module, forward: Callable[..., Any]) -> None:
        self.module, self.forward, self.thread = module, forward, threading.get_ident()
        with _LOCK:
            dispatch = _DISPATCH.get(module)
            if dispatch is None:
                dispatch = _DISPATCH[module] = _Dispatch(module)
                module.forward = dispatch  # type: ignore[method-assign]
            dispatch.stacks.setdefault(self.thread, []).append(forward)
            dispatch.count += 1
        self.removed = False

    @property
    def original(self) -> Callable[..., Any]:
        """The forward that ran before this patch in this thread (the module's own one for the first patch)."""
        dispatch = _DISPATCH[self.module]
        stack = dispatch.stacks[self.thread]
        index = next(i for i, fn in enumerate(stack) if fn is self.forward)
        return stack[index - 1] if index > 0 else dispatch.fallback

    def remove(self) -> None:
        """Drop this patch; the last one removed puts the module's own ``forward`` back."""
        if self.removed:
            return
        self.removed = True
        with _LOCK:
            dispatch = _DISPATCH[self.module]
            stack = dispatch.stacks[self.thread]
            del stack[next(i for i in range(len(stack) - 1, -1, -1) if stack[i] is self.forward)]
            if not stack:
                del dispatch.stacks[self.thread]
            dispatch.count -= 1
            if dispatch.count == 0:
                del _DISPATCH[self.module]
                if dispatch.had_own:
                    self.module.forward = dispatch.previous  # type: ignore[method-assign]
                else:
                    vars(self.module).pop("forward", None)


def own_forward(module: nn.Module) -> Callable[..., Any]:
    """The forward that ``module`` runs for threads without a patch (its own, even while other threads patch it).

    Examples:
        >>> layer = nn.Identity()
        >>> own_forward(layer)(3)
        3
    """
    with _LOCK:
        dispatch = _DISPATCH.get(module)
        if dispatch is not None:
            return dispatch.fallback
    return vars(module).get("forward") or types.MethodType(type(module).forward, module)


@contextmanager
def shared_eval_mode(model: nn.Module) -> Iterator[None]:
    """Every submodule in eval mode while at least one caller (of any thread) is inside; the first caller's flags are
    restored by the last one out (reentrant, thread-safe; :func:`captum_wsam._state.eval_mode` is neither). Holds the
    model's lock (:func:`captum_wsam._state.exclusive`) meanwhile, so calls on one model are serialized across
    methods and threads.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
        >>> with shared_eval_mode(model), shared_eval_mode(model):
        ...     model.training
        False
        >>> model.training
        True
    """
    # The model's own lock (captum_wsam._state) serializes this with SAM/WSAM/ParameterSaliency guards in other
    # threads, so that no method records another's temporary flags as the ones to restore.
    with exclusive(model):
        with _LOCK:
            entry = _EVAL.get(model)
            if entry is None:
                entry = _EVAL[model] = [0, [(m, m.training) for m in model.modules()]]
                model.eval()
            entry[0] += 1
        try:
            yield
        finally:
            with _LOCK:
                entry[0] -= 1
                if entry[0] == 0:
                    del _EVAL[model]
                    for module, flag in entry[1]:
                        module.training = flag


__all__ = [
    "ForwardPatch",
    "own_forward",
    "shared_eval_mode",
]
