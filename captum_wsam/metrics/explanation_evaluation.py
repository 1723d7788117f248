"""One table that scores several attribution methods against ground truth and against the model.

Builds the comparison of issue 21 ("which explanation is right?"): for each method, the localisation metrics of
:mod:`captum_wsam.metrics.localisation` on one or more ground-truth regions (the object's mask, its outline band,
...) and the faithfulness scores of :mod:`captum_wsam.metrics.faithfulness` (deletion/insertion AUC, Petsiuk et al.
2018, arXiv:1806.07421; ROAD, Rong et al. 2022, arXiv:2202.00449). Localisation says whether a map points where a
human-chosen ground truth is; faithfulness says whether the pixels it ranks first are the ones the model needs. The two
disagree exactly when the model uses evidence outside the assumed region (a texture shortcut), which is the point of
the table.

.. math::

    T_{m, k} = \\frac{1}{|\\{i : s_{m,k,i} \\ne \\text{NaN}\\}|} \\sum_i s_{m,k,i}

for method :math:`m`, metric :math:`k` and sample :math:`i` (NaN scores, e.g. the mass accuracy of an all-zero map,
are left out and counted).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import check_images, check_positive_int, check_type
from .._state import eval_mode, kept_buffers, untouched
from .._typing import TargetType
from .faithfulness import compute_attributions, deletion_insertion, resolve_target
from .faithfulness import road as road_metric
from .localisation import (
    attribution_map,
    energy_pointing_game,
    pointing_game,
    region_masks,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)

LOCALISATION = {
    "PG": pointing_game,
    "RMA": relevance_mass_accuracy,
    "RRA": relevance_rank_accuracy,
    "EPG": energy_pointing_game,
}
FAITHFULNESS = ("deletion AUC", "insertion AUC", "ROAD")


@dataclass(frozen=True)
class ExplanationEvaluation:
    """Per-sample scores of :func:`evaluate_explanations`.

    Attributes:
        scores: ``{method: {column: (N,) scores}}``; columns are ``"PG (region)"``, ``"RMA (region)"``,
            ``"RRA (region)"``, ``"EPG (region)"`` per region, then ``"deletion AUC"``, ``"insertion AUC"``, ``"ROAD"``.
        higher_is_better: ``{column: bool}`` (only the deletion AUC is better when low).
        region_share: ``{region: mean fraction of the image it covers}``, the score of an uninformative map for
            RMA and RRA.
    """

    scores: dict[str, dict[str, Tensor]]
    higher_is_better: dict[str, bool]
    region_share: dict[str, float] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Column names, in order."""
        return list(self.higher_is_better)

    def means(self) -> dict[str, dict[str, float]]:
        """``{method: {column: mean over samples}}``, NaN scores left out."""
        return {m: {k: float(torch.nanmean(v.float())) for k, v in row.items()} for m, row in self.scores.items()}

    def nan_counts(self) -> dict[str, dict[str, int]]:
        """``{method: {column: number of NaN scores}}`` (undefined scores, e.g. all-zero maps)."""
        return {m: {k: int(v.isnan().sum()) for k, v in row.items()} for m, row in self.scores.items()}

    def table(self, digits: int = 3) -> tuple[list[str], list[list[Any]]]:
        """Headers (with ↑/↓) and rows ``[method, means...]``, for a report table.

        Examples:
            >>> result = ExplanationEvaluation({"a": {"PG (object)": torch.tensor([1.0, 0.0])}},
            ...                                {"PG (object)": True})
            >>> result.table()
            (['method', 'PG (object) ↑'], [['a', 0.5]])
        """
        headers = ["method", *(f"{k} {'↑' if up else '↓'}" for k, up in self.higher_is_better.items())]
        means = self.means()
        rows = [[m, *(round(means[m][k], digits) for k in self.columns)] for m in self.scores]
        return headers, rows

    def to_markdown(self, digits: int = 3) -> str:
        """The table as Markdown; the best value of each column in bold, NaN counts in brackets.

        Examples:
            >>> result = ExplanationEvaluation({"a": {"PG (object)": torch.tensor([1.0, 0.0])},
            ...                                 "b": {"PG (object)": torch.tensor([1.0, 1.0])}}, {"PG (object)": True})
            >>> print(result.to_markdown())
            | method | PG (object) ↑ |
            |---|---|
            | a | 0.500 |
            | b | **1.000** |
        """
        headers, _ = self.table(digits)
        means, nans = self.means(), self.nan_counts()
        best = {}
        for k, up in self.higher_is_better.items():
            values = [means[m][k] for m in self.scores if means[m][k] == means[m][k]]
            best[k] = (max(values) if up else min(values)) if values else None
        lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
        for m in self.scores:
            cells = []
            for k in self.columns:
                text = f"{means[m][k]:.{digits}f}"
                if best[k] is not None and round(means[m][k], digits) == round(best[k], digits):
                    text = f"**{text}**"
                if nans[m][k]:
                    text += f" ({nans[m][k]} NaN)"
                cells.append(text)
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        return "\n".join(lines)


