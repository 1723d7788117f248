r"""LRP αβ as a Captum attribution that works on real networks (VGG, ResNet, BatchNorm, in-place ReLU).

Paper: S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller, W. Samek (2015), "On Pixel-Wise Explanations
for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7): e0130140,
DOI 10.1371/journal.pone.0130140. Relevance starts at the target logit, :math:`R = f_c(x)`, and flows down layer by
layer with the αβ rule

.. math::

    R_j = \sum_k \Big( \alpha \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+}
          - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^-} \Big) R_k , \qquad \alpha - \beta = 1,

a special rule in the first layer (z^B, flat, w² or αβ), proportional redistribution in average pooling and residual
additions, winner-take-all (or proportional) max-pooling, and pass-through ReLU/Dropout/Flatten/Identity. The maths
lives in :mod:`captum_wsam.attr.lrp_rules`, the canonization in :mod:`captum_wsam.attr.lrp_canonizers`; this class
validates, patches the model's layers for the length of one call and runs **one** forward and **one** backward pass.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .._checks import (
    check_choice,
    check_finite,
    check_grad_allowed,
    check_images,
    check_normalization,
    check_number,
    check_submodule,
    check_target,
    check_tensor,
    check_type,
)
from .._compat import _format_additional_forward_args, _select_targets
from .._state import hook_handles
from .._typing import TargetType
from .lrp_canonizers import (
    BATCH_NORM_TYPES,
    LINEAR_TYPES,
    Canonizer,
    ForwardPatch,
    layer_function,
    normalization_of,
    out_of_place_relu,
    own_forward,
    same_tensor,
    shared_eval_mode,
)
from .lrp_composites import Composite, EpsilonPlus
from .lrp_engine import Propagation, model_logits, unsupported_modules
from .lrp_rules import (
    ZBox,
    alpha_beta_forward,
    alpha_beta_relevance,
    flat_relevance,
    proportional_pool_forward,
    relevance_as_gradient,
    splice,
    wsquare_relevance,
    zbox_relevance,
)

FIRST_LAYER_RULES = ("zbox", "flat", "wsquare", "alphabeta")
MAX_POOL_RULES = ("winner", "proportional")
MAX_POOL_TYPES = (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d,
                  nn.AdaptiveMaxPool3d)
#: Leaves passed by their ordinary gradient, which is the LRP rule for them (see the module docstring).
PASS_THROUGH_TYPES = (
    nn.ReLU, nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.Flatten, nn.Identity,
    nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
)
SUPPORTED_TYPES = LINEAR_TYPES + BATCH_NORM_TYPES + MAX_POOL_TYPES + PASS_THROUGH_TYPES


@dataclass(frozen=True)
class AlphaBetaRule:
    r"""The αβ rule's parameters for a layer (Bach et al. 2015), e.g. in ``LRPAlphaBeta(rules={nn.Linear: ...})``.

    .. math:: \alpha \geq 1, \qquad \beta = \alpha - 1

    Args:
        alpha: weight of positive contributions.
        beta: weight of negative contributions.

    Raises:
        ValueError: ``alpha < 1`` or ``beta != alpha - 1``.

    Examples:
        >>> AlphaBetaRule(2.0, 1.0)
        AlphaBetaRule(alpha=2.0, beta=1.0)
        >>> AlphaBetaRule(1.0, 0.5)
        Traceback (most recent call last):
        ...
        ValueError: beta must equal alpha - 1 = 0.0 (relevance conservation), got 0.5
    """

    alpha: float = 2.0
    beta: float = 1.0

    def __post_init__(self) -> None:
        check_number(self.alpha, "alpha")
        check_number(self.beta, "beta")
        if self.alpha < 1:
            raise ValueError(f"alpha must be >= 1, got {self.alpha!r}")
        if not math.isclose(self.beta, self.alpha - 1, rel_tol=0.0, abs_tol=1e-12):
            raise ValueError(
                f"beta must equal alpha - 1 = {self.alpha - 1} (relevance conservation), got {self.beta!r}"
            )


def _check_bound(value: Any, name: str) -> None:
    if isinstance(value, Tensor):
        check_tensor(value, name, floating=True)
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got {value}")
    else:
        check_number(value, name)


def unsupported_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaves of ``model`` that LRP αβ has no rule for (and ``MaxPool`` returning indices), as ``(path, module)``.

    Args:
        model: any module.

    Returns:
        The offending ``(path, module)`` pairs, in registration order (empty when the model is supported).

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2))
        >>> [(path, type(m).__name__) for path, m in unsupported_layers(model)]
        [('1', 'Sigmoid')]
    """
    found = []
    for name, module in model.named_modules():
        if list(module.children()):
            if list(module.parameters(recurse=False)):
                found.append((name, module))
            continue
        supported = isinstance(module, SUPPORTED_TYPES) or normalization_of(module) is not None
        if not supported or getattr(module, "return_indices", False):
            found.append((name, module))
    return found


