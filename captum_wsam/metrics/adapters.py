"""Run this package's localisation and faithfulness metrics through Captum's and Quantus's calling conventions.

- **Captum** (``captum.metrics``: ``infidelity(forward_func, perturb_func, inputs, attributions, ..., target)``,
  ``sensitivity_max(explanation_func, inputs, ..., **kwargs)``): :func:`captum_localisation` takes an
  ``explanation_func`` (e.g. ``Saliency(model).attribute``) and calls it as ``sensitivity_max`` does;
  :func:`captum_faithfulness` takes ``forward_func``, ``inputs``, ``attributions``, ``target`` and
  ``additional_forward_args`` as ``infidelity`` does. Both return one score per example, a tensor :math:`(N,)`.
- **Quantus** (Hedström et al. 2023, "Quantus: An Explainable AI Toolkit for Responsible Evaluation of Neural
  Network Explanations and Beyond", JMLR, arXiv:2202.06861): :func:`quantus_explain_func` turns a Captum
  attribution factory into an ``explain_func(model, inputs, targets, **kwargs) -> np.ndarray`` that any Quantus
  metric accepts (the model is passed in at each call, so Quantus's randomization metrics explain their randomized
  copies); :func:`quantus_metric` makes one of this package's metrics callable like a Quantus metric
  (``metric(model=..., x_batch=..., y_batch=..., a_batch=..., s_batch=..., explain_func=...)`` returning a list of
  floats), so it can sit in ``quantus.evaluate(metrics={...})`` next to Quantus's own.

The metrics themselves are those of :mod:`captum_wsam.metrics.localisation` and
:mod:`captum_wsam.metrics.faithfulness`, whose formulas the adapters do not change:

.. math:: s_i = \\text{metric}(A_i, GT_i) \\quad\\text{or}\\quad s_i = \\text{metric}(f, x_i, A_i)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .._checks import check_choice, check_images, check_type
from .._typing import TargetType
from .faithfulness import deletion_insertion, road
from .localisation import (
    attribution_map,
    energy_pointing_game,
    pointing_game,
    relevance_mass_accuracy,
    relevance_rank_accuracy,
)

#: Localisation metrics by name: ``f(attributions, masks, **kwargs) -> (N,)``.
LOCALISATION_METRICS: dict[str, Callable[..., Tensor]] = {
    "pointing_game": pointing_game,
    "relevance_mass_accuracy": relevance_mass_accuracy,
    "relevance_rank_accuracy": relevance_rank_accuracy,
    "energy_pointing_game": energy_pointing_game,
}
#: Faithfulness scores by name (one number per example).
FAITHFULNESS_METRICS = ("deletion_auc", "insertion_auc", "road_combined")


def _faithfulness_scores(model: Any, inputs: Tensor, attributions: Any, metric: str, target: TargetType,
                         kwargs: dict[str, Any]) -> Tensor:
    if metric == "road_combined":
        return road(model, inputs, attributions, target=target, **kwargs).combined
    mode = "deletion" if metric == "deletion_auc" else "insertion"
    result = deletion_insertion(model, inputs, attributions, target=target, mode=mode, **kwargs)
    return result.deletion_auc if metric == "deletion_auc" else result.insertion_auc


def captum_localisation(
    explanation_func: Callable[..., Any],
    inputs: Tensor,
    masks: Tensor,
    metric: str = "pointing_game",
    metric_kwargs: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Tensor:
    """A localisation metric in ``captum.metrics.sensitivity_max`` style: explain with ``explanation_func``, score.

    .. math:: s_i = \\text{metric}\\big(\\text{explanation\\_func}(x, **kwargs)_i, GT_i\\big)

    Args:
        explanation_func: e.g. ``Saliency(model).attribute``; called as ``explanation_func(inputs, **kwargs)``.
        inputs: :math:`(N, C, H, W)` images.
        masks: boolean :math:`(N, H, W)` / :math:`(N, 1, H, W)` or boxes :math:`(N, 4)`.
        metric: ``"pointing_game"``, ``"relevance_mass_accuracy"``, ``"relevance_rank_accuracy"`` or
            ``"energy_pointing_game"``.
        metric_kwargs: keyword arguments of the metric (e.g. ``{"tolerance": 15}``).
        **kwargs: passed to ``explanation_func`` (``target``, ``additional_forward_args``, ``baselines``...), as
            Captum's ``sensitivity_max`` does.

    Returns:
        Shape :math:`(N,)`.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> model, x = SmallCNN(width=4, depth=2).eval(), torch.rand(2, 3, 16, 16)
        >>> masks = torch.zeros(2, 16, 16, dtype=torch.bool); masks[:, 4:12, 4:12] = True
        >>> captum_localisation(Saliency(model).attribute, x, masks, target=0).shape
        torch.Size([2])
    """
    if not callable(explanation_func):
        raise TypeError(f"explanation_func must be callable, got {type(explanation_func).__name__}")
    check_images(inputs, "inputs")
    check_choice(metric, "metric", tuple(LOCALISATION_METRICS))
    if metric_kwargs is not None:
        check_type(metric_kwargs, "metric_kwargs", dict)
    check_type(masks, "masks", Tensor)
    attributions = explanation_func(inputs, **kwargs)
    return LOCALISATION_METRICS[metric](attributions, masks, **(metric_kwargs or {}))


def captum_faithfulness(
    forward_func: Callable[..., Tensor],
    inputs: Tensor,
    attributions: Any,
    metric: str = "deletion_auc",
    target: TargetType = None,
    additional_forward_args: Any = None,
    **kwargs: Any,
) -> Tensor:
    """A faithfulness score in ``captum.metrics.infidelity`` style: ``forward_func``, ``inputs``, ``attributions``.

    .. math:: s_i = \\text{AUC}_{\\text{del}}, \\; \\text{AUC}_{\\text{ins}} \\text{ or ROAD combined of } (f, x_i, A_i)

    Args:
        forward_func: the model or any callable ``forward_func(inputs, *additional_forward_args) -> logits``.
        inputs: :math:`(N, C, H, W)` images.
        attributions: a tensor (a 1-tuple as Captum returns is accepted), a Captum ``Attribution`` or a callable.
        metric: ``"deletion_auc"`` (lower is better), ``"insertion_auc"`` or ``"road_combined"`` (higher is better).
        target: Captum target; ``None`` explains the predicted class.
        additional_forward_args: extra arguments of ``forward_func`` after the inputs; they must not have a batch
            dimension (the perturbed batches have another size).
        **kwargs: keyword arguments of :func:`~captum_wsam.metrics.deletion_insertion` or
            :func:`~captum_wsam.metrics.road` (``steps``, ``percentages``, ``progress``...).

    Returns:
        Shape :math:`(N,)`.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> model, x = SmallCNN(width=4, depth=2).eval(), torch.rand(2, 3, 16, 16)
        >>> attributions = Saliency(model).attribute(x, target=0)
        >>> captum_faithfulness(model, x, attributions, target=0, steps=4, progress=False).shape
        torch.Size([2])
    """
    if not callable(forward_func):
        raise TypeError(f"forward_func must be callable, got {type(forward_func).__name__}")
    check_choice(metric, "metric", FAITHFULNESS_METRICS)
    extra = () if additional_forward_args is None else (
        tuple(additional_forward_args) if isinstance(additional_forward_args, tuple) else (additional_forward_args,)
    )
    model: Any = forward_func
    if extra:
        def model(batch: Tensor) -> Tensor:
            return forward_func(batch, *extra)

    return _faithfulness_scores(model, inputs, attributions, metric, target, kwargs)


def _as_tensor(value: Any, name: str, device: Any = None) -> Tensor:
    if isinstance(value, Tensor):
        return value.to(device) if device is not None else value
    if isinstance(value, np.ndarray):
        return torch.from_numpy(value).to(device)
    raise TypeError(f"{name} must be a numpy array or a tensor, got {type(value).__name__}")


def _model_device(model: Any) -> torch.device:
    if isinstance(model, nn.Module):
        parameter = next(model.parameters(), None)
        if parameter is not None:
            return parameter.device
    return torch.device("cpu")


def quantus_explain_func(
    attribution_factory: Callable[[nn.Module], Any], **attribute_kwargs: Any
) -> Callable[..., np.ndarray]:
    """Quantus ``explain_func`` from a Captum attribution factory (``model -> attribution``).

    .. math:: a = \\sum_c A_c(x) \\in \\mathbb R^{N \\times 1 \\times H \\times W}

    The returned function has Quantus's signature ``explain_func(model, inputs, targets, **kwargs)``: it converts
    numpy inputs to tensors on the model's device, builds ``attribution_factory(model)`` (so it follows whatever model
    Quantus passes, randomized copies included), calls ``attribute(inputs, target=targets, **attribute_kwargs)``,
    sums over channels, upsamples layer maps to the input size and returns float32 numpy :math:`(N, 1, H, W)`.
    Quantus's own keywords (``device``, ``method``, ...) are ignored.

    Args:
        attribution_factory: e.g. ``Saliency`` or ``lambda m: LayerGradCam(m, m.block4)``.
        **attribute_kwargs: fixed keyword arguments of ``attribute`` (e.g. ``n_steps=32``).

    Returns:
        The ``explain_func``.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> explain = quantus_explain_func(Saliency)
        >>> explain(SmallCNN(width=4, depth=2).eval(), np.random.rand(2, 3, 16, 16).astype("float32"),
        ...         np.array([0, 1])).shape
        (2, 1, 16, 16)
    """
    if not callable(attribution_factory):
        raise TypeError(f"attribution_factory must be callable (model -> attribution), got {attribution_factory!r}")

    def explain_func(model: nn.Module, inputs: Any, targets: Any, **_: Any) -> np.ndarray:
        device = _model_device(model)
        x = _as_tensor(inputs, "inputs", device).float()
        check_images(x, "inputs")
        y = _as_tensor(np.asarray(targets) if not isinstance(targets, Tensor) else targets, "targets", device).long()
        attribution = attribution_factory(model)
        attribute = attribution.attribute if callable(getattr(attribution, "attribute", None)) else attribution
        result = attribute(x.clone().requires_grad_(), target=y.reshape(-1), **attribute_kwargs)
        maps = attribution_map(result, tuple(x.shape[-2:]))
        return maps[:, None].detach().cpu().float().numpy()

    return explain_func


def quantus_metric(name: str, **metric_kwargs: Any) -> Callable[..., list[float]]:
    """One of this package's metrics with the call signature of a Quantus metric (for ``quantus.evaluate``).

    .. math:: \\text{scores} = [s_1, \\dots, s_N], \\qquad s_i = \\text{metric}(a_i, s_i) \\text{ or }
        \\text{metric}(f, x_i, a_i)

    The callable takes ``model``, ``x_batch``, ``y_batch``, ``a_batch`` (computed with ``explain_func(model=...,
    inputs=..., targets=..., **explain_func_kwargs)`` when ``None``), ``s_batch`` (segmentation masks; needed by the
    localisation metrics) and returns a list of floats, one per example, as Quantus metrics do.

    Args:
        name: a localisation metric (``"pointing_game"``, ``"relevance_mass_accuracy"``,
            ``"relevance_rank_accuracy"``, ``"energy_pointing_game"``) or a faithfulness score (``"deletion_auc"``,
            ``"insertion_auc"``, ``"road_combined"``).
        **metric_kwargs: keyword arguments of the metric (``tolerance``, ``steps``, ``progress``...).

    Returns:
        ``metric(model, x_batch, y_batch, a_batch=None, s_batch=None, explain_func=None, explain_func_kwargs=None,
        **ignored) -> list[float]``.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> metric = quantus_metric("pointing_game")
        >>> a = np.zeros((2, 1, 8, 8), dtype="float32"); a[:, 0, 1, 1] = 1.0
        >>> s = np.zeros((2, 1, 8, 8), dtype=bool); s[0, 0, :4, :4] = True; s[1, 0, 4:, 4:] = True
        >>> metric(model=SmallCNN(width=4, depth=2), x_batch=np.zeros((2, 3, 8, 8), "float32"),
        ...        y_batch=np.array([0, 1]), a_batch=a, s_batch=s)
        [1.0, 0.0]
    """
    check_choice(name, "name", (*LOCALISATION_METRICS, *FAITHFULNESS_METRICS))

    def metric(
        model: Any,
        x_batch: Any,
        y_batch: Any,
        a_batch: Any = None,
        s_batch: Any = None,
        explain_func: Callable[..., Any] | None = None,
        explain_func_kwargs: dict[str, Any] | None = None,
        **_: Any,
    ) -> list[float]:
        if a_batch is None:
            if explain_func is None:
                raise ValueError("a_batch is None: pass explain_func to compute the attributions")
            a_batch = explain_func(model=model, inputs=x_batch, targets=y_batch, **(explain_func_kwargs or {}))
        device = _model_device(model)
        x = _as_tensor(x_batch, "x_batch", device).float()
        y = _as_tensor(np.asarray(y_batch) if not isinstance(y_batch, Tensor) else y_batch, "y_batch", device)
        a = _as_tensor(a_batch, "a_batch", device).float()
        if name in LOCALISATION_METRICS:
            if s_batch is None:
                raise ValueError(f"{name} needs segmentation masks: pass s_batch")
            s = _as_tensor(s_batch, "s_batch", device)
            s = s.bool() if s.dim() != 2 else s
            scores = LOCALISATION_METRICS[name](a, s, **metric_kwargs)
        else:
            scores = _faithfulness_scores(model, x, a, name, y.long().reshape(-1), dict(metric_kwargs))
        return [float(v) for v in scores.tolist()]

    metric.__name__ = name
    return metric


__all__ = [
    "FAITHFULNESS_METRICS",
    "LOCALISATION_METRICS",
    "captum_faithfulness",
    "captum_localisation",
    "quantus_explain_func",
    "quantus_metric",
]
