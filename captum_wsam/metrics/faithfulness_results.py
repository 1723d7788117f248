"""Results of the faithfulness metrics and their plot: deletion/insertion curves (RISE) and ROAD MoRF/LeRF curves.

- Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation of Black-box Models", BMVC,
  arXiv:1806.07421: :math:`\\text{AUC} = \\int_0^1 p_c \\, d\\!f` by the trapezoidal rule over the deleted
  (inserted) fraction :math:`f`.
- Rong et al. (2022), "A Consistent and Efficient Evaluation Strategy for Attribution Methods", ICML,
  arXiv:2202.00449: :math:`\\text{combined} = \\operatorname{mean}_p (\\text{LeRF}_p - \\text{MoRF}_p) / 2`.

The metrics themselves are in :mod:`captum_wsam.metrics.faithfulness`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._checks import check_type


@dataclass(frozen=True)
class DeletionInsertionResult:
    """Outcome of :func:`deletion_insertion`.

    Attributes:
        fractions: :math:`(S + 1,)` fraction of pixels deleted (inserted) at each step, from 0 to 1.
        deletion: :math:`(S + 1, N)` target-class score at each deletion step (``None`` in ``"insertion"`` mode).
        insertion: :math:`(S + 1, N)` target-class score at each insertion step (``None`` in ``"deletion"`` mode).
        target: :math:`(N,)` the explained classes.
    """

    fractions: Tensor
    deletion: Tensor | None
    insertion: Tensor | None
    target: Tensor

    @property
    def deletion_auc(self) -> Tensor:
        """:math:`(N,)` area under the deletion curve (lower is better)."""
        if self.deletion is None:
            raise ValueError("deletion_auc needs the deletion curve; run with mode='deletion' or 'both'")
        return torch.trapezoid(self.deletion, self.fractions[:, None].to(self.deletion), dim=0)

    @property
    def insertion_auc(self) -> Tensor:
        """:math:`(N,)` area under the insertion curve (higher is better)."""
        if self.insertion is None:
            raise ValueError("insertion_auc needs the insertion curve; run with mode='insertion' or 'both'")
        return torch.trapezoid(self.insertion, self.fractions[:, None].to(self.insertion), dim=0)


@dataclass(frozen=True)
class ROADResult:
    """Outcome of :func:`road`.

    Attributes:
        percentages: :math:`(P,)` fractions of pixels removed and imputed.
        original: :math:`(N,)` target-class score of the unperturbed inputs.
        morf: :math:`(P, N)` scores with the most relevant pixels removed (``None`` in ``"lerf"`` mode).
        lerf: :math:`(P, N)` scores with the least relevant pixels removed (``None`` in ``"morf"`` mode).
        target: :math:`(N,)` the explained classes.
    """

    percentages: Tensor
    original: Tensor
    morf: Tensor | None
    lerf: Tensor | None
    target: Tensor

    @property
    def combined(self) -> Tensor:
        """:math:`(N,)` mean over percentages of :math:`(\\text{LeRF} - \\text{MoRF}) / 2` (higher is better)."""
        if self.morf is None or self.lerf is None:
            raise ValueError("combined needs both curves; run with mode='both'")
        return ((self.lerf - self.morf) / 2).mean(0)


def plot_faithfulness(
    results: DeletionInsertionResult | ROADResult | Mapping[str, DeletionInsertionResult | ROADResult],
    ax: Any = None,
    band: bool = True,
) -> Any:
    """Plot mean curves (deletion/insertion against the fraction of pixels, or ROAD MoRF/LeRF) per method.

    Solid lines are deletion (MoRF), dashed lines insertion (LeRF); the band is the interquartile range over samples
    and the legend gives the mean AUC (ROAD: the mean combined score).

    Args:
        results: one result, or ``{method name: result}`` (all of the same kind).
        ax: matplotlib axes to draw in (a new figure when ``None``).
        band: shade the interquartile range over samples.

    Returns:
        The matplotlib ``Axes``.

    Examples:
        >>> curve = torch.linspace(1, 0, 5)[:, None].repeat(1, 2)
        >>> result = DeletionInsertionResult(torch.linspace(0, 1, 5), curve, curve.flip(0), torch.zeros(2).long())
        >>> ax = plot_faithfulness({"Saliency": result})
        >>> len(ax.get_lines()), len(ax.get_legend().get_texts())
        (2, 2)
    """
    import matplotlib.pyplot as plt

    kinds = (DeletionInsertionResult, ROADResult)
    if isinstance(results, kinds):
        results = {"": results}
    check_type(results, "results", Mapping)
    values = list(results.values())
    if not values or not all(isinstance(r, type(values[0])) and isinstance(r, kinds) for r in values):
        raise TypeError("results must be a result of deletion_insertion or road, or a non-empty mapping of name -> "
                        "results of one kind")
    if ax is None:
        _, ax = plt.subplots(figsize=(4.5, 3.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, result) in enumerate(results.items()):
        color = colors[index % len(colors)]
        if isinstance(result, DeletionInsertionResult):
            x = result.fractions
            curves = [("deletion", result.deletion, "-"), ("insertion", result.insertion, "--")]
        else:
            x = result.percentages
            curves = [("MoRF", result.morf, "-"), ("LeRF", result.lerf, "--")]
        for label, curve, style in curves:
            if curve is None:
                continue
            if isinstance(result, DeletionInsertionResult):
                summary = f"AUC {torch.trapezoid(curve.mean(1), x).item():.3f}"
            else:
                summary = f"mean {curve.mean().item():.3f}"
            ax.plot(x.tolist(), curve.mean(1).tolist(), style, color=color,
                    label=f"{name + ' ' if name else ''}{label} ({summary})")
            if band and curve.shape[1] > 1:
                low, high = curve.quantile(0.25, dim=1), curve.quantile(0.75, dim=1)
                ax.fill_between(x.tolist(), low.tolist(), high.tolist(), color=color, alpha=0.15)
    road_kind = isinstance(values[0], ROADResult)
    ax.set_xlabel("fraction of pixels removed (imputed)" if road_kind else "fraction of pixels deleted / inserted")
    ax.set_ylabel("target-class score")
    ax.set_xlim(0, 1)
    ax.legend(fontsize=7)
    return ax


__all__ = ["DeletionInsertionResult", "ROADResult", "plot_faithfulness"]