class LRPAlphaBeta(GradientAttribution):
    r"""Layer-wise relevance propagation with the αβ rule (Bach et al. 2015), as a Captum ``GradientAttribution``.

    .. math::

        R_j = \sum_k \Big( \alpha \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+}
              - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^-} \Big) R_k ,
        \qquad R_{\text{output}} = f_c(x)

    Each call patches the model's layers (instance ``forward`` patches, removed in ``finally``) so that one forward
    and one backward pass compute the relevance: Conv/Linear carry αβ relevance as a modified gradient
    (:func:`~captum_wsam.attr.lrp_rules.alpha_beta_forward`), the first Conv/Linear applies ``first_layer``,
    BatchNorms are folded into the layer before them (``canonize``). Supported leaves: ``Conv1d/2d/3d``, ``Linear``,
    ``BatchNorm1d/2d/3d``, max/average pooling (adaptive too), ``ReLU``, ``Dropout``, ``Flatten``, ``Identity``;
    containers (``nn.Sequential``, torchvision ``BasicBlock``/``Bottleneck``…) may add, reshape and average tensors in
    their ``forward``: those linear operations redistribute relevance proportionally.

    Relevance is conserved (:math:`\sum_i R_i = f_c(x)`) when no layer has a bias and, for :math:`\beta > 0`,
    every neuron carrying relevance has both positive and negative contributions (a neuron without negative
    contributions passes on :math:`\alpha R_k`, as the rule is defined). Biases, folded BatchNorms included, absorb
    part of the relevance; :meth:`compute_convergence_delta` reports the difference instead of hiding it.

    Args:
        model: the classifier (an ``nn.Module``); it is left exactly as found.
        alpha: weight of positive contributions, ``alpha >= 1``.
        beta: weight of negative contributions, ``alpha - 1``.
        first_layer: rule of the first Conv/Linear, which must receive the inputs (or a reshaped view of them):
            ``"zbox"`` (z^B for inputs in ``[low, high]``), ``"flat"``, ``"wsquare"`` or ``"alphabeta"``.
        low: lowest input value for ``"zbox"``: a number or a tensor broadcastable to the inputs (e.g. per channel,
            :math:`(1, C, 1, 1)`, for normalized inputs).
        high: highest input value for ``"zbox"``.
        epsilon: stabilizer added to every denominator (with its sign).
        canonize: fold BatchNorms into the preceding Conv/Linear and compute ReLUs out-of-place; without it
            BatchNorms are passed by their gradient (the LRP-0 rule).
        max_pool: ``"winner"`` (winner-take-all) or ``"proportional"`` (to the activations in the window).
        rules: per-layer :class:`AlphaBetaRule`, keyed by module path (``"features.0"``) or type (``nn.Linear``);
            paths win over types and over ``first_layer``.
        normalization: ``(mean, std)`` per channel when the inputs are normalized, :math:`x' = (x - m) / s`
            (torchattacks' ``set_normalization_used`` convention): ``low`` and ``high`` stay in pixel space and
            become :math:`(l - m) / s`, :math:`(h - m) / s`. A ``torchvision.transforms.Normalize`` (or a
            parameter-free module with ``mean`` and ``std``) as the model's first module is folded the same way.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2).eval()
        >>> lrp = LRPAlphaBeta(model, alpha=2.0, beta=1.0)
        >>> x = torch.rand(2, 3, 16, 16)
        >>> relevance, delta = lrp.attribute(x, target=1, return_convergence_delta=True)
        >>> relevance.shape, delta.shape
        (torch.Size([2, 3, 16, 16]), torch.Size([2]))
    """

    def __init__(
        self,
        model: nn.Module,
        alpha: float = 2.0,
        beta: float = 1.0,
        first_layer: str = "zbox",
        low: float | Tensor = 0.0,
        high: float | Tensor = 1.0,
        epsilon: float = 1e-9,
        canonize: bool = True,
        *,
        max_pool: str = "winner",
        rules: Mapping[str | type, AlphaBetaRule] | None = None,
        normalization: tuple[Any, Any] | None = None,
    ) -> None:
        check_type(model, "model", nn.Module)
        check_normalization(normalization)
        self.rule = AlphaBetaRule(alpha, beta)
        check_choice(first_layer, "first_layer", FIRST_LAYER_RULES)
        _check_bound(low, "low")
        _check_bound(high, "high")
        low_t, high_t = torch.as_tensor(low), torch.as_tensor(high)
        try:
            torch.broadcast_shapes(low_t.shape, high_t.shape)
        except RuntimeError as error:
            raise ValueError(f"low and high must broadcast together, got shapes {tuple(low_t.shape)} and "
                             f"{tuple(high_t.shape)}") from error
        if bool((low_t >= high_t).any()):
            raise ValueError(f"low must be < high everywhere, got low={low!r}, high={high!r}")
        check_number(epsilon, "epsilon")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        check_type(canonize, "canonize", bool)
        check_choice(max_pool, "max_pool", MAX_POOL_RULES)
        rules = dict(rules or {})
        for key, value in rules.items():
            if not (isinstance(key, str) or (isinstance(key, type) and issubclass(key, nn.Module))):
                raise TypeError(f"rules keys must be module paths (str) or module types, got {key!r}")
            check_type(value, f"rules[{key!r}]", AlphaBetaRule)
        unknown = [key for key in rules if isinstance(key, str) and key not in dict(model.named_modules())]
        if unknown:
            raise ValueError(f"rules names a module that is not in the model: {unknown[0]!r}")
        _raise_if_unsupported(model)
        super().__init__(model)
        self.model = model
        self.first_layer = first_layer
        if normalization is not None:
            mean, std = (torch.as_tensor(part, dtype=torch.float64).reshape(1, -1, 1, 1) for part in normalization)
            low, high = (torch.as_tensor(low) - mean) / std, (torch.as_tensor(high) - mean) / std
        self.low, self.high, self.epsilon = low, high, float(epsilon)
        self.normalization = normalization
        self.canonize, self.max_pool, self.rules = canonize, max_pool, rules

    @property
    def multiplies_by_inputs(self) -> bool:
        """``True``: relevance is a decomposition of the output, i.e. already "multiplied by the inputs"."""
        return True

    def has_convergence_delta(self) -> bool:
        """``True``: :meth:`compute_convergence_delta` measures how much relevance was absorbed or created."""
        return True

    @log_usage(part_of_slo=True)
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_convergence_delta: bool = False,
    ) -> Tensor | tuple[Tensor] | tuple[Tensor | tuple[Tensor], Tensor]:
        r"""Relevance of every input element for the ``target`` output, by one forward and one backward pass.

        .. math:: R_{\text{output}} = f_c(x) \;\longrightarrow\; R_i = \text{LRP}_{\alpha\beta}(x)_i

        Args:
            inputs: a batch :math:`(B, \dots)` (or a 1-tuple holding it), floating point; within ``[low, high]``
                for ``first_layer="zbox"``.
            target: Captum's target (an int, one index per sample, or ``None`` for a one-output model).
            additional_forward_args: further arguments of the model's ``forward``, after the inputs.
            return_convergence_delta: also return :math:`\sum_i R_i - f_c(x)` per sample.

        Returns:
            The relevance, shape and dtype of ``inputs`` (a 1-tuple when ``inputs`` was one), and with
            ``return_convergence_delta`` the delta, shape :math:`(B,)`.

        Raises:
            TypeError: an unsupported layer (the message names its path) or a badly typed argument.
            ValueError: bad inputs or target; inputs outside ``[low, high]`` for ``"zbox"``.
            RuntimeError: a Conv/Linear/BatchNorm called twice in one forward pass.

        Examples:
            >>> _ = torch.manual_seed(0)
            >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 32, bias=False), nn.ReLU(),
            ...                       nn.Linear(32, 3, bias=False))
            >>> x = torch.rand(4, 3, 2, 2)
            >>> lrp = LRPAlphaBeta(model, alpha=1.0, beta=0.0)
            >>> relevance, delta = lrp.attribute(x, target=0, return_convergence_delta=True)
            >>> relevance.shape, bool(delta.abs().max() < 1e-4)
            (torch.Size([4, 3, 2, 2]), True)
        """
        inputs, is_tuple = _single_input(inputs)
        check_type(return_convergence_delta, "return_convergence_delta", bool)
        check_grad_allowed("LRPAlphaBeta")
        if self.first_layer == "zbox":
            self._check_box(inputs)
        _raise_if_unsupported(self.model)
        extra = _format_additional_forward_args(additional_forward_args) or ()

        # per-thread forward patches and a shared eval mode: concurrent calls leave the model as it was (issue 16);
        # parameters are never touched (every rule reads detached weights), so requires_grad and .grad stay as they are
        with shared_eval_mode(self.model), hook_handles() as handles, torch.enable_grad():
            leaf = (inputs.clone() if inputs.is_inference() else inputs).detach().requires_grad_(True)
            run = _Propagation(self, leaf)
            run.patch(handles)
            output = model_logits(self.model(leaf, *extra))
            if output.dim() == 2:
                check_target(target, output.shape[1], output.shape[0])
            selected = _select_targets(output, target).reshape(len(output), -1).sum(1)
            if run.first is None:
                raise ValueError("the model ran no Conv/Linear layer: LRP αβ has nothing to propagate through")
            (relevance,) = torch.autograd.grad(selected, leaf, torch.ones_like(selected))
            relevance = relevance.detach()
        result: Tensor | tuple[Tensor] = (relevance,) if is_tuple else relevance
        if return_convergence_delta:
            return result, self.compute_convergence_delta(relevance, selected.detach())
        return result

    def compute_convergence_delta(self, attributions: Tensor | tuple[Tensor, ...], output: Tensor) -> Tensor:
        r"""How much relevance was absorbed (biases) or created: :math:`\sum_i R_i - f_c(x)` per sample.

        Args:
            attributions: relevance from :meth:`attribute`, shape :math:`(B, \dots)` (or a tuple of such).
            output: the target outputs :math:`f_c(x)`, shape :math:`(B,)` or :math:`(B, 1)`.

        Returns:
            The delta, shape :math:`(B,)`.

        Examples:
            >>> lrp = LRPAlphaBeta(nn.Linear(3, 2, bias=False))
            >>> lrp.compute_convergence_delta(torch.ones(2, 3), torch.tensor([3.0, 2.5])).tolist()
            [0.0, 0.5]
        """
        parts = attributions if isinstance(attributions, tuple) else (attributions,)
        total = sum(part.reshape(len(part), -1).sum(1) for part in parts)
        return total - output.reshape(len(parts[0]), -1).sum(1)

    def _check_box(self, inputs: Tensor) -> None:
        for bound, name in ((self.low, "low"), (self.high, "high")):
            if isinstance(bound, Tensor):
                try:
                    shape = torch.broadcast_shapes(bound.shape, inputs.shape)
                except RuntimeError as error:
                    raise ValueError(f"{name} of shape {tuple(bound.shape)} does not broadcast to the inputs of "
                                     f"shape {tuple(inputs.shape)}") from error
                if shape != inputs.shape:
                    raise ValueError(f"{name} of shape {tuple(bound.shape)} does not broadcast to the inputs of "
                                     f"shape {tuple(inputs.shape)}")
        low = torch.as_tensor(self.low, dtype=inputs.dtype, device=inputs.device)
        high = torch.as_tensor(self.high, dtype=inputs.dtype, device=inputs.device)
        tol = 1e-5 if self.normalization is not None else 1e-6
        if bool((inputs < low - tol).any()) or bool((inputs > high + tol).any()):
            hint = "" if self.normalization is not None else " (normalized inputs? pass normalization=(mean, std))"
            raise ValueError(
                f"inputs must lie in [low, high] for first_layer='zbox', got values in "
                f"[{inputs.min().item():.4g}, {inputs.max().item():.4g}]{hint}"
            )


