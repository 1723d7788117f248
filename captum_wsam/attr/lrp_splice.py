r"""LRP rules as spliced gradients: the tensor maths of the engine of :class:`~captum_wsam.attr.LRP` (ε, z⁺, γ, pass).

Paper: G. Montavon, A. Binder, S. Lapuschkin, W. Samek, K.-R. Müller (2019), "Layer-Wise Relevance Propagation: An
Overview", in Explainable AI, LNCS 11700, DOI 10.1007/978-3-030-28954-6_10 (the generic rule), with the ε rule of
S. Bach et al. (2015), DOI 10.1371/journal.pone.0130140, and zennit's "modified gradient" implementation
(C. J. Anders, D. Neumann, W. Samek, K.-R. Müller, S. Lapuschkin (2021), "Software for Dataset-wide XAI: From Local
Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy", arXiv:2106.13200):

.. math::

    R_j = \sum_k \frac{a_j \rho(w_{jk})}{\epsilon + \sum_{j'} a_{j'} \rho(w_{j'k})} R_k
    \quad\Longleftrightarrow\quad \text{forward } z, \ \text{backward } g \mapsto g \odot z / z_\rho .

Each rule returns the layer's true output :math:`z` whose gradient, read as :math:`g = R / z`, reaches the modified
output :math:`z_\rho` multiplied by :math:`z / z_\rho` (:func:`splice`), so one backward pass gives
:math:`R = a \odot \partial f / \partial a`. The rule objects configuring the engine live in
:mod:`captum_wsam.attr.lrp_rules` (which re-exports these names). The first-layer bridge
:func:`relevance_as_gradient` (explicit relevance handed back as a gradient) and proportional max-pooling are here
too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from .lrp_relevance import LayerFn, _split, stabilize


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
        >>> from captum_wsam.attr.lrp_relevance import zbox_relevance
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


__all__ = [
    "epsilon_forward",
    "gamma_forward",
    "pass_forward",
    "proportional_pool_forward",
    "relevance_as_gradient",
    "splice",
    "zplus_forward",
]
