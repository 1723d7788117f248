r"""The LRP engine: one forward and one backward pass, every layer configured by the rule its composite assigns.

Paper: S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller, W. Samek (2015), "On Pixel-Wise Explanations
for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7): e0130140,
DOI 10.1371/journal.pone.0130140, computed as a modified gradient (the "gradient trick" of zennit, Anders et al.
2021, arXiv:2106.13200): every tensor :math:`t` of the forward pass carries the gradient
:math:`g_t = R_t / t`, so that

.. math:: R_t = t \odot g_t , \qquad R_{\text{output}} = f_c(x) ,

and a layer only has to return its ordinary output with a gradient that maps :math:`g` to the relevance of its rule
(:mod:`captum_wsam.attr.lrp_rules`). Additions, concatenations, reshapes, average pooling and max-pooling then
redistribute relevance proportionally (winner-take-all for max-pooling) through their ordinary gradients; the
transformer blocks follow :mod:`captum_wsam.attr.lrp_transformers`.

How modules are handled (:mod:`captum_wsam.attr.lrp_kinds`, which sorts modules into these kinds; anything else
raises a ``TypeError`` naming the module):

- Conv1d/2d/3d, Linear: the composite's rule; a BatchNorm registered right after its Conv/Linear (and receiving
  its output) is folded into it (Motzkus et al. 2022, arXiv:2202.06621);
- other BatchNorms (DenseNet's pre-activation ones): an explicit affine layer :math:`y = s x + t` with its own rule
  (``Pass`` by default);
- element-wise activations (ReLU, ReLU6, SiLU, Hardswish, GELU, …): their rule, ``Pass`` by default;
- LayerNorm (and ConvNeXt's ``LayerNorm2d``), ``nn.MultiheadAttention``, Swin and MaxViT window attention, timm
  ``Attention``: conservative propagation (Ali et al. 2022, arXiv:2202.07304);
- Squeeze-Excitation (``torchvision.ops.SqueezeExcitation``): the gate is a constant;
- average pooling: proportional with a stabilizer (zennit's ``Norm``); max-pooling, dropout, stochastic depth,
  flatten, identity, permutations and MaxViT's window partitions: their gradient;
- ``torchvision.transforms.Normalize`` (or a parameter-free module with ``mean`` and ``std``) in front of the first
  layer: relevance passes unchanged and the statistics are folded into the first layer's box bounds.

Patches are per thread (:class:`~captum_wsam.attr.lrp_canonizers.ForwardPatch`), so concurrent calls on one model
are safe and leave it as it was.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from .adapters import logits_of
from .lrp_canonizers import (
    ForwardPatch,
    find_batch_norm_pairs,
    fold_batch_norm,
    layer_function,
    normalization_of,
    own_forward,
    same_tensor,
)
from .lrp_composites import Composite
from .lrp_kinds import ACTIVATION_NAMES as ACTIVATION_NAMES
from .lrp_kinds import (
    ATTENTION_NAMES,
    AVG_POOL_TYPES,
    GRADIENT_TYPES,
    LAYER_NORM_CHANNELS_FIRST,
    MAX_POOL_TYPES,
    kind_of,
    qualified_name,
    unsupported_modules,
    walk,
)
from .lrp_kinds import BATCH_NORM_ACT_NAMES as BATCH_NORM_ACT_NAMES
from .lrp_kinds import CONSTANT_PARAMETER_CONTAINERS as CONSTANT_PARAMETER_CONTAINERS
from .lrp_kinds import GRADIENT_NAMES as GRADIENT_NAMES
from .lrp_kinds import KNOWN_CONTAINERS as KNOWN_CONTAINERS
from .lrp_kinds import SQUEEZE_EXCITATION_NAMES as SQUEEZE_EXCITATION_NAMES
from .lrp_rules import Pass, Rule, ZBox, pass_forward, relevance_as_gradient, splice, stabilize
from .lrp_transformers import (
    layer_norm_forward,
    multihead_attention_forward,
    squeeze_excitation_forward,
)


class _NormalizeSplice(torch.autograd.Function):
    """Forward: the normalized input; backward: relevance passes unchanged (``g`` itself before an explicit first
    rule, ``g ⊙ y / x`` otherwise), decided when the backward pass runs."""

    @staticmethod
    def forward(ctx, inputs, output, run):  # type: ignore[override]
        ctx.save_for_backward(inputs, output)
        ctx.run = run
        return output.clone()

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        inputs, output = ctx.saved_tensors
        if ctx.run.explicit_first:
            return grad_output, None, None
        ratio = torch.where(inputs == 0, 0.0, output / torch.where(inputs == 0, 1.0, inputs))
        return grad_output * ratio, None, None


def _diagonal(inputs: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``layer_fn`` of a per-channel affine layer (an unfolded BatchNorm): :math:`y = w_c x + b_c`."""
    shape = (1, -1, *([1] * (inputs.dim() - 2)))
    out = inputs * weight.reshape(shape)
    return out if bias is None else out + bias.reshape(shape)


