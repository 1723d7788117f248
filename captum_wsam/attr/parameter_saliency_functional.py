"""Pure tensor maths of parameter-space saliency (Levin et al. 2021).

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022).

For a sample :math:`(x, y)` and loss :math:`\\mathcal{L}`, the parameter saliency is
:math:`s(x, y)_i = |\\nabla_{\\theta_i} \\mathcal{L}_\\theta(x, y)|`. The filter-wise saliency of a conv filter
:math:`\\mathcal{F}_k` (its :math:`C_{in}/G \\cdot k_h k_w` weights) is the mean of absolute values

.. math:: \\bar s(x, y)_k = \\frac{1}{|\\mathcal{F}_k|} \\sum_{i \\in \\mathcal{F}_k} s(x, y)_i ,

standardized over a reference set as :math:`\\hat s_k = (\\bar s_k - \\mu_k) / \\sigma_k`.

Per-sample weight gradients of a conv layer come from quantities one batched backward already has: the layer's
input :math:`a_b` and the gradient of the summed loss with respect to its output :math:`g_b` (sample :math:`b`'s own
output gradient, because the loss is a sum of per-sample terms and BatchNorm runs on running statistics). With
:math:`U_b = \\operatorname{unfold}(a_b)` of shape :math:`(C k_h k_w, L)`,

.. math:: \\nabla_W \\mathcal{L}(x_b, y_b) = g_b \\, U_b^\\top \\in \\mathbb{R}^{C_{out} \\times C k_h k_w}

(per group), the contraction used by Opacus and BackPACK. Everything here is a function of tensors; the hooks that
capture :math:`a_b` and :math:`g_b` live in :mod:`captum_wsam.attr.parameter_saliency`. The reference statistics,
scores and input-space saliency are in :mod:`captum_wsam.attr.parameter_saliency_statistics` (re-exported here).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from .parameter_saliency_statistics import (
    MIN_SCALE,
    MODES,
    boost_top_k,
    input_space_saliency,
    layer_slices,
    normalize_saliency,
    welford_merge,
    welford_std,
)

IntPair = int | tuple[int, int]
Padding = int | tuple[int, int] | str

#: Elements of one block of per-sample gradients held at once by the fast path (4 MiB in float32: cache sized).
BLOCK_ELEMENTS = 2**20
#: At and above this many output positions per sample, the fast path uses a grouped weight-gradient convolution.
GROUPED_MIN_POSITIONS = 128
METHODS = ("auto", "unfold", "grouped")


def _pair(value: IntPair) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (int(value[0]), int(value[1]))


def resolve_padding(padding: Padding, kernel_size: IntPair, dilation: IntPair = 1) -> tuple[int, int, int, int]:
    """Explicit ``(left, right, top, bottom)`` padding (``F.pad`` order) of a 2-D convolution.

    ``"valid"`` is no padding and ``"same"`` puts the extra pixel on the right/bottom, as :class:`torch.nn.Conv2d`.

    Examples:
        >>> resolve_padding((1, 2), 3), resolve_padding("same", 4)
        ((2, 2, 1, 1), (1, 2, 1, 2))
    """
    kh, kw = _pair(kernel_size)
    dh, dw = _pair(dilation)
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        total_h, total_w = dh * (kh - 1), dw * (kw - 1)
        return (total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2)
    if isinstance(padding, str):
        raise ValueError(f"padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = _pair(padding)
    return (pw, pw, ph, ph)


def _padded(inputs: Tensor, pads: tuple[int, int, int, int], padding_mode: str) -> tuple[Tensor, tuple[int, int]]:
    """Input and the symmetric zero padding still to apply: pad explicitly unless it is symmetric zero padding."""
    left, right, top, bottom = pads
    if padding_mode == "zeros" and left == right and top == bottom:
        return inputs, (top, left)
    mode = "constant" if padding_mode == "zeros" else padding_mode
    return F.pad(inputs, pads, mode=mode), (0, 0)


def conv2d_unfold(
    inputs: Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """Patches (im2col) that a :class:`torch.nn.Conv2d` with these settings multiplies with its weights.

    .. math:: U_b[(c, i, j), l] = \\tilde a_b[c, \\; s_h p_l + d_h i, \\; s_w q_l + d_w j]

    where :math:`\\tilde a_b` is the padded input and :math:`(p_l, q_l)` the :math:`l`-th output position.

    Args:
        inputs: layer input :math:`(B, C, H, W)`.
        kernel_size, stride, padding, dilation, padding_mode: the convolution's settings.

    Returns:
        :math:`(B, C k_h k_w, L)` with :math:`L = H' W'` the number of output positions.

    Examples:
        >>> conv2d_unfold(torch.rand(2, 3, 8, 8), 3, padding=1).shape
        torch.Size([2, 27, 64])
    """
    x, symmetric = _padded(inputs, resolve_padding(padding, kernel_size, dilation), padding_mode)
    return F.unfold(x, _pair(kernel_size), dilation=_pair(dilation), padding=symmetric, stride=_pair(stride))


def conv2d_per_sample_weight_grad(
    inputs: Tensor,
    grad_outputs: Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
) -> Tensor:
    """Per-sample weight gradients of a 2-D convolution from its input and output gradient (unfold + batched matmul).

    .. math:: \\nabla_{W^{(g)}} \\mathcal{L}_b = g_b^{(g)} \\big(U_b^{(g)}\\big)^\\top \\quad \\text{(each group } g)

    Differentiable (used for double backpropagation).

    Args:
        inputs: layer input :math:`(B, C, H, W)`.
        grad_outputs: gradient of the summed per-sample losses w.r.t. the layer output :math:`(B, O, H', W')`.
        kernel_size, stride, padding, dilation, groups, padding_mode: the convolution's settings.

    Returns:
        :math:`(B, O, C / G, k_h, k_w)`: one weight gradient per sample.

    Examples:
        >>> x, w = torch.rand(4, 2, 6, 6), torch.rand(3, 2, 3, 3)
        >>> g = torch.rand(4, 3, 4, 4)
        >>> per_sample = conv2d_per_sample_weight_grad(x, g, 3)
        >>> per_sample.shape, torch.allclose(per_sample.sum(0), torch.nn.grad.conv2d_weight(x, w.shape, g), atol=1e-5)
        (torch.Size([4, 3, 2, 3, 3]), True)
    """
    batch, channels = inputs.shape[:2]
    out_channels = grad_outputs.shape[1]
    kh, kw = _pair(kernel_size)
    cols = conv2d_unfold(inputs, kernel_size, stride, padding, dilation, padding_mode)
    positions = cols.shape[-1]
    if grad_outputs[0, 0].numel() != positions:
        raise ValueError(
            f"grad_outputs has {grad_outputs[0, 0].numel()} positions per channel but the convolution of inputs "
            f"{tuple(inputs.shape)} gives {positions}"
        )
    cols = cols.reshape(batch, groups, -1, positions)
    outs = grad_outputs.reshape(batch, groups, out_channels // groups, positions)
    grad = torch.matmul(outs, cols.transpose(-1, -2))
    return grad.reshape(batch, out_channels, channels // groups, kh, kw)


def tap_positions(
    input_size: tuple[int, int],
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
) -> Tensor:
    """How many output positions each kernel tap reads a real (not zero-padding) input pixel at.

    With zero padding, a tap :math:`(i, j)` of a small feature map often lies in the padding for all but one output
    position (the corners of a 3×3 kernel on a 2×2 map, as in ResNet's last stage at 64×64 inputs). For such a tap
    the per-sample weight gradient is a single product, :math:`|g_{o,l} U_{k,l}| = |g_{o,l}|\\,|U_{k,l}|`, so its
    share of :math:`\\sum_k |\\nabla_{W_{o,k}}|` factors into a matrix-vector product (used by the ``"unfold"`` path).

    Args:
        input_size: :math:`(H, W)` of the layer input.
        kernel_size, stride, padding, dilation: the convolution's settings (zero padding).

    Returns:
        :math:`(k_h k_w,)` integer counts, in the order of the weight's last two axes.

    Examples:
        >>> tap_positions((2, 2), 3, padding=1).view(3, 3).tolist()
        [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    """
    ones = torch.ones(1, 1, *input_size)
    valid = conv2d_unfold(ones, kernel_size, stride, padding, dilation)  # (1, kh kw, L): 1 = real pixel
    return valid[0].sum(-1).round().long()


def _blocked_abs_sum(outs: Tensor, cols_t: Tensor, block_elements: int) -> Tensor:
    """:math:`\\sum_k |(g_b U_b^\\top)_{o,k}|` for ``outs`` :math:`(B, G, O_g, L)` and ``cols_t`` :math:`(B, G, L, K)`,
    in cache-sized (sample, filter) blocks reduced right away (the full :math:`(B, O, K)` tensor is never held)."""
    batch, groups, per_group, _ = outs.shape
    fan_in = cols_t.shape[-1]
    total = outs.new_empty(batch, groups, per_group)
    rows = max(1, min(per_group, block_elements // (groups * fan_in)))
    samples = max(1, min(batch, block_elements // (groups * rows * fan_in)))
    buffer = outs.new_empty(samples * groups * rows * fan_in)
    for b0 in range(0, batch, samples):
        b1 = min(batch, b0 + samples)
        for o0 in range(0, per_group, rows):
            o1 = min(per_group, o0 + rows)
            block = buffer[: (b1 - b0) * groups * (o1 - o0) * fan_in].view(b1 - b0, groups, o1 - o0, fan_in)
            torch.matmul(outs[b0:b1, :, o0:o1], cols_t[b0:b1], out=block)
            torch.sum(block.abs_(), dim=-1, out=total[b0:b1, :, o0:o1])
    return total


def _two_position_abs_sum(outs: Tensor, u: Tensor, v: Tensor, first: Tensor, second: Tensor) -> Tensor:
    """:math:`\\sum_k |a_{o,1} u_k + a_{o,2} v_k|` for taps that read real pixels at exactly two output positions.

    Each weight :math:`k` is a plane vector :math:`w_k = (u_k, v_k)` and each filter a vector
    :math:`a_o = (g_{o,l_1}, g_{o,l_2})`; flipping a vector into the upper half-plane does not change
    :math:`|\\langle a_o, w_k \\rangle|`. Sorted by angle, the :math:`w_k` with
    :math:`\\langle a_o, w_k \\rangle \\ge 0` form a prefix or a suffix, found by binary search, so
    :math:`\\sum_k |\\langle a_o, w_k\\rangle| = \\langle a_o, 2 W_+ - W \\rangle` with prefix sums :math:`W_+`:
    :math:`O(K \\log K + O \\log K)` per sample and tap instead of :math:`O(O K)`.

    Args:
        outs: output gradients :math:`(B, G, O_g, L)`.
        u, v: the taps' inputs at their two positions, :math:`(B, G, T, K)` (:math:`T` taps of :math:`K` weights).
        first, second: :math:`(T,)` the two output positions of each tap.

    Returns:
        :math:`(B, G, O_g)`, summed over the :math:`T` taps.
    """
    half = math.pi / 2
    flip = (v < 0) | ((v == 0) & (u < 0))
    u, v = torch.where(flip, -u, u), torch.where(flip, -v, v)
    angle, order = torch.atan2(v, u).sort(dim=-1)  # in [0, pi)
    w = torch.stack((u.gather(-1, order), v.gather(-1, order)), dim=-1)  # (B, G, T, K, 2)
    prefix = F.pad(w.cumsum(-2), (0, 0, 1, 0))  # prefix[..., n, :] = sum of the n first vectors
    total = prefix[..., -1:, :]
    a1 = outs[..., first].transpose(-1, -2)  # (B, G, T, O_g)
    a2 = outs[..., second].transpose(-1, -2)
    flip = (a2 < 0) | ((a2 == 0) & (a1 < 0))
    a1, a2 = torch.where(flip, -a1, a1), torch.where(flip, -a2, a2)
    theta = torch.atan2(a2, a1)  # in [0, pi)
    low = theta < half  # positive set: angles <= theta + pi/2 (a prefix), else angles >= theta - pi/2 (a suffix)
    bound = torch.where(low, theta + half, theta - half).contiguous()
    count = torch.searchsorted(angle.contiguous(), bound, right=True)
    count = torch.where(low, count, torch.searchsorted(angle.contiguous(), bound, right=False))
    index = count.unsqueeze(-1).expand(*count.shape, 2)
    at = prefix.gather(-2, index)  # (B, G, T, O_g, 2)
    positive = torch.where(low.unsqueeze(-1), at, total - at)
    direction = 2 * positive - total
    return (a1 * direction[..., 0] + a2 * direction[..., 1]).sum(2)


def _filter_saliency_unfold(
    inputs: Tensor, grad_outputs: Tensor, settings: dict, groups: int, block_elements: int
) -> Tensor:
    """Fast path for few output positions: im2col, then :func:`_blocked_abs_sum`. Taps that read a real pixel at one
    output position only (see :func:`tap_positions`) are summed in factored form, taps that read none are skipped."""
    batch, out_channels = grad_outputs.shape[:2]
    cols = conv2d_unfold(inputs, **settings)
    positions = cols.shape[-1]
    per_group = out_channels // groups
    outs = grad_outputs.reshape(batch, groups, per_group, positions)
    cols = cols.reshape(batch, groups, -1, positions)  # (B, G, K, L), K = C/G * taps
    fan_in = cols.shape[2]
    taps = _pair(settings["kernel_size"])[0] * _pair(settings["kernel_size"])[1]
    counts = None
    if settings["padding_mode"] == "zeros" and positions > 1:
        counts = tap_positions(inputs.shape[-2:], settings["kernel_size"], settings["stride"], settings["padding"],
                               settings["dilation"])
    if counts is None or bool((counts >= 3).all()):
        total = _blocked_abs_sum(outs, cols.transpose(-1, -2), block_elements)
        return total.reshape(batch, out_channels) / fan_in
    cols = cols.reshape(batch, groups, fan_in // taps, taps, positions)
    single = (counts == 1).nonzero().flatten().tolist()
    double = (counts == 2).nonzero().flatten().tolist()
    shared = (counts >= 3).nonzero().flatten().tolist()
    total = outs.new_zeros(batch, groups, per_group)
    if single:  # sum over single-position taps of |g_{o,l}| |U_{k,l}|: U is zero away from each tap's one position
        per_position = cols[:, :, :, single].abs().sum((2, 3))  # (B, G, L)
        total = total + torch.matmul(outs.abs(), per_position.unsqueeze(-1)).squeeze(-1)
    if double:
        valid = conv2d_unfold(torch.ones(1, 1, *inputs.shape[-2:], dtype=inputs.dtype, device=inputs.device),
                              **settings)[0, double] > 0.5  # (T2, L)
        where = valid.nonzero()[:, 1].view(len(double), 2)
        both = cols[:, :, :, double].permute(0, 1, 3, 2, 4)  # (B, G, T2, C/G, L)
        u = both.gather(-1, where[:, 0].view(1, 1, -1, 1, 1).expand(*both.shape[:-1], 1)).squeeze(-1)
        v = both.gather(-1, where[:, 1].view(1, 1, -1, 1, 1).expand(*both.shape[:-1], 1)).squeeze(-1)
        total = total + _two_position_abs_sum(outs, u, v, where[:, 0], where[:, 1])
    if shared:
        rest = cols[:, :, :, shared].reshape(batch, groups, -1, positions).transpose(-1, -2)
        total = total + _blocked_abs_sum(outs, rest, block_elements)
    return total.reshape(batch, out_channels) / fan_in


def _filter_saliency_grouped(
    inputs: Tensor, grad_outputs: Tensor, settings: dict, groups: int, block_elements: int
) -> Tensor:
    """Fast path for many output positions: the batch folded into the channels of one grouped weight-gradient
    convolution (groups :math:`B \\cdot G`), which gives every sample's weight gradient without im2col."""
    batch, out_channels = grad_outputs.shape[:2]
    kh, kw = _pair(settings["kernel_size"])
    pads = resolve_padding(settings["padding"], (kh, kw), settings["dilation"])
    x, symmetric = _padded(inputs, pads, settings["padding_mode"])
    channels = x.shape[1]
    fan_in = channels // groups * kh * kw
    samples = max(1, min(batch, 4 * block_elements // (out_channels * fan_in)))
    chunks = []
    for b0 in range(0, batch, samples):
        b1 = min(batch, b0 + samples)
        n = b1 - b0
        grad = torch.nn.grad.conv2d_weight(
            x[b0:b1].reshape(1, n * channels, *x.shape[2:]),
            (n * out_channels, channels // groups, kh, kw),
            grad_outputs[b0:b1].reshape(1, n * out_channels, *grad_outputs.shape[2:]),
            stride=_pair(settings["stride"]),
            padding=symmetric,
            dilation=_pair(settings["dilation"]),
            groups=n * groups,
        )
        chunks.append(grad.reshape(n, out_channels, fan_in).abs_().sum(-1))
    return torch.cat(chunks) / fan_in


def conv2d_filter_saliency(
    inputs: Tensor,
    grad_outputs: Tensor,
    kernel_size: IntPair,
    stride: IntPair = 1,
    padding: Padding = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
    block_elements: int = BLOCK_ELEMENTS,
) -> Tensor:
    """Filter-wise parameter saliency of one conv layer for every sample: mean over each filter of :math:`|\\nabla_W|`.

    .. math:: \\bar s_b[o] = \\frac{G}{C k_h k_w} \\sum_{c, i, j} \\big|\\nabla_{W[o, c, i, j]} \\mathcal{L}_b\\big|

    When autograd records (``inputs`` or ``grad_outputs`` require grad and grad mode is on) it goes through
    :func:`conv2d_per_sample_weight_grad` so that the result can be differentiated (double backpropagation).
    Otherwise it uses one of two exact batched contractions that never hold all per-sample gradients at once:
    ``"unfold"`` (im2col + batched matmul in cache-sized blocks, best for few output positions) or ``"grouped"`` (one
    grouped weight-gradient convolution over the batch, best for many); ``"auto"`` picks ``"grouped"`` from
    :data:`GROUPED_MIN_POSITIONS` output positions on. On small zero-padded maps ``"unfold"`` skips the kernel taps
    that read only padding, sums the taps that read one real pixel in factored form (see :func:`tap_positions`) and
    the taps that read two by an angle sort (:math:`O(K \\log K)` instead of :math:`O(O K)` per sample); all three are
    exact.

    Args:
        inputs: layer input :math:`(B, C, H, W)`.
        grad_outputs: gradient of the summed per-sample losses w.r.t. the layer output :math:`(B, O, H', W')`.
        kernel_size, stride, padding, dilation, groups, padding_mode: the convolution's settings.
        method: ``"auto"``, ``"unfold"`` or ``"grouped"`` (the fast path's contraction).
        block_elements: elements of per-sample gradients computed per block by the fast path.

    Returns:
        :math:`(B, O)` filter-wise saliency.

    Examples:
        >>> x, g = torch.rand(4, 2, 6, 6), torch.rand(4, 3, 4, 4)
        >>> fast = conv2d_filter_saliency(x, g, 3)
        >>> slow = conv2d_per_sample_weight_grad(x, g, 3).abs().mean((2, 3, 4))
        >>> fast.shape, torch.allclose(fast, slow, atol=1e-6)
        (torch.Size([4, 3]), True)
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; got {method!r}")
    settings = {"kernel_size": kernel_size, "stride": stride, "padding": padding, "dilation": dilation,
                "padding_mode": padding_mode}
    if torch.is_grad_enabled() and (inputs.requires_grad or grad_outputs.requires_grad):
        grad = conv2d_per_sample_weight_grad(inputs, grad_outputs, groups=groups, **settings)
        return grad.abs().flatten(2).mean(-1)
    if method == "auto":
        positions = grad_outputs[0, 0].numel()
        method = "grouped" if positions >= GROUPED_MIN_POSITIONS else "unfold"
    with torch.no_grad():
        if method == "grouped":
            return _filter_saliency_grouped(inputs, grad_outputs, settings, groups, block_elements)
        return _filter_saliency_unfold(inputs, grad_outputs, settings, groups, block_elements)


__all__ = [
    "BLOCK_ELEMENTS",
    "GROUPED_MIN_POSITIONS",
    "METHODS",
    "MIN_SCALE",
    "MODES",
    "boost_top_k",
    "conv2d_filter_saliency",
    "conv2d_per_sample_weight_grad",
    "conv2d_unfold",
    "input_space_saliency",
    "layer_slices",
    "normalize_saliency",
    "resolve_padding",
    "tap_positions",
    "welford_merge",
    "welford_std",
]
