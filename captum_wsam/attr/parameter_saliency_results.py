"""Results of parameter-space saliency: the dataclasses, the profile figure, and the statistics file format.

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022). A sample's filter-wise profile is

.. math:: \\hat s(x, y)_k = \\frac{\\frac{1}{|\\mathcal{F}_k|} \\sum_{i \\in \\mathcal{F}_k} s_i - \\mu_k}{\\sigma_k}

with :math:`\\mu, \\sigma` estimated on reference data (:meth:`ParameterSaliency.fit`) and stored in a file that
:func:`read_statistics` validates. :class:`~captum_wsam.attr.ParameterSaliency` computes; this module holds what it
returns and reads.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._checks import check_tensor, check_type
from .parameter_saliency_statistics import layer_slices

STATS_FORMAT = 1


@dataclass(frozen=True)
class ParameterSaliencyResult:
    """Filter-wise parameter saliency of a batch.

    Attributes:
        flat: :math:`(B, F)` scores in ``mode`` (all layers' filters side by side, layer order of the model).
        raw: :math:`(B, F)` raw filter-wise saliency (mean of :math:`|\\nabla_W \\mathcal{L}|` over each filter).
        filter_index: ``F`` pairs ``(layer name, filter)``: column ``j`` of ``flat`` is filter
            ``filter_index[j][1]`` of layer ``filter_index[j][0]``.
        layer_sizes: filters per layer, in column order.
        mode: ``"standardized"``, ``"norm"`` or ``"raw"``.
        target: :math:`(B,)` classes the loss was taken for.
        prediction: :math:`(B,)` predicted classes (argmax of the logits).
        loss: :math:`(B,)` per-sample loss.
        parameters: with ``parameter_wise=True``, per layer the per-sample :math:`|\\nabla_W \\mathcal{L}|` of shape
            :math:`(B, O, C/G, k_h, k_w)`; else ``None``.
    """

    flat: Tensor
    raw: Tensor
    filter_index: list[tuple[str, int]]
    layer_sizes: dict[str, int]
    mode: str
    target: Tensor
    prediction: Tensor
    loss: Tensor
    parameters: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def profiles(self) -> dict[str, Tensor]:
        """Per layer, the :math:`(B, O_\\ell)` scores (views of :attr:`flat`)."""
        slices = layer_slices(list(self.layer_sizes.values()))
        return {name: self.flat[:, part] for name, part in zip(self.layer_sizes, slices)}

    @property
    def correct(self) -> Tensor:
        """Bool :math:`(B,)`: the prediction equals the target."""
        return self.prediction == self.target

    def layer_means(self) -> Tensor:
        """:math:`(B, \\text{layers})` mean score of each layer (the layer-wise profile)."""
        return torch.stack([part.mean(1) for part in self.profiles.values()], dim=1)


@dataclass(frozen=True)
class PruningResult:
    """Outcome of :meth:`ParameterSaliency.prune_top_filters` (Levin et al.'s check of the salient filters).

    Attributes:
        k: filters zeroed per sample.
        misclassified: indices (into the batch) of the samples that were misclassified.
        fixed_salient: how many of them become correct when their own top-``k`` filters are zeroed.
        fixed_random: per random trial, how many become correct when ``k`` random filters are zeroed.
        salient_prediction: predictions of the misclassified samples after zeroing their top-``k`` filters.
        seed: seed of the random filter draws.
    """

    k: int
    misclassified: Tensor
    fixed_salient: int
    fixed_random: list[int]
    salient_prediction: Tensor
    seed: int

    @property
    def num_misclassified(self) -> int:
        """Number of misclassified samples."""
        return int(self.misclassified.numel())

    @property
    def fixed_random_mean(self) -> float:
        """Mean over trials of :attr:`fixed_random`."""
        return sum(self.fixed_random) / max(1, len(self.fixed_random))


def plot_profile(
    result: ParameterSaliencyResult,
    correct: Tensor | None = None,
    figsize: tuple[float, float] = (12.0, 6.5),
    title: str | None = None,
) -> Any:
    """Filter-wise saliency profiles averaged over correct and over incorrect samples, side by side (Levin et al.,
    Fig. 2), and below them the layer-wise means of both groups.

    .. math:: \\bar{\\hat s}_k^{\\text{group}} = \\frac{1}{|\\text{group}|} \\sum_{b \\in \\text{group}}
        \\hat s(x_b, y_b)_k

    Args:
        result: output of :meth:`ParameterSaliency.attribute`.
        correct: bool :math:`(B,)` grouping; default ``result.correct``.
        figsize: matplotlib figure size.
        title: optional figure title.

    Returns:
        ``matplotlib.figure.Figure`` with three axes.

    Examples:
        >>> from captum_wsam.attr import ParameterSaliency
        >>> from captum_wsam.models import SmallCNN
        >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
        >>> result = saliency.attribute_detailed(torch.rand(4, 3, 32, 32), 0)
        >>> len(plot_profile(result, torch.tensor([True, False, True, False])).axes)
        3
    """
    import matplotlib.pyplot as plt

    check_type(result, "result", ParameterSaliencyResult)
    groups = result.correct if correct is None else correct
    check_tensor(groups, "correct", ndim=1)
    if groups.dtype != torch.bool or groups.numel() != result.flat.shape[0]:
        raise ValueError(f"correct must be a bool tensor of shape ({result.flat.shape[0]},), got "
                         f"{groups.dtype} {tuple(groups.shape)}")
    groups = groups.to(result.flat.device)
    scores = result.flat.detach().float().cpu()
    groups = groups.cpu()
    names = list(result.layer_sizes)
    slices = layer_slices(list(result.layer_sizes.values()))
    figure = plt.figure(figsize=figsize, layout="constrained")
    grid = figure.add_gridspec(2, 2, height_ratios=(3, 2))
    top = [figure.add_subplot(grid[0, 0])]
    top.append(figure.add_subplot(grid[0, 1], sharey=top[0]))
    bottom = figure.add_subplot(grid[1, :])
    ylabel = {"standardized": "standardized saliency", "norm": "saliency / reference mean", "raw": "saliency"}
    layer_means = {}
    for axis, (label, members) in zip(top, (("correct", groups), ("incorrect", ~groups))):
        count = int(members.sum())
        for i, part in enumerate(slices):
            if i % 2:
                axis.axvspan(part.start - 0.5, part.stop - 0.5, color="0.92", lw=0)
        if count:
            profile = scores[members].mean(0)
            axis.plot(range(scores.shape[1]), profile.tolist(), lw=0.8, color="C0" if label == "correct" else "C3")
            layer_means[label] = torch.stack([profile[part].mean() for part in slices])
        else:
            axis.text(0.5, 0.5, f"no {label} samples", transform=axis.transAxes, ha="center")
        axis.set_title(f"{label} samples (n={count})")
        axis.set_xlabel("filter (layers shaded alternately, input → output)")
        axis.set_xlim(-0.5, scores.shape[1] - 0.5)
    top[0].set_ylabel(ylabel[result.mode])
    positions = list(range(len(names)))
    for offset, (label, color) in zip((-0.2, 0.2), (("correct", "C0"), ("incorrect", "C3"))):
        if label in layer_means:
            bottom.bar([p + offset for p in positions], layer_means[label].tolist(), width=0.4, color=color,
                       label=label)
    bottom.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    bottom.set_ylabel(f"layer mean ({result.mode})")
    bottom.axhline(0, color="0.5", lw=0.5)
    bottom.legend()
    if title:
        figure.suptitle(title)
    return figure



def read_statistics(
    path: str | Path, layer_sizes: dict[str, int], known_layers: Sequence[str] = ()
) -> tuple[Tensor, Tensor, int]:
    """Read and validate reference statistics written by :meth:`ParameterSaliency.save` for the given layers.

    .. math:: \\mu, \\sigma \\in \\mathbb{R}^F \\text{ finite}, \\quad \\sigma > 0, \\quad F = \\sum_\\ell O_\\ell

    Args:
        path: the file.
        layer_sizes: the analysed layers and their filter counts, in order.
        known_layers: every submodule name of the model (to name saved layers the model lacks).

    Returns:
        ``(mean, std, count)``; every problem raises a ``ValueError`` naming the file.
    """
    num_filters = sum(layer_sizes.values())
    where = f"ParameterSaliency statistics in {str(path)!r}"
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as error:  # empty, truncated or foreign files raise EOFError, UnpicklingError, ...
        raise ValueError(f"{where} could not be read ({type(error).__name__}: {error})") from error
    if not isinstance(state, dict) or state.get("format") != STATS_FORMAT:
        raise ValueError(f"{where}: the file does not hold ParameterSaliency statistics (format {STATS_FORMAT}), "
                         f"got {type(state).__name__}")
    missing = sorted({"mean", "std", "count", "layers", "sizes"} - state.keys())
    if missing:
        raise ValueError(f"{where} lack the keys {missing}")
    layers, sizes = state["layers"], state["sizes"]
    if not isinstance(layers, list) or not all(isinstance(n, str) for n in layers):
        raise ValueError(f"{where}: 'layers' must be a list of layer names, got {layers!r}")
    if not isinstance(sizes, list) or len(sizes) != len(layers) or not all(isinstance(n, int) for n in sizes):
        raise ValueError(f"{where}: 'sizes' must be a list of {len(layers)} ints, got {sizes!r}")
    if layers != list(layer_sizes) or sizes != list(layer_sizes.values()):
        unknown = [name for name in layers if name not in set(known_layers)]
        detail = f" (not layers of this model: {unknown})" if unknown else ""
        raise ValueError(
            f"{where} are for layers {list(zip(layers, sizes))}{detail}, this ParameterSaliency analyses "
            f"{list(layer_sizes.items())}"
        )
    count = state["count"]
    if isinstance(count, bool) or not isinstance(count, int) or count < 2:
        raise ValueError(f"{where}: 'count' must be an int >= 2, got {count!r}")
    stats = {}
    for key in ("mean", "std"):
        value = state[key]
        if not isinstance(value, Tensor) or not value.is_floating_point() or value.shape != (num_filters,):
            shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise ValueError(f"{where}: {key!r} must be a float tensor of shape ({num_filters},) (one value "
                             f"per filter), got {shape}")
        if not bool(torch.isfinite(value).all()):
            raise ValueError(f"{where}: {key!r} holds {int((~torch.isfinite(value)).sum())} non-finite values")
        stats[key] = value
    if bool((stats["std"] <= 0).any()):
        raise ValueError(f"{where}: 'std' must be > 0 everywhere, got {int((stats['std'] <= 0).sum())} values <= 0")
    return stats["mean"], stats["std"], count


__all__ = ["STATS_FORMAT", "ParameterSaliencyResult", "PruningResult", "plot_profile", "read_statistics"]
