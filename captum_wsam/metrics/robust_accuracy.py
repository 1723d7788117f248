"""Clean and robust accuracy of a classifier under a set of ``torchattacks`` attacks.

Robust accuracy (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks",
arXiv:1706.06083) is the accuracy on the attacked inputs; the SAT paper (Mangla et al. 2020, arXiv:2006.07828)
reports it for 5-step PGD at :math:`\\epsilon = 1/255 \\ldots 8/255`. The field reports AutoAttack (Croce & Hein 2020,
arXiv:2003.01690), the per-sample worst case over four attacks: ``robust_accuracy(model, data, "autoattack")``
(see :mod:`captum_wsam.metrics.autoattack`), which also checks for gradient masking.

.. math:: \\operatorname{acc}_{A} = \\frac{1}{N} \\sum_i \\mathbb{1}\\big[\\arg\\max_k f_k(A(x_i, y_i)) = y_i\\big]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checks import check_choice, check_finite, check_in_range, check_positive_int, check_type
from .._state import eval_mode, kept_buffers, untouched
from ..attacks._base import check_labels
from ..data.batches import as_loader, renamed_data_argument, split_batch
from .autoattack import DEFAULT_EPS, AutoAttackResult, autoattack_accuracy

PRESETS = ("autoattack",)


@renamed_data_argument("loader")
def robust_accuracy(
    model: nn.Module,
    data: DataLoader | Dataset,
    attacks: Mapping[str, Any] | str,
    *,
    eps: float | None = None,
    norm: str = "Linf",
    steps: int = 100,
    n_queries: int = 5000,
    seed: int = 0,
    masking_check: bool = True,
    masking_tolerance: float = 0.02,
    eps_multiples: Sequence[float] = (1, 2, 4, 8, 16),
    masking_steps: Sequence[int] = (10, 20, 40),
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, float] | AutoAttackResult:
    """Clean and robust accuracy under a table of attacks, or under AutoAttack with a gradient-masking check.

    .. math:: \\operatorname{acc}_{A} = \\frac{1}{N} \\sum_i \\mathbb{1}[\\arg\\max_k f_k(A(x_i, y_i)) = y_i]

    With ``attacks="autoattack"`` the robust accuracy is the per-sample worst case over the four attacks of standard
    AutoAttack (Croce & Hein 2020, "Reliable evaluation of adversarial robustness with an ensemble of diverse
    parameter-free attacks", arXiv:2003.01690: APGD-CE, APGD-T, FAB-T, Square, built from ``torchattacks``' parts),
    :math:`\\operatorname{acc}_{AA} = \\frac{1}{N}\\sum_i \\mathbb{1}[f(x_i) = y_i] \\prod_A
    \\mathbb{1}[f(A(x_i, y_i)) = y_i]`, and the result carries a
    :class:`~captum_wsam.metrics.autoattack.GradientMaskingReport`: the gap between black-box Square and the white-box
    attacks, PGD accuracy as :math:`\\epsilon` grows (should reach 0) and as PGD steps grow (should never rise).

    The model is evaluated in eval mode; every module's mode, ``requires_grad``, ``.grad`` and buffers are restored,
    and so is torch's global random generator.

    Args:
        model: classifier returning logits on [0, 1] images.
        data: DataLoader or Dataset of ``(image, label[, info])`` items (finite images in [0, 1]); ``loader=`` is the
            deprecated name.
        attacks: ``{name: attack}``, each a ``torchattacks.Attack`` (or any callable ``(images, labels) -> images``)
            built on ``model``; or ``"autoattack"``.
        eps: AutoAttack's :math:`\\epsilon` (default 8/255 for ``"Linf"``, 0.5 for ``"L2"``, RobustBench's).
        norm: AutoAttack's threat model, ``"Linf"`` or ``"L2"``.
        steps: AutoAttack's APGD/FAB iterations (standard 100; fewer for quick looks).
        n_queries: AutoAttack's Square queries (standard 5,000).
        seed: seed of AutoAttack's random starts and of the masking check's PGD.
        masking_check: run the gradient-masking check (AutoAttack only).
        masking_tolerance: accuracy difference :math:`\\tau` tolerated before the check raises a flag.
        eps_multiples: radii :math:`k \\epsilon` of the growing-:math:`\\epsilon` PGD check (Linf capped at 1).
        masking_steps: PGD step counts of the more-steps check.
        batch_size: used when ``data`` is a Dataset.
        progress: show a tqdm bar over batches (table of attacks).

    Returns:
        For a table of attacks, ``{"clean": acc, name: acc, ...}`` with accuracies in [0, 1], in the order of
        ``attacks``; for ``"autoattack"``, an :class:`~captum_wsam.metrics.autoattack.AutoAttackResult`, which reads as
        ``{"clean": acc, "AutoAttack": acc}`` and holds the per-attack accuracies and the masking report.

    Examples:
        >>> import torchattacks
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> attacks = {"PGD 1/255": torchattacks.PGD(model, 1 / 255)}
        >>> table = robust_accuracy(model, ShapesTextures(n=8, size=32), attacks)
        >>> list(table), all(0 <= v <= 1 for v in table.values())
        (['clean', 'PGD 1/255'], True)
        >>> aa = robust_accuracy(model, ShapesTextures(n=4, size=32), "autoattack", steps=2, n_queries=5,
        ...                      masking_steps=(2, 4))
        >>> list(aa), aa.robust <= aa.clean, type(aa.masking.suspicious)
        (['clean', 'AutoAttack'], True, <class 'bool'>)
    """
    check_type(model, "model", nn.Module)
    if isinstance(attacks, str):
        check_choice(attacks, "attacks", PRESETS)
        check_choice(norm, "norm", tuple(DEFAULT_EPS))
        eps = DEFAULT_EPS[norm] if eps is None else eps
        check_in_range(eps, "eps", 0.0, None, low_inclusive=False)
        check_positive_int(steps, "steps")
        check_positive_int(n_queries, "n_queries")
        check_type(masking_check, "masking_check", bool)
        check_in_range(masking_tolerance, "masking_tolerance", 0.0, 1.0)
        check_type(eps_multiples, "eps_multiples", (tuple, list))
        check_type(masking_steps, "masking_steps", (tuple, list))
        for k in eps_multiples:
            check_in_range(k, "eps_multiples", 0.0, None, low_inclusive=False)
        for k in masking_steps:
            check_positive_int(k, "masking_steps")
        if masking_check and (not eps_multiples or not masking_steps):
            raise ValueError(f"the masking check needs eps_multiples and masking_steps, got {eps_multiples!r} and "
                             f"{masking_steps!r}")
    else:
        check_type(attacks, "attacks", Mapping)
        for name, attack in attacks.items():
            if not callable(attack):
                raise TypeError(
                    f"attacks[{name!r}] must be a torchattacks attack or callable, got {type(attack).__name__}"
                )
        if eps is not None:
            raise ValueError(f"eps applies to the 'autoattack' preset only, got eps={eps!r} with a table of attacks")
    check_positive_int(batch_size, "batch_size")
    loader = as_loader(data, batch_size, name="data")
    with kept_buffers(model), eval_mode(model), untouched(model):
        if isinstance(attacks, str):
            return autoattack_accuracy(model, loader, float(eps), norm, steps=steps, n_queries=n_queries, seed=seed,
                                       masking_check=masking_check, masking_tolerance=float(masking_tolerance),
                                       eps_multiples=tuple(eps_multiples), masking_steps=tuple(masking_steps))
        return _table_accuracy(model, loader, attacks, progress)


def _table_accuracy(
    model: nn.Module, loader: DataLoader, attacks: Mapping[str, Any], progress: bool
) -> dict[str, float]:
    device = next(model.parameters()).device
    correct = dict.fromkeys(["clean", *attacks], 0)
    seen = 0
    for batch in tqdm(loader, desc="robust accuracy", disable=not progress, leave=False):
        images, labels, _ = split_batch(batch)
        check_finite(images, "images")
        images, labels = images.to(device), labels.to(device)
        with torch.no_grad():
            logits = model(images)
        check_labels(labels, len(images), logits.shape[1])
        correct["clean"] += (logits.argmax(1) == labels).sum().item()
        for name, attack in attacks.items():
            adv = attack(images, labels)
            with torch.no_grad():
                correct[name] += (model(adv).argmax(1) == labels).sum().item()
        seen += len(labels)
    if seen == 0:
        raise ValueError("data must yield at least one batch, got an empty loader")
    return {name: count / seen for name, count in correct.items()}


def format_table(rows: Mapping[str, Mapping[str, float]], digits: int = 1) -> str:
    """Markdown table of several :func:`robust_accuracy` results (rows: models, columns: attacks, in %).

    Args:
        rows: ``{model name: robust_accuracy(...) result}``.
        digits: decimals of the percentages.

    Returns:
        The table as a string.

    Examples:
        >>> print(format_table({"Original": {"clean": 0.9, "PGD": 0.25}}))
        | Method | clean | PGD |
        |---|---|---|
        | Original | 90.0 | 25.0 |
    """
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    lines = ["| Method | " + " | ".join(columns) + " |", "|" + "---|" * (len(columns) + 1)]
    for name, row in rows.items():
        cells = [f"{100 * row[c]:.{digits}f}" if c in row else "" for c in columns]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot_robust_accuracy(rows: Mapping[str, Mapping[str, float]], ax: Any = None) -> Any:
    """Grouped bar chart of :func:`robust_accuracy` results (one group per attack, one bar per model).

    Args:
        rows: ``{model name: robust_accuracy(...) result}``.
        ax: optional matplotlib axes.

    Returns:
        The matplotlib axes.

    Examples:
        >>> ax = plot_robust_accuracy({"Original": {"clean": 0.9, "PGD": 0.25}})
        >>> ax.get_ylabel()
        'accuracy (%)'
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))
    width = 0.8 / max(1, len(rows))
    for i, (name, row) in enumerate(rows.items()):
        xs = [j + i * width for j in range(len(columns))]
        ax.bar(xs, [100 * row.get(c, 0.0) for c in columns], width=width, label=name)
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(columns))], columns)
    ax.set_ylabel("accuracy (%)")
    ax.legend(fontsize="small")
    return ax


__all__ = ["format_table", "plot_robust_accuracy", "robust_accuracy"]