def _raise_if_unsupported(model: nn.Module) -> None:
    found = unsupported_layers(model)
    if found:
        path, module = found[0]
        raise TypeError(
            f"LRPAlphaBeta has no rule for module {path or '<root>'!r} ({type(module).__name__}); supported leaves: "
            "Conv1d/2d/3d, Linear, BatchNorm, MaxPool (no indices), AvgPool, ReLU, Dropout, Flatten, Identity"
        )


class _Propagation:
    """The state of one ``attribute()`` call: patched forwards, first layer, layers already called."""

    def __init__(self, lrp: LRPAlphaBeta, leaf: Tensor) -> None:
        self.lrp, self.leaf = lrp, leaf
        self.names = {module: name for name, module in lrp.model.named_modules()}
        self.canonizer = Canonizer(lrp.model, self.names) if lrp.canonize else None
        self.first: nn.Module | None = None
        self.called: set[nn.Module] = set()
        self.normalization: tuple[Tensor, Tensor] | None = None
        self.normalized: Tensor | None = None

    def patch(self, handles: list[Any]) -> None:
        for module in self.lrp.model.modules():
            if normalization_of(module) is not None:
                handles.append(ForwardPatch(module, functools.partial(self.normalize, module, own_forward(module))))
            elif isinstance(module, LINEAR_TYPES):
                handles.append(ForwardPatch(module, functools.partial(self.linear_forward, module)))
            elif isinstance(module, BATCH_NORM_TYPES) and self.canonizer is not None:
                handles.append(ForwardPatch(module, self._once(module, self.canonizer.batch_norm_forward(module))))
            elif isinstance(module, nn.ReLU) and self.canonizer is not None:
                handles.append(ForwardPatch(module, out_of_place_relu))
            elif isinstance(module, MAX_POOL_TYPES) and self.lrp.max_pool == "proportional":
                handles.append(ForwardPatch(module, functools.partial(self.proportional_pool, module)))

    def normalize(self, module: nn.Module, original: Callable[..., Tensor], inputs: Tensor) -> Tensor:
        """A normalizing first module: relevance passes unchanged, its statistics go into the z^B bounds."""
        stats = normalization_of(module)
        assert stats is not None
        with torch.no_grad():
            output = original(inputs)
            mean, std = (part.to(inputs).reshape(1, -1, *([1] * (inputs.dim() - 2))) for part in stats)
            if not isinstance(output, Tensor) or output.shape != inputs.shape or not torch.allclose(
                    output, (inputs - mean) / std, rtol=1e-4, atol=1e-5):
                raise TypeError(f"module {self.names.get(module, '?')!r} ({type(module).__name__}) has mean and std "
                                "but does not compute (x - mean) / std")
        if self.first is not None or not same_tensor(inputs, self.leaf):
            raise TypeError(f"normalizing module {self.names.get(module, '?')!r} must come first in the model "
                            "(it is folded into the first layer's z^B bounds)")
        result = splice(output, [inputs], [torch.ones_like(inputs)])
        self.normalization, self.normalized = (mean, std), result
        return result

    def _mark_called(self, module: nn.Module) -> None:
        if module in self.called:
            raise RuntimeError(
                f"module {self.names.get(module, '?')!r} ({type(module).__name__}) is called more than once in one "
                "forward pass; LRP needs one call per layer (give each use its own module)"
            )
        self.called.add(module)

    def _once(self, module: nn.Module, forward: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        def wrapped(inputs: Tensor) -> Tensor:
            self._mark_called(module)
            return forward(inputs)

        return wrapped

    def _rule(self, module: nn.Module) -> AlphaBetaRule:
        rules = self.lrp.rules
        by_name = rules.get(self.names.get(module, ""))
        if by_name is not None:
            return by_name
        for key, rule in rules.items():
            if isinstance(key, type) and isinstance(module, key):
                return rule
        return self.lrp.rule

    def linear_forward(self, module: nn.Module, inputs: Tensor) -> Tensor:
        self._mark_called(module)
        if self.canonizer is not None:
            weight, bias = self.canonizer.parameters(module)
        else:
            weight, bias = module.weight.detach(), None if module.bias is None else module.bias.detach()
        layer_fn, lrp = layer_function(module), self.lrp
        if self.first is None:
            self.first = module
            output = self._first_layer(module, inputs, weight, bias, layer_fn)
        else:
            rule = self._rule(module)
            output = alpha_beta_forward(inputs, weight, bias, layer_fn=layer_fn, alpha=rule.alpha, beta=rule.beta,
                                        epsilon=lrp.epsilon)
        if self.canonizer is not None:
            self.canonizer.record(module, output)
        return output

    def _first_layer(self, module: nn.Module, inputs: Tensor, weight: Tensor, bias: Tensor | None,
                     layer_fn: Callable[..., Tensor]) -> Tensor:
        lrp, name = self.lrp, self.names.get(module, "")
        from_input = same_tensor(inputs, self.leaf) or (self.normalized is not None
                                                         and same_tensor(inputs, self.normalized))
        if not from_input:
            raise ValueError(
                f"the first Conv/Linear {name!r} must receive the model inputs (or a reshaped view of them) for its "
                "first-layer rule; move preprocessing out of the model"
            )
        rule_name = "alphabeta" if name in lrp.rules else lrp.first_layer
        if rule_name == "alphabeta":
            rule = self._rule(module)
            relevance_fn = functools.partial(alpha_beta_relevance, weight=weight, bias=bias, layer_fn=layer_fn,
                                             alpha=rule.alpha, beta=rule.beta, epsilon=lrp.epsilon)
        elif rule_name == "zbox":
            low, high = lrp.low, lrp.high
            if self.normalization is not None:
                mean, std = self.normalization
                low, high = (torch.as_tensor(low).to(mean) - mean) / std, (torch.as_tensor(high).to(mean) - mean) / std
            relevance_fn = functools.partial(zbox_relevance, weight=weight, layer_fn=layer_fn,
                                             low=_reshaped(low, inputs, self.leaf),
                                             high=_reshaped(high, inputs, self.leaf), epsilon=lrp.epsilon)
        elif rule_name == "flat":
            relevance_fn = functools.partial(flat_relevance, weight=weight, layer_fn=layer_fn, epsilon=lrp.epsilon)
        else:
            relevance_fn = functools.partial(wsquare_relevance, weight=weight, layer_fn=layer_fn, epsilon=lrp.epsilon)
        return relevance_as_gradient(inputs, weight, bias, layer_fn, relevance_fn)

    def proportional_pool(self, module: nn.Module, inputs: Tensor) -> Tensor:
        dims = inputs.dim() - 2
        with torch.no_grad():
            pooled = type(module).forward(module, inputs)
        if isinstance(module, (nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d)):
            pool = getattr(nn.functional, f"adaptive_avg_pool{dims}d")
            sum_pool = functools.partial(pool, output_size=module.output_size)
        else:
            if any(d != 1 for d in nn.modules.utils._ntuple(dims)(module.dilation)):
                raise TypeError(f"max_pool='proportional' needs dilation 1, got {module.dilation} at "
                                f"{self.names.get(module, '?')!r}")
            pool = getattr(nn.functional, f"avg_pool{dims}d")
            sum_pool = functools.partial(pool, kernel_size=module.kernel_size, stride=module.stride,
                                         padding=module.padding, ceil_mode=module.ceil_mode, count_include_pad=True)
        return proportional_pool_forward(inputs, pooled, sum_pool, self.lrp.epsilon)



def _single_input(inputs: Any) -> tuple[Tensor, bool]:
    """The input tensor of an ``attribute()`` call (a tensor or a 1-tuple), checked; and whether it was a tuple."""
    is_tuple = isinstance(inputs, tuple)
    if is_tuple:
        if len(inputs) != 1:
            raise ValueError(f"inputs must be one tensor (or a 1-tuple), got a tuple of {len(inputs)}")
        inputs = inputs[0]
    check_tensor(inputs, "inputs", floating=True)
    if inputs.dim() < 2:
        raise ValueError(f"inputs must have a batch dimension, got shape {tuple(inputs.shape)}")
    check_finite(inputs, "inputs")
    return inputs, is_tuple


def _check_in_box(inputs: Tensor, box: ZBox) -> None:
    """Raise unless ``inputs`` (in pixel space after undoing the box's normalization) lie in ``[low, high]``."""
    pixels = inputs
    if box.normalization is not None:
        mean, std = (torch.as_tensor(part, dtype=inputs.dtype, device=inputs.device).reshape(
            1, -1, *([1] * (inputs.dim() - 2))) for part in box.normalization)
        pixels = inputs * std + mean
    low = torch.as_tensor(box.low, dtype=inputs.dtype, device=inputs.device)
    high = torch.as_tensor(box.high, dtype=inputs.dtype, device=inputs.device)
    try:
        torch.broadcast_shapes(low.shape, inputs.shape)
        torch.broadcast_shapes(high.shape, inputs.shape)
    except RuntimeError as error:
        raise ValueError(f"the ZBox bounds of shapes {tuple(low.shape)} and {tuple(high.shape)} do not broadcast to "
                         f"the inputs of shape {tuple(inputs.shape)}") from error
    tol = 1e-5
    if bool((pixels < low - tol).any()) or bool((pixels > high + tol).any()):
        hint = "" if box.normalization is not None else " (normalized inputs? ZBox(..., normalization=(mean, std)))"
        raise ValueError(f"inputs must lie in the ZBox bounds [low, high], got pixel values in "
                         f"[{pixels.min().item():.4g}, {pixels.max().item():.4g}]{hint}")


def _raise_if_no_rule(model: nn.Module) -> None:
    found = unsupported_modules(model)
    if found:
        path, module = found[0]
        raise TypeError(f"LRP has no rule for module {path or '<root>'!r} ({type(module).__name__}); see "
                        "captum_wsam.attr.lrp_engine for the supported modules")


class LRP(GradientAttribution):
    r"""Layer-wise relevance propagation with any composite of rules (zennit's design), as a Captum
    ``GradientAttribution`` with the ``attribute()`` conventions of :class:`LRPAlphaBeta`.

    Paper: S. Bach et al. (2015), "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise
    Relevance Propagation", PLoS ONE 10(7): e0130140; G. Montavon et al. (2019), "Layer-Wise Relevance Propagation:
    An Overview", LNCS 11700; transformers after A. Ali et al. (2022), arXiv:2202.07304.

    .. math:: R_{\text{output}} = f_c(x), \qquad R_j = \sum_k \frac{a_j \rho(w_{jk})}{\epsilon + \sum_{j'} a_{j'}
              \rho(w_{j'k})} R_k \text{ (per the layer's rule)}, \qquad \sum_i R_i \approx f_c(x)

    One forward and one backward pass (:mod:`captum_wsam.attr.lrp_engine`): Conv/Linear run their rule, BatchNorms
    are folded into the layer before them (or treated as affine layers), element-wise activations pass relevance
    unchanged, LayerNorm and attention propagate conservatively. Every torchvision classification model is covered;
    a module the engine cannot handle raises a ``TypeError`` naming it. The model is left exactly as found, also
    when several threads use it at once.

    Args:
        model: the classifier; may return a tensor, a mapping with ``"logits"`` or an object with ``.logits``.
        composite: the rules (default ``EpsilonPlus(first_layer=ZBox(0.0, 1.0))``).
        canonize: fold BatchNorms into the Conv/Linear they follow.

    Examples:
        >>> import torchvision
        >>> model = torchvision.models.mobilenet_v3_small(num_classes=4).eval()
        >>> from captum_wsam.attr import EpsilonPlus, ZBox
        >>> lrp = LRP(model, composite=EpsilonPlus(first_layer=ZBox(0.0, 1.0)))
        >>> relevance, delta = lrp.attribute(torch.rand(2, 3, 32, 32), target=1, return_convergence_delta=True)
        >>> relevance.shape, delta.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2]))
    """

    def __init__(self, model: nn.Module, composite: Composite | None = None, *, canonize: bool = True) -> None:
        check_type(model, "model", nn.Module)
        if composite is None:
            composite = EpsilonPlus(first_layer=ZBox(0.0, 1.0))
        check_type(composite, "composite", Composite)
        check_type(canonize, "canonize", bool)
        composite.check_names(model)
        _raise_if_no_rule(model)
        super().__init__(model)
        self.model, self.composite, self.canonize = model, composite, canonize

    @property
    def multiplies_by_inputs(self) -> bool:
        """``True``: relevance is a decomposition of the output, i.e. already "multiplied by the inputs"."""
        return True

    def has_convergence_delta(self) -> bool:
        """``True``: :meth:`compute_convergence_delta` measures how much relevance was absorbed or created."""
        return True

    def _run(self, inputs: Tensor, target: TargetType, additional_forward_args: Any, capture: nn.Module | None = None,
             capture_input: bool = False) -> tuple[Tensor, Tensor, Any]:
        """``(gradient at the input or captured tensor, selected outputs, propagation)`` of one pass."""
        check_grad_allowed(type(self).__name__)
        if isinstance(self.composite.first_layer, ZBox):
            _check_in_box(inputs, self.composite.first_layer)
        _raise_if_no_rule(self.model)  # again: the model may have changed since the constructor
        extra = _format_additional_forward_args(additional_forward_args) or ()
        with shared_eval_mode(self.model), hook_handles() as handles, torch.enable_grad():
            leaf = (inputs.clone() if inputs.is_inference() else inputs).detach().requires_grad_(True)
            run = Propagation(self.model, self.composite, leaf, self.canonize, capture, capture_input)
            run.patch(handles)
            output = model_logits(self.model(leaf, *extra))
            if output.dim() == 2:
                check_target(target, output.shape[1], output.shape[0])
            selected = _select_targets(output, target).reshape(len(output), -1).sum(1)
            if run.first is None:
                raise ValueError("the model ran no Conv/Linear layer: LRP has nothing to propagate through")
            if capture is None:
                sources = [leaf]
            else:
                tensors = run.captured if isinstance(run.captured, tuple) else (run.captured,)
                sources = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
                if run.captured is None or not sources:
                    raise ValueError("the layer was not called with a tensor on the path to the output (a layer "
                                     "inside an attention or Squeeze-Excitation block is handled as part of it)")
            grads = torch.autograd.grad(selected, sources, torch.ones_like(selected), allow_unused=True)
        relevance = tuple(run.relevance_of(t, torch.zeros_like(t) if g is None else g)
                          for t, g in zip(sources, grads))
        return relevance, selected.detach(), run

    @log_usage(part_of_slo=True)
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_convergence_delta: bool = False,
    ) -> Tensor | tuple[Tensor] | tuple[Tensor | tuple[Tensor], Tensor]:
        r"""Relevance of every input element for the ``target`` output, by one forward and one backward pass.

        .. math:: R_{\text{output}} = f_c(x) \;\longrightarrow\; R_i = \text{LRP}(x)_i

        Works under the caller's ``torch.no_grad()`` (gradients are turned on for its own pass), inside Captum's
        ``NoiseTunnel`` and ``captum.metrics.sensitivity_max``.

        Args:
            inputs: a batch :math:`(B, \dots)` (or a 1-tuple holding it), floating point and finite; within the
                first layer's ``ZBox`` bounds when it has one.
            target: Captum's target (an int, one index per sample, or ``None`` for a one-output model).
            additional_forward_args: further arguments of the model's ``forward``, after the inputs.
            return_convergence_delta: also return :math:`\sum_i R_i - f_c(x)` per sample.

        Returns:
            The relevance, shape and dtype of ``inputs`` (a 1-tuple when ``inputs`` was one), and with
            ``return_convergence_delta`` the delta, shape :math:`(B,)`.

        Raises:
            TypeError: a module without a rule (the message names its path) or a badly typed argument.
            ValueError: bad or non-finite inputs, inputs outside the box, a bad target.
            RuntimeError: called under ``torch.inference_mode()``.

        Examples:
            >>> _ = torch.manual_seed(0)
            >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8, bias=False), nn.GELU(),
            ...                       nn.Linear(8, 3, bias=False))
            >>> from captum_wsam.attr import Composite, Epsilon
            >>> lrp = LRP(model, composite=Composite([(nn.Linear, Epsilon(0.0))]))
            >>> relevance, delta = lrp.attribute(torch.rand(4, 3, 2, 2), target=0, return_convergence_delta=True)
            >>> relevance.shape, bool(delta.abs().max() < 1e-5)
            (torch.Size([4, 3, 2, 2]), True)
        """
        inputs, is_tuple = _single_input(inputs)
        check_type(return_convergence_delta, "return_convergence_delta", bool)
        (relevance,), selected, _ = self._run(inputs, target, additional_forward_args)
        relevance = relevance.detach()
        result: Tensor | tuple[Tensor] = (relevance,) if is_tuple else relevance
        if return_convergence_delta:
            return result, self.compute_convergence_delta(relevance, selected)
        return result

    def compute_convergence_delta(self, attributions: Tensor | tuple[Tensor, ...], output: Tensor) -> Tensor:
        r"""How much relevance was absorbed (biases) or created: :math:`\sum_i R_i - f_c(x)` per sample.

        Args:
            attributions: relevance from :meth:`attribute`, shape :math:`(B, \dots)` (or a tuple of such).
            output: the target outputs :math:`f_c(x)`, shape :math:`(B,)` or :math:`(B, 1)`.

        Returns:
            The delta, shape :math:`(B,)`.

        Examples:
            >>> lrp = LRP(nn.Linear(3, 2, bias=False))
            >>> lrp.compute_convergence_delta(torch.ones(2, 3), torch.tensor([3.0, 2.5])).tolist()
            [0.0, 0.5]
        """
        parts = attributions if isinstance(attributions, tuple) else (attributions,)
        total = sum(part.reshape(len(part), -1).sum(1) for part in parts)
        return total - output.reshape(len(parts[0]), -1).sum(1)


