r"""Conservative LRP through LayerNorm, self-attention and multiplicative gates (ViT, Swin, MaxViT, SE blocks).

Paper: A. Ali, T. Schnake, O. Eberle, G. Montavon, K.-R. Müller, L. Wolf (2022), "XAI for Transformers: Better
Explanations through Conservative Propagation", ICML 2022, arXiv:2202.07304 (also the "CP-LRP" baseline of
R. Achtibat et al. (2024), "AttnLRP: Attention-Aware Layer-Wise Relevance Propagation for Transformers",
arXiv:2402.05602). The non-linear factors of a layer are treated as constants of the explanation, which makes the
rest of the layer linear in its input and the propagation conservative:

.. math::

    \text{LayerNorm:}\quad y = \frac{x - \mathbb{E}[x]}{[\sqrt{\operatorname{Var}[x] + \epsilon}]_{\text{cst}}}
        \odot \gamma + \beta , \qquad
    \text{attention:}\quad y = [\operatorname{softmax}(q k^\top / \sqrt{d})]_{\text{cst}}\, v ,

and for a Squeeze-Excitation block :math:`y = [s(x)]_{\text{cst}} \odot x` (the gate is a constant). Each function
below computes the module's ordinary output values; only the gradient (which carries :math:`R / z` in the engine of
:class:`captum_wsam.attr.LRP`) differs. The value projection and the output projection go through the Linear rule
given as ``linear(name, inputs, weight, bias)`` (a callback supplied by the engine), the query/key path carries no
relevance. LayerNorm and Squeeze-Excitation live in :mod:`captum_wsam.attr.lrp_constant_scale` (re-exported here).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .lrp_constant_scale import _detached, conservative_layer_norm, layer_norm_forward, squeeze_excitation_forward

#: ``linear(name, inputs, weight, bias) -> outputs``: the engine's Linear rule for the projection called ``name``.
LinearRule = Callable[[str, Tensor, Tensor, "Tensor | None"], Tensor]


def constant_attention(scores: Tensor) -> Tensor:
    r"""Attention probabilities as constants of the explanation: :math:`[\operatorname{softmax}(s)]_{\text{cst}}`.

    .. math:: A = \operatorname{softmax}(s) \text{ (no gradient)}

    Args:
        scores: attention logits, softmax over the last dimension.

    Returns:
        The probabilities, detached.

    Examples:
        >>> constant_attention(torch.zeros(1, 2, requires_grad=True)).requires_grad
        False
    """
    with torch.no_grad():
        return scores.softmax(dim=-1)


def multihead_attention_forward(
    module: nn.MultiheadAttention,
    linear: LinearRule,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    key_padding_mask: Tensor | None = None,
    need_weights: bool = True,
    attn_mask: Tensor | None = None,
    average_attn_weights: bool = True,
    is_causal: bool = False,
) -> tuple[Tensor, Tensor | None]:
    r"""``nn.MultiheadAttention`` self-attention with constant attention probabilities (Ali et al. 2022).

    .. math:: y = W_o \big([\operatorname{softmax}(q k^\top / \sqrt{d})]_{\text{cst}}\, (W_v x + b_v)\big) + b_o

    The value projection (``"in_proj"``) and the output projection (``"out_proj"``) go through ``linear``.

    Args:
        module: the attention module (packed projection, no ``bias_k``/``bias_v``, no zero attention).
        linear: the engine's Linear rule.
        query: the input :math:`x` (``key`` and ``value`` must be the same tensor).
        key: ``query``.
        value: ``query``.
        key_padding_mask: must be ``None``.
        need_weights: also return the attention weights.
        attn_mask: must be ``None``.
        average_attn_weights: average the returned weights over heads.
        is_causal: must be ``False``.

    Returns:
        ``(output, weights or None)`` as the module returns them.

    Raises:
        TypeError: cross-attention, masks, or a configuration this propagation does not cover.

    Examples:
        >>> mha = nn.MultiheadAttention(8, 2, batch_first=True).eval()
        >>> x = torch.randn(2, 5, 8)
        >>> plain = lambda name, inputs, weight, bias: F.linear(inputs, weight, bias)
        >>> out, _ = multihead_attention_forward(mha, plain, x, x, x, need_weights=False)
        >>> torch.allclose(out, mha(x, x, x, need_weights=False)[0], atol=1e-5)
        True
    """
    if not (query is key and key is value):
        raise TypeError("LRP supports nn.MultiheadAttention as self-attention only (query is key is value)")
    if key_padding_mask is not None or attn_mask is not None or is_causal:
        raise TypeError("LRP supports nn.MultiheadAttention without masks")
    if not module._qkv_same_embed_dim or module.bias_k is not None or module.add_zero_attn:
        raise TypeError("LRP supports nn.MultiheadAttention with a packed in_proj_weight, no bias_k/bias_v and "
                        "add_zero_attn=False")
    x = query if module.batch_first else query.transpose(0, 1)
    batch, tokens, embed = x.shape
    heads = module.num_heads
    head_dim = embed // heads
    weight, bias = module.in_proj_weight.detach(), _detached(module.in_proj_bias)
    parts = [(weight[i * embed:(i + 1) * embed], None if bias is None else bias[i * embed:(i + 1) * embed])
             for i in range(3)]
    with torch.no_grad():
        q = F.linear(x, *parts[0]).reshape(batch, tokens, heads, head_dim).transpose(1, 2)
        k = F.linear(x, *parts[1]).reshape(batch, tokens, heads, head_dim).transpose(1, 2)
    v = linear("in_proj", x, *parts[2]).reshape(batch, tokens, heads, head_dim).transpose(1, 2)
    attention = constant_attention(q @ k.transpose(-2, -1) / math.sqrt(head_dim))
    out = (attention @ v).transpose(1, 2).reshape(batch, tokens, embed)
    out = linear("out_proj", out, module.out_proj.weight.detach(), _detached(module.out_proj.bias))
    if not module.batch_first:
        out = out.transpose(0, 1)
    weights = None
    if need_weights:
        weights = attention.mean(1) if average_attn_weights else attention
    return out, weights


def _qkv(linear: LinearRule, x: Tensor, weight: Tensor, bias: Tensor | None, name: str) -> tuple[Tensor, ...]:
    """Query and key (no relevance) and value (through the rule) of a packed ``(3 C, C)`` projection."""
    channels = weight.shape[0] // 3
    parts = [(weight[i * channels:(i + 1) * channels], None if bias is None else bias[i * channels:(i + 1) * channels])
             for i in range(3)]
    with torch.no_grad():
        q, k = F.linear(x, *parts[0]), F.linear(x, *parts[1])
    return q, k, linear(name, x, *parts[2])


def swin_attention_forward(module: nn.Module, linear: LinearRule, inputs: Tensor) -> Tensor:
    r"""torchvision's (shifted) window attention (Swin v1 and v2) with constant attention probabilities.

    .. math:: y = W_o\big([\operatorname{softmax}(q k^\top / \sqrt{d} + B + M)]_{\text{cst}}\, v\big) + b_o

    (cosine attention with a learnt logit scale for v2). The code follows
    ``torchvision.models.swin_transformer.shifted_window_attention`` step by step; ``"qkv"`` (its value rows) and
    ``"proj"`` go through ``linear``.

    Args:
        module: a ``ShiftedWindowAttention`` or ``ShiftedWindowAttentionV2`` in evaluation mode.
        linear: the engine's Linear rule.
        inputs: :math:`(B, H, W, C)`.

    Returns:
        The module's output values, :math:`(B, H, W, C)`.

    Examples:
        >>> from torchvision.models.swin_transformer import ShiftedWindowAttention
        >>> attention = ShiftedWindowAttention(8, [4, 4], [2, 2], num_heads=2).eval()
        >>> x = torch.randn(1, 6, 6, 8)
        >>> plain = lambda name, inputs, weight, bias: F.linear(inputs, weight, bias)
        >>> torch.allclose(swin_attention_forward(attention, plain, x), attention(x), atol=1e-5)
        True
    """
    window_size, num_heads = list(module.window_size), module.num_heads
    logit_scale = getattr(module, "logit_scale", None)
    with torch.no_grad():
        position_bias = module.get_relative_position_bias()
    B, H, W, C = inputs.shape
    pad_r = (window_size[1] - W % window_size[1]) % window_size[1]
    pad_b = (window_size[0] - H % window_size[0]) % window_size[0]
    x = F.pad(inputs, (0, 0, 0, pad_r, 0, pad_b))
    _, pad_H, pad_W, _ = x.shape
    shift_size = list(module.shift_size)
    if window_size[0] >= pad_H:
        shift_size[0] = 0
    if window_size[1] >= pad_W:
        shift_size[1] = 0
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(-shift_size[0], -shift_size[1]), dims=(1, 2))
    num_windows = (pad_H // window_size[0]) * (pad_W // window_size[1])
    x = x.view(B, pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B * num_windows, window_size[0] * window_size[1], C)
    qkv_bias = _detached(module.qkv.bias)
    if logit_scale is not None and qkv_bias is not None:
        qkv_bias = qkv_bias.clone()
        length = qkv_bias.numel() // 3
        qkv_bias[length:2 * length].zero_()
    q, k, v = _qkv(linear, x, module.qkv.weight.detach(), qkv_bias, "qkv")
    q, k, v = (t.reshape(x.size(0), x.size(1), num_heads, C // num_heads).transpose(1, 2) for t in (q, k, v))
    with torch.no_grad():
        if logit_scale is not None:
            attn = F.normalize(q, dim=-1) @ F.normalize(k, dim=-1).transpose(-2, -1)
            attn = attn * torch.clamp(logit_scale, max=math.log(100.0)).exp()
        else:
            attn = (q * (C // num_heads) ** -0.5).matmul(k.transpose(-2, -1))
        attn = attn + position_bias
        if sum(shift_size) > 0:
            mask = x.new_zeros((pad_H, pad_W))
            h_slices = ((0, -window_size[0]), (-window_size[0], -shift_size[0]), (-shift_size[0], None))
            w_slices = ((0, -window_size[1]), (-window_size[1], -shift_size[1]), (-shift_size[1], None))
            count = 0
            for h in h_slices:
                for w in w_slices:
                    mask[h[0]:h[1], w[0]:w[1]] = count
                    count += 1
            mask = mask.view(pad_H // window_size[0], window_size[0], pad_W // window_size[1], window_size[1])
            mask = mask.permute(0, 2, 1, 3).reshape(num_windows, window_size[0] * window_size[1])
            mask = mask.unsqueeze(1) - mask.unsqueeze(2)
            mask = mask.masked_fill(mask != 0, -100.0).masked_fill(mask == 0, 0.0)
            attn = attn.view(x.size(0) // num_windows, num_windows, num_heads, x.size(1), x.size(1))
            attn = (attn + mask.unsqueeze(1).unsqueeze(0)).view(-1, num_heads, x.size(1), x.size(1))
    attention = constant_attention(attn)
    x = attention.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), C)
    x = linear("proj", x, module.proj.weight.detach(), _detached(module.proj.bias))
    x = x.view(B, pad_H // window_size[0], pad_W // window_size[1], window_size[0], window_size[1], C)
    x = x.permute(0, 1, 3, 2, 4, 5).reshape(B, pad_H, pad_W, C)
    if sum(shift_size) > 0:
        x = torch.roll(x, shifts=(shift_size[0], shift_size[1]), dims=(1, 2))
    return x[:, :H, :W, :].contiguous()


def maxvit_attention_forward(module: nn.Module, linear: LinearRule, inputs: Tensor) -> Tensor:
    r"""torchvision's MaxViT ``RelativePositionalMultiHeadAttention`` with constant attention probabilities.

    .. math:: y = W_o\big([\operatorname{softmax}(q k^\top / \sqrt{d} + B)]_{\text{cst}}\, v\big) + b_o

    Args:
        module: the attention module.
        linear: the engine's Linear rule (``"to_qkv"`` value rows and ``"merge"``).
        inputs: :math:`(B, G, P, D)`.

    Returns:
        The module's output values, :math:`(B, G, P, D)`.

    Examples:
        >>> from torchvision.models.maxvit import RelativePositionalMultiHeadAttention
        >>> attention = RelativePositionalMultiHeadAttention(8, 4, 9).eval()
        >>> x = torch.randn(1, 2, 9, 8)
        >>> plain = lambda name, inputs, weight, bias: F.linear(inputs, weight, bias)
        >>> torch.allclose(maxvit_attention_forward(attention, plain, x), attention(x), atol=1e-5)
        True
    """
    B, G, P, D = inputs.shape
    H, DH = module.n_heads, module.head_dim
    q, k, v = _qkv(linear, inputs, module.to_qkv.weight.detach(), _detached(module.to_qkv.bias), "to_qkv")
    q, k, v = (t.reshape(B, G, P, H, DH).permute(0, 1, 3, 2, 4) for t in (q, k, v))
    with torch.no_grad():
        scores = torch.einsum("bghid,bghjd->bghij", q, k * module.scale_factor) + module.get_relative_positional_bias()
    out = torch.einsum("bghij,bghjd->bghid", constant_attention(scores), v)
    out = out.permute(0, 1, 3, 2, 4).reshape(B, G, P, D)
    return linear("merge", out, module.merge.weight.detach(), _detached(module.merge.bias))


def timm_attention_forward(module: nn.Module, linear: LinearRule, inputs: Tensor, attn_mask: Tensor | None = None,
                           is_causal: bool = False) -> Tensor:
    r"""timm's ``Attention`` (ViT, DeiT, EVA-style blocks without gates) with constant attention probabilities.

    .. math:: y = W_o\big([\operatorname{softmax}(q k^\top / \sqrt{d})]_{\text{cst}}\, v\big) + b_o

    Args:
        module: a ``timm.layers.Attention`` (no gate, no scale norm).
        linear: the engine's Linear rule (``"qkv"`` value rows and ``"proj"``).
        inputs: :math:`(B, N, C)`.
        attn_mask: must be ``None``.
        is_causal: must be ``False``.

    Returns:
        The module's output values, :math:`(B, N, C)`.

    Raises:
        TypeError: a gated or masked attention, or a normalization after the attention.

    Examples:
        >>> import importlib.util
        >>> if importlib.util.find_spec("timm") is None:
        ...     print(True)
        ... else:
        ...     from timm.layers import Attention
        ...     attention = Attention(8, num_heads=2, qkv_bias=True).eval()
        ...     x = torch.randn(2, 5, 8)
        ...     plain = lambda name, inputs, weight, bias: F.linear(inputs, weight, bias)
        ...     print(torch.allclose(timm_attention_forward(attention, plain, x), attention(x), atol=1e-5))
        True
    """
    if attn_mask is not None or is_causal or getattr(module, "gate", None) is not None:
        raise TypeError("LRP supports timm Attention without masks and gates")
    if not isinstance(getattr(module, "norm", nn.Identity()), nn.Identity):
        raise TypeError("LRP supports timm Attention without a normalization after the attention (scale_norm)")
    B, N, _ = inputs.shape
    heads, head_dim = module.num_heads, module.head_dim
    q, k, v = _qkv(linear, inputs, module.qkv.weight.detach(), _detached(module.qkv.bias), "qkv")
    q, k, v = (t.reshape(B, N, heads, head_dim).transpose(1, 2) for t in (q, k, v))
    with torch.no_grad():
        q, k = module.q_norm(q), module.k_norm(k)
        scores = (q * module.scale) @ k.transpose(-2, -1)
    out = (constant_attention(scores) @ v).transpose(1, 2).reshape(B, N, heads * head_dim)
    return linear("proj", out, module.proj.weight.detach(), _detached(module.proj.bias))


def hf_attention_forward(module: nn.Module, linear: LinearRule, hidden_states: Tensor,
                         attention_mask: Tensor | None = None, **kwargs: object) -> tuple[Tensor, None]:
    r"""Hugging Face self-attention with separate ``q_proj``/``k_proj``/``v_proj``/``o_proj`` (ViT, DeiT in
    ``transformers`` 5) with constant attention probabilities.

    .. math:: y = W_o\big([\operatorname{softmax}(q k^\top s)]_{\text{cst}}\, (W_v x + b_v)\big) + b_o

    Args:
        module: the attention module (``scaling``, ``head_dim`` and the four projections).
        linear: the engine's Linear rule (``"v_proj"`` and ``"o_proj"``).
        hidden_states: :math:`(B, N, C)`.
        attention_mask: must be ``None``.
        **kwargs: ignored (Hugging Face passes its attention options).

    Returns:
        ``(output, None)`` as the module returns ``(output, weights)``.

    Raises:
        TypeError: an attention mask.

    Examples:
        >>> import importlib.util
        >>> if importlib.util.find_spec("transformers") is None:
        ...     print(True)
        ... else:
        ...     from transformers import ViTConfig
        ...     from transformers.models.vit.modeling_vit import ViTAttention
        ...     attention = ViTAttention(ViTConfig(hidden_size=8, num_attention_heads=2)).eval()
        ...     x = torch.randn(2, 5, 8)
        ...     plain = lambda name, inputs, weight, bias: F.linear(inputs, weight, bias)
        ...     print(torch.allclose(hf_attention_forward(attention, plain, x)[0], attention(x)[0], atol=1e-5))
        True
    """
    if attention_mask is not None:
        raise TypeError("LRP supports Hugging Face self-attention without an attention mask")
    B, N, _ = hidden_states.shape
    head_dim = module.head_dim

    def heads(t: Tensor) -> Tensor:
        return t.reshape(B, N, -1, head_dim).transpose(1, 2)

    with torch.no_grad():
        q = heads(F.linear(hidden_states, module.q_proj.weight, module.q_proj.bias))
        k = heads(F.linear(hidden_states, module.k_proj.weight, module.k_proj.bias))
    v = heads(linear("v_proj", hidden_states, module.v_proj.weight.detach(), _detached(module.v_proj.bias)))
    scaling = module.scaling if getattr(module, "scaling", None) is not None else head_dim ** -0.5
    out = (constant_attention(q @ k.transpose(-2, -1) * scaling) @ v).transpose(1, 2).reshape(B, N, -1)
    return linear("o_proj", out, module.o_proj.weight.detach(), _detached(module.o_proj.bias)), None


__all__ = [
    "LinearRule",
    "conservative_layer_norm",
    "constant_attention",
    "hf_attention_forward",
    "layer_norm_forward",
    "maxvit_attention_forward",
    "multihead_attention_forward",
    "squeeze_excitation_forward",
    "swin_attention_forward",
    "timm_attention_forward",
]
