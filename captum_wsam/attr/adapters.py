"""Adapters for models SAM and WSAM meet in the wild: token layers (ViT, Swin) and outputs that are not tensors.

Grad-CAM (Selvaraju et al., 2017, arXiv:1610.02391) needs a layer map :math:`A \\in \\mathbb{R}^{N \\times C \\times h
\\times w}`. Vision transformers (Dosovitskiy et al., 2021, arXiv:2010.11929) give tokens :math:`(N, 1 + hw, C)` and
Swin (Liu et al., 2021, arXiv:2103.14030) channels-last maps :math:`(N, h, w, C)`; pytorch-grad-cam and Captum users
pass a ``reshape_transform`` for these, applied to activations and gradients alike (a re-indexing, so the gradient of
the reshaped map is the reshaped gradient):

.. math:: \\delta^c_k = \\frac{1}{Z} \\sum_{ij} R\\big(\\partial y^c / \\partial A\\big)_{kij}, \\qquad
    M^c = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k R(A)_k\\Big)

Hugging Face models return a ``ModelOutput`` with ``.logits``; :func:`logits_of` reads the scores from it and
:class:`LogitsAdapter` wraps such a model for Captum's own classes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

import torch  # noqa: F401 - used by the doctests
from torch import Tensor, nn

from .functional import channels_last_to_first, tokens_to_grid

#: Maps a layer's activations (or gradients) to a channels-first map :math:`(N, C, h, w)`.
ReshapeTransform = Callable[[Tensor], Tensor]


def logits_of(output: Any) -> Any:
    """The class scores of a model output: a tensor itself, ``output["logits"]`` of a mapping, ``output.logits``.

    Hugging Face models return a ``ModelOutput`` (a mapping with a ``logits`` attribute); torchvision's
    GoogLeNet/Inception in train mode a named tuple with ``logits``. Anything else is returned unchanged.

    .. math:: y = \\mathrm{logits}(f(x))

    Examples:
        >>> logits_of({"logits": torch.ones(2, 3)}).shape
        torch.Size([2, 3])
    """
    if isinstance(output, Tensor):
        return output
    if isinstance(output, Mapping) and "logits" in output:
        return output["logits"]
    logits = getattr(output, "logits", None)
    return logits if isinstance(logits, Tensor) else output


class LogitsAdapter(nn.Module):
    """Wrap a model whose output is a mapping or an object with ``.logits`` so that it returns the logits tensor.

    SAM and WSAM apply :func:`logits_of` themselves; the adapter is for Captum's own classes and metrics (and any
    ``forward_func`` that expects a tensor). The wrapped model is a submodule, so its layers stay valid ``layer``
    arguments.

    .. math:: \\tilde f(x) = \\mathrm{logits}(f(x))

    Args:
        model: the model to wrap.

    Examples:
        >>> class Dict(torch.nn.Module):
        ...     def forward(self, x):
        ...         return {"logits": x.flatten(1)}
        >>> LogitsAdapter(Dict())(torch.rand(2, 1, 2, 2)).shape
        torch.Size([2, 4])
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, *args: Any, **kwargs: Any) -> Tensor:
        output = logits_of(self.model(*args, **kwargs))
        if not isinstance(output, Tensor):
            raise TypeError(f"the model must return a tensor, a mapping with 'logits' or an object with .logits, "
                            f"got {type(output).__name__}")
        return output


def _inside(layer: nn.Module, parent: nn.Module | None) -> bool:
    return isinstance(parent, nn.Module) and any(m is layer for m in parent.modules())


def resolve_reshape_transform(forward_func: Any, layer: nn.Module, reshape_transform: Any) -> ReshapeTransform | None:
    """The ``reshape_transform`` to apply to the layer's activations and gradients (pytorch-grad-cam convention).

    ``"auto"`` picks a built-in for torchvision models: ``VisionTransformer`` encoder layers (drop the class token,
    tokens → grid, :func:`~captum_wsam.attr.functional.tokens_to_grid`), ``SwinTransformer`` stage layers and final
    norm (channels-last → channels-first, :func:`~captum_wsam.attr.functional.channels_last_to_first`); MaxViT's
    stem and block outputs are already :math:`(B, C, H, W)`; a layer inside a MaxViT partition-attention layer
    (window/grid-partitioned tokens, no map) raises ``TypeError``. ``None`` means no transform; a callable is used
    as given.

    Returns:
        A callable :math:`(N, \\dots) \\to (N, C, h, w)` or ``None``.
    """
    if reshape_transform is None:
        return None
    if callable(reshape_transform):
        return reshape_transform
    if reshape_transform != "auto":
        raise TypeError(f"reshape_transform must be 'auto', None or a callable, got {reshape_transform!r}")
    model = getattr(forward_func, "module", forward_func)  # DataParallel
    model = getattr(model, "model", model) if isinstance(model, LogitsAdapter) else model
    try:
        from torchvision.models import MaxVit, SwinTransformer, VisionTransformer
        from torchvision.models.maxvit import PartitionAttentionLayer
    except ImportError:  # pragma: no cover - torchvision is a dependency
        return None
    if isinstance(model, VisionTransformer) and _inside(layer, model.encoder):
        return partial(tokens_to_grid, num_prefix_tokens=1)
    if isinstance(model, SwinTransformer) and not isinstance(layer, nn.Conv2d) and (
        _inside(layer, model.features) or layer is model.norm
    ):
        return channels_last_to_first
    if isinstance(model, MaxVit):
        for module in model.modules():
            if isinstance(module, PartitionAttentionLayer) and layer is not module and _inside(layer, module):
                raise TypeError(
                    f"layer {type(layer).__name__} lies inside a MaxViT PartitionAttentionLayer, whose tensors are "
                    "window/grid partitions, not maps; choose a block (e.g. model.blocks[-1]) or pass "
                    "reshape_transform="
                )
    return None


__all__ = ["LogitsAdapter", "ReshapeTransform", "logits_of", "resolve_reshape_transform"]
