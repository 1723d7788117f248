r"""LRP propagation rules: the tensor maths (αβ, ε, γ, z⁺, z^B, flat, w², pass) and the rule objects configuring the
engine of :class:`captum_wsam.attr.LRP` (zennit's design: adding a rule touches this file only).

Paper: G. Montavon, W. Samek, K.-R. Müller (2018), "Methods for interpreting and understanding deep neural networks",
Digital Signal Processing 73:1–15, arXiv:1706.07979 (the overview named by seed 001). The αβ rule is from
S. Bach et al. (2015), "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise Relevance
Propagation", PLoS ONE 10(7): e0130140, DOI 10.1371/journal.pone.0130140:

.. math::

    R_j = \sum_k \Big( \alpha \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+ + b_k^+}
          - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^- + b_k^-} \Big) R_k,
    \qquad \alpha - \beta = 1 .

Every function takes a *layer function* ``layer_fn(inputs, weight, bias)`` (``torch.nn.functional.linear`` or a
convolution with its stride/padding bound, e.g. ``conv._conv_forward``), so one implementation serves Linear and
Conv1d/2d/3d. Two forms are provided:

- ``*_relevance(inputs, relevance, ...)`` maps the relevance of a layer's outputs to its inputs explicitly, following
  the recipe of Montavon et al. (2019, "Layer-Wise Relevance Propagation: An Overview"): :math:`z = \rho(w) a`,
  :math:`s = R / z`, :math:`c = \rho(w)^\top s`, :math:`R = a \odot c`;
- :func:`alpha_beta_forward` is the same αβ rule as a *modified gradient*: it returns the layer's output whose
  gradient, read as :math:`g = R / z`, carries αβ relevance. Chained through a network (ReLU, max- and average pooling
  and additions keep their ordinary gradients) one autograd backward pass yields the relevance
  :math:`R = a \odot \partial f_c / \partial a` at every layer: that is how :class:`captum_wsam.attr.LRPAlphaBeta`
  runs in about the time of one forward and backward pass.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from .._checks import check_finite, check_normalization, check_number, check_tensor

#: ``layer_fn(inputs, weight, bias) -> outputs``: a linear map with its hyper-parameters (stride, padding…) bound.
LayerFn = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]


def stabilize(denominator: Tensor, epsilon: float) -> Tensor:
    r"""Move a denominator away from zero by ``epsilon``, keeping its sign (zero counts as positive).

    .. math:: z \mapsto z + \epsilon \cdot (\mathbb{1}[z \geq 0] - \mathbb{1}[z < 0])

    Args:
        denominator: any tensor.
        epsilon: the stabilizer, ``>= 0``.

    Returns:
        A tensor of the same shape, with no zeros when ``epsilon > 0``.

    Examples:
        >>> stabilize(torch.tensor([-2.0, 0.0, 3.0]), 0.5).tolist()
        [-2.5, 0.5, 3.5]
    """
    sign = (denominator >= 0).to(denominator.dtype) * 2 - 1  # in the denominator's dtype (float64 stays exact)
    return denominator + sign * epsilon


def _split(tensor: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    if tensor is None:
        return None, None
    return tensor.clamp(min=0), tensor.clamp(max=0)


def _leaf(tensor: Tensor) -> Tensor:
    return tensor.detach().requires_grad_(True)


def alpha_beta_relevance(
    inputs: Tensor,
    relevance: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    alpha: float = 2.0,
    beta: float = 1.0,
    epsilon: float = 1e-9,
) -> Tensor:
    r"""αβ rule (Bach et al. 2015) for inputs of any sign: positive and negative contributions are redistributed apart.

    .. math::

        z^+_k = \sum_j (a_j w_{jk})^+ + b_k^+, \quad z^-_k = \sum_j (a_j w_{jk})^- + b_k^-, \quad
        R_j = \sum_k \Big(\alpha \frac{(a_j w_{jk})^+}{z^+_k} - \beta \frac{(a_j w_{jk})^-}{z^-_k}\Big) R_k

    with :math:`(a_j w_{jk})^+ = a_j^+ w_{jk}^+ + a_j^- w_{jk}^-` and denominators moved from zero by
    :func:`stabilize`. Biases absorb relevance (the "leak"): :math:`\sum_j R_j = \sum_k R_k` only when they are zero.

    Args:
        inputs: the layer's input :math:`a`, shape :math:`(B, \dots)`.
        relevance: relevance of the layer's outputs, shape of ``layer_fn(inputs, weight, bias)``.
        weight: the layer's weight.
        bias: the layer's bias or ``None``.
        layer_fn: ``layer_fn(inputs, weight, bias)``; default ``torch.nn.functional.linear``.
        alpha: weight of positive contributions, ``alpha >= 1``.
        beta: weight of negative contributions, ``alpha - 1``.
        epsilon: stabilizer of the denominators.

    Returns:
        Relevance of the inputs, shape of ``inputs``.

    Examples:
        >>> x, w = torch.tensor([[1.0, 2.0]]), torch.tensor([[1.0, -1.0]])
        >>> alpha_beta_relevance(x, torch.tensor([[-1.0]]), w, alpha=2.0, beta=1.0).tolist()
        [[-2.0, 1.0]]
    """
    x_pos, x_neg = _split(inputs)
    w_pos, w_neg = _split(weight)
    b_pos, b_neg = _split(bias)
    with torch.enable_grad():
        leaves = (_leaf(x_pos), _leaf(x_neg))
        z_pos = layer_fn(leaves[0], w_pos, b_pos) + layer_fn(leaves[1], w_neg, None)
        grads = torch.autograd.grad(z_pos, leaves, relevance / stabilize(z_pos.detach(), epsilon))
        result = alpha * (x_pos * grads[0] + x_neg * grads[1])
        if beta != 0:
            z_neg = layer_fn(leaves[0], w_neg, b_neg) + layer_fn(leaves[1], w_pos, None)
            grads = torch.autograd.grad(z_neg, leaves, relevance / stabilize(z_neg.detach(), epsilon))
            result = result - beta * (x_pos * grads[0] + x_neg * grads[1])
    return result


def _expand(bound: float | Tensor, like: Tensor) -> Tensor:
    return torch.as_tensor(bound, dtype=like.dtype, device=like.device).expand_as(like)


def zbox_relevance(
    inputs: Tensor,
    relevance: Tensor,
    weight: Tensor,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    low: float | Tensor = 0.0,
    high: float | Tensor = 1.0,
    epsilon: float = 1e-9,
) -> Tensor:
    r"""z^B rule for inputs bounded by ``low <= x <= high`` (Montavon et al. 2017, Pattern Recognition 65:211–222,
    "Explaining nonlinear classification decisions with deep Taylor decomposition", arXiv:1512.02479).

    .. math::

        R_j = \sum_k \frac{x_j w_{jk} - l_j w_{jk}^+ - h_j w_{jk}^-}
                          {\sum_{j'} x_{j'} w_{j'k} - l_{j'} w_{j'k}^+ - h_{j'} w_{j'k}^-} R_k

    The bias does not enter (it cancels, as in zennit's ``ZBox``), so the rule conserves relevance.

    Args:
        inputs: the layer's input :math:`x`, shape :math:`(B, \dots)`.
        relevance: relevance of the layer's outputs.
        weight: the layer's weight.
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        low: lowest input value :math:`l` (a number or a tensor broadcastable to ``inputs``).
        high: highest input value :math:`h`.
        epsilon: stabilizer of the denominators.

    Returns:
        Relevance of the inputs, shape of ``inputs``.

    Examples:
        >>> x, w = torch.tensor([[0.5, 0.0]]), torch.tensor([[1.0, -1.0]])
        >>> zbox_relevance(x, torch.tensor([[3.0]]), w).tolist()
        [[1.0, 2.0]]
    """
    low, high = _expand(low, inputs), _expand(high, inputs)
    w_pos, w_neg = _split(weight)
    with torch.enable_grad():
        leaves = (_leaf(inputs), _leaf(low), _leaf(high))
        z = layer_fn(leaves[0], weight, None) - layer_fn(leaves[1], w_pos, None) - layer_fn(leaves[2], w_neg, None)
        grads = torch.autograd.grad(z, leaves, relevance / stabilize(z.detach(), epsilon))
    return inputs * grads[0] + low * grads[1] + high * grads[2]


def _uniform_relevance(inputs: Tensor, relevance: Tensor, weight: Tensor, layer_fn: LayerFn, epsilon: float) -> Tensor:
    with torch.enable_grad():
        ones = _leaf(torch.ones_like(inputs))
        z = layer_fn(ones, weight, None)
        (grad,) = torch.autograd.grad(z, ones, relevance / stabilize(z.detach(), epsilon))
    return grad


def flat_relevance(
    inputs: Tensor,
    relevance: Tensor,
    weight: Tensor,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    epsilon: float = 1e-9,
) -> Tensor:
    r"""Flat rule: each output's relevance is spread evenly over its receptive field (Lapuschkin et al. 2019,
    "Unmasking Clever Hans predictors and assessing what machines really learn", Nat. Commun. 10:1096,
    DOI 10.1038/s41467-019-08987-4).

    .. math:: R_j = \sum_k \frac{1}{\sum_{j'} 1} R_k \quad (j, j' \text{ in the receptive field of } k)

    Args:
        inputs: the layer's input, shape :math:`(B, \dots)` (only its shape is used).
        relevance: relevance of the layer's outputs.
        weight: the layer's weight (only its shape is used).
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        epsilon: stabilizer of the denominators.

    Returns:
        Relevance of the inputs, shape of ``inputs``.

    Examples:
        >>> flat_relevance(torch.rand(1, 4), torch.tensor([[2.0]]), torch.randn(1, 4)).tolist()
        [[0.5, 0.5, 0.5, 0.5]]
    """
    return _uniform_relevance(inputs, relevance, torch.ones_like(weight), layer_fn, epsilon)


def wsquare_relevance(
    inputs: Tensor,
    relevance: Tensor,
    weight: Tensor,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    epsilon: float = 1e-9,
) -> Tensor:
    r"""w² rule for unbounded inputs (Montavon et al. 2017, arXiv:1512.02479): redistribution by squared weights.

    .. math:: R_j = \sum_k \frac{w_{jk}^2}{\sum_{j'} w_{j'k}^2} R_k

    (no bias in the denominator, as in the paper, so the rule conserves relevance).

    Args:
        inputs: the layer's input, shape :math:`(B, \dots)` (only its shape is used).
        relevance: relevance of the layer's outputs.
        weight: the layer's weight.
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        epsilon: stabilizer of the denominators.

    Returns:
        Relevance of the inputs, shape of ``inputs``.

    Examples:
        >>> wsquare_relevance(torch.rand(1, 2), torch.tensor([[5.0]]), torch.tensor([[1.0, -2.0]])).tolist()
        [[1.0, 4.0]]
    """
    return _uniform_relevance(inputs, relevance, weight.square(), layer_fn, epsilon)


def alpha_beta_forward(
    inputs: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    alpha: float = 2.0,
    beta: float = 1.0,
    epsilon: float = 1e-9,
) -> Tensor:
    r"""The layer's output :math:`z`, with a gradient that carries αβ relevance (the "gradient trick").

    With :math:`g = \partial f / \partial z` read as :math:`R / z`, the gradient reaching the inputs is

    .. math::

        \frac{\partial f}{\partial a_j} = \sum_k \Big(\alpha\, \frac{w^\pm_{jk}\, z_k}{z^+_k}
            - \beta\, \frac{w^\mp_{jk}\, z_k}{z^-_k}\Big) g_k ,

    (:math:`w^\pm` is :math:`w^+` for :math:`a_j > 0` and :math:`w^-` for :math:`a_j < 0`), so that
    :math:`a_j\, \partial f / \partial a_j` equals :func:`alpha_beta_relevance` of :math:`R = z \odot g`. The output
    is :math:`z = z^+ + z^-` (the layer run with :math:`w^+, b^+` and with :math:`w^-, b^-`); a small autograd
    function splices the factors :math:`\alpha z / z^+` and :math:`-\beta z / z^-` into the gradient, so the backward
    pass costs the transposed layer once per term (once in all for :math:`\beta = 0`). Non-negative inputs (after a
    ReLU) take this two-convolution path; inputs of mixed sign are split into :math:`a^+` and :math:`a^-`.

    Args:
        inputs: the layer's input, shape :math:`(B, \dots)`.
        weight: the layer's weight.
        bias: the layer's bias or ``None``.
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        alpha: weight of positive contributions, ``alpha >= 1``.
        beta: weight of negative contributions, ``alpha - 1``.
        epsilon: stabilizer of the denominators.

    Returns:
        The layer's output (values of ``layer_fn(inputs, weight, bias)``), differentiable with respect to ``inputs``.

    Examples:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> w = torch.tensor([[1.0, -1.0]])
        >>> out = alpha_beta_forward(x, w)
        >>> (grad,) = torch.autograd.grad(out, x, torch.ones_like(out))
        >>> out.tolist(), (x * grad).tolist()
        ([[-1.0]], [[-2.0, 1.0]])
    """
    w_pos, w_neg = _split(weight)
    b_pos, b_neg = _split(bias)
    if bool(inputs.min() < 0):
        x_pos, x_neg = inputs.clamp(min=0), inputs.clamp(max=0)
        z_pos = layer_fn(x_pos, w_pos, b_pos) + layer_fn(x_neg, w_neg, None)  # >= 0
        z_neg = layer_fn(x_pos, w_neg, b_neg) + layer_fn(x_neg, w_pos, None)  # <= 0
    else:
        z_pos, z_neg = layer_fn(inputs, w_pos, b_pos), layer_fn(inputs, w_neg, b_neg)
    return _AlphaBetaSplice.apply(z_pos, z_neg, float(alpha), float(beta), float(epsilon))


class _AlphaBetaSplice(torch.autograd.Function):
    """Forward: ``z = z⁺ + z⁻``; backward: ``g ↦ (α z / z⁺ · g, −β z / z⁻ · g)`` to the two parts."""

    @staticmethod
    def forward(ctx, z_pos, z_neg, alpha, beta, epsilon):  # type: ignore[override]
        z = z_pos + z_neg
        # z⁺ >= 0 and z⁻ <= 0, so stabilize() reduces to +ε and −ε (an exact zero z⁻ carries no contribution,
        # whatever its stabilizer).
        factor_pos = torch.div(z, z_pos + epsilon).mul_(alpha)
        factor_neg = torch.div(z, z_neg - epsilon).mul_(-beta) if beta != 0 else None
        ctx.save_for_backward(factor_pos, factor_neg)
        return z

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        factor_pos, factor_neg = ctx.saved_tensors
        grad_neg = None if factor_neg is None else grad_output * factor_neg
        return grad_output * factor_pos, grad_neg, None, None, None


class _RelevanceAsGradient(torch.autograd.Function):
    """Forward: ``layer_fn(x, weight, bias)``; backward: the relevance of ``x`` from a rule, given ``R = z ⊙ g``."""

    @staticmethod
    def forward(ctx, inputs, weight, bias, layer_fn, relevance_fn):  # type: ignore[override]
        ctx.save_for_backward(inputs)
        ctx.weight, ctx.bias, ctx.layer_fn, ctx.relevance_fn = weight, bias, layer_fn, relevance_fn
        return layer_fn(inputs, weight, bias)

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        (inputs,) = ctx.saved_tensors
        with torch.no_grad():
            relevance = ctx.layer_fn(inputs, ctx.weight, ctx.bias) * grad_output
        return ctx.relevance_fn(inputs, relevance), None, None, None, None


def relevance_as_gradient(
    inputs: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    layer_fn: LayerFn,
    relevance_fn: Callable[[Tensor, Tensor], Tensor],
) -> Tensor:
    r"""The layer's output, whose backward pass hands the inputs their *relevance* (not a gradient).

    Used for the first layer: the gradient :math:`g` arriving at its output is turned into
    :math:`R = z \odot g` and ``relevance_fn(inputs, R)`` (e.g. :func:`zbox_relevance`) is returned as the gradient
    of ``inputs``, so the gradient at the network input *is* the attribution.

    .. math:: \frac{\partial}{\partial x} \leftarrow \operatorname{rule}(x, z \odot g)

    Args:
        inputs: the layer's input.
        weight: the layer's weight.
        bias: the layer's bias or ``None``.
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        relevance_fn: ``relevance_fn(inputs, output_relevance) -> input_relevance``.

    Returns:
        ``layer_fn(inputs, weight, bias)``.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0]], requires_grad=True)
        >>> w = torch.tensor([[1.0, -1.0]])
        >>> out = relevance_as_gradient(x, w, None, torch.nn.functional.linear,
        ...                             lambda a, r: zbox_relevance(a, r, w))
        >>> torch.autograd.grad(out, x, torch.ones_like(out))[0].tolist()
        [[0.5, 0.5]]
    """
    return _RelevanceAsGradient.apply(inputs, weight, bias, layer_fn, relevance_fn)


def proportional_pool_forward(inputs: Tensor, pooled: Tensor, sum_pool: Callable[[Tensor], Tensor],
                              epsilon: float = 1e-9) -> Tensor:
    r"""Max-pooling output ``pooled`` whose gradient spreads relevance in proportion to the window's activations.

    .. math:: R_j = \sum_{w \ni j} \frac{a_j}{\sum_{i \in w} a_i} R_w

    (instead of winner-take-all, which is the ordinary gradient of max-pooling).

    Args:
        inputs: the pooling input :math:`a`.
        pooled: the max-pooled output (its values are returned).
        sum_pool: a pooling over the same windows that sums or averages (e.g. ``avg_pool2d`` with the same kernel).
        epsilon: stabilizer of the window sums.

    Returns:
        ``pooled``'s values, differentiable with respect to ``inputs``.

    Examples:
        >>> a = torch.tensor([[[1.0, 3.0]]], requires_grad=True)
        >>> out = proportional_pool_forward(a, a.detach().amax(-1, keepdim=True), lambda t: t.sum(-1, keepdim=True))
        >>> (a * torch.autograd.grad(out, a, torch.ones_like(out))[0]).tolist()
        [[[0.75, 2.25]]]
    """
    window = sum_pool(inputs)
    y = (pooled.detach() / stabilize(window.detach(), epsilon)) * window
    return pooled.detach() + (y - y.detach())


class _Splice(torch.autograd.Function):
    """Forward: ``value``; backward: ``g ↦ g ⊙ factor_i`` to each part (the modified gradient of every rule)."""

    @staticmethod
    def forward(ctx, value, *parts_and_factors):  # type: ignore[override]
        count = len(parts_and_factors) // 2
        ctx.count = count
        ctx.save_for_backward(*parts_and_factors[count:])
        # a fresh tensor: an input returned as-is would be a view, which the model may not modify in place
        # (``out += identity`` in torchvision's ResNet blocks)
        return value.clone()

    @staticmethod
    def backward(ctx, grad_output):  # type: ignore[override]
        factors = ctx.saved_tensors
        grads = tuple(grad_output * factor for factor in factors)
        return (None, *grads, *([None] * ctx.count))


def splice(value: Tensor, parts: Sequence[Tensor], factors: Sequence[Tensor]) -> Tensor:
    r"""``value``, whose gradient :math:`g` reaches each of ``parts`` multiplied by its factor.

    .. math:: \text{forward: } z, \qquad \text{backward: } \frac{\partial f}{\partial p_i} = g \odot c_i

    Every rule of the engine is one call: the factors :math:`c_i = z / z_i` turn the ordinary gradient
    :math:`g = R / z` of the layer's output into :math:`R / z_i` for the modified output :math:`z_i` of the rule.

    Args:
        value: the layer's true output (its values are returned, detached from its own graph).
        parts: the modified outputs :math:`z_i` (differentiable with respect to the layer's inputs).
        factors: one detached tensor per part, broadcastable to ``value``.

    Returns:
        ``value``, differentiable through ``parts``.

    Examples:
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> out = splice((3 * x).detach(), [x], [torch.tensor([10.0, 20.0])])
        >>> torch.autograd.grad(out.sum(), x)[0].tolist()
        [10.0, 20.0]
    """
    if len(parts) != len(factors):
        raise ValueError(f"parts and factors must have the same length, got {len(parts)} and {len(factors)}")
    return _Splice.apply(value.detach(), *parts, *(factor.detach() for factor in factors))


def epsilon_forward(
    inputs: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    epsilon: float = 1e-6,
) -> Tensor:
    r"""The layer's output with a gradient carrying LRP-ε relevance (Bach et al. 2015, PLoS ONE 10(7): e0130140).

    .. math:: R_j = \sum_k \frac{a_j w_{jk}}{z_k + \epsilon \operatorname{sign}(z_k)} R_k ,
              \qquad z_k = \sum_j a_j w_{jk} + b_k

    Args:
        inputs: the layer's input, shape :math:`(B, \dots)`.
        weight: the layer's weight.
        bias: the layer's bias or ``None``.
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        epsilon: the stabilizer (``0`` gives LRP-0).

    Returns:
        ``layer_fn(inputs, weight, bias)``, with :math:`a \odot \partial f / \partial a` the ε-relevance of the inputs
        for :math:`R = z \odot g`.

    Examples:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> out = epsilon_forward(x, torch.tensor([[1.0, 1.0]]), epsilon=0.0)
        >>> (x * torch.autograd.grad(out, x, torch.ones_like(out))[0]).tolist()
        [[1.0, 2.0]]
    """
    z = layer_fn(inputs, weight, bias)
    with torch.no_grad():
        factor = z / stabilize(z, epsilon)
    return splice(z, [z], [factor])


def _split_forward(inputs: Tensor, weight_pos: Tensor, weight_neg: Tensor, bias_pos: Tensor | None,
                   layer_fn: LayerFn) -> Tensor:
    """``layer(x⁺, w_pos, b_pos) + layer(x⁻, w_neg)`` (one call for non-negative inputs)."""
    if bool(inputs.min() < 0):
        return layer_fn(inputs.clamp(min=0), weight_pos, bias_pos) + layer_fn(inputs.clamp(max=0), weight_neg, None)
    return layer_fn(inputs, weight_pos, bias_pos)


def zplus_forward(
    inputs: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    stabilizer: float = 1e-6,
) -> Tensor:
    r"""The layer's output with a gradient carrying z⁺ relevance (Montavon et al. 2017, "Explaining nonlinear
    classification decisions with deep Taylor decomposition", Pattern Recognition 65:211–222, arXiv:1512.02479).

    .. math:: R_j = \sum_k \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+ + b_k^+} R_k

    with :math:`(a_j w_{jk})^+ = a_j^+ w_{jk}^+ + a_j^- w_{jk}^-` (zennit's ``ZPlus``, i.e. αβ with α = 1, β = 0).

    Args:
        inputs: the layer's input.
        weight: the layer's weight.
        bias: the layer's bias or ``None``.
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        stabilizer: added to the denominators.

    Returns:
        ``layer_fn(inputs, weight, bias)`` with the z⁺ gradient.

    Examples:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> out = zplus_forward(x, torch.tensor([[3.0, -1.0]]), stabilizer=0.0)
        >>> (x * torch.autograd.grad(out, x, torch.ones_like(out))[0]).tolist()
        [[1.0, 0.0]]
    """
    w_pos, w_neg = _split(weight)
    b_pos, _ = _split(bias)
    z_pos = _split_forward(inputs, w_pos, w_neg, b_pos, layer_fn)
    with torch.no_grad():
        z = layer_fn(inputs, weight, bias)
        factor = z / stabilize(z_pos, stabilizer)
    return splice(z, [z_pos], [factor])


def gamma_forward(
    inputs: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    *,
    layer_fn: LayerFn = torch.nn.functional.linear,
    gamma: float = 0.25,
    stabilizer: float = 1e-6,
) -> Tensor:
    r"""The layer's output with a gradient carrying generalized LRP-γ relevance (Montavon et al. 2019, "Layer-Wise
    Relevance Propagation: An Overview", LNCS 11700, DOI 10.1007/978-3-030-28954-6_10; Andéol et al. 2021,
    arXiv:2012.06318), as zennit's ``Gamma``: outputs of each sign are explained by contributions of that sign.

    .. math::

        R_j = \sum_k \frac{a_j (w_{jk} + \gamma w^{\pm}_{jk})}{z_k + \gamma z^{\pm}_k} R_k ,\qquad
        \pm = \operatorname{sign}(z_k) \operatorname{sign}(a_j)

    Args:
        inputs: the layer's input.
        weight: the layer's weight.
        bias: the layer's bias or ``None`` (:math:`b + \gamma b^{\pm}` joins the denominator).
        layer_fn: ``layer_fn(inputs, weight, bias)``.
        gamma: weight of the added contributions of the output's sign, ``>= 0``.
        stabilizer: added to the denominators.

    Returns:
        ``layer_fn(inputs, weight, bias)`` (as :math:`(z^\uparrow + z^\downarrow) / (2 + \gamma)`) with the γ gradient.

    Examples:
        >>> x = torch.tensor([[1.0, 2.0]], requires_grad=True)
        >>> out = gamma_forward(x, torch.tensor([[1.0, -0.25]]), gamma=1.0, stabilizer=0.0)
        >>> relevance = x * torch.autograd.grad(out, x, torch.ones_like(out))[0]
        >>> out.tolist(), relevance.tolist()
        ([[0.5]], [[0.6666666865348816, -0.1666666716337204]])
    """
    w_pos, w_neg = _split(weight)
    b_pos, b_neg = _split(bias)
    up_pos, up_neg = weight + gamma * w_pos, weight + gamma * w_neg
    up_bias = None if bias is None else bias + gamma * b_pos
    down_bias = None if bias is None else bias + gamma * b_neg
    z_up = _split_forward(inputs, up_pos, up_neg, up_bias, layer_fn)  # z + γ z⁺ (positive contributions)
    z_down = _split_forward(inputs, up_neg, up_pos, down_bias, layer_fn)  # z + γ z⁻ (negative contributions)
    with torch.no_grad():
        z = (z_up + z_down) / (2.0 + gamma)
        factor_up = torch.where(z > 0, z / stabilize(z_up, stabilizer), 0.0)
        factor_down = torch.where(z < 0, z / stabilize(z_down, stabilizer), 0.0)
    return splice(z, [z_up, z_down], [factor_up, factor_down])


def pass_forward(inputs: Tensor, output: Tensor) -> Tensor:
    r"""An element-wise activation's output whose gradient hands the inputs the output's relevance unchanged.

    .. math:: R_j = R_k \quad (k = j), \qquad \text{i.e. } \frac{\partial f}{\partial a_j} = g_j \frac{y_j}{a_j}

    (the ``Pass`` rule of zennit; Ali et al. 2022, arXiv:2202.07304, for GELU). It equals the gradient for ReLU.

    Args:
        inputs: the activation's input :math:`a`.
        output: its output :math:`y = \sigma(a)` (same shape).

    Returns:
        ``output``, differentiable with respect to ``inputs``.

    Examples:
        >>> x = torch.tensor([-1.0, 0.0, 2.0], requires_grad=True)
        >>> y = torch.nn.functional.gelu(x.detach())
        >>> out = pass_forward(x, y)
        >>> torch.allclose(x * torch.autograd.grad(out.sum(), x)[0], y)
        True
    """
    with torch.no_grad():
        ratio = torch.where(inputs == 0, 0.0, output / torch.where(inputs == 0, 1.0, inputs))
    return splice(output, [inputs], [ratio])


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
