"""Levin et al.'s check of the salient filters: zero a sample's most salient filters and see if it becomes correct.

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022), Sec. 4: for a misclassified sample :math:`(x_b, y_b)`,

.. math:: f_{\\theta \\odot m_b}(x_b) \\overset{?}{=} y_b, \\qquad m_b = 0 \\text{ on }
    \\operatorname{top}_k \\hat s(x_b, y_b), \\; 1 \\text{ elsewhere},

compared with :math:`k` filters drawn uniformly at random. A filter is zeroed per sample by a forward hook (its
output channel then holds only the bias), on a copy of the model.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from .._state import hook_handles
from .parameter_saliency_statistics import layer_slices


@contextmanager
def zeroed_filters(layers: dict[str, nn.Conv2d], masks: dict[str, Tensor]) -> Iterator[None]:
    """Make each conv of ``layers`` behave, for sample ``b``, as if the filters where ``masks[name][b]`` is True had
    zero weights (the output channel then only holds the bias)."""
    def make_hook(mask: Tensor) -> Callable[..., Tensor]:
        def hook(module: nn.Conv2d, _: Any, output: Tensor) -> Tensor:
            keep = (~mask).to(output.dtype)[:, :, None, None]
            if module.bias is None:
                return output * keep
            return output * keep + module.bias[None, :, None, None] * (1 - keep)
        return hook

    with hook_handles() as handles:
        for name, layer in layers.items():
            handles.append(layer.register_forward_hook(make_hook(masks[name])))
        yield


def pruned_predictions(
    replica: nn.Module, layer_sizes: dict[str, int], scores: Tensor, samples: Tensor, args: tuple[Any, ...], k: int,
    trials: int, seed: int,
) -> tuple[Tensor, list[Tensor]]:
    """Predictions of ``replica`` (eval mode, no grad) with each sample's top-``k`` filters zeroed, then ``k`` random.

    .. math:: \\hat y_b = \\arg\\max f_{\\theta \\odot m_b}(x_b), \\qquad m_b = 0 \\text{ on the chosen filters}

    Args:
        replica: a copy of the model (it gets hooks for the duration of the call only).
        layer_sizes: analysed conv layers (names in ``replica``) and their filter counts, in column order.
        scores: :math:`(B, F)` saliency of the samples.
        samples: the inputs :math:`(B, \\dots)`.
        args: extra positional arguments of the model (already restricted to the samples).
        k: filters zeroed per sample.
        trials: random draws.
        seed: seed of the random draws.

    Returns:
        ``(salient, random)``: predictions :math:`(B,)` with the salient filters zeroed, and one :math:`(B,)` tensor
        per random trial.

    Examples:
        >>> conv = torch.nn.Conv2d(1, 2, 1, bias=False)
        >>> model = torch.nn.Sequential(conv, torch.nn.Flatten()).eval()
        >>> salient, random = pruned_predictions(model, {"0": 2}, torch.tensor([[1.0, 0.0]]), torch.ones(1, 1, 1, 1),
        ...                                      (), 1, 2, 0)
        >>> salient.shape, len(random)
        (torch.Size([1]), 2)
    """
    names = list(layer_sizes)
    layers = {name: replica.get_submodule(name) for name in names}
    slices = dict(zip(names, layer_slices(list(layer_sizes.values()))))

    def predict(chosen: Tensor) -> Tensor:
        mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, chosen, True)
        masks = {name: mask[:, part].to(samples.device) for name, part in slices.items()}
        with torch.no_grad(), zeroed_filters(layers, masks):
            return replica(samples, *args).argmax(1).to(scores.device)

    salient = predict(scores.topk(k, dim=1).indices)
    generator = torch.Generator().manual_seed(seed)
    random = []
    for _ in range(trials):
        chosen = torch.rand(scores.shape, generator=generator).argsort(dim=1)[:, :k].to(scores.device)
        random.append(predict(chosen))
    return salient, random


__all__ = ["pruned_predictions", "zeroed_filters"]