class LayerLRP(LRP, LayerAttribution):
    r"""Relevance at a layer's output (or input) by the rules of a composite, with Captum's ``LayerLRP``
    conventions.

    .. math:: R_t = t \odot \frac{\partial^{\text{LRP}} f_c}{\partial t} , \qquad \sum R_t \approx f_c(x)

    (Bach et al. 2015, PLoS ONE 10(7): e0130140.)

    Args:
        model: the classifier.
        layer: a module of ``model`` (not one inside an attention or Squeeze-Excitation block).
        composite: the rules (default ``EpsilonPlus(first_layer=ZBox(0.0, 1.0))``).
        canonize: fold BatchNorms into the Conv/Linear they follow.

    Examples:
        >>> import torchvision
        >>> model = torchvision.models.resnet18(num_classes=3).eval()
        >>> layer_lrp = LayerLRP(model, model.layer2)
        >>> relevance = layer_lrp.attribute(torch.rand(2, 3, 32, 32), target=0)
        >>> relevance.shape
        torch.Size([2, 128, 4, 4])
    """

    def __init__(self, model: nn.Module, layer: nn.Module, composite: Composite | None = None, *,
                 canonize: bool = True) -> None:
        LRP.__init__(self, model, composite, canonize=canonize)
        check_submodule(layer, model, "layer")
        LayerAttribution.__init__(self, model, layer)

    @log_usage(part_of_slo=True)
    def attribute(  # type: ignore[override]
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        verbose: bool = False,
    ) -> Tensor | tuple[Tensor, ...] | tuple[Tensor | tuple[Tensor, ...], Tensor]:
        r"""Relevance of the layer's output (or input) for the ``target`` output.

        .. math:: R_t = t \odot g_t

        Args:
            inputs: a batch :math:`(B, \dots)` (or a 1-tuple holding it).
            target: Captum's target.
            additional_forward_args: further arguments of the model's ``forward``.
            return_convergence_delta: also return :math:`\sum R_t - f_c(x)` per sample.
            attribute_to_layer_input: relevance of the layer's (first) input instead of its output.
            verbose: accepted for Captum compatibility (nothing is printed).

        Returns:
            The relevance, shape of the layer's output (a tuple when it returns several tensors), and with
            ``return_convergence_delta`` the delta, shape :math:`(B,)`.

        Examples:
            >>> model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
            >>> LayerLRP(model, model[1]).attribute(torch.rand(3, 4), target=1).shape
            torch.Size([3, 6])
        """
        inputs, _ = _single_input(inputs)
        check_type(return_convergence_delta, "return_convergence_delta", bool)
        check_type(attribute_to_layer_input, "attribute_to_layer_input", bool)
        relevance, selected, _ = self._run(inputs, target, additional_forward_args, self.layer,
                                           attribute_to_layer_input)
        relevance = tuple(r.detach() for r in relevance)
        result: Tensor | tuple[Tensor, ...] = relevance[0] if len(relevance) == 1 else relevance
        if return_convergence_delta:
            return result, self.compute_convergence_delta(relevance, selected)
        return result


