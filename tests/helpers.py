"""Shared test machinery: the "nothing left behind" checker and the attribution contract checker.

Every method that touches a user's model is run through :func:`assert_model_untouched` in three modes (normal call,
invalid target, a layer that raises mid-forward); every attribution goes through :func:`assert_attribution_contract`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import torch
from torch import Tensor, nn
from torch.nn.modules import module as module_mod

# Every per-module hook dict torch keeps (with-kwargs and always-called variants included).
HOOK_DICTS = (
    "_forward_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks",
    "_forward_pre_hooks_with_kwargs",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_state_dict_hooks",
    "_state_dict_pre_hooks",
    "_load_state_dict_pre_hooks",
    "_load_state_dict_post_hooks",
)
# torch's global module hooks.
GLOBAL_HOOK_DICTS = tuple(
    name
    for name in (
        "_global_forward_hooks",
        "_global_forward_hooks_with_kwargs",
        "_global_forward_hooks_always_called",
        "_global_forward_pre_hooks",
        "_global_backward_hooks",
        "_global_backward_pre_hooks",
        "_global_module_registration_hooks",
        "_global_parameter_registration_hooks",
        "_global_buffer_registration_hooks",
    )
    if hasattr(module_mod, name)
)
# Module attributes that torch manages itself and that we compare by other means.
_INTERNAL_ATTRS = {
    "_parameters",
    "_buffers",
    "_modules",
    "_non_persistent_buffers_set",
    "training",
    "_is_full_backward_hook",
    *HOOK_DICTS,
}


class InjectedFailure(RuntimeError):
    """Raised by the layer that :func:`assert_model_untouched` makes fail mid-forward."""


def _tensor_snapshot(t: Tensor | None) -> Tensor | None:
    return None if t is None else t.detach().clone()


def _same(a: Tensor | None, b: Tensor | None) -> bool:
    """Bitwise equality (NaN == NaN, 0.0 != -0.0), dtype and shape included."""
    if a is None or b is None:
        return a is None and b is None
    if a.dtype != b.dtype or a.shape != b.shape or a.device != b.device:
        return False
    a, b = a.detach().contiguous().reshape(-1), b.detach().contiguous().reshape(-1)
    if a.dtype.is_floating_point or a.dtype.is_complex:
        a, b = a.view(torch.uint8), b.view(torch.uint8)
    return bool(torch.equal(a, b))


@dataclass
class ModelSnapshot:
    """Everything about a model (and some tensors) that a method must leave as it found it."""

    hooks: dict[tuple[str, str], list[int]] = field(default_factory=dict)
    global_hooks: dict[str, list[int]] = field(default_factory=dict)
    training: dict[str, bool] = field(default_factory=dict)
    requires_grad: dict[str, bool] = field(default_factory=dict)
    grads: dict[str, Tensor | None] = field(default_factory=dict)
    grad_ids: dict[str, int | None] = field(default_factory=dict)
    state: dict[str, Tensor] = field(default_factory=dict)
    children: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    attributes: dict[str, dict[str, int]] = field(default_factory=dict)
    inputs: list[tuple[Tensor, bool, Tensor | None, Tensor]] = field(default_factory=list)

    @classmethod
    def take(cls, model: nn.Module, inputs: Sequence[Tensor] = ()) -> ModelSnapshot:
        snap = cls()
        for name, module in model.named_modules(remove_duplicate=False):
            for attr in HOOK_DICTS:
                snap.hooks[(name, attr)] = list(getattr(module, attr, {}).keys())
            snap.training[name] = module.training
            snap.children[name] = [(n, id(c)) for n, c in module._modules.items()]
            snap.attributes[name] = {k: id(v) for k, v in vars(module).items() if k not in _INTERNAL_ATTRS}
        for attr in GLOBAL_HOOK_DICTS:
            snap.global_hooks[attr] = list(getattr(module_mod, attr).keys())
        for name, p in model.named_parameters(remove_duplicate=False):
            snap.requires_grad[name] = p.requires_grad
            snap.grads[name] = _tensor_snapshot(p.grad)
            snap.grad_ids[name] = None if p.grad is None else id(p.grad)
        snap.state = {k: v.detach().clone() for k, v in model.state_dict(keep_vars=True).items()}
        snap.inputs = [(t, t.requires_grad, _tensor_snapshot(t.grad), t.detach().clone()) for t in inputs]
        return snap

    def differences(self, model: nn.Module) -> list[str]:
        """Human-readable list of everything that differs between this snapshot and ``model`` now."""
        now = ModelSnapshot.take(model, [t for t, *_ in self.inputs])
        problems = []
        for key, ids in self.hooks.items():
            if now.hooks.get(key) != ids:
                problems.append(
                    f"hooks changed on module {key[0] or '<root>'!r}.{key[1]}: {ids} -> {now.hooks.get(key)}"
                )
        for key in now.hooks.keys() - self.hooks.keys():
            if now.hooks[key]:
                problems.append(f"hooks on new module {key[0]!r}.{key[1]}")
        for attr, ids in self.global_hooks.items():
            if now.global_hooks[attr] != ids:
                problems.append(f"global hooks changed: {attr}: {ids} -> {now.global_hooks[attr]}")
        for name, flag in self.training.items():
            if now.training.get(name) != flag:
                problems.append(f"training flag of {name or '<root>'!r} changed: {flag} -> {now.training.get(name)}")
        if self.children != now.children:
            problems.append("submodules were replaced, added or removed")
        for name, attrs in self.attributes.items():
            if now.attributes.get(name) != attrs:
                before, after = set(attrs.items()), set(now.attributes.get(name, {}).items())
                problems.append(
                    f"attributes of {name or '<root>'!r} changed: removed/replaced "
                    f"{sorted(k for k, _ in before - after)}, added/replaced {sorted(k for k, _ in after - before)}"
                )
        for name, flag in self.requires_grad.items():
            if now.requires_grad.get(name) != flag:
                problems.append(f"requires_grad of parameter {name!r} changed: {flag} -> {now.requires_grad.get(name)}")
        params = dict(model.named_parameters(remove_duplicate=False))
        for name, grad in self.grads.items():
            current = params[name].grad
            if not _same(grad, current):
                problems.append(
                    f".grad of parameter {name!r} changed ({'was None' if grad is None else 'values differ'})"
                )
            elif current is not None and id(current) != self.grad_ids[name]:
                problems.append(f".grad of parameter {name!r} was replaced by another tensor")
        state = model.state_dict(keep_vars=True)
        if state.keys() != self.state.keys():
            problems.append(f"state_dict keys changed: {sorted(state.keys() ^ self.state.keys())}")
        for key, value in self.state.items():
            if key in state and not _same(value, state[key].detach()):
                problems.append(f"state_dict entry {key!r} changed")
        for i, (tensor, flag, grad, values) in enumerate(self.inputs):
            if tensor.requires_grad != flag:
                problems.append(f"requires_grad of input {i} changed: {flag} -> {tensor.requires_grad}")
            if not _same(grad, tensor.grad):
                problems.append(f".grad of input {i} changed")
            if not _same(values, tensor.detach()):
                problems.append(f"input {i} was modified in place")
        return problems


def assert_nothing_left(model: nn.Module, snapshot: ModelSnapshot, when: str) -> None:
    problems = snapshot.differences(model)
    assert not problems, f"{when}: the call left things behind:\n  " + "\n  ".join(problems)


def _default_failing_layer(model: nn.Module) -> nn.Module:
    leaves = [m for m in model.modules() if not list(m.children()) and list(m.parameters(recurse=False))]
    if not leaves:
        raise ValueError("model has no leaf module with parameters to make fail; pass raising_layer")
    return leaves[len(leaves) // 2]


def assert_model_untouched(
    model: nn.Module,
    call: Callable[[Any], Any],
    target: Any,
    *,
    invalid_target: Any = 10**6,
    expected_error: type[BaseException] | tuple[type[BaseException], ...] = (ValueError, IndexError),
    raising_layer: nn.Module | None = None,
    inputs: Sequence[Tensor] = (),
    modes: Sequence[str] = ("normal", "invalid_target", "raising_layer"),
) -> Any:
    """Run ``call(target)`` three ways and assert that ``model`` and ``inputs`` are left exactly as they were.

    1. ``normal``: ``call(target)`` must succeed;
    2. ``invalid_target``: ``call(invalid_target)`` must raise ``expected_error`` (the method's documented error);
    3. ``raising_layer``: a forward-pre hook makes ``raising_layer`` (default: the middle leaf with parameters) raise
       :class:`InjectedFailure`, which must propagate.

    After each run it checks: every hook dict of every module and torch's global hooks, each module's ``training``
    flag, parameters' ``requires_grad`` and ``.grad`` (``None`` stays ``None``; existing values bitwise unchanged and
    the same tensor object), the full ``state_dict`` (BatchNorm buffers included), submodules not replaced, module
    attributes (e.g. a user-set ``.rule``), and each input's ``requires_grad``, ``.grad`` and values.

    Returns:
        What the normal call returned.
    """
    result = None
    for mode in modes:
        snapshot = ModelSnapshot.take(model, inputs)
        if mode == "normal":
            result = call(target)
        elif mode == "invalid_target":
            with pytest.raises(expected_error):
                call(invalid_target)
        elif mode == "raising_layer":
            layer = raising_layer if raising_layer is not None else _default_failing_layer(model)

            def fail(*_: Any) -> None:
                raise InjectedFailure("injected failure mid-forward")

            # Hook dict keys are compared after our own hook is removed, so the snapshot stays valid.
            handle = layer.register_forward_pre_hook(fail)
            try:
                with pytest.raises(InjectedFailure):
                    call(target)
            finally:
                handle.remove()
        else:
            raise ValueError(f"unknown mode {mode!r}")
        assert_nothing_left(model, snapshot, f"mode {mode!r}")
    return result


def assert_attribution_contract(
    attribute: Callable[[Tensor, Any], Tensor],
    inputs: Tensor,
    target: Tensor,
    *,
    atol: float = 1e-5,
    rtol: float = 1e-4,
    check_batch: bool = True,
) -> Tensor:
    """The contract every attribution honours (torchvision-v2 style contract checker).

    - inputs are not modified in place, and ``requires_grad`` of the inputs is unchanged;
    - the output keeps dtype and device of the inputs;
    - seeded determinism: two calls give identical results;
    - batch invariance: the batch equals its samples one by one (per-sample targets).
    """
    before = inputs.detach().clone()
    flag = inputs.requires_grad
    out = attribute(inputs, target)
    assert torch.equal(inputs.detach(), before), "inputs were modified in place"
    assert inputs.requires_grad == flag, "requires_grad of inputs changed"
    assert out.dtype == inputs.dtype, f"dtype changed: {inputs.dtype} -> {out.dtype}"
    assert out.device == inputs.device, "device changed"
    again = attribute(inputs, target)
    assert torch.equal(out, again), "two identical calls gave different results"
    if check_batch:
        singles = torch.cat([attribute(inputs[i : i + 1], target[i : i + 1]) for i in range(len(inputs))])
        torch.testing.assert_close(out, singles, atol=atol, rtol=rtol, msg="batch result != one-by-one results")
    return out


__all__ = [
    "InjectedFailure",
    "ModelSnapshot",
    "assert_attribution_contract",
    "assert_model_untouched",
    "assert_nothing_left",
]
