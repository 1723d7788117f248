r"""LRP rule objects: small frozen objects configuring the engine of :class:`captum_wsam.attr.LRP` for one layer
(zennit's design: adding a rule touches this file only).

Paper: G. Montavon, W. Samek, K.-R. Müller (2018), "Methods for interpreting and understanding deep neural networks",
Digital Signal Processing 73:1–15, arXiv:1706.07979 (the overview named by seed 001); the rules are from S. Bach et
al. (2015, ε and αβ, DOI 10.1371/journal.pone.0130140), Montavon et al. (2017, z⁺ and z^B, arXiv:1512.02479) and
Montavon et al. (2019, γ, flat, w²). Every rule instantiates the generic rule of a Conv/Linear layer

.. math::

    R_j = \sum_k \frac{a_j \rho(w_{jk})}{\epsilon + \sum_{j'} a_{j'} \rho(w_{j'k})} R_k ,

either as a spliced gradient (:meth:`Rule.forward`, tensor maths in :mod:`captum_wsam.attr.lrp_splice`) or
explicitly for the first layer (:meth:`Rule.relevance`, tensor maths in :mod:`captum_wsam.attr.lrp_relevance`).
The tensor maths of both modules is re-exported here (its former home), so ``from captum_wsam.attr.lrp_rules import
alpha_beta_forward`` keeps working.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._checks import check_finite, check_normalization, check_number, check_tensor
from .lrp_relevance import (
    LayerFn,
    alpha_beta_forward,
    alpha_beta_relevance,
    flat_relevance,
    stabilize,
    wsquare_relevance,
    zbox_relevance,
)
from .lrp_splice import (
    epsilon_forward,
    gamma_forward,
    pass_forward,
    proportional_pool_forward,
    relevance_as_gradient,
    splice,
    zplus_forward,
)


class Rule:
    """A propagation rule: a small object configuring the engine of :class:`~captum_wsam.attr.LRP` for one layer.

    A rule for Conv/Linear layers (and BatchNorms treated as affine layers) implements :meth:`forward`, returning the
    layer's output with a modified gradient; a rule that computes relevance directly (``explicit = True``) implements
    :meth:`relevance` and may only be used where the layer receives the model's input; a rule for element-wise
    activations implements :meth:`elementwise`.

    Examples:
        >>> Epsilon(1e-6).forward(torch.rand(2, 3), torch.randn(4, 3), None, torch.nn.functional.linear).shape
        torch.Size([2, 4])
    """

    explicit: bool = False

    def forward(self, inputs: Tensor, weight: Tensor, bias: Tensor | None, layer_fn: LayerFn) -> Tensor:
        """The layer's output, its gradient carrying this rule's relevance (``R = z ⊙ g``)."""
        raise TypeError(f"{self!r} is not a rule for Conv/Linear layers")

    def relevance(self, inputs: Tensor, relevance: Tensor, weight: Tensor, bias: Tensor | None,
                  layer_fn: LayerFn) -> Tensor:
        """Relevance of the inputs from the relevance of the outputs (explicit rules only)."""
        raise TypeError(f"{self!r} does not compute relevance explicitly")

    def elementwise(self, inputs: Tensor, output: Tensor) -> Tensor:
        """The output of an element-wise activation, its gradient carrying this rule's relevance."""
        raise TypeError(f"{self!r} is not a rule for element-wise activations (use Pass())")


def _check_stabilizer(value: Any, name: str) -> None:
    check_number(value, name)
    if value < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")


@dataclass(frozen=True)
class Epsilon(Rule):
    r"""LRP-ε (Bach et al. 2015, DOI 10.1371/journal.pone.0130140): :func:`epsilon_forward`.

    .. math:: R_j = \sum_k \frac{a_j w_{jk}}{z_k + \epsilon \operatorname{sign}(z_k)} R_k

    Args:
        epsilon: the stabilizer, ``>= 0`` (``0``: LRP-0).

    Examples:
        >>> Epsilon(0.25)
        Epsilon(epsilon=0.25)
    """

    epsilon: float = 1e-6

    def __post_init__(self) -> None:
        _check_stabilizer(self.epsilon, "epsilon")

    def forward(self, inputs: Tensor, weight: Tensor, bias: Tensor | None, layer_fn: LayerFn) -> Tensor:
        return epsilon_forward(inputs, weight, bias, layer_fn=layer_fn, epsilon=self.epsilon)


@dataclass(frozen=True)
class ZPlus(Rule):
    r"""LRP-z⁺ (Montavon et al. 2017, arXiv:1512.02479): :func:`zplus_forward`.

    .. math:: R_j = \sum_k \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+ + b_k^+} R_k

    Args:
        stabilizer: added to the denominators, ``>= 0``.

    Examples:
        >>> ZPlus()
        ZPlus(stabilizer=1e-06)
    """

    stabilizer: float = 1e-6

    def __post_init__(self) -> None:
        _check_stabilizer(self.stabilizer, "stabilizer")

    def forward(self, inputs: Tensor, weight: Tensor, bias: Tensor | None, layer_fn: LayerFn) -> Tensor:
        return zplus_forward(inputs, weight, bias, layer_fn=layer_fn, stabilizer=self.stabilizer)