def plot_relevance(
    images: Tensor,
    maps: Mapping[str, Tensor],
    *,
    predictions: list[str] | None = None,
) -> Any:
    r"""Images (first column) and one heatmap per method, summed over channels, blue < 0 < red.

    Each heatmap is scaled to its own largest magnitude, :math:`h / \max |h|`, on a symmetric colour scale.

    Args:
        images: :math:`(B, C, H, W)` images in [0, 1].
        maps: method name → relevance or attribution of the same shape (or :math:`(B, 1, H', W')` maps, resized).
        predictions: optional row titles (e.g. predicted classes).

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> fig = plot_relevance(torch.rand(2, 3, 8, 8), {"LRP": torch.randn(2, 3, 8, 8)})
        >>> len(fig.axes)
        4
    """
    import matplotlib.pyplot as plt

    check_images(images, "images")
    rows, cols = len(images), len(maps) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.8 * rows), squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(images[row].detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        axes[row, 0].set_ylabel(predictions[row] if predictions else "", fontsize=8)
        for col, (name, values) in enumerate(maps.items(), start=1):
            heat = values[row : row + 1].detach().float().sum(1, keepdim=True)
            heat = nn.functional.interpolate(heat, size=images.shape[-2:], mode="bilinear")[0, 0]
            scale = heat.abs().max().clamp_min(1e-12)
            axes[row, col].imshow((heat / scale).cpu().numpy(), cmap="seismic", vmin=-1, vmax=1)
            if row == 0:
                axes[row, col].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


def _reshaped(bound: float | Tensor, inputs: Tensor, leaf: Tensor) -> float | Tensor:
    """A tensor bound given for the model inputs, viewed like the first layer's inputs (e.g. after ``Flatten``)."""
    if not isinstance(bound, Tensor):
        return bound
    return bound.to(inputs).expand(leaf.shape).reshape(inputs.shape)


__all__ = [
    "FIRST_LAYER_RULES",
    "LRP",
    "SUPPORTED_TYPES",
    "AlphaBetaRule",
    "LRPAlphaBeta",
    "LayerLRP",
    "plot_relevance",
    "unsupported_layers",
]
