"""The batched pass of parameter-space saliency: every sample's filter saliency from one forward and one backward.

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022):

.. math:: \\bar s(x_b, y_b)_k = \\frac{1}{|\\mathcal{F}_k|} \\sum_{i \\in \\mathcal{F}_k}
    \\big|\\nabla_{\\theta_i} \\mathcal{L}(f(x_b), y_b)\\big|, \\qquad
    \\nabla_W \\mathcal{L}(x_b, y_b) = g_b\\, \\operatorname{unfold}(a_b)^\\top

with :math:`a_b` a conv layer's input and :math:`g_b` the gradient of the summed loss with respect to its output
(captured by hooks here; the contraction is in :mod:`captum_wsam.attr.parameter_saliency_functional`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.autograd.graph import get_gradient_edge

from .._checks import check_target, check_type
from .._state import hook_handles
from .._typing import LossFunc, TargetType
from .parameter_saliency_functional import conv2d_filter_saliency, conv2d_per_sample_weight_grad


def resolve_conv_layers(
    model: nn.Module, layers: Sequence[nn.Module | str] | nn.Module | str | None
) -> dict[str, nn.Conv2d]:
    """The conv layers to analyse, by name in model order: every ``nn.Conv2d`` by default, else the given ones.

    Raises ``ValueError``/``TypeError`` naming ``layers`` for names or modules that are not conv layers of ``model``.
    """
    named = list(model.named_modules())
    if layers is None:
        found = {name: m for name, m in named if isinstance(m, nn.Conv2d)}
        if not found:
            raise ValueError(
                f"model ({type(model).__name__}) has no nn.Conv2d layer: parameter saliency is defined per conv "
                "filter; pass layers=[...] with conv layers"
            )
        return found
    requested = [layers] if isinstance(layers, (nn.Module, str)) else list(layers)
    if not requested:
        raise ValueError("layers must name at least one nn.Conv2d layer, got an empty sequence")
    by_name = dict(named)
    resolved: dict[str, nn.Conv2d] = {}
    for layer in requested:
        if isinstance(layer, str):
            if layer not in by_name:
                raise ValueError(f"layers: model has no submodule named {layer!r}")
            name, module = layer, by_name[layer]
        else:
            check_type(layer, "layers", nn.Module)
            name = next((n for n, m in named if m is layer), None)
            if name is None:
                raise ValueError(f"layers must be submodules of the model, got {type(layer).__name__} not in it")
            module = layer
        if not isinstance(module, nn.Conv2d):
            raise TypeError(f"layers must be nn.Conv2d layers, got {name!r}: {type(module).__name__}")
        resolved[name] = module
    order = {name: i for i, (name, _) in enumerate(named)}
    return dict(sorted(resolved.items(), key=lambda item: order[item[0]]))


def forward_args(additional_forward_args: Any) -> tuple:
    """Captum's ``additional_forward_args`` as a tuple."""
    if additional_forward_args is None:
        return ()
    return tuple(additional_forward_args) if isinstance(additional_forward_args, tuple) else (
        additional_forward_args,)

def target_vector(target: TargetType, logits: Tensor) -> Tensor:
    """One class index per sample from Captum's ``target`` (``None``: the predicted class), range-checked."""
    batch = logits.shape[0]
    if target is None:
        return logits.detach().argmax(1)
    if isinstance(target, (list, tuple)) and not all(isinstance(t, int) for t in target):
        raise TypeError("target must be an int, a sequence of ints or a 1-D tensor of class indices; "
                        f"got {target!r} (tuples for multi-dimensional outputs are not supported)")
    check_target(target, logits.shape[1], batch)
    values = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    return values.expand(batch) if values.numel() == 1 else values

