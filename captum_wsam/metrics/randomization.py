"""Sanity checks for attribution maps: the model-parameter and data randomization tests.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292. An explanation :math:`E(x; \\theta)` that explains the model must depend on the learned parameters
:math:`\\theta` and on the relation between inputs and labels that the model learned:

- *model randomization* (Sec. 3): re-initialize the parameters of layer after layer, from the top (``cascading``,
  :math:`\\theta^{(k)}` = layers :math:`L, L-1, \\dots, L-k+1` re-initialized) or one layer at a time
  (``independent``), and report :math:`s\\big(E(x; \\theta), E(x; \\theta^{(k)})\\big)` for a similarity :math:`s`
  (Spearman rank correlation, SSIM, Pearson correlation of HOG features; :mod:`captum_wsam.metrics.similarity`);
- *data randomization* (Sec. 4): train the same architecture on randomly permuted labels and compare its maps with
  those of the model trained on the true labels.

A method passes when the similarity drops. Modified-backpropagation methods such as LRP αβ / :math:`z^+` are
documented to fail the cascading test on the later layers (Sixt, Granz & Landgraf 2020, "When Explanations Lie: Why
Many Modified BP Attributions Fail", ICML, arXiv:1912.09818): their maps converge to a few input-dependent patterns
and barely change when the top layers are randomized. The test reports that; it does not hide it.

All work happens on deep copies of the model (in eval mode): the user's model is never run, modified or hooked. The
attribution is built by a *factory* called with each copy, e.g. ``lambda m: LayerGradCam(m, m.block4)``, so layer
references follow the copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from captum.attr import LayerAttribution
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, TensorDataset
from tqdm.auto import tqdm

from .._checks import check_choice, check_images, check_in_range, check_positive_int, check_target, check_type
from .._typing import TargetType
from ..train import split_batch, train_classifier
from .similarity import minmax_normalize, pearson_hog, spearman_correlation, ssim

#: Builds an attribution object (anything with ``attribute(inputs, target=..., **kwargs)``) for a model.
AttributionFactory = Callable[[nn.Module], Any]
#: Compares two batches of maps :math:`(B, H, W)` and returns :math:`(B,)` similarities.
SimilarityFunc = Callable[[Tensor, Tensor], Tensor]

ORDERS = ("cascading", "independent")
SIMILARITY_NAMES = ("spearman", "ssim", "pearson_hog")


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


@dataclass(frozen=True)
class DataRandomizationResult:
    """Outcome of :func:`data_randomization`.

    Attributes:
        scores: :math:`(B,)` similarity between the maps of the given model and of the model trained on permuted
            labels.
        similarity: name of the similarity measure.
        original: :math:`(B, H, W)` maps of the given model.
        randomized: :math:`(B, H, W)` maps of the model trained on permuted labels.
        history: per-epoch training ``loss`` / ``accuracy`` on the permuted labels (how far it memorized them).
    """

    scores: Tensor
    similarity: str
    original: Tensor
    randomized: Tensor
    history: list[dict[str, float]]


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


def _check_common(
    attribution_factory: Any, model: Any, inputs: Any, similarity: Any, attribute_kwargs: Any, seed: Any
) -> None:
    if not callable(attribution_factory):
        raise TypeError(f"attribution_factory must be callable (model -> attribution), got {attribution_factory!r}")
    check_type(model, "model", nn.Module)
    check_images(inputs, "inputs")
    if not callable(similarity):
        check_choice(similarity, "similarity", SIMILARITY_NAMES)
    if attribute_kwargs is not None:
        check_type(attribute_kwargs, "attribute_kwargs", dict)
    check_positive_int(seed, "seed", allow_zero=True)


def _pristine_copy(model: nn.Module, inputs: Tensor, target: TargetType) -> nn.Module:
    """Deep copy in eval mode; the target is checked against the copy's output (the user's model never runs)."""
    base = copy.deepcopy(model).eval()
    with torch.no_grad():
        logits = base(inputs[:1])
    if logits.dim() != 2:
        raise ValueError(f"model must return logits of shape (B, K), got shape {tuple(logits.shape)}")
    check_target(target, logits.shape[1], len(inputs))
    return base


def attribution_maps(attribution: Tensor | tuple[Tensor, ...], size: tuple[int, int], absolute: bool = True,
                     upsample: bool = True) -> Tensor:
    """Turn an attribution :math:`(B, C, h, w)` into maps :math:`(B, H, W)` for comparison.

    .. math:: M = \\sum_c |A_c| \\quad (\\text{or } \\sum_c A_c \\text{ with } absolute=False)

    upsampled bilinearly to ``size`` with ``LayerAttribution.interpolate`` when the attribution is a layer's (e.g.
    Grad-CAM's :math:`(B, 1, h, w)`) and ``upsample`` is set.

    Args:
        attribution: a Captum attribution of a single input (a tensor or a 1-tuple).
        size: :math:`(H, W)` of the inputs.
        absolute: sum absolute values over channels (Adebayo et al.'s "absolute value" maps).
        upsample: interpolate layer-sized maps to ``size``; otherwise keep the native size.

    Returns:
        :math:`(B, H, W)` maps (or :math:`(B, h, w)` without upsampling).

    Examples:
        >>> attribution_maps(torch.rand(2, 1, 4, 4), (32, 32)).shape
        torch.Size([2, 32, 32])
    """
    if isinstance(attribution, tuple):
        if len(attribution) != 1:
            raise ValueError(f"attribution must be for a single input, got a tuple of {len(attribution)} tensors")
        attribution = attribution[0]
    check_images(attribution, "attribution")
    attribution = attribution.detach()
    maps = attribution.abs().sum(1, keepdim=True) if absolute else attribution.sum(1, keepdim=True)
    if upsample and tuple(maps.shape[-2:]) != tuple(size):
        maps = LayerAttribution.interpolate(maps, tuple(size), "bilinear")
    return maps[:, 0]


def map_similarity(original: Tensor, other: Tensor, similarity: str | SimilarityFunc) -> Tensor:
    """Similarity :math:`(B,)` of two batches of maps :math:`(B, H, W)` by name or callable.

    ``"spearman"`` ranks the values as given (maps are already absolute with ``absolute=True``), ``"ssim"`` compares
    maps min-max normalized to [0, 1] with :math:`L = 1`, ``"pearson_hog"`` correlates HOG descriptors.

    Examples:
        >>> x = torch.rand(2, 16, 16)
        >>> [round(v, 3) for v in map_similarity(x, x, "ssim").tolist()]
        [1.0, 1.0]
    """
    if callable(similarity):
        scores = similarity(original, other)
        check_type(scores, "similarity(original, other)", Tensor)
        if scores.shape != (len(original),):
            raise ValueError(f"similarity must return shape ({len(original)},), got {tuple(scores.shape)}")
        return scores
    check_choice(similarity, "similarity", SIMILARITY_NAMES)
    if similarity == "spearman":
        return spearman_correlation(original, other, absolute=False)
    if similarity == "ssim":
        return ssim(minmax_normalize(original), minmax_normalize(other), data_range=1.0)
    return pearson_hog(original, other)


def _map_builder(
    attribution_factory: AttributionFactory,
    model: nn.Module,
    inputs: Tensor,
    target: Any,
    attribute_kwargs: dict[str, Any] | None,
    absolute: bool,
    upsample: bool,
) -> tuple[nn.Module, Callable[[nn.Module], Tensor]]:
    """A pristine eval-mode copy of ``model`` and the function ``network -> maps`` shared by both sanity checks."""
    inputs = inputs.detach().clone().requires_grad_()  # gradient methods need it; Captum restores the flag
    base = _pristine_copy(model, inputs, target)
    kwargs = attribute_kwargs or {}
    size = (inputs.shape[-2], inputs.shape[-1])

    def maps_of(network: nn.Module) -> Tensor:
        attribution = attribution_factory(network).attribute(inputs, target=target, **kwargs)
        return attribution_maps(attribution, size, absolute, upsample)

    return base, maps_of


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


def _tensors_of(data: Any) -> tuple[Tensor, Tensor]:
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(t, Tensor) for t in data):
        images, labels = data
    elif isinstance(data, (Dataset, DataLoader)):
        loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=256)
        batches = [split_batch(batch)[:2] for batch in loader]
        images = torch.cat([b[0] for b in batches])
        labels = torch.cat([torch.as_tensor(b[1]) for b in batches])
    else:
        raise TypeError(f"data must be an (images, labels) pair of tensors, a Dataset or a DataLoader, got {data!r}")
    check_images(images, "data images")
    if labels.shape != (len(images),) or labels.is_floating_point():
        raise ValueError(f"data labels must be {len(images)} integer class indices, got {tuple(labels.shape)}")
    return images, labels


def data_randomization(
    attribution_factory: AttributionFactory,
    model: nn.Module,
    inputs: Tensor,
    target: TargetType,
    data: tuple[Tensor, Tensor] | Dataset | DataLoader,
    epochs: int = 5,
    batch_size: int = 64,
    lr: float = 5e-3,
    similarity: str | SimilarityFunc = "spearman",
    absolute: bool = True,
    upsample: bool = True,
    attribute_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    progress: bool = True,
) -> DataRandomizationResult:
    """Data randomization test (Adebayo et al. 2018, Sec. 4): compare with a model trained on permuted labels.

    A copy of ``model`` is re-initialized (every parametrized layer, seeded) and trained with
    :func:`~captum_wsam.train.train_classifier` on ``data`` with labels :math:`y_{\\pi(i)}` for a seeded random
    permutation :math:`\\pi`; the result is :math:`s\\big(M(x; \\theta), M(x; \\theta_\\pi)\\big)` per sample. Keep
    ``data`` small: the point is a model that fits noise, which takes many epochs on large data.

    Args:
        attribution_factory: ``model -> attribution`` (see :func:`model_randomization`).
        model: the classifier trained on the true labels; never run nor modified.
        inputs: :math:`(B, C, H, W)` images to explain.
        target: Captum target for ``inputs``.
        data: training data ``(images, labels)`` tensors, or a Dataset/DataLoader of ``(image, label[, info])``.
        epochs: training epochs on the permuted labels.
        batch_size: training batch size.
        lr: peak learning rate.
        similarity: ``"spearman"``, ``"ssim"``, ``"pearson_hog"`` or a callable.
        absolute: compare absolute maps.
        upsample: upsample layer attributions to the input size.
        attribute_kwargs: extra keyword arguments of ``attribute``.
        seed: seed of the permutation, the re-initialization and the shuffling.
        progress: show training progress bars.

    Returns:
        A :class:`DataRandomizationResult` with ``scores`` :math:`(B,)` and the training history.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> data = (torch.rand(16, 3, 32, 32), torch.arange(16) % 6)
        >>> result = data_randomization(Saliency, SmallCNN(width=4, depth=2), data[0][:2], [0, 1], data,
        ...                             epochs=1, progress=False)
        >>> result.scores.shape, len(result.history)
        (torch.Size([2]), 1)
    """
    _check_common(attribution_factory, model, inputs, similarity, attribute_kwargs, seed)
    check_positive_int(epochs, "epochs")
    check_positive_int(batch_size, "batch_size")
    check_in_range(lr, "lr", 0.0, None, low_inclusive=False)
    images, labels = _tensors_of(data)
    base, maps_of = _map_builder(attribution_factory, model, inputs, target, attribute_kwargs, absolute, upsample)
    original = maps_of(copy.deepcopy(base))
    shuffled = copy.deepcopy(base)
    for j, name in enumerate(parametrized_layers(shuffled)):
        reinitialize(shuffled.get_submodule(name), seed + j)
    permutation = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    history = train_classifier(shuffled, TensorDataset(images, labels[permutation]), epochs=epochs,
                               batch_size=batch_size, lr=lr, seed=seed, progress=progress)
    randomized = maps_of(shuffled.eval())
    return DataRandomizationResult(
        scores=map_similarity(original, randomized, similarity),
        similarity=similarity if isinstance(similarity, str) else getattr(similarity, "__name__", "custom"),
        original=original,
        randomized=randomized,
        history=history,
    )


def plot_randomization(
    results: RandomizationResult | Mapping[str, RandomizationResult], ax: Any = None, band: bool = True
) -> Any:
    """Plot similarity vs randomized depth (Adebayo et al. 2018, Fig. 2/4): one curve per method.

    The x axis starts at ``original`` (the baseline, 1 for the built-in measures) and then names the layer randomized
    at each step, top layer first; the curve is the mean over samples, the band its interquartile range.

    Args:
        results: one result, or ``{method name: result}`` to overlay methods (same layers expected).
        ax: matplotlib axes to draw in (a new figure when ``None``).
        band: shade the interquartile range over samples.

    Returns:
        The matplotlib ``Axes``.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> result = model_randomization(Saliency, SmallCNN(width=4, depth=2), torch.rand(2, 3, 32, 32), [0, 1],
        ...                              progress=False)
        >>> ax = plot_randomization({"Saliency": result})
        >>> len(ax.get_legend().get_texts()), len(ax.get_xticklabels())
        (1, 6)
    """
    import matplotlib.pyplot as plt

    if isinstance(results, RandomizationResult):
        results = {"": results}
    check_type(results, "results", Mapping)
    if not results or not all(isinstance(r, RandomizationResult) for r in results.values()):
        raise TypeError("results must be a RandomizationResult or a non-empty mapping of name -> RandomizationResult")
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.6 * (len(next(iter(results.values())).layers) + 1), 3.5))
    for label, result in results.items():
        values = torch.cat([result.baseline[None], result.scores]).float()
        steps = range(len(values))
        ax.plot(steps, values.mean(1).tolist(), marker="o", label=label or None)
        if band and values.shape[1] > 1:
            low, high = values.quantile(0.25, dim=1), values.quantile(0.75, dim=1)
            ax.fill_between(steps, low.tolist(), high.tolist(), alpha=0.2)
    first = next(iter(results.values()))
    ax.set_xticks(range(len(first.layers) + 1))
    ax.set_xticklabels(["original", *first.layers], rotation=60, ha="right")
    ax.axhline(0.0, color="grey", linewidth=0.5)
    ax.set_xlabel(f"randomized layer ({first.order}, top first)")
    ax.set_ylabel(first.similarity)
    if any(results):
        ax.legend()
    return ax


def plot_randomized_maps(result: RandomizationResult, sample: int = 0, cmap: str = "viridis") -> Any:
    """Show the original map and each step's map of one sample side by side (the paper's Fig. 2 rows).

    Args:
        result: a :class:`RandomizationResult`.
        sample: index of the sample in the batch.
        cmap: matplotlib colour map.

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> result = model_randomization(Saliency, SmallCNN(width=4, depth=2), torch.rand(1, 3, 32, 32), 0,
        ...                              progress=False)
        >>> len(plot_randomized_maps(result).axes)
        6
    """
    import matplotlib.pyplot as plt

    check_type(result, "result", RandomizationResult)
    check_positive_int(sample, "sample", allow_zero=True)
    if sample >= result.original.shape[0]:
        raise ValueError(f"sample must lie in [0, {result.original.shape[0] - 1}], got {sample}")
    maps = [result.original[sample], *result.randomized[:, sample]]
    titles = ["original", *result.layers]
    fig, axes = plt.subplots(1, len(maps), figsize=(1.3 * len(maps), 1.6))
    for ax, image, title in zip(axes, maps, titles):
        ax.imshow(image.cpu().numpy(), cmap=cmap)
        ax.set_title(title, fontsize=7)
        ax.axis("off")
    return fig


__all__ = [
    "DataRandomizationResult",
    "RandomizationResult",
    "attribution_maps",
    "data_randomization",
    "map_similarity",
    "model_randomization",
    "parametrized_layers",
    "plot_randomization",
    "plot_randomized_maps",
    "reinitialize",
]
