"""The demo's ground-truth evaluation of its explanations: which attribution method points at the evidence each
trained model uses (issue 21)?

Every ShapesTextures image carries its object's mask, so each map of the demo's methods (Saliency, Grad-CAM, SAM,
WSAM, LRP αβ, and a random map as the chance level) is scored against two regions, the object and its outline band
(:func:`~captum_wsam.metrics.outline_mask`), by the pointing game (Zhang et al. 2016, "Top-down neural attention by
excitation backprop", arXiv:1608.00507), relevance mass and rank accuracy (Arras, Osman & Samek 2022, "CLEVR-XAI",
arXiv:2003.07258) and the energy pointing game (Wang et al. 2020, Score-CAM, arXiv:1910.01279), and against the model
by the deletion and insertion AUCs (Petsiuk, Das & Saenko 2018, RISE, arXiv:1806.07421):

.. math:: \\text{RMA} = \\frac{\\sum_{p \\in GT} R_p^{+}}{\\sum_p R_p^{+}}, \\qquad
    \\text{AUC}_{\\text{del}} = \\frac{1}{K} \\sum_{k=1}^{K} \\tfrac{1}{2}\\big(f_c(x^{(k-1)}) + f_c(x^{(k)})\\big)

where :math:`x^{(k)}` has the top :math:`k/K` of the pixels (by the map) set to black. ROAD (Rong et al. 2022) is
left out here: its imputation costs minutes, the demo seconds. The texture-shortcut data put the class's texture
family on the object *and* the background, so for a texture-biased model the background carries evidence too
(:math:`1 - \\text{RMA}_{\\text{object}}` of the positive mass lies there) and the faithfulness columns decide; for a
shape-biased model the outline is the evidence. Used by :func:`captum_wsam.demo.run_demo`; re-exported by
:mod:`captum_wsam.demo`.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable
from typing import Any

import torch
from captum.attr import LayerGradCam, Saliency
from torch import Tensor, nn

from ..attr import SAM, WSAM, LRPAlphaBeta
from ..metrics import evaluate_explanations, outline_mask
from ..metrics.explanation_evaluation import ExplanationEvaluation

RANDOM = "Random (chance)"
STEPS = 10  # deletion/insertion steps: 2 x 10 batched passes per method
MAX_IMAGES = 48  # images explained per model: about 5 s per model at 48×48 on one core


def demo_methods(model: nn.Module, augment: Any, wsam_styles: int, seed: int) -> dict[str, Callable[..., Tensor]]:
    """The demo's attribution methods for ``model`` (a :class:`~captum_wsam.models.SmallCNN`), each a callable
    ``(inputs, target=...) -> attributions``; the random map gives every metric's chance level.

    Args:
        model: the classifier; Grad-CAM, SAM and WSAM explain its ``block3``.
        augment: the stylizer of SAM and WSAM (the demo's StyleAugment).
        wsam_styles: styles of WSAM (× α ∈ {0.25, 0.5, 0.75}).
        seed: seed of the random map and of WSAM's style draw.

    Returns:
        ``{name: callable}``, in table order.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN().eval()
        >>> methods = demo_methods(model, None, wsam_styles=1, seed=0)
        >>> list(methods)[:3], methods["Saliency"](torch.rand(2, 3, 32, 32), target=torch.tensor([0, 1])).shape
        (['Random (chance)', 'Saliency', 'Grad-CAM'], torch.Size([2, 3, 32, 32]))
    """
    layer = model.block3
    generator = torch.Generator().manual_seed(seed)
    saliency = Saliency(model)

    def random_map(inputs: Tensor, target: Tensor) -> Tensor:
        return torch.rand(inputs.shape[0], *inputs.shape[2:], generator=generator)

    def gradient(inputs: Tensor, target: Tensor) -> Tensor:  # |∂y_c/∂x|, on a copy that requires the gradient
        return saliency.attribute(inputs.detach().clone().requires_grad_(), target=target, abs=True)

    return {
        RANDOM: random_map,
        "Saliency": gradient,
        "Grad-CAM": functools.partial(LayerGradCam(model, layer).attribute, relu_attributions=True),
        "SAM (α=0.5, style 0)": functools.partial(SAM(model, layer, augment=augment).attribute, alpha=0.5, style=0),
        "WSAM": WSAM(model, layer, augment=augment, alphas=(0.25, 0.5, 0.75), styles=wsam_styles, seed=seed).attribute,
        "LRP α1β0": LRPAlphaBeta(model, alpha=1.0, beta=0.0).attribute,
        "LRP α2β1": LRPAlphaBeta(model, alpha=2.0, beta=1.0).attribute,
    }


def evaluate_demo_explanations(
    model: nn.Module,
    inputs: Tensor,
    target: Tensor,
    masks: Tensor,
    methods: dict[str, Callable[..., Tensor]],
    steps: int = STEPS,
    outline_width: int = 1,
) -> ExplanationEvaluation:
    """Localisation on the object and its outline, and deletion/insertion AUCs (no ROAD), for each method.

    :func:`~captum_wsam.metrics.evaluate_explanations` with ``road=False``: each method's map is computed once and
    shared by all metrics.

    Args:
        model: the classifier (in eval mode).
        inputs: :math:`(N, C, H, W)` images.
        target: :math:`(N,)` classes to explain.
        masks: boolean :math:`(N, H, W)` object masks.
        methods: ``{name: callable(inputs, target=...)}`` (:func:`demo_methods`).
        steps: deletion/insertion steps.
        outline_width: half-width of the outline band in pixels.

    Returns:
        An :class:`~captum_wsam.metrics.ExplanationEvaluation` with columns PG/RMA/RRA/EPG on ``object`` and
        ``outline``, then ``deletion AUC`` and ``insertion AUC``; scores of shape :math:`(N,)`.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model, x = SmallCNN().eval(), torch.rand(2, 3, 32, 32)
        >>> m = torch.zeros(2, 32, 32, dtype=torch.bool); m[:, 8:24, 8:24] = True
        >>> result = evaluate_demo_explanations(model, x, torch.tensor([0, 1]), m,
        ...                                     {"Saliency": demo_methods(model, None, 1, 0)["Saliency"]}, steps=2)
        >>> result.columns[-2:], result.scores["Saliency"]["deletion AUC"].shape
        (['deletion AUC', 'insertion AUC'], torch.Size([2]))
    """
    regions = {"object": masks, "outline": outline_mask(masks, width=outline_width)}
    return evaluate_explanations(model, inputs, regions, methods, target=target, steps=steps, road=False,
                                 progress=False)


def table_rows(result: ExplanationEvaluation) -> tuple[list[str], list[list[Any]]]:
    """``result.table()`` with the number of undefined (NaN) scores after a mean, e.g. ``0.315 (3 NaN)``.

    Examples:
        >>> result = ExplanationEvaluation({"a": {"RMA (object)": torch.tensor([0.5, float("nan")])}},
        ...                                {"RMA (object)": True})
        >>> table_rows(result)
        (['method', 'RMA (object) ↑'], [['a', '0.5 (1 NaN)']])
    """
    headers, rows = result.table()
    nans = result.nan_counts()
    for row in rows:
        for k, column in enumerate(result.columns, start=1):
            if nans[row[0]][column]:
                row[k] = f"{row[k]:.3g} ({nans[row[0]][column]} NaN)"
    return headers, rows


def _best(means: dict[str, dict[str, float]], column: str, higher: bool) -> str:
    methods = [m for m in means if m != RANDOM]
    finite = [m for m in methods if math.isfinite(means[m][column])] or methods  # all NaN: the first, shown as nan
    return (max if higher else min)(finite, key=lambda m: means[m][column])


def _per_model(best: dict[str, str], text: dict[str, str], titles: dict[str, str]) -> str:
    """``"M for every model (a; b)"`` when one method wins everywhere, else ``"M for the x model (a); ..."``."""
    if len(set(best.values())) == 1:
        return f"{next(iter(best.values()))} for every model (" + "; ".join(
            f"{titles[k]} {text[k]}" for k in best) + ")"
    return "; ".join(f"{best[k]} for the {titles[k]} model ({text[k]})" for k in best)


def describe(results: dict[str, ExplanationEvaluation], titles: dict[str, str], shape_bias: dict[str, float],
             images: int, margin: float = 0.02) -> tuple[list[str], str]:
    """Up to four sentences written from the measured means -- where the maps point (outline share, and whether it
    follows the shape bias), which map is the most faithful (deletion, insertion), which do worse than the random map,
    which are undefined (all-zero maps) -- and a one-line finding for the top of the report.

    Args:
        results: ``{model key: evaluation}`` (with the random map as :data:`RANDOM`).
        titles: ``{model key: display name}``.
        shape_bias: ``{model key: shape bias}``.
        images: number of images explained.
        margin: a deletion AUC counts as worse than the random map's when above it by more than this.

    Returns:
        The sentences and the finding.

    Examples:
        >>> t = lambda v: torch.tensor([v])
        >>> row = lambda d, i, o, b: {"PG (object)": t(o), "RMA (object)": t(o), "RMA (outline)": t(b),
        ...                           "deletion AUC": t(d), "insertion AUC": t(i)}
        >>> up = {"PG (object)": True, "RMA (object)": True, "RMA (outline)": True, "deletion AUC": False,
        ...       "insertion AUC": True}
        >>> result = ExplanationEvaluation({RANDOM: row(0.3, 0.5, 0.2, 0.1), "Saliency": row(0.2, 0.7, 0.4, 0.3),
        ...                                 "Grad-CAM": row(0.4, 0.8, 0.6, 0.1)}, up, {"object": 0.2, "outline": 0.1})
        >>> sentences, finding = describe({"m": result}, {"m": "model"}, {"m": 0.3}, images=1)
        >>> len(sentences), sentences[0].startswith("Saliency puts the largest share"), "Grad-CAM" in sentences[2]
        (3, True, True)
    """
    means = {k: r.means() for k, r in results.items()}
    chance = {k: m[RANDOM] for k, m in means.items()}
    share = next(iter(results.values())).region_share["outline"]
    outline = {k: _best(m, "RMA (outline)", higher=True) for k, m in means.items()}
    deleting = {k: _best(m, "deletion AUC", higher=False) for k, m in means.items()}
    inserting = {k: _best(m, "insertion AUC", higher=True) for k, m in means.items()}
    where = (_per_model(outline, {k: f"{means[k][outline[k]]['RMA (outline)']:.0%}" for k in means}, titles)
             .replace(" for every model", " puts the largest share of its positive mass on the object's outline for "
                      "every model", 1))
    if len(set(outline.values())) > 1:
        where = "The largest share of positive mass on the object's outline: " + where
    where += f", where the outline band covers {share:.0%} of the image"
    if len(set(outline.values())) == 1 and len(means) > 1:
        method = next(iter(outline.values()))
        order = sorted(means, key=lambda k: shape_bias[k])
        values = [means[k][method]["RMA (outline)"] for k in order]
        if all(a < b for a, b in itertools.pairwise(values)):
            where += ", and the share grows with the model's shape bias"
    sentences = [where + "."]
    beats = {k: means[k][deleting[k]]["deletion AUC"] < chance[k]["deletion AUC"] - margin for k in means}
    best_deletion = {k: f"{means[k][deleting[k]]['deletion AUC']:.2f} vs {chance[k]['deletion AUC']:.2f} random"
                     for k in means}
    if not any(beats.values()):
        by_deletion = (f"by deletion no map beats a random one by more than {margin:g} for any model -- best: "
                       + _per_model(deleting, best_deletion, titles))
    else:
        by_deletion = "by deletion the most faithful map is " + "; ".join(
            f"{deleting[k]} for the {titles[k]} model ({best_deletion[k]})" if beats[k] else
            f"none for the {titles[k]} model (no map beats a random one by more than {margin:g}; best "
            f"{deleting[k]} {best_deletion[k]})" for k in means)
    by_insertion = "by insertion (the map whose top pixels, restored first, bring the class back fastest covers the " \
        "evidence the model uses) " + _per_model(
        inserting, {k: f"{means[k][inserting[k]]['insertion AUC']:.2f} vs {chance[k]['insertion AUC']:.2f} random"
                    for k in means}, titles)
    sentences.append(by_deletion[0].upper() + by_deletion[1:] + "; " + by_insertion + ".")
    worse = {k: [m for m, row in means[k].items() if m != RANDOM and row["deletion AUC"] > chance[k]["deletion AUC"]
                 + margin] for k in means}
    if any(worse.values()):
        sentences.append(
            f"Worse than the random map on deletion (by more than {margin:g}: removing their top pixels first hurts "
            "the model less than removing random ones, whose black specks all over the image break up a texture "
            "quickly): " + "; ".join(f"{', '.join(worse[k])} for the {titles[k]} model" for k in means if worse[k])
            + "."
        )
    methods = [m for m in means[next(iter(means))] if m != RANDOM]
    undefined = {m: {k: max(results[k].nan_counts()[m].values()) for k in means} for m in methods}
    undefined = {m: counts for m, counts in undefined.items() if any(counts.values())}
    if undefined:
        sentences.append(
            "All-zero maps (no positive evidence: mass and energy undefined, NaN): "
            + "; ".join(f"{m} on " + ", ".join(f"{n} of {images} images for the {titles[k]} model"
                                              for k, n in counts.items() if n) for m, counts in undefined.items())
            + ("" if "WSAM" not in methods or "WSAM" in undefined else
               " -- WSAM, which averages many styles weighted by the class probability, on none")
            + "."
        )
    finding = sentences[0][:-1] + "; " + by_deletion + ("; " + ", ".join(
        f"{len(worse[k])} of {len(means[k]) - 1} methods do worse than a random map for the {titles[k]} model"
        for k in means if worse[k]) if any(worse.values()) else "") + "; " + by_insertion
    return sentences, finding


__all__ = ["MAX_IMAGES", "RANDOM", "STEPS", "demo_methods", "describe", "evaluate_demo_explanations",
           "table_rows"]
