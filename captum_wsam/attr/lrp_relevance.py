r"""LRP relevance maps of Conv/Linear layers (αβ, z^B, flat, w²) and the αβ rule as a modified gradient used by
:class:`~captum_wsam.attr.LRPAlphaBeta`.

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

The rule objects of :class:`~captum_wsam.attr.LRP` live in :mod:`captum_wsam.attr.lrp_rules` (which re-exports these
names); the spliced forms of its engine, :func:`~captum_wsam.attr.lrp_splice.relevance_as_gradient` (which hands
these maps' results back as a gradient) and proportional max-pooling in :mod:`captum_wsam.attr.lrp_splice`.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

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


__all__ = [
    "LayerFn",
    "alpha_beta_forward",
    "alpha_beta_relevance",
    "flat_relevance",
    "stabilize",
    "wsquare_relevance",
    "zbox_relevance",
]
