"""The demo run: :func:`run_demo` trains the three models, explains them and writes ``report.md`` with its figures.

Trains a :class:`~captum_wsam.models.SmallCNN` three ways (plain, with :class:`~captum_wsam.augment.StyleAugment`,
with SAT), then writes ``report.md`` -- opening with findings written from the measured numbers -- and PNG figures:
accuracy and shape bias (Geirhos et al. 2019, arXiv:1811.12231), SAM across α and WSAM maps (Moreno-Vera et al.),
WSAM variance per class, LRP αβ (Bach et al. 2015) next to Captum's Grad-CAM, a ground-truth evaluation of the
explanations of every model (pointing game, relevance mass/rank accuracy on the object and its outline, deletion and
insertion AUC; :mod:`captum_wsam.demo.evaluation`), a parameter-saliency profile (Levin et al. 2021,
arXiv:2108.01335) and robust accuracy under PGD (Madry et al. 2018, arXiv:1706.06083):

.. math:: \\text{robust accuracy} = \\frac{1}{N} \\sum_i
    \\mathbb{1}\\Big[f\\big(\\operatorname{PGD}_\\varepsilon(x_i)\\big) = y_i\\Big]

The settings are in :mod:`captum_wsam.demo.config`, training and its cache in :mod:`captum_wsam.demo.training`,
files and figure helpers in :mod:`captum_wsam.demo.report`; :mod:`captum_wsam.demo` re-exports every name.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch
import torchattacks
from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor
from torch.utils.data import DataLoader, Subset

from ..attr import SAM, WSAM, LRPAlphaBeta, ParameterSaliency
from ..data import ShapesTextures
from ..metrics import relevance_mass_accuracy, robust_accuracy, shape_bias, wsam_variance
from ..train import accuracy, predict
from .config import (
    ACCURACY_TARGET,
    MODELS,
    TITLES,
    DemoConfig,
    check_config,
)
from .evaluation import MAX_IMAGES, RANDOM, STEPS, demo_methods, describe, evaluate_demo_explanations, table_rows
from .report import (
    Report,
    _bar_labels,
    _colorbar,
    _heat,
    _show,
    say,
    staged_folder,
)
from .training import (
    trained_model,
)


# ---------------------------------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------------------------------
@dataclass
class _Stage:
    count: int
    done: int = 0
    began: float = field(default_factory=time.perf_counter)

    def start(self, text: str) -> None:
        self.done += 1
        self.began = time.perf_counter()
        say(f"[{self.done}/{self.count}] {text}")

    def end(self, text: str) -> None:
        say(f"      {text} ({time.perf_counter() - self.began:.1f} s)")


def _samples_per_class(data: ShapesTextures) -> tuple[Tensor, Tensor, Tensor]:
    images, labels = data.tensors()
    chosen = [int((labels == c).nonzero()[0]) for c in range(data.num_classes) if (labels == c).any()]
    return images[chosen], labels[chosen], data.masks[chosen]


def _findings(cfg: DemoConfig, n: dict[str, float], classes: int, explained: list[str], evaluation: str) -> list[str]:
    def cue(bias: float) -> str:
        return "mostly the object's shape" if bias > 0.5 else "mostly texture"

    lines = ["## Findings", ""]
    acc = {m: n[f"{m}_accuracy"] for m in MODELS}
    bias = {m: n[f"{m}_shape_bias"] for m in MODELS}
    lines.append(
        "- **What the models learned.** Clean test accuracy: " + ", ".join(f"{TITLES[m]} {acc[m]:.1%}" for m in MODELS)
        + f" (chance {1 / classes:.0%}" + ("" if cfg.quick else f"; the full run aims at ≥ {ACCURACY_TARGET:.0%}")
        + ")." + ("" if all(acc[m] >= ACCURACY_TARGET for m in explained) else
                  f" Below {ACCURACY_TARGET:.0%}: " + ", ".join(TITLES[m] for m in explained
                                                                if acc[m] < ACCURACY_TARGET)
                  + (" (quick mode trains briefly; run without `--quick` for the full budget)." if cfg.quick else "."))
    )
    change = bias["style"] - bias["baseline"]
    lines.append(
        f"- **Which cue they use.** On cue-conflict images (shape of one class, texture of another) the baseline "
        f"decides by shape {bias['baseline']:.0%} of the time -- {cue(bias['baseline'])} -- and the StyleAugment model "
        f"{bias['style']:.0%} ({'+' if change >= 0 else '−'}{abs(change):.2f}): style augmentation "
        + ("moved it towards shape." if change > 0.05 else "moved it away from shape." if change < -0.05 else
           "left its cue preference about where it was.")
        + f" SAT: {bias['sat']:.0%}."
    )
    variance = (n["baseline_wsam_variance_mean"], n["style_wsam_variance_mean"])
    lines.append(
        f"- **WSAM.** Stylizing the input moves the baseline's explanation by a mean WSAM variance of "
        f"{variance[0]:.3g} and the StyleAugment model's by {variance[1]:.3g} "
        + ("(lower: its evidence survives a change of texture)." if variance[1] < variance[0] else
           "(not lower: its evidence still moves with texture).")
        + f" On one image per class, {n['wsam_on_object']:.0%} of the baseline's positive WSAM and "
        f"{n['gradcam_on_object']:.0%} of its Grad-CAM fall on the object, which covers {n['object_area']:.0%} of "
        "the image; the rest falls on the background"
        + (", which carries the same texture family (texture evidence)." if cfg.data.texture_shortcut else ".")
    )
    lines.append(
        f"- **LRP αβ.** α1β0 puts {n['lrp10_on_object']:.0%} and α2β1 {n['lrp21_on_object']:.0%} of the baseline's "
        "positive relevance on the object; α2β1 also shows negative (blue) evidence against the class."
    )
    lines.append(
        f"- **Which explanation is right?** Scored against the object masks and the model on "
        f"{int(n['explained_images'])} test images (section below): {evaluation}."
    )
    if "misclassified_mean_saliency" in n:
        lines.append(
            f"- **Parameter saliency.** {int(n['misclassified'])} of {int(n['saliency_images'])} test images are "
            f"misclassified by the baseline; their mean standardized filter saliency is "
            f"{n['misclassified_mean_saliency']:.2f} against {n['correct_mean_saliency']:.2f} for correct ones "
            + ("(higher: a few filters stand out for the mistakes)." if n["misclassified_mean_saliency"]
               > n["correct_mean_saliency"] else "(no higher: no filter stands out for the mistakes).")
        )
    else:
        lines.append("- **Parameter saliency.** The baseline misclassifies none of the images examined.")
    lines.append(
        f"- **Robust accuracy.** Under PGD at ε = 4/255 the baseline keeps {n['baseline_PGD_4_255']:.0%} and the SAT "
        f"model {n['sat_PGD_4_255']:.0%} of its test images (clean: {n['baseline_clean']:.0%} and "
        f"{n['sat_clean']:.0%})."
    )
    return lines


def run_demo(config: DemoConfig) -> dict[str, float]:
    """Run the demo and write ``config.out / "report.md"`` with its figures; return the headline numbers.

    Arguments and the output folder are checked first (:func:`check_config`); the report folder is replaced as a
    whole at the end (:func:`staged_folder`). One line per stage and per training epoch is printed.

    Args:
        config: the settings.

    Returns:
        The numbers of the report by name (accuracies, shape biases, WSAM variances, robust accuracies, seconds).

    Raises:
        TypeError, ValueError: bad settings or output folder (before any work).
        RuntimeError: a non-finite number in the results (nothing is written then).

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
        ...     numbers = run_demo(DemoConfig(out=Path(tmp) / "report", quick=True, progress=False, cache_dir=None))
    """
    start = time.perf_counter()
    cfg = check_config(config)
    size = cfg.plan.size
    stage = _Stage(count=9)
    with staged_folder(cfg.out) as folder:
        report = Report(folder)
        numbers = report.numbers

        # 1. data
        stage.start(f"data: ShapesTextures {size}×{size}, {cfg.data.describe()}")
        train = cfg.data.dataset(cfg.plan.n_train, size, cfg.seed)
        test = cfg.data.dataset(cfg.plan.n_test, size, cfg.seed + 1)
        conflict = cfg.data.dataset(cfg.plan.n_test, size, cfg.seed + 2, cue_conflict=True)
        stage.end(f"{len(train)} training, {len(test)} test, {len(conflict)} cue-conflict images")

        # 2. models
        stage.start(f"training {len(MODELS)} SmallCNNs for {cfg.plan.epochs} epochs each: plain, with StyleAugment, "
                    "with SAT" + ("" if cfg.cache_dir is None else f" (cache: {Path(cfg.cache_dir) / 'demo'})"))
        models, cached = {}, {}
        for name in MODELS:
            models[name], cached[name] = trained_model(name, train, cfg)
        baseline = models["baseline"]
        stage.end("trained" if not any(cached.values()) else
                  f"{sum(cached.values())} of {len(MODELS)} from the cache")

        # 3. accuracy and shape bias
        stage.start("accuracy and shape bias")
        rows = []
        for name, model in models.items():
            numbers[f"{name}_accuracy"] = accuracy(model, test)
            numbers[f"{name}_shape_bias"] = float(shape_bias(model, conflict))
            rows.append([TITLES[name], numbers[f"{name}_accuracy"], numbers[f"{name}_shape_bias"]])
        report.section(
            "Accuracy and shape bias",
            f"Clean accuracy on {len(test)} test images; shape bias (Geirhos et al. 2019): the fraction of shape "
            f"decisions among the decisions on {len(conflict)} cue-conflict images that match either cue "
            "(1 = always shape, 0 = always texture).",
        )
        report.table(["model", "clean test accuracy", "shape bias"], rows)
        fig, axes = plt.subplots(1, 2, figsize=(8, 3))
        names = [TITLES[m] for m in MODELS]
        colours = ["tab:gray", "tab:orange", "tab:blue"]
        for ax, key, label in zip(axes, ("accuracy", "shape_bias"), ("clean test accuracy", "shape bias")):
            values = [numbers[f"{m}_{key}"] for m in MODELS]
            _bar_labels(ax, ax.bar(names, values, color=colours), values)
            ax.set_ylim(0, 1.12)
            ax.set_ylabel(label)
            ax.set_title(label)
        axes[1].axhline(0.5, color="k", lw=0.8, ls="--")
        axes[1].text(2.45, 0.51, "no preference", fontsize=7, ha="right", va="bottom")
        fig.suptitle(f"What each model learned (ShapesTextures {size}×{size})", fontsize=10)
        fig.tight_layout()
        report.figure(fig, "shape_bias", "What to look for: a shape-bias bar below the dashed line means the model "
                      "follows texture rather than shape when the two disagree; compare the StyleAugment bar with "
                      "the baseline's.")
        stage.end(", ".join(f"{TITLES[m]} {numbers[f'{m}_accuracy']:.1%} / {numbers[f'{m}_shape_bias']:.2f}"
                            for m in MODELS))

        # 4. SAM across alpha, WSAM and Grad-CAM
        stage.start("SAM across α and WSAM of the baseline")
        x, y, masks = _samples_per_class(test)
        predicted = predict(baseline, x)
        classes = test.classes
        layer = baseline.block3
        stylizer = cfg.data.style_augment()
        sam = SAM(baseline, layer, augment=stylizer)
        bank = len(stylizer.style_bank)
        styles = sorted({0, bank // 3, (2 * bank) // 3})
        alphas = [1.0, 0.75, 0.5, 0.25, 0.0]
        fig, axes = plt.subplots(2 * len(styles), len(alphas), figsize=(1.9 * len(alphas), 3.9 * len(styles)))
        for i, style in enumerate(styles):
            for j, alpha in enumerate(alphas):
                styled = sam.augment.stylize(x[:1], style, alpha)
                pred = classes[int(predict(baseline, styled)[0])]
                heat = sam.attribute(x[:1], target=y[:1], alpha=alpha, style=style, interpolate_to_input=True)
                _show(axes[2 * i, j], styled[0], f"style {style}, α = {alpha:g}\npredicted: {pred}")
                mappable = _heat(axes[2 * i + 1, j], styled[0], heat[0, 0], f"SAM for '{classes[int(y[0])]}'")
        _colorbar(fig, mappable, axes, "SAM (Grad-CAM on the styled image), / max")
        fig.suptitle(f"SAM across α: a {classes[int(y[0])]} stylized by three styles (α = 1: the image itself)",
                     fontsize=10)
        report.section(
            "SAM across α",
            "Rows: the styled input with the baseline's prediction, and its style activation map (SAM: Grad-CAM on the "
            "styled input) at `block3` for the true class. α = 1 is the unstyled image; smaller α means more style.",
        )
        report.figure(fig, "sam_alpha", "What to look for: whether the prediction and the bright region stay on the "
                      "object as α falls -- a texture-biased model changes its mind once the texture is replaced.")

        wsam = WSAM(baseline, layer, augment=stylizer, alphas=(0.25, 0.5, 0.75), styles=cfg.plan.wsam_styles,
                    seed=cfg.seed)
        maps = LayerAttribution.interpolate(wsam.attribute(x, target=y), x.shape[-2:], "bilinear")
        gradcam = LayerAttribution.interpolate(
            LayerGradCam(baseline, layer).attribute(x, target=y, relu_attributions=True), x.shape[-2:], "bilinear")
        numbers["wsam_on_object"] = float(relevance_mass_accuracy(maps, masks).nanmean())
        numbers["gradcam_on_object"] = float(relevance_mass_accuracy(gradcam, masks).nanmean())
        numbers["object_area"] = float(masks.float().mean())
        fig, axes = plt.subplots(3, len(x), figsize=(1.9 * len(x), 6.2))
        for k in range(len(x)):
            _show(axes[0, k], x[k], f"{classes[int(y[k])]}\npredicted: {classes[int(predicted[k])]}")
            mappable = _heat(axes[1, k], x[k], gradcam[k, 0], "Grad-CAM")
            _heat(axes[2, k], x[k], maps[k, 0], "WSAM")
        _colorbar(fig, mappable, axes, "map / its max")
        fig.suptitle(f"WSAM ({wsam.num_styles} styles × α ∈ {{0.25, 0.5, 0.75}}) next to Grad-CAM, one test image per "
                     "class (baseline)", fontsize=10)
        report.section(
            "WSAM, one sample per class",
            "WSAM: the probability-weighted mean of SAM over styles × α, for the true class at `block3`; Grad-CAM of "
            f"the unstyled image above it. {numbers['wsam_on_object']:.0%} of WSAM's and "
            f"{numbers['gradcam_on_object']:.0%} of Grad-CAM's positive mass lies on the object "
            f"({numbers['object_area']:.0%} of the pixels).",
        )
        report.figure(fig, "wsam", "What to look for: whether the bright regions cover the object's outline (shape "
                      "evidence) or spread over the textured background (texture evidence).")
        stage.end(f"{numbers['wsam_on_object']:.0%} of WSAM on the object")

        # 5. WSAM variance per class, baseline and StyleAugment model
        stage.start(f"WSAM variance per class on {cfg.plan.n_eval} test images, baseline and StyleAugment model")
        # the first n_eval test images (item i does not depend on n), as a data set that knows its class names
        subset = cfg.data.dataset(min(cfg.plan.n_eval, len(test)), size, cfg.seed + 1)
        variances = {}
        for name in ("baseline", "style"):
            model = models[name]
            explainer = WSAM(model, model.block3, augment=stylizer, alphas=(0.25, 0.5, 0.75),
                             styles=cfg.plan.wsam_styles, seed=cfg.seed)
            result = wsam_variance(explainer, DataLoader(subset, batch_size=32), num_classes=test.num_classes,
                                   progress=cfg.progress)
            variances[name] = result.as_dict()
            numbers[f"{name}_wsam_variance_mean"] = float(np.nanmean(list(variances[name].values())))
            for key, value in variances[name].items():
                if math.isfinite(value):  # NaN: no image of that class among the first n_eval
                    numbers[f"{name}_wsam_variance_{key}"] = float(value)
        report.section(
            "WSAM variance per class",
            "How much stylizing the input moves the explanation: the mean squared distance between WSAM and the "
            "probability-scaled Grad-CAM of the unstyled image, per class (lower: the evidence survives a change of "
            "style).",
        )
        report.table(["class", "baseline", "StyleAugment"],
                     [[k, *(float(variances[m][k]) if math.isfinite(variances[m][k]) else "no image"
                            for m in ("baseline", "style"))] for k in variances["baseline"]])
        fig, ax = plt.subplots(figsize=(7, 3))
        keys = list(variances["baseline"])
        positions = np.arange(len(keys))
        for offset, name, colour in ((-0.2, "baseline", "tab:gray"), (0.2, "style", "tab:orange")):
            values = [float(np.nan_to_num(variances[name][k])) for k in keys]
            bars = ax.bar(positions + offset, values, width=0.4, color=colour,
                          label=f"{TITLES[name]} (mean {numbers[f'{name}_wsam_variance_mean']:.3g})")
            for bar, value in zip(bars, values):
                ax.annotate(f"{value:.2g}", (bar.get_x() + bar.get_width() / 2, bar.get_height()), ha="center",
                            va="bottom", fontsize=6, xytext=(0, 1), textcoords="offset points")
        ax.set_xticks(positions, keys)
        ax.set_ylabel("WSAM variance")
        ax.legend(fontsize=8)
        ax.set_title("WSAM variance per class: how far stylization moves the explanation", fontsize=10)
        fig.tight_layout()
        report.figure(fig, "wsam_variance", "What to look for: lower orange bars mean the StyleAugment model's "
                      "explanations move less when the texture changes than the baseline's.")
        stage.end(f"mean {numbers['baseline_wsam_variance_mean']:.3g} (baseline), "
                  f"{numbers['style_wsam_variance_mean']:.3g} (StyleAugment)")

        # 6. LRP alpha-beta and Grad-CAM
        stage.start("LRP αβ of the baseline")
        lrp10 = LRPAlphaBeta(baseline, alpha=1.0, beta=0.0).attribute(x, target=y).sum(1)
        lrp21 = LRPAlphaBeta(baseline, alpha=2.0, beta=1.0).attribute(x, target=y).sum(1)
        numbers["lrp10_on_object"] = float(relevance_mass_accuracy(lrp10, masks).nanmean())
        numbers["lrp21_on_object"] = float(relevance_mass_accuracy(lrp21, masks).nanmean())
        fig, axes = plt.subplots(4, len(x), figsize=(1.9 * len(x), 8.2))
        for k in range(len(x)):
            _show(axes[0, k], x[k], f"{classes[int(y[k])]}\npredicted: {classes[int(predicted[k])]}")
            grad_mappable = _heat(axes[1, k], x[k], gradcam[k, 0], "Grad-CAM")
            lrp_mappable = _heat(axes[2, k], x[k], lrp10[k], "LRP α1β0", symmetric=True)
            _heat(axes[3, k], x[k], lrp21[k], "LRP α2β1", symmetric=True)
        _colorbar(fig, grad_mappable, axes[1], "Grad-CAM / max")
        _colorbar(fig, lrp_mappable, axes[2:], "relevance / 99th percentile of |R|")
        fig.suptitle("LRP αβ (pixel relevance for the true class) next to Grad-CAM (baseline)", fontsize=10)
        report.section(
            "LRP αβ and Grad-CAM",
            "Pixel relevance for the true class, summed over colour channels, on a colour map centred on 0: red is "
            "evidence for the class, blue evidence against it (α1β0 keeps only positive contributions; α2β1 weighs "
            f"negative ones too). Positive relevance on the object: {numbers['lrp10_on_object']:.0%} (α1β0), "
            f"{numbers['lrp21_on_object']:.0%} (α2β1).",
        )
        report.figure(fig, "lrp", "What to look for: red along the object's outline is shape evidence, red spread over "
                      "the background is texture evidence; in α2β1, blue marks what argues against the class.")
        stage.end(f"{numbers['lrp10_on_object']:.0%} (α1β0) of the positive relevance on the object")

        # 7. Ground-truth evaluation of the explanations of every model
        pool_x, pool_y = (t[: cfg.plan.n_eval] for t in test.tensors())
        correct = torch.stack([predict(models[m], pool_x) == pool_y for m in MODELS]).all(0)
        chosen_eval = correct.nonzero().flatten()[:MAX_IMAGES]
        all_correct = len(chosen_eval) >= min(8, len(pool_y))
        if not all_correct:  # briefly trained models (tiny budgets): explain the first images whatever the prediction
            chosen_eval = torch.arange(min(MAX_IMAGES, len(pool_y)))
        which = ("test images that all three models classify correctly" if all_correct else
                 "test images (too few are classified correctly by all three models)")
        eval_x, eval_y, eval_masks = pool_x[chosen_eval], pool_y[chosen_eval], test.masks[chosen_eval]
        explainers = {m: demo_methods(models[m], stylizer, cfg.plan.wsam_styles, cfg.seed) for m in MODELS}
        methods_count = len(explainers["baseline"])
        stage.start(f"evaluating explanations of the {len(MODELS)} models on {len(chosen_eval)} {which}: "
                    f"{methods_count} methods against the object masks, deletion/insertion in {STEPS} steps")
        evaluations = {}
        for position, name in enumerate(MODELS, start=1):
            began = time.perf_counter()
            evaluations[name] = evaluate_demo_explanations(models[name], eval_x, eval_y, eval_masks, explainers[name],
                                                           outline_width=max(1, size // 32))
            say(f"evaluating explanations ({position}/{len(MODELS)}): {TITLES[name]} "
                f"({time.perf_counter() - began:.1f} s)")
        sentences, evaluation_finding = describe(evaluations, TITLES, {m: numbers[f"{m}_shape_bias"] for m in MODELS},
                                                 len(chosen_eval))
        numbers["explained_images"] = float(len(chosen_eval))
        for name, result in evaluations.items():
            means = result.means()
            numbers[f"{name}_random_deletion_auc"] = means[RANDOM]["deletion AUC"]
            numbers[f"{name}_best_deletion_auc"] = min(v["deletion AUC"] for m, v in means.items() if m != RANDOM)
        report.section(
            "Which explanation is right?",
            f"Every map of the {methods_count} methods (a uniform random map gives the chance level) explains the true "
            f"class of the first {len(chosen_eval)} {which}, and is "
            "scored against the ground truth of ShapesTextures -- the object's mask and its outline band "
            f"({max(1, size // 32)} px on each side of the boundary) -- and against the model. PG: pointing game "
            "(the map's maximum on the region); RMA / RRA: relevance mass / rank accuracy (share of the positive "
            "mass, and of the top-|region| pixels, on the region; an uninformative map scores the region's share: "
            + ", ".join(f"{region} {share:.0%}" for region, share in evaluations["baseline"].region_share.items())
            + "); EPG: energy pointing game (mass in the bounding box). Deletion / insertion: area under the "
            f"softmax probability of the class as the map's top pixels are set to black / restored on a blurred "
            f"image, in {STEPS} steps (a faithful map has a low deletion and a high insertion AUC). "
            + ("With the texture shortcut the background carries the class's texture too, so for a texture-biased "
               "model the evidence lies outside the object as well (1 − RMA (object) of the positive mass is on the "
               "background) and the faithfulness columns decide; " if cfg.data.texture_shortcut else
               "For a texture-biased model the object's texture is the evidence; ")
            + "for a shape-biased model the outline is the evidence. ROAD is left out (minutes of imputation); "
            "`benchmarks/evaluate_explanations.py` computes it.",
        )
        for name in MODELS:
            report.lines += ["", f"### {TITLES[name]} (clean accuracy {numbers[f'{name}_accuracy']:.1%}, shape bias "
                             f"{numbers[f'{name}_shape_bias']:.2f})"]
            report.table(*table_rows(evaluations[name]))
        report.lines += ["", " ".join(sentences)]
        stage.end(sentences[0][:-1])

        # 8. Parameter saliency
        stage.start("parameter saliency of the baseline")
        saliency = ParameterSaliency(baseline)
        saliency.fit(DataLoader(Subset(train, range(min(cfg.plan.n_eval * 2, len(train)))), batch_size=64),
                     progress=cfg.progress)
        images, labels = test.tensors()
        images, labels = images[: cfg.plan.n_eval], labels[: cfg.plan.n_eval]
        predicted_eval = predict(baseline, images)
        wrong = (predicted_eval != labels).nonzero().flatten()
        right = (predicted_eval == labels).nonzero().flatten()[: max(8, len(wrong[:8]))]
        chosen = torch.cat([wrong[:8], right])
        ps_result = saliency.attribute_detailed(images[chosen], labels[chosen])
        numbers["misclassified"], numbers["saliency_images"] = float(len(wrong)), float(len(labels))
        if len(wrong):
            numbers["misclassified_mean_saliency"] = ps_result.flat[: min(8, len(wrong))].mean().item()
            numbers["correct_mean_saliency"] = ps_result.flat[min(8, len(wrong)) :].mean().item()
        report.section(
            "Parameter saliency",
            f"{len(wrong)} of {len(labels)} test images are misclassified by the baseline. Standardized filter "
            "saliency (Levin et al. 2021): how strongly each conv filter's weights would have to change to fix the "
            "loss of a sample, relative to the average over training images; misclassified vs correct samples.",
        )
        report.figure(saliency.plot_profile(ps_result, title="Parameter saliency of the baseline: misclassified vs "
                                            "correct test images"), "parameter_saliency",
                      "What to look for: filters whose saliency stands out only for the misclassified images are the "
                      "ones that carry the mistakes (the profile of correct images stays near 0).")
        stage.end(f"{len(wrong)} misclassified of {len(labels)}")

        # 9. Robust accuracy
        eval_set = Subset(test, range(min(cfg.plan.n_eval, len(test))))
        stage.start(f"robust accuracy under PGD on {len(eval_set)} test images, baseline and SAT model")
        rows, header = [], []
        for name in ("baseline", "sat"):
            attacks = {f"PGD {e}/255": torchattacks.PGD(models[name], eps=e / 255, alpha=e / 1020,
                                                             steps=cfg.plan.pgd_steps)
                       for e in (1, 2, 4)}
            table = robust_accuracy(models[name], eval_set, attacks)
            header = list(table)
            rows.append([TITLES[name], *[float(v) for v in table.values()]])
            for key, value in table.items():
                numbers[f"{name}_{key}".replace(" ", "_").replace("/", "_")] = float(value)
        report.section("Robust accuracy", f"PGD ({cfg.plan.pgd_steps} steps, ℓ∞) at ε = 1, 2, 4/255 on the first "
                       f"{len(eval_set)} test images.")
        report.table(["model", *header], rows)
        stage.end(f"at 4/255: baseline {numbers['baseline_PGD_4_255']:.0%}, SAT {numbers['sat_PGD_4_255']:.0%}")

        numbers["seconds"] = time.perf_counter() - start
        bad = {k: v for k, v in numbers.items() if not math.isfinite(v)}
        if bad:
            raise RuntimeError(f"the demo produced non-finite numbers: {bad}")
        header = [
            "# captum_wsam demo report",
            "",
            f"SmallCNN ({sum(p.numel() for p in baseline.parameters()):,} parameters) trained three ways on "
            f"ShapesTextures, labelled by shape ({size}×{size}, {cfg.data.describe()}; {cfg.plan.n_train} training "
            f"images, {cfg.plan.epochs} epochs, seed {cfg.seed}{', quick mode' if cfg.quick else ''}): plain "
            "(baseline), with StyleAugment, and with saliency-guided adversarial training (SAT). Clean test accuracy "
            "of the models explained: "
            + ", ".join(f"{TITLES[m]} {numbers[f'{m}_accuracy']:.1%}" for m in MODELS) + ".",
            "",
            *_findings(cfg, numbers, test.num_classes, list(MODELS), evaluation_finding),
        ]
        report.lines += ["", f"Total time: {numbers['seconds']:.0f} s "
                         f"({sum(cached.values())} of {len(MODELS)} models from the cache)."]
        report.write(header)
    say(f"report written to {cfg.out / 'report.md'}")
    return numbers



__all__ = ["run_demo"]
