r"""Conservative LRP through LayerNorm and Squeeze-Excitation gates: a multiplicative factor held constant.

Paper: A. Ali, T. Schnake, O. Eberle, G. Montavon, K.-R. Müller, L. Wolf (2022), "XAI for Transformers: Better
Explanations through Conservative Propagation", ICML 2022, arXiv:2202.07304 (LayerNorm); the Squeeze-Excitation
block is from J. Hu, L. Shen, G. Sun (2018), "Squeeze-and-Excitation Networks", arXiv:1709.01507. The non-linear
factor is treated as a constant of the explanation, which makes the module linear in its input and the propagation
conservative:

.. math::

    \text{LayerNorm:}\quad y = \frac{x - \mathbb{E}[x]}{[\sqrt{\operatorname{Var}[x] + \epsilon}]_{\text{cst}}}
        \odot \gamma + \beta , \qquad
    \text{Squeeze-Excitation:}\quad y = [s(x)]_{\text{cst}} \odot x .

Each function computes the module's ordinary output values; only the gradient (which carries :math:`R / z` in the
engine of :class:`captum_wsam.attr.LRP`) differs. Attention is in :mod:`captum_wsam.attr.lrp_transformers`, which
re-exports these names (their former home).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _detached(tensor: Tensor | None) -> Tensor | None:
    return None if tensor is None else tensor.detach()


def conservative_layer_norm(
    inputs: Tensor,
    normalized_shape: tuple[int, ...],
    weight: Tensor | None,
    bias: Tensor | None,
    eps: float,
) -> Tensor:
    r"""LayerNorm whose standard deviation is a constant of the explanation (Ali et al. 2022, "LN-rule").

    .. math:: y = \frac{x - \mathbb{E}[x]}{[\sqrt{\operatorname{Var}[x] + \epsilon}]_{\text{cst}}} \odot \gamma + \beta

    Centering is linear, so the relevance of :math:`y` reaches :math:`x` conserved (up to what :math:`\beta` absorbs).

    Args:
        inputs: any tensor whose trailing dimensions are ``normalized_shape``.
        normalized_shape: the normalized trailing shape.
        weight: :math:`\gamma` or ``None``.
        bias: :math:`\beta` or ``None``.
        eps: added to the variance.

    Returns:
        ``F.layer_norm(inputs, ...)``'s values, shape of ``inputs``.

    Examples:
        >>> x = torch.randn(2, 5, 8)
        >>> ln = nn.LayerNorm(8)
        >>> torch.allclose(conservative_layer_norm(x, (8,), ln.weight, ln.bias, ln.eps), ln(x), atol=1e-6)
        True
    """
    dims = tuple(range(-len(normalized_shape), 0))
    centered = inputs - inputs.mean(dims, keepdim=True)
    with torch.no_grad():
        std = torch.sqrt(centered.square().mean(dims, keepdim=True) + eps)
    out = centered / std
    if weight is not None:
        out = out * weight.detach()
    if bias is not None:
        out = out + bias.detach()
    return out


def layer_norm_forward(module: nn.LayerNorm, inputs: Tensor, channels_first: bool = False) -> Tensor:
    r""":func:`conservative_layer_norm` for an ``nn.LayerNorm`` (``channels_first``: ConvNeXt's ``LayerNorm2d``).

    .. math:: y = \frac{x - \mathbb{E}[x]}{[\sigma(x)]_{\text{cst}}} \odot \gamma + \beta

    Args:
        module: the LayerNorm.
        inputs: its input; :math:`(B, C, H, W)` with ``channels_first``.
        channels_first: normalize over dimension 1 (as ``torchvision.models.convnext.LayerNorm2d``).

    Returns:
        The module's output values, shape of ``inputs``.

    Examples:
        >>> ln = nn.LayerNorm(4)
        >>> x = torch.randn(3, 4)
        >>> torch.allclose(layer_norm_forward(ln, x), ln(x), atol=1e-6)
        True
    """
    shape = tuple(module.normalized_shape)
    if channels_first:
        out = conservative_layer_norm(inputs.permute(0, 2, 3, 1), shape, module.weight, module.bias, module.eps)
        return out.permute(0, 3, 1, 2)
    return conservative_layer_norm(inputs, shape, module.weight, module.bias, module.eps)


def squeeze_excitation_forward(module: nn.Module, inputs: Tensor) -> Tensor:
    r"""A Squeeze-Excitation block (Hu et al. 2018, "Squeeze-and-Excitation Networks", arXiv:1709.01507) whose gate
    is a constant of the explanation: relevance flows through the scaled input only.

    .. math:: y = [s(x)]_{\text{cst}} \odot x

    Args:
        module: a ``torchvision.ops.SqueezeExcitation`` (its ``_scale`` computes :math:`s(x)`).
        inputs: :math:`(B, C, H, W)`.

    Returns:
        The block's output values.

    Examples:
        >>> from torchvision.ops import SqueezeExcitation
        >>> block = SqueezeExcitation(8, 2).eval()
        >>> x = torch.randn(2, 8, 4, 4)
        >>> torch.allclose(squeeze_excitation_forward(block, x), block(x))
        True
    """
    with torch.no_grad():
        scale = module._scale(inputs)
    return scale * inputs


__all__ = [
    "conservative_layer_norm",
    "layer_norm_forward",
    "squeeze_excitation_forward",
]