def outline_mask(masks: Tensor, width: int = 2) -> Tensor:
    """The band of pixels within ``width`` pixels (Chebyshev distance) of an object's boundary, inside and outside.

    .. math:: O = \\operatorname{dilate}_w(GT) \\setminus \\operatorname{erode}_w(GT)

    with square structuring elements of side :math:`2w + 1` (max-pooling). The evidence a shape classifier uses.

    Args:
        masks: boolean :math:`(N, H, W)` or :math:`(N, 1, H, W)`.
        width: half-width of the band in pixels.

    Returns:
        Boolean :math:`(N, H, W)`.

    Examples:
        >>> m = torch.zeros(1, 9, 9, dtype=torch.bool); m[0, 2:7, 2:7] = True
        >>> outline_mask(m, width=1).sum().item(), outline_mask(m, width=1)[0, 4, 4].item()
        (40, False)
    """
    regions = region_masks(masks, len(masks), name="masks")
    check_positive_int(width, "width")
    as_float = regions[:, None].float()
    dilated = F.max_pool2d(as_float, 2 * width + 1, stride=1, padding=width)
    eroded = -F.max_pool2d(-as_float, 2 * width + 1, stride=1, padding=width)
    # max-pooling pads with -inf: outside the image counts as background when dilating and as object when eroding,
    # so an object cut by the image border has no outline along that border
    return (dilated > 0.5)[:, 0] & ~(eroded > 0.5)[:, 0]


