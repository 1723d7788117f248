"""AutoAttack robust accuracy (per-sample worst case over four attacks) and a gradient-masking check.

F. Croce, M. Hein (2020), "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free
attacks", ICML 2020, arXiv:2003.01690 (the "standard" version: APGD-CE, APGD-T, FAB-T, Square; RobustBench reports it).
A sample counts as robust only if it is classified correctly and every attack fails on it:

.. math::

    \\operatorname{acc}_{AA} = \\frac{1}{N} \\sum_i \\mathbb{1}\\big[f(x_i) = y_i\\big]
    \\prod_{A \\in \\{\\text{APGD-CE}, \\text{APGD-T}, \\text{FAB-T}, \\text{Square}\\}}
    \\mathbb{1}\\big[f(A(x_i, y_i)) = y_i\\big], \\qquad \\|A(x_i, y_i) - x_i\\|_p \\le \\epsilon

As in the authors' code, each attack runs only on the samples that survived the previous ones (same worst case, less
work). The attacks are ``torchattacks``' own ``APGD``, ``APGDT``, ``FAB`` and ``Square`` with the standard settings
(1 restart each, 9 target classes at most, 100 iterations, 5,000 queries); ``steps`` and ``n_queries`` trade
strength for time.

The gradient-masking check follows the warning signs of Athalye, Carlini, Wagner (2018), "Obfuscated Gradients Give
a False Sense of Security", arXiv:1802.00420, and Carlini et al. (2019), "On Evaluating Adversarial Robustness",
arXiv:1902.06705: the black-box Square attack breaks samples the white-box attacks could not (a gap
:math:`\\operatorname{acc}_{\\text{white}} - \\operatorname{acc}_{AA} > \\tau`); PGD accuracy does not fall towards 0 as
:math:`\\epsilon` grows; more PGD steps raise accuracy.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torchattacks
from torch import Tensor, nn
from torch.utils.data import DataLoader

from .._checks import check_finite
from ..attacks._base import check_labels
from ..data.batches import split_batch

AUTOATTACK_PARTS = ("APGD-CE", "APGD-T", "FAB-T", "Square")
WHITE_BOX_PARTS = ("APGD-CE", "APGD-T", "FAB-T")
DEFAULT_EPS = {"Linf": 8 / 255, "L2": 0.5}  # RobustBench's CIFAR-10 threat models


@dataclass(frozen=True)
class GradientMaskingReport:
    """Warning signs of gradient masking (Athalye et al. 2018, arXiv:1802.00420; Carlini et al. 2019, 1902.06705).

    .. math::

        \\text{gap} = \\operatorname{acc}_{\\text{white}} - \\operatorname{acc}_{AA}, \\quad
        \\operatorname{acc}_{\\mathrm{PGD}}(k\\epsilon) \\xrightarrow{k \\to \\infty} 0, \\quad
        \\operatorname{acc}_{\\mathrm{PGD}_{K'}} \\le \\operatorname{acc}_{\\mathrm{PGD}_{K}} \\; (K' > K)

    Attributes:
        white_box: robust accuracy after the white-box attacks (APGD-CE, APGD-T, FAB-T) alone.
        black_box_gap: share of all samples that only the black-box Square attack broke.
        eps_grid: growing radii :math:`k \\epsilon` of the PGD check.
        accuracy_vs_eps: PGD robust accuracy at each radius of ``eps_grid``.
        steps_grid: growing PGD step counts at :math:`\\epsilon`.
        accuracy_vs_steps: PGD robust accuracy at each step count of ``steps_grid``.
        tolerance: :math:`\\tau`, the accuracy difference tolerated before a sign is raised.
        flags: one sentence per warning sign found (empty: no sign of masking).

    Examples:
        >>> report = GradientMaskingReport(0.5, 0.0, (0.1, 0.2), (0.4, 0.0), (5, 10), (0.5, 0.45), 0.02, ())
        >>> report.suspicious
        False
    """

    white_box: float
    black_box_gap: float
    eps_grid: tuple[float, ...]
    accuracy_vs_eps: tuple[float, ...]
    steps_grid: tuple[int, ...]
    accuracy_vs_steps: tuple[float, ...]
    tolerance: float
    flags: tuple[str, ...]

    @property
    def suspicious(self) -> bool:
        """Whether any warning sign was found."""
        return bool(self.flags)


@dataclass(frozen=True, eq=False)
class AutoAttackResult(Mapping[str, float]):
    """Result of ``robust_accuracy(model, data, "autoattack", ...)``; reads as ``{"clean": .., "AutoAttack": ..}``.

    .. math:: \\operatorname{acc}_{AA} = \\frac{1}{N} \\sum_i \\mathbb{1}[f(x_i) = y_i]
              \\prod_A \\mathbb{1}[f(A(x_i, y_i)) = y_i]

    Being a mapping, it goes straight into :func:`~captum_wsam.metrics.format_table`.

    Attributes:
        clean: clean accuracy.
        robust: AutoAttack robust accuracy (per-sample worst case over the four attacks).
        after_attack: robust accuracy after each attack in turn (cumulative, as AutoAttack logs it).
        n: number of samples.
        eps: :math:`\\epsilon`.
        norm: ``"Linf"`` or ``"L2"``.
        masking: the :class:`GradientMaskingReport` (``None`` when ``masking_check=False``).

    Examples:
        >>> result = AutoAttackResult(0.9, 0.4, {"APGD-CE": 0.5, "Square": 0.4}, 10, 8 / 255, "Linf")
        >>> dict(result)
        {'clean': 0.9, 'AutoAttack': 0.4}
    """

    clean: float
    robust: float
    after_attack: dict[str, float]
    n: int
    eps: float
    norm: str
    masking: GradientMaskingReport | None = field(default=None)

    def _table(self) -> dict[str, float]:
        return {"clean": self.clean, "AutoAttack": self.robust}

    def __getitem__(self, key: str) -> float:
        return self._table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return 2


def autoattack_parts(
    model: nn.Module, eps: float, norm: str, n_classes: int, *, steps: int = 100, n_queries: int = 5000, seed: int = 0
) -> dict[str, torchattacks.attack.Attack]:
    """The four attacks of standard AutoAttack (Croce & Hein 2020, arXiv:2003.01690) as ``torchattacks`` attacks.

    .. math:: \\{\\text{APGD-CE}, \\text{APGD-T}, \\text{FAB-T}, \\text{Square}\\}, \\quad
              \\|x' - x\\|_p \\le \\epsilon

    Args:
        model: classifier returning logits on [0, 1] images.
        eps: :math:`\\epsilon > 0`.
        norm: ``"Linf"`` or ``"L2"``.
        n_classes: number of classes (the targeted attacks use :math:`\\min(9, C - 1)` target classes).
        steps: iterations of APGD-CE, APGD-T and FAB-T (standard: 100).
        n_queries: queries of Square (standard: 5,000).
        seed: seed of every attack's random start.

    Returns:
        ``{"APGD-CE": ..., "APGD-T": ..., "FAB-T": ..., "Square": ...}`` in this order.

    Examples:
        >>> parts = autoattack_parts(nn.Sequential(nn.Flatten(), nn.Linear(12, 3)), 8 / 255, "Linf", 3, steps=2)
        >>> list(parts), parts["APGD-T"].n_target_classes
        (['APGD-CE', 'APGD-T', 'FAB-T', 'Square'], 2)
    """
    common: dict[str, Any] = {"norm": norm, "eps": eps, "n_restarts": 1, "seed": seed}
    targets = min(9, n_classes - 1)
    parts = {
        "APGD-CE": torchattacks.APGD(model, steps=steps, loss="ce", **common),
        "APGD-T": torchattacks.APGDT(model, steps=steps, n_classes=n_classes, **common),
        "FAB-T": torchattacks.FAB(model, steps=steps, multi_targeted=True, n_classes=n_classes, **common),
        "Square": torchattacks.Square(model, n_queries=n_queries, **common),
    }
    parts["APGD-T"].n_target_classes = targets
    parts["FAB-T"].n_target_classes = targets
    return parts


def project(adv: Tensor, images: Tensor, eps: float, norm: str) -> Tensor:
    """Projection onto the :math:`\\ell_p` ball of radius :math:`\\epsilon` around ``images`` and onto [0, 1].

    .. math:: \\Pi(x') = \\operatorname{clip}_{[0,1]}\\Big(x + \\delta
              \\min\\big(1, \\epsilon / \\|\\delta\\|_2\\big)\\Big) \\text{ (L2)}, \\quad
              \\operatorname{clip}_{[0,1]}\\big(x + \\operatorname{clip}_{[-\\epsilon, \\epsilon]}(\\delta)\\big)
              \\text{ (Linf)}, \\quad \\delta = x' - x

    Args:
        adv: :math:`x'`, :math:`(B, C, H, W)`.
        images: :math:`x`, same shape.
        eps: :math:`\\epsilon`.
        norm: ``"Linf"`` or ``"L2"``.

    Returns:
        The projected :math:`x'`, same shape.

    Examples:
        >>> x = torch.zeros(1, 1, 1, 2) + 0.5
        >>> out = project(x + torch.tensor([0.3, 0.4]).view(1, 1, 1, 2), x, 0.25, "L2")
        >>> [round(v, 4) for v in out.flatten().tolist()], round(float((out - x).norm()), 4)
        ([0.65, 0.7], 0.25)
    """
    delta = adv - images
    if norm == "Linf":
        delta = delta.clamp(-eps, eps)
    else:
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12).view(-1, *([1] * (delta.dim() - 1)))
        delta = delta * (eps / norms).clamp(max=1.0)
    return (images + delta).clamp(0, 1)


def _correct(model: nn.Module, images: Tensor, labels: Tensor) -> Tensor:
    with torch.no_grad():
        return model(images).argmax(1) == labels


def _pgd(model: nn.Module, eps: float, norm: str, steps: int) -> torchattacks.attack.Attack:
    alpha = 2.5 * eps / steps  # Madry et al. 2018: every radius reachable within the step budget
    if norm == "Linf":
        return torchattacks.PGD(model, eps=eps, alpha=alpha, steps=steps, random_start=True)
    return torchattacks.PGDL2(model, eps=eps, alpha=alpha, steps=steps, random_start=True)


def autoattack_accuracy(
    model: nn.Module,
    loader: DataLoader,
    eps: float,
    norm: str,
    *,
    steps: int,
    n_queries: int,
    seed: int,
    masking_check: bool,
    masking_tolerance: float,
    eps_multiples: Sequence[float],
    masking_steps: Sequence[int],
) -> AutoAttackResult:
    """Run AutoAttack (and the masking check) over ``loader``; the caller holds the model guards (eval mode etc.).

    .. math:: \\operatorname{acc}_{AA} = \\frac{1}{N} \\sum_i \\mathbb{1}[f(x_i) = y_i]
              \\prod_A \\mathbb{1}[f(A(x_i, y_i)) = y_i]

    Args:
        model: classifier in eval mode.
        loader: DataLoader of ``(images, labels[, info])``.
        eps: :math:`\\epsilon`.
        norm: ``"Linf"`` or ``"L2"``.
        steps: APGD/FAB iterations.
        n_queries: Square queries.
        seed: seed of every random start (torch's global generator is restored afterwards).
        masking_check: also run the gradient-masking check.
        masking_tolerance: :math:`\\tau`.
        eps_multiples: radii :math:`k` of the growing-:math:`\\epsilon` PGD check.
        masking_steps: step counts of the more-steps PGD check (ascending).

    Returns:
        An :class:`AutoAttackResult`.
    """
    device = next(model.parameters()).device
    cap = 1.0 if norm == "Linf" else float("inf")
    eps_grid = tuple(sorted({min(cap, k * eps) for k in eps_multiples}))
    steps_grid = tuple(sorted(set(masking_steps)))
    clean = white = worst = seen = 0
    after = dict.fromkeys(AUTOATTACK_PARTS, 0)
    by_eps, by_steps = [0] * len(eps_grid), [0] * len(steps_grid)
    parts: dict[str, torchattacks.attack.Attack] | None = None
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # torchattacks seeds torch's global generator: give it back
        for batch in loader:
            images, labels, _ = split_batch(batch)
            check_finite(images, "images")
            images, labels = images.to(device), labels.to(device)
            with torch.no_grad():
                logits = model(images)
            check_labels(labels, len(images), logits.shape[1])
            if parts is None:
                parts = autoattack_parts(model, eps, norm, logits.shape[1], steps=steps, n_queries=n_queries,
                                         seed=seed)
            robust = logits.argmax(1) == labels
            clean += int(robust.sum())
            correct = robust.nonzero().flatten()  # misclassified samples count as broken: attack only the others
            for name, attack in parts.items():
                index = robust.nonzero().flatten()
                if index.numel():
                    adv = project(attack(images[index], labels[index]), images[index], eps, norm)
                    robust[index[~_correct(model, adv, labels[index])]] = False
                after[name] += int(robust.sum())
                if name == WHITE_BOX_PARTS[-1]:
                    white += int(robust.sum())
            worst += int(robust.sum())
            if masking_check and correct.numel():
                survivors: dict[tuple[float, int], int] = {}  # (radius, steps) -> PGD survivors, each run once
                for radius, count in [(r, steps_grid[-1]) for r in eps_grid] + [(eps, k) for k in steps_grid]:
                    if (radius, count) not in survivors:
                        torch.manual_seed(seed)
                        adv = _pgd(model, radius, norm, count)(images[correct], labels[correct])
                        survivors[radius, count] = int(_correct(model, adv, labels[correct]).sum())
                for i, radius in enumerate(eps_grid):
                    by_eps[i] += survivors[radius, steps_grid[-1]]
                for i, count in enumerate(steps_grid):
                    by_steps[i] += survivors[eps, count]
            seen += len(labels)
    if seen == 0:
        raise ValueError("data must yield at least one batch, got an empty loader")
    masking = None
    if masking_check:
        masking = _masking_report(white / seen, (white - worst) / seen, eps_grid, [c / seen for c in by_eps],
                                  steps_grid, [c / seen for c in by_steps], masking_tolerance)
    return AutoAttackResult(clean / seen, worst / seen, {k: v / seen for k, v in after.items()}, seen, eps, norm,
                            masking)


def _masking_report(
    white: float,
    gap: float,
    eps_grid: tuple[float, ...],
    by_eps: list[float],
    steps_grid: tuple[int, ...],
    by_steps: list[float],
    tolerance: float,
) -> GradientMaskingReport:
    flags = []
    if gap > tolerance:
        flags.append(f"black-box Square broke {100 * gap:.1f} % of the samples that the white-box attacks missed")
    if by_eps and by_eps[-1] > tolerance:
        flags.append(f"PGD accuracy stays at {100 * by_eps[-1]:.1f} % at eps = {eps_grid[-1]:.4g} (should reach 0)")
    for (e0, a0), (e1, a1) in zip(zip(eps_grid, by_eps), zip(eps_grid[1:], by_eps[1:])):
        if a1 > a0 + tolerance:
            flags.append(
                f"PGD accuracy rises from {100 * a0:.1f} % to {100 * a1:.1f} % as eps grows {e0:.4g} -> {e1:.4g}"
            )
    for (k0, a0), (k1, a1) in zip(zip(steps_grid, by_steps), zip(steps_grid[1:], by_steps[1:])):
        if a1 > a0 + tolerance:
            flags.append(f"PGD accuracy rises from {100 * a0:.1f} % to {100 * a1:.1f} % with more steps ({k0} -> {k1})")
    return GradientMaskingReport(white, gap, eps_grid, tuple(by_eps), steps_grid, tuple(by_steps), tolerance,
                                 tuple(flags))


__all__ = [
    "AUTOATTACK_PARTS",
    "AutoAttackResult",
    "GradientMaskingReport",
    "autoattack_accuracy",
    "autoattack_parts",
    "project",
]
