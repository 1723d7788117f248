"""The model-parameter randomization test of Adebayo et al. (2018, Sec. 3): does the map depend on the weights?

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292. With layers :math:`\\ell_1 \\dots \\ell_L` (input to output), step :math:`k` re-initializes

.. math::
    \\text{cascading: } \\ell_L, \\ell_{L-1}, \\dots, \\ell_{L-k+1}
    \\qquad \\text{independent: } \\ell_{L-k+1} \\text{ only}, \\qquad
    s_k = s\\big(M(x; \\theta), M(x; \\theta^{(k)})\\big)

with :math:`M` and :math:`s` of :mod:`captum_wsam.metrics.sanity_maps`. A method passes when :math:`s_k` drops.
Modified-backpropagation methods such as LRP αβ / :math:`z^+` are documented to fail the cascading test on the later
layers (Sixt, Granz & Landgraf 2020, "When Explanations Lie: Why Many Modified BP Attributions Fail", ICML,
arXiv:1912.09818): their maps converge to a few input-dependent patterns and barely change when the top layers are
randomized. The test reports that; it does not hide it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import check_choice, check_positive_int, check_type
from .._typing import TargetType
from .sanity_maps import AttributionFactory, SimilarityFunc, _check_common, _map_builder, map_similarity

ORDERS = ("cascading", "independent")


@dataclass(frozen=True)
class RandomizationResult:
    """Outcome of :func:`model_randomization`.

    Attributes:
        layers: the layer randomized at each step, top layer first (qualified module names).
        randomized_layers: for each step, every layer whose parameters are re-initialized in that step's model
            (cascading: all layers from the top down to ``layers[k]``; independent: ``layers[k]`` alone).
        order: ``"cascading"`` or ``"independent"``.
        similarity: name of the similarity measure.
        scores: :math:`(L, B)` similarity of each step's map to the original map, per sample.
        baseline: :math:`(B,)` similarity of the original map with itself (1 for the built-in measures).
        original: :math:`(B, H, W)` maps of the trained model.
        randomized: :math:`(L, B, H, W)` maps of each step's model.
    """

    layers: tuple[str, ...]
    randomized_layers: tuple[tuple[str, ...], ...]
    order: str
    similarity: str
    scores: Tensor
    baseline: Tensor
    original: Tensor
    randomized: Tensor

    @property
    def mean(self) -> Tensor:
        """:math:`(L,)` similarity averaged over the samples."""
        return self.scores.mean(1)


def parametrized_layers(model: nn.Module) -> list[str]:
    """Qualified names of the modules that own parameters, in registration order (taken as input-to-output order).

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> parametrized_layers(SmallCNN(depth=2))
        ['block1.conv', 'block1.bn', 'block2.conv', 'block2.bn', 'classifier']
    """
    check_type(model, "model", nn.Module)
    return [name for name, module in model.named_modules() if name and list(module.parameters(recurse=False))]


def reinitialize(module: nn.Module, seed: int) -> None:
    """Re-initialize every parameter (and running statistic) of ``module`` in place with its own default init.

    Each submodule with parameters calls its ``reset_parameters()`` (PyTorch's default initialization of that layer
    type: Kaiming-uniform weights for conv/linear, :math:`\\gamma = 1, \\beta = 0` and reset running statistics for
    batch norm) under a forked RNG seeded with ``seed``, so the same seed gives the same weights and the global RNG
    is left alone.

    Args:
        module: the layer (or block) to re-initialize; modified in place. Call it on a copy.
        seed: seed of the re-initialization.

    Raises:
        TypeError: a submodule owns parameters but has no ``reset_parameters()``.

    Examples:
        >>> layer = torch.nn.Linear(3, 2)
        >>> before = layer.weight.detach().clone()
        >>> reinitialize(layer, seed=0)
        >>> again = torch.nn.Linear(3, 2)
        >>> reinitialize(again, seed=0)
        >>> bool(torch.equal(layer.weight, again.weight)), bool(torch.equal(layer.weight, before))
        (True, False)
    """
    check_type(module, "module", nn.Module)
    check_positive_int(seed, "seed", allow_zero=True)
    owners = [m for m in module.modules() if list(m.parameters(recurse=False))]
    for owner in owners:
        if not callable(getattr(owner, "reset_parameters", None)):
            raise TypeError(
                f"module must only contain layers with reset_parameters(); {type(owner).__name__} owns parameters but "
                "has none (leave it out of `layers`)"
            )
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for owner in owners:
            owner.reset_parameters()


def model_randomization(
    attribution_factory: AttributionFactory,
    model: nn.Module,
    inputs: Tensor,
    target: TargetType = None,
    order: str = "cascading",
    similarity: str | SimilarityFunc = "spearman",
    layers: Sequence[str] | None = None,
    absolute: bool = True,
    upsample: bool = True,
    attribute_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> RandomizationResult:
    """Model-parameter randomization test (Adebayo et al. 2018, Sec. 3) of any Captum-style attribution.

    With layers :math:`\\ell_1 \\dots \\ell_L` (input to output), step :math:`k = 1 \\dots L` builds
    :math:`\\theta^{(k)}` from a copy of the trained parameters :math:`\\theta` by re-initializing

    .. math::
        \\text{cascading: } \\ell_L, \\ell_{L-1}, \\dots, \\ell_{L-k+1}
        \\qquad \\text{independent: } \\ell_{L-k+1} \\text{ only}

    and reports :math:`s_k = s\\big(M(x; \\theta), M(x; \\theta^{(k)})\\big)` per sample, with :math:`M` the map of
    :func:`attribution_maps`. Layer :math:`\\ell_j` is re-initialized with seed ``seed + j`` in both orders, so a layer
    gets the same random weights whichever order is used.

    Args:
        attribution_factory: ``model -> attribution`` with an ``attribute(inputs, target=..., **kwargs)`` method,
            e.g. ``Saliency`` or ``lambda m: LayerGradCam(m, m.block4)``; called once per copy.
        model: the trained classifier; never run nor modified (only deep copies are, in eval mode).
        inputs: :math:`(B, C, H, W)` images.
        target: Captum target (class per sample, one class, or ``None`` for single-output models).
        order: ``"cascading"`` (from the top, cumulative) or ``"independent"`` (one layer at a time).
        similarity: ``"spearman"``, ``"ssim"``, ``"pearson_hog"`` or a callable ``(maps, maps) -> (B,)``.
        layers: qualified module names to randomize, input to output (default: :func:`parametrized_layers`).
        absolute: compare absolute maps (see :func:`attribution_maps`).
        upsample: upsample layer attributions to the input size.
        attribute_kwargs: extra keyword arguments of ``attribute`` (e.g. ``{"baselines": 0.0}``).
        seed: base seed of the re-initializations.
        progress: show a tqdm bar over the steps.

    Returns:
        A :class:`RandomizationResult` with ``scores`` :math:`(L, B)`, ``layers`` top first, and all maps.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> result = model_randomization(Saliency, model, torch.rand(2, 3, 32, 32), target=[0, 1], progress=False)
        >>> result.layers[0], result.scores.shape
        ('classifier', torch.Size([5, 2]))
    """
    _check_common(attribution_factory, model, inputs, similarity, attribute_kwargs, seed)
    check_choice(order, "order", ORDERS)
    names = _check_layers(model, layers)
    base, maps_of = _map_builder(attribution_factory, model, inputs, target, attribute_kwargs, absolute, upsample)
    original = maps_of(copy.deepcopy(base))
    baseline = map_similarity(original, original, similarity)
    seeds = {name: seed + j for j, name in enumerate(names)}
    top_first = names[::-1]
    cascade = copy.deepcopy(base) if order == "cascading" else None
    maps, scores, randomized_layers = [], [], []
    for k, name in enumerate(tqdm(top_first, desc=f"{order} randomization", disable=not progress, leave=False)):
        if cascade is not None:
            network, randomized = cascade, tuple(top_first[: k + 1])
        else:
            network, randomized = copy.deepcopy(base), (name,)
        reinitialize(network.get_submodule(name), seeds[name])
        step_maps = maps_of(network)
        maps.append(step_maps)
        scores.append(map_similarity(original, step_maps, similarity))
        randomized_layers.append(randomized)
    return RandomizationResult(
        layers=tuple(top_first),
        randomized_layers=tuple(randomized_layers),
        order=order,
        similarity=similarity if isinstance(similarity, str) else getattr(similarity, "__name__", "custom"),
        scores=torch.stack(scores),
        baseline=baseline,
        original=original,
        randomized=torch.stack(maps),
    )


def _check_layers(model: nn.Module, layers: Sequence[str] | None) -> list[str]:
    if layers is None:
        names = parametrized_layers(model)
        if not names:
            raise ValueError("model has no layer with parameters to randomize")
        return names
    if isinstance(layers, str) or not isinstance(layers, Sequence):
        raise TypeError(f"layers must be a sequence of module names, got {layers!r}")
    modules = dict(model.named_modules())
    if not layers:
        raise ValueError("layers must not be empty")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers must not repeat a name, got {list(layers)!r}")
    for name in layers:
        if not isinstance(name, str) or name not in modules or not name:
            raise ValueError(f"layers must name submodules of the model, got {name!r}")
        if not list(modules[name].parameters()):
            raise ValueError(f"layers must have parameters to randomize, got {name!r} ({type(modules[name]).__name__})")
    return list(layers)


__all__ = ["ORDERS", "RandomizationResult", "model_randomization", "parametrized_layers", "reinitialize"]
