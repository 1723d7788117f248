"""Figures of the randomization tests of Adebayo et al. (2018): similarity curves and the maps side by side.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt & Kim (2018), "Sanity Checks for Saliency Maps", NeurIPS,
arXiv:1810.03292, Fig. 2 and 4: the similarity of each randomization step to the original map,

.. math:: k \\mapsto \\bar s_k = \\frac1B \\sum_{b=1}^{B} s\\big(M(x_b; \\theta), M(x_b; \\theta^{(k)})\\big),
          \\qquad \\bar s_0 = s(M, M),

with its interquartile range over the samples, and the maps :math:`M(x; \\theta^{(k)})` of one sample in a row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .._checks import check_positive_int, check_type
from .parameter_randomization import RandomizationResult


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
        >>> from captum_wsam.metrics import model_randomization
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
        >>> from captum_wsam.metrics import model_randomization
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


__all__ = ["plot_randomization", "plot_randomized_maps"]