@dataclass(frozen=True)
class Gamma(Rule):
    r"""Generalized LRP-γ (Montavon et al. 2019; Andéol et al. 2021, arXiv:2012.06318): :func:`gamma_forward`.

    .. math:: R_j = \sum_k \frac{a_j (w_{jk} + \gamma w^{\pm}_{jk})}{z_k + \gamma z^{\pm}_k} R_k

    Args:
        gamma: weight of the added same-sign contributions, ``>= 0``.
        stabilizer: added to the denominators, ``>= 0``.

    Examples:
        >>> Gamma(0.25)
        Gamma(gamma=0.25, stabilizer=1e-06)
    """

    gamma: float = 0.25
    stabilizer: float = 1e-6

    def __post_init__(self) -> None:
        _check_stabilizer(self.gamma, "gamma")
        _check_stabilizer(self.stabilizer, "stabilizer")

    def forward(self, inputs: Tensor, weight: Tensor, bias: Tensor | None, layer_fn: LayerFn) -> Tensor:
        return gamma_forward(inputs, weight, bias, layer_fn=layer_fn, gamma=self.gamma, stabilizer=self.stabilizer)


@dataclass(frozen=True)
class AlphaBeta(Rule):
    r"""LRP-αβ (Bach et al. 2015): :func:`alpha_beta_forward`.

    .. math:: R_j = \sum_k \Big(\alpha \frac{(a_j w_{jk})^+}{z^+_k} - \beta \frac{(a_j w_{jk})^-}{z^-_k}\Big) R_k,
              \qquad \alpha - \beta = 1

    Args:
        alpha: weight of positive contributions, ``>= 1``.
        beta: weight of negative contributions, ``alpha - 1``.
        stabilizer: added to the denominators (with their sign), ``>= 0``.

    Examples:
        >>> AlphaBeta(1.0, 0.0).beta
        0.0
        >>> AlphaBeta(2.0, 2.0)
        Traceback (most recent call last):
        ...
        ValueError: beta must equal alpha - 1 = 1.0 (relevance conservation), got 2.0
    """

    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6

    def __post_init__(self) -> None:
        check_number(self.alpha, "alpha")
        check_number(self.beta, "beta")
        _check_stabilizer(self.stabilizer, "stabilizer")
        if self.alpha < 1:
            raise ValueError(f"alpha must be >= 1, got {self.alpha!r}")
        if not math.isclose(self.beta, self.alpha - 1, rel_tol=0.0, abs_tol=1e-12):
            raise ValueError(
                f"beta must equal alpha - 1 = {self.alpha - 1} (relevance conservation), got {self.beta!r}"
            )

    def forward(self, inputs: Tensor, weight: Tensor, bias: Tensor | None, layer_fn: LayerFn) -> Tensor:
        return alpha_beta_forward(inputs, weight, bias, layer_fn=layer_fn, alpha=self.alpha, beta=self.beta,
                                  epsilon=self.stabilizer)


@dataclass(frozen=True)
class Flat(Rule):
    r"""Flat rule (Lapuschkin et al. 2019, DOI 10.1038/s41467-019-08987-4) for the layer receiving the input:
    :func:`flat_relevance`.

    .. math:: R_j = \sum_k \frac{1}{\sum_{j'} 1} R_k

    Args:
        stabilizer: added to the denominators, ``>= 0``.

    Examples:
        >>> Flat().explicit
        True
    """

    stabilizer: float = 1e-6
    explicit: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_stabilizer(self.stabilizer, "stabilizer")

    def relevance(self, inputs: Tensor, relevance: Tensor, weight: Tensor, bias: Tensor | None,
                  layer_fn: LayerFn) -> Tensor:
        return flat_relevance(inputs, relevance, weight, layer_fn=layer_fn, epsilon=self.stabilizer)


@dataclass(frozen=True)
class WSquare(Rule):
    r"""w² rule (Montavon et al. 2017, arXiv:1512.02479) for the layer receiving unbounded inputs:
    :func:`wsquare_relevance`.

    .. math:: R_j = \sum_k \frac{w_{jk}^2}{\sum_{j'} w_{j'k}^2} R_k

    Args:
        stabilizer: added to the denominators, ``>= 0``.

    Examples:
        >>> WSquare(stabilizer=0.0)
        WSquare(stabilizer=0.0)
    """

    stabilizer: float = 1e-6
    explicit: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        _check_stabilizer(self.stabilizer, "stabilizer")

    def relevance(self, inputs: Tensor, relevance: Tensor, weight: Tensor, bias: Tensor | None,
                  layer_fn: LayerFn) -> Tensor:
        return wsquare_relevance(inputs, relevance, weight, layer_fn=layer_fn, epsilon=self.stabilizer)


def _bound(value: Any, name: str) -> float | Tensor:
    if isinstance(value, Tensor):
        check_tensor(value, name, floating=True)
        check_finite(value, name)
        return value.detach()
    check_number(value, name)
    return float(value)


