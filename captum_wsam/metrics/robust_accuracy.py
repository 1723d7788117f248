"""Clean and robust accuracy of a classifier under a set of ``torchattacks`` attacks.

Robust accuracy (Madry et al. 2018, "Towards Deep Learning Models Resistant to Adversarial Attacks",
arXiv:1706.06083) is the accuracy on the attacked inputs; the SAT paper (Mangla et al. 2020, arXiv:2006.07828)
reports it for 5-step PGD at :math:`\\epsilon = 1/255 \\ldots 8/255`.

.. math:: \\operatorname{acc}_{A} = \\frac{1}{N} \\sum_i \\mathbb{1}\\big[\\arg\\max_k f_k(A(x_i, y_i)) = y_i\\big]
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .._checks import check_positive_int, check_type
from .._state import eval_mode, kept_buffers, untouched
from ..attacks._base import check_labels


def _split(batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        return batch[0], batch[1]
    raise TypeError(f"batches must be (images, labels) or (images, labels, info), got {type(batch).__name__}")


def robust_accuracy(
    model: nn.Module,
    loader: DataLoader | Dataset,
    attacks: Mapping[str, Any],
    *,
    batch_size: int = 256,
    progress: bool = False,
) -> dict[str, float]:
    """Clean accuracy and robust accuracy under each attack of ``attacks`` (a table as an ordered dict).

    .. math:: \\operatorname{acc}_{A} = \\frac{1}{N} \\sum_i \\mathbb{1}[\\arg\\max_k f_k(A(x_i, y_i)) = y_i]

    The model is evaluated in eval mode; every module's mode, ``requires_grad``, ``.grad`` and buffers are restored.

    Args:
        model: classifier returning logits.
        loader: DataLoader or Dataset of ``(image, label[, info])`` items (images in [0, 1]).
        attacks: ``{name: attack}``, each a ``torchattacks.Attack`` (or any callable ``(images, labels) -> images``)
            built on ``model``.
        batch_size: used when ``loader`` is a Dataset.
        progress: show a tqdm bar over batches.

    Returns:
        ``{"clean": acc, name: acc, ...}`` with accuracies in [0, 1], in the order of ``attacks``.

    Examples:
        >>> import torchattacks
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> attacks = {"PGD 1/255": torchattacks.PGD(model, 1 / 255)}
        >>> table = robust_accuracy(model, ShapesTextures(n=8, size=32), attacks)
        >>> list(table), all(0 <= v <= 1 for v in table.values())
        (['clean', 'PGD 1/255'], True)
    """
    check_type(model, "model", nn.Module)
    check_type(attacks, "attacks", Mapping)
    for name, attack in attacks.items():
        if not callable(attack):
            raise TypeError(f"attacks[{name!r}] must be a torchattacks attack or callable, got {type(attack).__name__}")
    check_positive_int(batch_size, "batch_size")
    if not isinstance(loader, DataLoader):
        check_type(loader, "loader", Dataset)
        loader = DataLoader(loader, batch_size=batch_size, shuffle=False)
    device = next(model.parameters()).device
    correct = dict.fromkeys(["clean", *attacks], 0)
    seen = 0
    with kept_buffers(model), eval_mode(model), untouched(model):
        for batch in tqdm(loader, desc="robust accuracy", disable=not progress, leave=False):
            images, labels = _split(batch)
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
        raise ValueError("loader must yield at least one batch, got an empty loader")
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