class Propagation:
    """The state of one attribution: which module runs which rule, the first layer, folded BatchNorms, captures.

    Args:
        model: the model.
        composite: the composite giving each layer its rule.
        leaf: the detached input that requires gradients.
        canonize: fold BatchNorms into the Conv/Linear they follow.
        capture: a module whose output (or input) is recorded (for :class:`~captum_wsam.attr.LayerLRP`).
        capture_input: record the input of ``capture`` instead of its output.
    """

    def __init__(self, model: nn.Module, composite: Composite, leaf: Tensor, canonize: bool = True,
                 capture: nn.Module | None = None, capture_input: bool = False) -> None:
        self.model, self.composite, self.leaf = model, composite, leaf
        self.names = {module: name for name, module in model.named_modules()}
        self.layer_of: dict[nn.Module, nn.Module] = {}
        if canonize:
            pairs, _ = find_batch_norm_pairs(model)
            self.layer_of = pairs
        self.batch_norm_of = {layer: bn for bn, layer in self.layer_of.items()}
        self.outputs: dict[nn.Module, tuple[Tensor, int]] = {}
        self.first: nn.Module | None = None
        self.explicit_first = False
        self.normalization: tuple[Tensor, Tensor] | None = None
        self.normalized: Tensor | None = None
        self.capture, self.capture_input = capture, capture_input
        self.captured: Any = None

    # -- patching -------------------------------------------------------------------------------------------------
    def patch(self, handles: list[Any]) -> None:
        """Install the patched forwards (their handles go into ``handles``)."""
        forwards: dict[nn.Module, Callable[..., Any]] = {}
        for path, module in walk(self.model):
            forward = self._forward_for(path, module)
            if forward is not None:
                forwards[module] = forward
        if self.capture is not None:
            inner = forwards.get(self.capture) or own_forward(self.capture)
            forwards[self.capture] = functools.partial(self._capturing, inner)
        for module, forward in forwards.items():
            handles.append(ForwardPatch(module, forward))

    def _forward_for(self, path: str, module: nn.Module) -> Callable[..., Any] | None:
        kind = kind_of(module)
        if kind is None:
            raise TypeError(f"LRP has no rule for module {path or '<root>'!r} ({type(module).__name__})")
        original = own_forward(module)
        if kind == "linear":
            return functools.partial(self._linear, path, module)
        if kind == "batch_norm":
            if module in self.layer_of:
                return functools.partial(self._folded_batch_norm, module)
            return functools.partial(self._affine_batch_norm, path, module)
        if kind == "activation":
            return functools.partial(self._activation, path, module, original)
        if kind == "batch_norm_act":
            return functools.partial(self._batch_norm_act, path, module)
        if kind == "avg_pool":
            return functools.partial(self._avg_pool, original)
        if kind == "layer_norm":
            channels_first = qualified_name(module) in LAYER_NORM_CHANNELS_FIRST
            return functools.partial(layer_norm_forward, module, channels_first=channels_first)
        if kind == "attention":
            linear = functools.partial(self._sub_linear, path)
            if isinstance(module, nn.MultiheadAttention):
                return functools.partial(multihead_attention_forward, module, linear)
            return functools.partial(ATTENTION_NAMES[qualified_name(module)], module, linear)
        if kind == "squeeze_excitation":
            if hasattr(module, "_scale"):
                return functools.partial(squeeze_excitation_forward, module)
            return functools.partial(self._gate, original)
        if kind == "normalize":
            return functools.partial(self._normalize, path, module, original)
        return None

    # -- rules ----------------------------------------------------------------------------------------------------
    def is_input(self, tensor: Tensor) -> bool:
        """Whether ``tensor`` is the model input (or a reshaped view of it, or its normalization by the model)."""
        if same_tensor(tensor, self.leaf):
            return True
        return self.normalized is not None and same_tensor(tensor, self.normalized)

    def apply(self, rule: Rule, path: str, inputs: Tensor, weight: Tensor, bias: Tensor | None,
              layer_fn: Callable[..., Tensor]) -> Tensor:
        """The output of a Conv/Linear-like layer at ``path`` under ``rule``."""
        if not rule.explicit:
            return rule.forward(inputs, weight, bias, layer_fn)
        if not self.is_input(inputs):
            raise ValueError(
                f"rule {type(rule).__name__} of layer {path!r} needs the model inputs (or a reshaped view of them); "
                "this layer receives another tensor: move the preprocessing out of the model or choose another rule"
            )
        self.explicit_first = True
        relevance_fn = functools.partial(rule.relevance, weight=weight, bias=bias, layer_fn=layer_fn)
        if isinstance(rule, ZBox):
            low, high = rule.bounds(self.leaf, self.normalization if self.normalized is not None else None)
            low = low.to(inputs).expand(self.leaf.shape).reshape(inputs.shape)
            high = high.to(inputs).expand(self.leaf.shape).reshape(inputs.shape)
            relevance_fn = functools.partial(relevance_fn, low=low, high=high)
        return relevance_as_gradient(inputs, weight, bias, layer_fn, relevance_fn)

    def _rule(self, path: str, module: nn.Module | type, first: bool) -> Rule:
        rule = self.composite.rule(path, module, first)
        if rule is None:
            kind = module if isinstance(module, type) else type(module)
            raise TypeError(f"the composite has no rule for module {path!r} ({kind.__name__}); add it to its "
                            "layer_map or name_map")
        return rule

    def _linear(self, path: str, module: nn.Module, inputs: Tensor) -> Tensor:
        weight, bias = module.weight.detach(), None if module.bias is None else module.bias.detach()
        if module in self.batch_norm_of:
            weight, bias = fold_batch_norm(weight, bias, self.batch_norm_of[module])
        first = self.first is None
        if first:
            self.first = module
        output = self.apply(self._rule(path, module, first), path, inputs, weight, bias, layer_function(module))
        if module in self.batch_norm_of:
            self.outputs[module] = (output, output._version)
        return output

    def _sub_linear(self, prefix: str, name: str, inputs: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        path = f"{prefix}.{name}" if prefix else name
        return self.apply(self._rule(path, nn.Linear, False), path, inputs, weight, bias, nn.functional.linear)

    def _folded_batch_norm(self, module: nn.Module, inputs: Tensor) -> Tensor:
        layer = self.layer_of[module]
        recorded = self.outputs.pop(layer, None)
        if recorded is None or not same_tensor(inputs, recorded[0]):
            raise RuntimeError(
                f"BatchNorm {self.names.get(module, '?')!r} was folded into {self.names.get(layer, '?')!r} but does "
                "not receive that layer's output directly (another operation runs between them); use canonize=False"
            )
        if recorded[1] != inputs._version:
            raise RuntimeError(f"BatchNorm {self.names.get(module, '?')!r} receives the output of "
                               f"{self.names.get(layer, '?')!r} modified in place; LRP needs it unchanged")
        return inputs

    def _affine_batch_norm(self, path: str, module: nn.Module, inputs: Tensor) -> Tensor:
        with torch.no_grad():
            scale = torch.rsqrt(module.running_var + module.eps)
            if module.weight is not None:
                scale = scale * module.weight
            shift = -module.running_mean * scale
            if module.bias is not None:
                shift = shift + module.bias
        rule = self._rule(path, module, False)
        if type(rule).elementwise is not Rule.elementwise:
            with torch.no_grad():
                output = _diagonal(inputs, scale, shift)
            return rule.elementwise(inputs, output)
        return self.apply(rule, path, inputs, scale, shift, _diagonal)

    def _batch_norm_act(self, path: str, module: nn.Module, inputs: Tensor) -> Tensor:
        output = self._affine_batch_norm(path, module, inputs)
        for name in ("drop", "act"):
            child = getattr(module, name)
            kind = kind_of(child)
            if kind == "activation":
                output = self._activation(f"{path}.{name}", child, own_forward(child), output)
            elif kind != "gradient":
                raise TypeError(f"LRP has no rule for module {path}.{name} ({type(child).__name__})")
            else:
                output = own_forward(child)(output)
        return output

    def _activation(self, path: str, module: nn.Module, original: Callable[..., Tensor], inputs: Tensor) -> Tensor:
        rule = self.composite.rule(path, module, False) or Pass()
        if isinstance(module, nn.ReLU) and isinstance(rule, Pass):
            return torch.relu(inputs)  # Pass equals the gradient for ReLU
        with torch.no_grad():
            output = original(inputs.clone() if getattr(module, "inplace", False) else inputs)
        return rule.elementwise(inputs, output)

    @staticmethod
    def _gate(original: Callable[..., Tensor], inputs: Tensor) -> Tensor:
        with torch.no_grad():
            output = original(inputs)
        return pass_forward(inputs, output)  # y = s ⊙ x with s constant: R_x = R_y

    def _avg_pool(self, original: Callable[..., Tensor], inputs: Tensor) -> Tensor:
        z = original(inputs)
        with torch.no_grad():
            factor = z / stabilize(z, self.composite.stabilizer)
        return splice(z, [z], [factor])

    def _normalize(self, path: str, module: nn.Module, original: Callable[..., Tensor], inputs: Tensor) -> Tensor:
        stats = normalization_of(module)
        assert stats is not None
        with torch.no_grad():
            output = original(inputs)
            mean, std = (part.to(inputs).reshape(1, -1, *([1] * (inputs.dim() - 2))) for part in stats)
            if not isinstance(output, Tensor) or output.shape != inputs.shape or not torch.allclose(
                    output, (inputs - mean) / std, rtol=1e-4, atol=1e-5):
                raise TypeError(f"module {path!r} ({type(module).__name__}) has mean and std but does not compute "
                                "(x - mean) / std; LRP cannot fold it into the first layer's bounds")
        result = _NormalizeSplice.apply(inputs, output, self)
        if self.first is None and same_tensor(inputs, self.leaf):
            self.normalization, self.normalized = stats, result
        return result

    def _capturing(self, inner: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        if self.capture_input:
            if not args or not isinstance(args[0], Tensor):
                raise TypeError("attribute_to_layer_input needs a layer whose first argument is a tensor")
            self.captured = args[0]
            return inner(*args, **kwargs)
        output = inner(*args, **kwargs)
        self.captured = output
        return output

    def relevance_of(self, tensor: Tensor, grad: Tensor) -> Tensor:
        """Relevance of a tensor of the forward pass from its gradient (:math:`t \\odot g`, or :math:`g` itself
        between the input and an explicit first-layer rule)."""
        if self.explicit_first and self.is_input(tensor):
            return grad
        return tensor.detach() * grad


def model_logits(output: Any) -> Tensor:
    """The logits of a model's output (:func:`captum_wsam.attr.adapters.logits_of`: a tensor, a mapping with
    ``"logits"`` or an object with ``.logits``, e.g. a Hugging Face ``ModelOutput``), or a ``TypeError``.

    Examples:
        >>> model_logits({"logits": torch.ones(1, 2)}).shape
        torch.Size([1, 2])
    """
    logits = logits_of(output)
    if not isinstance(logits, Tensor):
        raise TypeError(f"the model must return a tensor, a mapping with 'logits' or an object with .logits, got "
                        f"{type(output).__name__}")
    return logits


__all__ = [
    "AVG_POOL_TYPES",
    "GRADIENT_TYPES",
    "MAX_POOL_TYPES",
    "Propagation",
    "kind_of",
    "model_logits",
    "qualified_name",
    "unsupported_modules",
    "walk",
]
