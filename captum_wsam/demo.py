"""The offline demo: every capability of the package on the embedded ShapesTextures data, in one report.

Trains a :class:`~captum_wsam.models.SmallCNN` three ways (plain, with :class:`~captum_wsam.augment.StyleAugment`,
with SAT), then writes ``report.md`` with PNG figures: accuracy and shape bias (Geirhos et al. 2019), SAM across α and
WSAM maps (Moreno-Vera et al.), WSAM variance per class, LRP αβ next to Captum's Grad-CAM, a parameter-saliency profile
(Levin et al. 2021) and a robust-accuracy table under PGD (Madry et al. 2018). Everything runs on the CPU with data
the package makes itself (no download).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import torch
import torchattacks
from captum.attr import LayerAttribution, LayerGradCam
from torch import Tensor, nn
from torch.utils.data import DataLoader, Subset

from .attr import SAM, WSAM, LRPAlphaBeta, ParameterSaliency
from .augment import StyleAugment
from .data import ShapesTextures
from .metrics import plot_wsam_variance, robust_accuracy, shape_bias, wsam_variance
from .models import SmallCNN
from .train import SATTrainer, accuracy, predict, train_classifier


@dataclass(frozen=True)
class DemoConfig:
    """Settings of :func:`run_demo`; ``quick`` shrinks every step so that the whole demo takes well under a minute."""

    out: Path = Path("demo_out")
    size: int = 64
    quick: bool = False
    seed: int = 0
    progress: bool = True

    @property
    def n_train(self) -> int:
        return 1500 if self.quick else 3000

    @property
    def n_test(self) -> int:
        return 200 if self.quick else 600

    @property
    def epochs(self) -> int:
        return 3 if self.quick else 6

    @property
    def n_eval(self) -> int:
        """Images used by the costlier evaluations (WSAM variance, robust accuracy)."""
        return 48 if self.quick else 300


@dataclass
class Report:
    """Markdown lines and figures collected while the demo runs."""

    out: Path
    lines: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)
    numbers: dict[str, float] = field(default_factory=dict)

    def section(self, title: str, *text: str) -> None:
        self.lines += ["", f"## {title}", "", *text]

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        def cell(value: Any) -> str:
            return f"{value:.4g}" if isinstance(value, float) else str(value)

        self.lines += ["", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        self.lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]

    def figure(self, fig: Any, name: str, caption: str) -> None:
        path = self.out / f"{name}.png"
        fig.savefig(path, dpi=90, bbox_inches="tight")
        plt.close(fig)
        self.figures.append(path)
        self.lines += ["", f"![{caption}]({path.name})", ""]

    def write(self) -> Path:
        path = self.out / "report.md"
        path.write_text("\n".join(["# captum_wsam demo report", *self.lines, ""]))
        return path


def _show(ax: Any, image: Tensor, title: str = "") -> None:
    ax.imshow(image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _overlay(ax: Any, image: Tensor, heat: Tensor, title: str = "", cmap: str = "jet") -> None:
    _show(ax, image, title)
    heat = heat.detach().float().cpu()
    scale = heat.abs().max().clamp(min=1e-12)
    ax.imshow((heat / scale).numpy(), cmap=cmap, alpha=0.5, vmin=-1 if cmap == "bwr" else 0, vmax=1)


def _train_models(cfg: DemoConfig, train: ShapesTextures) -> dict[str, nn.Module]:
    models: dict[str, nn.Module] = {}
    torch.manual_seed(cfg.seed)
    models["baseline"] = SmallCNN(num_classes=train.num_classes)
    train_classifier(models["baseline"], train, epochs=cfg.epochs, lr=5e-3, seed=cfg.seed, progress=cfg.progress)

    torch.manual_seed(cfg.seed)
    models["style"] = SmallCNN(num_classes=train.num_classes)
    augment = StyleAugment(alpha=(0.3, 0.8), p=0.5)
    train_classifier(models["style"], train, epochs=cfg.epochs, lr=5e-3, seed=cfg.seed, progress=cfg.progress,
                     augment=augment)

    torch.manual_seed(cfg.seed)
    models["sat"] = SmallCNN(num_classes=train.num_classes)
    optimizer = torch.optim.AdamW(models["sat"].parameters(), lr=3e-3, weight_decay=1e-4)
    SATTrainer(models["sat"], optimizer, weak_saliency="mask", progress=cfg.progress).fit(
        train, epochs=cfg.epochs, batch_size=64)
    for model in models.values():
        model.eval()
    return models


def _samples_per_class(data: ShapesTextures, model: nn.Module) -> tuple[Tensor, Tensor]:
    images, labels = data.tensors()
    chosen = [int((labels == c).nonzero()[0]) for c in range(data.num_classes) if (labels == c).any()]
    x, y = images[chosen], labels[chosen]
    return x, y


def run_demo(config: DemoConfig) -> dict[str, float]:
    """Run the demo and write ``config.out / "report.md"`` with its figures; return the headline numbers.

    Examples:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as tmp:  # doctest: +SKIP
        ...     numbers = run_demo(DemoConfig(out=Path(tmp), size=32, quick=True, progress=False))
    """
    start = time.perf_counter()
    cfg = config
    cfg.out.mkdir(parents=True, exist_ok=True)
    report = Report(cfg.out)
    report.lines.append(
        f"\nSmallCNN on ShapesTextures (label: shape, {cfg.size}×{cfg.size}, {cfg.n_train} training images, "
        f"{cfg.epochs} epochs, seed {cfg.seed}{', quick mode' if cfg.quick else ''}). The training set's object "
        "texture matches the shape class 80 % of the time, so texture is a tempting shortcut; the cue-conflict set "
        "then tells which cue each model follows."
    )
    # 1. data and models
    train = ShapesTextures(n=cfg.n_train, size=cfg.size, seed=cfg.seed, cue_agreement=0.8, progress=cfg.progress)
    test = ShapesTextures(n=cfg.n_test, size=cfg.size, seed=cfg.seed + 1)
    conflict = ShapesTextures(n=cfg.n_test, size=cfg.size, seed=cfg.seed + 2, cue_conflict=True)
    models = _train_models(cfg, train)
    baseline = models["baseline"]

    report.section("Accuracy and shape bias",
                   "Shape bias: fraction of shape decisions among cue-conflict decisions that match either cue.")
    rows = []
    for name, model in models.items():
        acc, bias = accuracy(model, test), shape_bias(model, conflict)
        report.numbers[f"{name}_accuracy"], report.numbers[f"{name}_shape_bias"] = acc, bias
        rows.append([name, acc, bias])
    report.table(["model", "clean test accuracy", "shape bias"], rows)
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.bar([r[0] for r in rows], [r[2] for r in rows], color="tab:blue")
    ax.set_ylim(0, 1)
    ax.set_ylabel("shape bias")
    report.figure(fig, "shape_bias", "Shape bias of the three models")

    # 2. SAM across alpha and WSAM
    x, y = _samples_per_class(test, baseline)
    layer = baseline.block3
    sam = SAM(baseline, layer)
    styles, alphas = [0, 7, 19], [1.0, 0.8, 0.5, 0.2]
    fig, axes = plt.subplots(2 * len(styles), len(alphas), figsize=(2 * len(alphas), 4 * len(styles)))
    for i, style in enumerate(styles):
        for j, alpha in enumerate(alphas):
            styled = sam.augment.stylize(x[:1], style, alpha)
            heat = sam.attribute(x[:1], target=y[:1], alpha=alpha, style=style)
            heat = LayerAttribution.interpolate(heat, x.shape[-2:], "bilinear")[0, 0]
            _show(axes[2 * i, j], styled[0], f"style {style}, α={alpha}")
            _overlay(axes[2 * i + 1, j], styled[0], heat, "SAM")
    fig.tight_layout()
    report.section("SAM across α", "Rows: styled input and its SAM (Grad-CAM on the styled input) at "
                   "`block3`; α = 1 is the unstyled image, smaller α means more style.")
    report.figure(fig, "sam_alpha", "SAM across α for three styles")

    wsam = WSAM(baseline, layer, alphas=(0.2, 0.4, 0.6, 0.8), styles=4 if cfg.quick else 6, seed=cfg.seed)
    maps = LayerAttribution.interpolate(wsam.attribute(x, target=y), x.shape[-2:], "bilinear")
    gradcam = LayerAttribution.interpolate(LayerGradCam(baseline, layer).attribute(x, target=y, relu_attributions=True),
                                           x.shape[-2:], "bilinear")
    fig, axes = plt.subplots(3, len(x), figsize=(2 * len(x), 6))
    for k in range(len(x)):
        _show(axes[0, k], x[k], test.classes[int(y[k])])
        _overlay(axes[1, k], x[k], gradcam[k, 0], "Grad-CAM")
        _overlay(axes[2, k], x[k], maps[k, 0], "WSAM")
    fig.tight_layout()
    report.section("WSAM, one sample per class", "WSAM: probability-weighted mean of SAM over styles × α.")
    report.figure(fig, "wsam", "WSAM next to Grad-CAM")

    # 3. WSAM variance per class
    # item i does not depend on n: these are the first test images, with the data set's class names
    subset = ShapesTextures(n=cfg.n_eval, size=cfg.size, seed=cfg.seed + 1)
    result = wsam_variance(wsam, DataLoader(subset, batch_size=32), num_classes=test.num_classes,
                           progress=cfg.progress)
    report.section("WSAM variance per class", "How much stylization moves the explanation (seed 000's STL-10 table).")
    variances = result.as_dict()
    report.table(["class", "WSAM variance"], [[k, float(v)] for k, v in variances.items()])
    for k, v in variances.items():
        report.numbers[f"wsam_variance_{k}"] = float(v)
    fig = plot_wsam_variance(result)
    report.figure(fig.figure if hasattr(fig, "figure") and not isinstance(fig, plt.Figure) else fig, "wsam_variance",
                  "WSAM variance per class")

    # 4. LRP alpha-beta and Grad-CAM
    fig, axes = plt.subplots(4, len(x), figsize=(2 * len(x), 8))
    lrp21 = LRPAlphaBeta(baseline, alpha=2.0, beta=1.0).attribute(x, target=y).sum(1)
    lrp10 = LRPAlphaBeta(baseline, alpha=1.0, beta=0.0).attribute(x, target=y).sum(1)
    for k in range(len(x)):
        _show(axes[0, k], x[k], test.classes[int(y[k])])
        _overlay(axes[1, k], x[k], gradcam[k, 0], "Grad-CAM")
        _overlay(axes[2, k], x[k], lrp10[k], "LRP α1β0", cmap="bwr")
        _overlay(axes[3, k], x[k], lrp21[k], "LRP α2β1", cmap="bwr")
    fig.tight_layout()
    report.section("LRP αβ and Grad-CAM", "Red: positive relevance, blue: negative (α2β1 only).")
    report.figure(fig, "lrp", "LRP αβ next to Grad-CAM")

    # 5. Parameter saliency
    saliency = ParameterSaliency(baseline)
    saliency.fit(DataLoader(Subset(train, range(min(cfg.n_eval * 2, len(train)))), batch_size=64),
                 progress=cfg.progress)
    images, labels = test.tensors()
    images, labels = images[: cfg.n_eval], labels[: cfg.n_eval]
    predicted = predict(baseline, images)
    wrong = (predicted != labels).nonzero().flatten()
    right = (predicted == labels).nonzero().flatten()[: max(8, len(wrong))]
    chosen = torch.cat([wrong[:8], right[:8]])
    ps_result = saliency.attribute(images[chosen], labels[chosen])
    report.section("Parameter saliency", f"{len(wrong)} of {len(labels)} test images are misclassified by the "
                   "baseline; standardized filter saliency of misclassified vs correct samples.")
    if len(wrong):
        report.numbers["misclassified_mean_saliency"] = ps_result.flat[: min(8, len(wrong))].mean().item()
        report.numbers["correct_mean_saliency"] = ps_result.flat[min(8, len(wrong)) :].mean().item()
    report.figure(saliency.plot_profile(ps_result), "parameter_saliency", "Parameter-saliency profile")

    # 6. Robust accuracy
    eval_set = Subset(test, range(min(cfg.n_eval, len(test))))
    report.section("Robust accuracy", "PGD (10 steps, ℓ∞) at ε = 1, 2, 4/255 on the first test images.")
    rows = []
    for name in ("baseline", "sat"):
        attacks = {f"PGD {e}/255": torchattacks.PGD(models[name], eps=e / 255, alpha=e / 1020, steps=10)
                   for e in (1, 2, 4)}
        table = robust_accuracy(models[name], eval_set, attacks)
        rows.append([name, *[float(v) for v in table.values()]])
        for key, value in table.items():
            report.numbers[f"{name}_{key}".replace(" ", "_").replace("/", "_")] = float(value)
    report.table(["model", *table.keys()], rows)

    report.numbers["seconds"] = time.perf_counter() - start
    report.lines += ["", f"Total time: {report.numbers['seconds']:.0f} s."]
    report.write()
    bad = {k: v for k, v in report.numbers.items() if not math.isfinite(v)}
    if bad:
        raise RuntimeError(f"the demo produced non-finite numbers: {bad}")
    return report.numbers


__all__ = ["DemoConfig", "Report", "run_demo"]