def _channel_view(values: Sequence[float] | Tensor, like: Tensor) -> Tensor:
    """Per-channel values viewed as :math:`(1, C, 1, \\dots)` for inputs shaped like ``like``."""
    tensor = torch.as_tensor(values, dtype=like.dtype, device=like.device).reshape(-1)
    return tensor.reshape(1, -1, *([1] * max(like.dim() - 2, 0)))


@dataclass(frozen=True, eq=False)
class ZBox(Rule):
    r"""z^B rule (Montavon et al. 2017, arXiv:1512.02479) for inputs in a box ``low <= x <= high``:
    :func:`zbox_relevance`.

    .. math:: R_j = \sum_k \frac{x_j w_{jk} - l_j w_{jk}^+ - h_j w_{jk}^-}
                              {\sum_{j'} x_{j'} w_{j'k} - l_{j'} w_{j'k}^+ - h_{j'} w_{j'k}^-} R_k

    Args:
        low: the lowest pixel value (a number or a tensor broadcastable to the inputs), in pixel space.
        high: the highest pixel value.
        stabilizer: added to the denominators, ``>= 0``.
        normalization: ``(mean, std)`` per channel when the inputs arrive normalized, :math:`x' = (x - m) / s`
            (torchattacks' ``set_normalization_used`` convention): the bounds become :math:`(l - m) / s` and
            :math:`(h - m) / s`. A ``torchvision.transforms.Normalize`` first layer of the model is folded in the
            same way without this argument.

    Raises:
        ValueError: non-finite bounds or statistics, ``low >= high``.

    Examples:
        >>> box = ZBox(0.0, 1.0, normalization=((0.5,), (0.25,)))
        >>> [t.flatten().tolist() for t in box.bounds(torch.zeros(1, 1, 2, 2))]
        [[-2.0], [2.0]]
    """

    low: float | Tensor = 0.0
    high: float | Tensor = 1.0
    stabilizer: float = 1e-6
    normalization: tuple[Any, Any] | None = None
    explicit: bool = field(default=True, init=False, repr=False)

    def __post_init__(self) -> None:
        low, high = _bound(self.low, "low"), _bound(self.high, "high")
        _check_stabilizer(self.stabilizer, "stabilizer")
        check_normalization(self.normalization)
        low_t, high_t = torch.as_tensor(low), torch.as_tensor(high)
        try:
            torch.broadcast_shapes(low_t.shape, high_t.shape)
        except RuntimeError as error:
            raise ValueError(f"low and high must broadcast together, got shapes {tuple(low_t.shape)} and "
                             f"{tuple(high_t.shape)}") from error
        if bool((low_t >= high_t).any()):
            raise ValueError(f"low must be < high everywhere, got low={self.low!r}, high={self.high!r}")
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def bounds(self, inputs: Tensor, normalization: tuple[Any, Any] | None = None) -> tuple[Tensor, Tensor]:
        """``(low, high)`` in the space of ``inputs``, for the rule's or the model's ``normalization``."""
        low = torch.as_tensor(self.low, dtype=inputs.dtype, device=inputs.device)
        high = torch.as_tensor(self.high, dtype=inputs.dtype, device=inputs.device)
        for stats in (self.normalization, normalization):
            if stats is not None:
                mean, std = (_channel_view(part, inputs) for part in stats)
                low, high = (low - mean) / std, (high - mean) / std
        return low, high

    def relevance(self, inputs: Tensor, relevance: Tensor, weight: Tensor, bias: Tensor | None,
                  layer_fn: LayerFn, *, low: Tensor | None = None, high: Tensor | None = None) -> Tensor:
        if low is None or high is None:
            low, high = self.bounds(inputs)
        return zbox_relevance(inputs, relevance, weight, layer_fn=layer_fn, low=low, high=high,
                              epsilon=self.stabilizer)


@dataclass(frozen=True)
class Pass(Rule):
    r"""Pass rule for element-wise activations (ReLU6, SiLU, Hardswish, GELU…): :func:`pass_forward`.

    .. math:: R_{\text{in}} = R_{\text{out}}

    As in zennit and Ali et al. (2022), "XAI for Transformers: Better Explanations through Conservative
    Propagation", arXiv:2202.07304; for ReLU it equals the gradient.

    Examples:
        >>> x = torch.tensor([-2.0, 3.0], requires_grad=True)
        >>> out = Pass().elementwise(x, torch.nn.functional.silu(x.detach()))
        >>> torch.allclose(x * torch.autograd.grad(out.sum(), x)[0], out)
        True
    """

    def elementwise(self, inputs: Tensor, output: Tensor) -> Tensor:
        return pass_forward(inputs, output)


__all__ = [
    "AlphaBeta",
    "Epsilon",
    "Flat",
    "Gamma",
    "LayerFn",
    "Pass",
    "Rule",
    "WSquare",
    "ZBox",
    "ZPlus",
    "alpha_beta_forward",
    "alpha_beta_relevance",
    "epsilon_forward",
    "flat_relevance",
    "gamma_forward",
    "pass_forward",
    "proportional_pool_forward",
    "relevance_as_gradient",
    "splice",
    "stabilize",
    "wsquare_relevance",
    "zbox_relevance",
    "zplus_forward",
]
