r"""The propagation of :class:`~captum_wsam.attr.LRPAlphaBeta`: its per-layer αβ rules (:class:`AlphaBetaRule`), the
first-layer rules named by strings (``"zbox"``, ``"flat"``, ``"wsquare"``, ``"alphabeta"``) and the forward patches of
one ``attribute()`` call.

Paper: S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller, W. Samek (2015), "On Pixel-Wise Explanations
for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7): e0130140,
DOI 10.1371/journal.pone.0130140; first-layer rules from G. Montavon, S. Lapuschkin, A. Binder, W. Samek,
K.-R. Müller (2017), "Explaining nonlinear classification decisions with deep Taylor decomposition",
arXiv:1512.02479:

.. math::

    R_j = \sum_k \Big( \alpha \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+}
          - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^-} \Big) R_k , \qquad \alpha - \beta = 1 .

Conv/Linear layers run :func:`~captum_wsam.attr.lrp_relevance.alpha_beta_forward`, the first layer hands its inputs
their relevance through :func:`~captum_wsam.attr.lrp_relevance.relevance_as_gradient`, max-pooling is winner-take-all
or proportional. The rule objects of the newer :class:`~captum_wsam.attr.LRP` engine are in
:mod:`captum_wsam.attr.lrp_rules`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_number
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
)
from .lrp_relevance import (
    alpha_beta_forward,
    alpha_beta_relevance,
    flat_relevance,
    wsquare_relevance,
    zbox_relevance,
)
from .lrp_splice import proportional_pool_forward, relevance_as_gradient, splice

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


class _Propagation:
    """The state of one ``attribute()`` call: patched forwards, first layer, layers already called."""

    def __init__(self, lrp: Any, leaf: Tensor) -> None:  # lrp: the LRPAlphaBeta (no import: no circle)
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


def _reshaped(bound: float | Tensor, inputs: Tensor, leaf: Tensor) -> float | Tensor:
    """A tensor bound given for the model inputs, viewed like the first layer's inputs (e.g. after ``Flatten``)."""
    if not isinstance(bound, Tensor):
        return bound
    return bound.to(inputs).expand(leaf.shape).reshape(inputs.shape)


__all__ = [
    "FIRST_LAYER_RULES",
    "MAX_POOL_RULES",
    "MAX_POOL_TYPES",
    "PASS_THROUGH_TYPES",
    "SUPPORTED_TYPES",
    "AlphaBetaRule",
]