def batched_filter_saliency(
    model: nn.Module,
    layers: dict[str, nn.Conv2d],
    loss_fn: LossFunc,
    inputs: tuple[Tensor, ...],
    target: TargetType,
    additional_forward_args: Any,
    *,
    create_graph: bool = False,
    parameter_wise: bool = False,
    grad_kwargs: dict[str, Any] | None = None,
) -> tuple[tuple[Tensor, ...], Tensor, Tensor, Tensor, Tensor, dict[str, Tensor] | None]:
    """Filter-wise saliency of every sample from one batched forward and one backward.

    .. math:: \\bar s(x_b, y_b)_k = \\frac{1}{|\\mathcal{F}_k|} \\sum_{i \\in \\mathcal{F}_k}
        \\big|\\nabla_{\\theta_i} \\mathcal{L}(f(x_b), y_b)\\big|

    Forward hooks capture each conv layer's input and the gradient edge of its output; one ``autograd.grad`` of the
    summed per-sample losses gives every output gradient, and the per-sample weight gradients follow by batched
    contraction (:func:`~captum_wsam.attr.parameter_saliency_functional.conv2d_filter_saliency`). The caller manages
    the model's state (eval mode, gradients enabled; see ``ParameterSaliency._guarded``).

    Args:
        model: the classifier (logits :math:`(B, K)`, or a mapping/object with ``logits``).
        layers: the analysed conv layers by name.
        loss_fn: per-sample loss ``(logits, target) -> (B,)``.
        inputs: the input batches (passed to the model in order).
        target: Captum target (``None``: the predicted class).
        additional_forward_args: extra model arguments.
        create_graph: keep the graph (double backpropagation).
        parameter_wise: also return per-sample :math:`|\\nabla_W \\mathcal{L}|` per layer.
        grad_kwargs: keyword arguments for ``torch.autograd.grad``.

    Returns:
        ``(xs, raw, target, prediction, loss, parameters)``: the inputs as leaves requiring grad, raw scores
        :math:`(B, F)`, targets, predictions and losses :math:`(B,)`, and the per-layer parameter saliency or ``None``.

    Examples:
        >>> conv = torch.nn.Conv2d(3, 2, 3)
        >>> model = torch.nn.Sequential(conv, torch.nn.Flatten(), torch.nn.LazyLinear(4))
        >>> _ = model(torch.rand(1, 3, 6, 6))
        >>> x = (torch.rand(2, 3, 6, 6),)
        >>> _, raw, *_ = batched_filter_saliency(model, {"0": conv}, lambda z, y: z.sum(1), x, None, None)
        >>> raw.shape
        torch.Size([2, 2])
    """
    xs = tuple(i.detach().requires_grad_(True) for i in inputs)
    x = xs[0]
    captured: dict[str, list[tuple[Tensor, Any]]] = {name: [] for name in layers}

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_: nn.Module, args: tuple, output: Tensor) -> None:
            if not output.requires_grad:
                raise RuntimeError(f"the output of layer {name!r} does not require grad (is it run under "
                                   "torch.no_grad() inside the model?)")
            layer_input = args[0] if create_graph else args[0].detach()
            captured[name].append((layer_input, get_gradient_edge(output)))
        return hook

    with hook_handles() as handles:
        for name, layer in layers.items():
            handles.append(layer.register_forward_hook(make_hook(name)))
        logits = model(*xs, *forward_args(additional_forward_args))
    if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
        shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
        raise ValueError(f"model must return logits of shape (B, K) with B={x.shape[0]}, got {shape}")
    targets = target_vector(target, logits)
    loss = loss_fn(logits, targets)
    if not isinstance(loss, Tensor) or loss.shape != (x.shape[0],):
        shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
        raise ValueError(f"loss_fn must return one loss per sample, shape ({x.shape[0]},), got {shape} "
                         "(use reduction='none')")
    calls = [(name, i) for name, items in captured.items() for i in range(len(items))]
    edges = [captured[name][i][1] for name, i in calls]
    options = {**(grad_kwargs or {}), "create_graph": create_graph, "allow_unused": True}
    grads = torch.autograd.grad(loss.sum(), edges, **options) if edges else ()
    grad_of = dict(zip(calls, grads))

    saliency, parameters = [], {} if parameter_wise else None
    for name, layer in layers.items():
        settings = {"kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding,
                    "dilation": layer.dilation, "groups": layer.groups, "padding_mode": layer.padding_mode}
        uses = [(a, grad_of[(name, i)]) for i, (a, _) in enumerate(captured[name])
                if grad_of[(name, i)] is not None]
        if len(uses) == 1 and not parameter_wise:
            saliency.append(conv2d_filter_saliency(uses[0][0], uses[0][1], **settings))
            continue
        # Shared layers (several calls) or parameter-wise output: per-sample gradients summed over the calls.
        weight_grad = x.new_zeros(x.shape[0], *layer.weight.shape)
        for layer_input, grad_output in uses:
            weight_grad = weight_grad + conv2d_per_sample_weight_grad(layer_input, grad_output, **settings)
        magnitude = weight_grad.abs()
        saliency.append(magnitude.flatten(2).mean(-1))
        if parameters is not None:
            parameters[name] = magnitude if create_graph else magnitude.detach()
    raw = torch.cat(saliency, dim=1)
    prediction = logits.detach().argmax(1)
    return xs, raw, targets, prediction, loss.detach(), parameters


__all__ = ["batched_filter_saliency", "forward_args", "resolve_conv_layers", "target_vector"]