def evaluate_explanations(
    model: nn.Module,
    inputs: Tensor,
    masks: Tensor | Mapping[str, Tensor],
    methods: Mapping[str, Any],
    target: TargetType = None,
    steps: int = 20,
    percentages: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    faithfulness: bool = True,
    road: bool = True,
    batch_size: int | None = None,
    seed: int = 0,
    progress: bool = True,
) -> ExplanationEvaluation:
    """Score each attribution method by localisation on ground-truth regions and by faithfulness to the model.

    .. math::

        T_{m} = \\big(\\overline{\\text{PG}}_r, \\overline{\\text{RMA}}_r, \\overline{\\text{RRA}}_r,
        \\overline{\\text{EPG}}_r\\big)_{r \\in \\text{regions}}, \\overline{\\text{AUC}}_{\\text{del}},
        \\overline{\\text{AUC}}_{\\text{ins}}, \\overline{\\text{ROAD}}

    Each method's attributions are computed once (for the resolved ``target``) and shared by all metrics.

    Args:
        model: the classifier; run in eval mode and left exactly as found.
        inputs: :math:`(N, C, H, W)` images.
        masks: ground truth, boolean :math:`(N, H, W)` / :math:`(N, 1, H, W)` (named ``"object"``), or
            ``{region name: masks}`` (e.g. ``{"object": m, "outline": outline_mask(m)}``).
        methods: ``{name: attributions}``, each a tensor, a Captum ``Attribution`` or a callable
            ``(inputs, target=...) -> Tensor`` (e.g. ``functools.partial(ig.attribute, n_steps=32)``).
        target: Captum target; ``None`` explains each input's predicted class.
        steps: deletion/insertion steps.
        percentages: ROAD removal fractions.
        faithfulness: also compute deletion/insertion and ROAD (the expensive part).
        road: with ``faithfulness``, include ROAD (by far the slowest column: an imputation per removal fraction);
            ``False`` keeps deletion and insertion only.
        batch_size: images per model pass in the faithfulness metrics.
        seed: seed of ROAD's imputation noise.
        progress: show a tqdm bar over the methods.

    Returns:
        An :class:`ExplanationEvaluation` (``.to_markdown()``, ``.table()``, per-sample ``.scores``).

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> model, x = SmallCNN(width=4, depth=2).eval(), torch.rand(2, 3, 16, 16)
        >>> m = torch.zeros(2, 16, 16, dtype=torch.bool); m[:, 4:12, 4:12] = True
        >>> result = evaluate_explanations(model, x, m, {"Saliency": Saliency(model)}, steps=4,
        ...                                percentages=(0.5,), progress=False)
        >>> result.table()[0]
        ['method', 'PG (object) ↑', 'RMA (object) ↑', 'RRA (object) ↑', 'EPG (object) ↑', 'deletion AUC ↓', \
'insertion AUC ↑', 'ROAD ↑']
    """
    check_type(model, "model", nn.Module)
    check_images(inputs, "inputs")
    regions = dict(masks) if isinstance(masks, Mapping) else {"object": masks}
    if not regions:
        raise ValueError("masks must name at least one region, got an empty mapping")
    for name, value in regions.items():
        check_type(value, f"masks[{name!r}]", Tensor)
        regions[name] = region_masks(value, len(inputs), tuple(inputs.shape[-2:]), name=f"masks[{name!r}]")
    check_type(methods, "methods", Mapping)
    if not methods:
        raise ValueError("methods must name at least one attribution method, got an empty mapping")
    check_positive_int(steps, "steps")
    check_type(faithfulness, "faithfulness", bool)
    check_type(road, "road", bool)
    check_type(progress, "progress", bool)
    columns = {f"{k} ({r})": True for r in regions for k in LOCALISATION}
    if faithfulness:
        columns.update({"deletion AUC": False, "insertion AUC": True})
        if road:
            columns["ROAD"] = True
    size = tuple(inputs.shape[-2:])
    scores: dict[str, dict[str, Tensor]] = {}
    with untouched(model, inputs), eval_mode(model), kept_buffers(model):
        resolved, _ = resolve_target(model, inputs.detach(), target)
        for name, method in tqdm(methods.items(), desc="methods", disable=not progress, leave=False):
            attributions = attribution_map(compute_attributions(method, inputs, resolved), size)
            row = {}
            for region, region_mask in regions.items():
                for key, metric in LOCALISATION.items():
                    row[f"{key} ({region})"] = metric(attributions, region_mask).cpu()
            if faithfulness:
                curves = deletion_insertion(model, inputs, attributions, target=resolved, steps=steps,
                                            batch_size=batch_size, progress=False)
                row["deletion AUC"], row["insertion AUC"] = curves.deletion_auc.cpu(), curves.insertion_auc.cpu()
                if road:
                    row["ROAD"] = road_metric(model, inputs, attributions, target=resolved, percentages=percentages,
                                              seed=seed, batch_size=batch_size, progress=False).combined.cpu()
            scores[name] = row
    share = {r: float(m.float().mean()) for r, m in regions.items()}
    return ExplanationEvaluation(scores=scores, higher_is_better=columns, region_share=share)


__all__ = ["ExplanationEvaluation", "evaluate_explanations", "outline_mask"]
