"""Parameter-space saliency: which conv filters are responsible for a (wrong) decision, as a Captum attribution.

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022).

For a sample :math:`(x, y)` the saliency of parameter :math:`\\theta_i` is :math:`s_i = |\\partial \\mathcal{L}(x, y) /
\\partial \\theta_i|`; a conv filter's saliency is the mean over its weights, standardized over a reference set:

.. math:: \\hat s(x, y)_k = \\frac{\\frac{1}{|\\mathcal{F}_k|} \\sum_{i \\in \\mathcal{F}_k} s_i - \\mu_k}{\\sigma_k}

Salient filters are the ones that "malfunction" on the sample: zeroing them often corrects a misclassification
(:meth:`ParameterSaliency.prune_top_filters`), and backpropagating the similarity between :math:`\\hat s(x)` and a
copy with the top filters boosted to the input gives the pixels that drive them
(:meth:`ParameterSaliency.input_saliency`). The maths is in :mod:`captum_wsam.attr.parameter_saliency_functional`;
this module captures every conv layer's input and output gradient in one batched pass and manages the statistics.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import (
    check_choice,
    check_finite,
    check_grad_allowed,
    check_in_range,
    check_positive_int,
    check_tensor,
    check_type,
)
from .._state import eval_mode, exclusive, kept_buffers, untouched
from .._typing import LossFunc, TargetType
from ..data.batches import split_batch
from .parameter_saliency_functional import (
    MODES,
    input_space_saliency,
    normalize_saliency,
    welford_merge,
    welford_std,
)
from .parameter_saliency_pass import batched_filter_saliency, forward_args, resolve_conv_layers
from .parameter_saliency_pruning import pruned_predictions
from .parameter_saliency_results import (
    STATS_FORMAT,
    ParameterSaliencyResult,
    PruningResult,
    plot_profile,
    read_statistics,
)


def cross_entropy_per_sample(logits: Tensor, target: Tensor) -> Tensor:
    """Default loss: cross-entropy per sample, :math:`-\\log \\operatorname{softmax}(z)_y`, shape :math:`(B,)`."""
    return F.cross_entropy(logits, target, reduction="none")


class ParameterSaliency(GradientAttribution):
    """Parameter-space saliency maps (Levin et al. 2021) of the conv filters of a classifier.

    .. math:: \\hat s(x, y)_k = \\Big(\\operatorname{mean}_{i \\in \\mathcal{F}_k}
        \\big|\\partial \\mathcal{L}(f_\\theta(x), y) / \\partial \\theta_i\\big| - \\mu_k\\Big) / \\sigma_k

    Per-sample gradients come from one batched forward and backward: hooks capture each conv layer's input and the
    gradient of the summed per-sample losses w.r.t. its output, and per-sample weight gradients follow by batched
    contraction (:func:`~captum_wsam.attr.parameter_saliency_functional.conv2d_filter_saliency`). The pass runs with
    every module in eval mode (BatchNorm on running statistics, so samples do not interact); the model's modes,
    buffers, ``requires_grad`` and ``.grad`` are left exactly as found (also when several threads call it on one
    model: they take turns).

    Captum's conventions: :meth:`attribute` returns the :math:`(B, F)` scores as a tensor (``log_usage``-wrapped, so
    it works inside ``NoiseTunnel`` and ``captum.metrics.sensitivity_max``); :meth:`attribute_detailed` returns the
    full :class:`ParameterSaliencyResult` (raw scores, filter index, targets, predictions, losses). Inputs may be a
    Tensor or a tuple of Tensors (passed to the model in order); it works under the caller's ``torch.no_grad()``
    and raises a clear ``RuntimeError`` under ``torch.inference_mode()``.

    Args:
        model: classifier returning logits :math:`(B, K)`.
        loss_fn: ``loss_fn(logits, target)`` returning one loss per sample :math:`(B,)`; default cross-entropy.
        layers: conv layers to analyse (modules or their names in ``model``); default every ``nn.Conv2d``.
        mode: ``"standardized"`` (needs :meth:`fit` or :meth:`load`), ``"norm"`` (:math:`\\bar s / \\mu`, idem)
            or ``"raw"``.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
        >>> x, target = torch.rand(3, 3, 32, 32), torch.tensor([0, 1, 2])
        >>> result = saliency.attribute_detailed(x, target=target)
        >>> result.flat.shape, {name: p.shape[1] for name, p in result.profiles.items()}
        (torch.Size([3, 12]), {'block1.conv': 4, 'block2.conv': 8})
        >>> bool(torch.equal(saliency.attribute(x, target=target), result.flat))
        True
        >>> result.filter_index[5]
        ('block2.conv', 1)
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFunc | None = None,
        layers: Sequence[nn.Module | str] | nn.Module | str | None = None,
        mode: str = "standardized",
    ) -> None:
        check_type(model, "model", nn.Module)
        if loss_fn is not None and not callable(loss_fn):
            raise TypeError(f"loss_fn must be callable, got {type(loss_fn).__name__}")
        check_choice(mode, "mode", MODES)
        GradientAttribution.__init__(self, model)
        self.model = model
        self.loss_fn: LossFunc = cross_entropy_per_sample if loss_fn is None else loss_fn
        self.mode = mode
        self.layers = resolve_conv_layers(model, layers)
        self.count = 0
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    @property
    def layer_sizes(self) -> dict[str, int]:
        """Filters (output channels) per analysed layer, in model order."""
        return {name: layer.out_channels for name, layer in self.layers.items()}

    @property
    def filter_index(self) -> list[tuple[str, int]]:
        """Column ``j`` of the flat :math:`(B, F)` view is filter ``filter_index[j]`` = ``(layer name, filter)``."""
        return [(name, f) for name, size in self.layer_sizes.items() for f in range(size)]

    @property
    def num_filters(self) -> int:
        """Total number of filters :math:`F` over the analysed layers."""
        return sum(self.layer_sizes.values())

    # ----------------------------------------------------------------------------------------------- the batched pass
    def _check_fitted(self, mode: str) -> None:
        if mode != "raw" and self.mean is None:
            raise RuntimeError(
                f"ParameterSaliency(mode={mode!r}) needs reference statistics per filter: call fit(loader) or "
                "load(path) first, or use mode='raw'"
            )

    def _pass(
        self,
        inputs: tuple[Tensor, ...],
        target: TargetType,
        additional_forward_args: Any,
        create_graph: bool = False,
        parameter_wise: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> tuple[tuple[Tensor, ...], Tensor, Tensor, Tensor, Tensor, dict[str, Tensor] | None]:
        """One batched forward/backward (:func:`batched_filter_saliency`); must run inside :meth:`_guarded`."""
        return batched_filter_saliency(self.model, self.layers, self.loss_fn, inputs, target, additional_forward_args,
                                       create_graph=create_graph, parameter_wise=parameter_wise,
                                       grad_kwargs=grad_kwargs)

    @contextmanager
    def _guarded(self, *tensors: Tensor) -> Iterator[None]:
        """Eval mode and gradients on for the pass; modes, buffers, ``requires_grad`` and ``.grad`` restored on
        exit, even on error (the model's lock is held, so threads take turns)."""
        with untouched(self.model, *tensors), kept_buffers(self.model), eval_mode(self.model), torch.enable_grad():
            yield

    def _scores(self, raw: Tensor, mode: str) -> Tensor:
        return normalize_saliency(raw, mode, self.mean, self.std)

    @staticmethod
    def _check_inputs(inputs: Any, name: str = "inputs") -> tuple[Tensor, ...]:
        """Captum's "Tensor or tuple of Tensors", each a finite float batch with one batch size (checked first)."""
        check_grad_allowed(f"ParameterSaliency ({name})")
        is_tuple = isinstance(inputs, tuple)
        tensors = inputs if is_tuple else (inputs,)
        if not tensors:
            raise ValueError(f"{name} must hold at least one tensor, got an empty tuple")
        for index, tensor in enumerate(tensors):
            label = f"{name}[{index}]" if is_tuple else name
            check_tensor(tensor, label, floating=True)
            if tensor.dim() < 2:
                raise ValueError(f"{label} must be a batch with a leading batch dimension, got shape "
                                 f"{tuple(tensor.shape)}")
            check_finite(tensor, label)
        if len({t.shape[0] for t in tensors}) != 1:
            raise ValueError(f"{name} must share one batch size, got shapes {[tuple(t.shape) for t in tensors]}")
        return tuple(t.clone() if t.is_inference() else t for t in tensors)

    # ---------------------------------------------------------------------------------------------------- public API
    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: Any = None,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | tuple[Tensor]:
        """Captum's entry: the filter-wise saliency scores of every sample as a :math:`(B, F)` tensor.

        .. math:: \\hat s(x_b, y_b)_k = \\big(\\operatorname{mean}_{i \\in \\mathcal{F}_k}
            |\\nabla_{\\theta_i} \\mathcal{L}(f(x_b), y_b)| - \\mu_k\\big) / \\sigma_k

        The scores of :meth:`attribute_detailed` (``.flat``), in ``mode``; column ``j`` is filter
        :attr:`filter_index` ``[j]``. Wrapped by Captum's ``log_usage``, so ``NoiseTunnel(saliency)`` and
        ``captum.metrics.sensitivity_max(saliency.attribute, ...)`` work.

        Args:
            inputs: batch :math:`(B, \\dots)` (e.g. images :math:`(B, C, H, W)`), or a tuple of batches passed to the
                model in order; finite.
            target: class per sample for the loss (Captum convention: an int, a list or a 1-D tensor); ``None``
                takes the predicted class. Levin et al. use the true label.
            additional_forward_args: extra positional arguments of the model (Captum convention).
            grad_kwargs: keyword arguments for ``torch.autograd.grad`` (as Captum's gradient methods).

        Returns:
            Shape :math:`(B, F)`, the dtype of the analysed layers' inputs (a 1-tuple for tuple ``inputs``, the
            structure Captum's metrics expect).

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> with torch.no_grad():
            ...     scores = saliency.attribute(torch.rand(2, 3, 32, 32), target=1)
            >>> scores.shape, bool((scores >= 0).all())
            (torch.Size([2, 12]), True)
        """
        scores = self._detailed(inputs, target, additional_forward_args, False, grad_kwargs).flat
        return (scores,) if isinstance(inputs, tuple) else scores

    def attribute_detailed(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: Any = None,
        parameter_wise: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> ParameterSaliencyResult:
        """Filter-wise parameter saliency of every sample with everything around it (one forward and backward).

        .. math:: \\hat s(x_b, y_b)_k = \\big(\\operatorname{mean}_{i \\in \\mathcal{F}_k}
            |\\nabla_{\\theta_i} \\mathcal{L}(f(x_b), y_b)| - \\mu_k\\big) / \\sigma_k

        Args:
            inputs: batch :math:`(B, \\dots)`, or a tuple of batches passed to the model in order; finite.
            target: class per sample for the loss (as :meth:`attribute`).
            additional_forward_args: extra positional arguments of the model (Captum convention).
            parameter_wise: also return the per-sample :math:`|\\nabla_W \\mathcal{L}|` of every weight.
            grad_kwargs: keyword arguments for ``torch.autograd.grad``.

        Returns:
            :class:`ParameterSaliencyResult`; ``flat`` is :math:`(B, F)` and ``profiles[name]`` is :math:`(B, O)`.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> result = saliency.attribute_detailed(torch.rand(2, 3, 32, 32), target=1, parameter_wise=True)
            >>> result.raw.shape, result.parameters["block2.conv"].shape, bool((result.raw >= 0).all())
            (torch.Size([2, 12]), torch.Size([2, 8, 4, 3, 3]), True)
        """
        return self._detailed(inputs, target, additional_forward_args, parameter_wise, grad_kwargs)

    def _detailed(
        self, inputs: Any, target: TargetType, additional_forward_args: Any, parameter_wise: Any,
        grad_kwargs: dict[str, Any] | None,
    ) -> ParameterSaliencyResult:
        tensors = self._check_inputs(inputs)
        check_type(parameter_wise, "parameter_wise", bool)
        if grad_kwargs is not None:
            check_type(grad_kwargs, "grad_kwargs", dict)
        self._check_fitted(self.mode)
        with self._guarded(*tensors):
            _, raw, target_vector, prediction, loss, parameters = self._pass(
                tensors, target, additional_forward_args, parameter_wise=parameter_wise, grad_kwargs=grad_kwargs
            )
        raw = raw.detach()
        return ParameterSaliencyResult(
            flat=self._scores(raw, self.mode),
            raw=raw,
            filter_index=self.filter_index,
            layer_sizes=self.layer_sizes,
            mode=self.mode,
            target=target_vector,
            prediction=prediction,
            loss=loss,
            parameters=parameters,
        )

    def fit(self, loader: Iterable[Any], progress: bool = True) -> ParameterSaliency:
        """Reference mean and standard deviation of the raw filter-wise saliency, streamed over ``loader``.

        .. math:: \\mu_k = \\frac{1}{N} \\sum_n \\bar s(x_n, y_n)_k, \\qquad
            \\sigma_k = \\sqrt{\\tfrac{1}{N-1} \\sum_n (\\bar s(x_n, y_n)_k - \\mu_k)^2} \\quad (\\sigma_k \\le
            10^{-14} \\to 1)

        Batches are merged with Welford/Chan updates in float64 (one pass, constant memory). Levin et al. use the
        true labels of a validation set, so each batch's labels are the targets.

        Args:
            loader: iterable of ``(images, labels[, info])`` batches (e.g. a ``DataLoader`` of ShapesTextures).
            progress: show a tqdm bar.

        Returns:
            ``self`` (``mean``, ``std`` and ``count`` set).

        Examples:
            >>> from torch.utils.data import DataLoader
            >>> from captum_wsam.data import ShapesTextures
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2))
            >>> saliency.fit(DataLoader(ShapesTextures(n=8, size=32), batch_size=4), progress=False).count
            8
            >>> saliency.attribute(torch.rand(2, 3, 32, 32), target=0).shape
            torch.Size([2, 12])
        """
        if not isinstance(loader, Iterable):
            raise TypeError(f"loader must be an iterable of (images, labels) batches, got {type(loader).__name__}")
        check_type(progress, "progress", bool)
        count, mean, m2 = 0, None, None
        for batch in tqdm(loader, desc="ParameterSaliency.fit", disable=not progress, leave=False):
            images, labels, _ = split_batch(batch)
            (images,) = self._check_inputs(images, "images of the loader")
            device = next(iter(self.layers.values())).weight.device
            images, labels = images.to(device), labels.to(device)
            with self._guarded(images):
                _, raw, *_ = self._pass((images,), labels, None)
            raw = raw.detach().to(torch.float64)
            if mean is None:
                mean, m2 = raw.new_zeros(raw.shape[1]), raw.new_zeros(raw.shape[1])
            count, mean, m2 = welford_merge(count, mean, m2, raw)
        if count < 2 or mean is None or m2 is None:
            raise ValueError(f"loader must yield at least 2 samples to estimate a standard deviation, got {count}")
        self.count, self.mean, self.std = count, mean, welford_std(count, m2)
        return self

    def save(self, path: str | Path) -> None:
        """Save the reference statistics (``mean``, ``std``, ``count``, layer names and sizes) with ``torch.save``.

        Examples:
            >>> import tempfile, os
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2))
            >>> saliency.mean, saliency.std, saliency.count = torch.ones(12), torch.ones(12), 10
            >>> path = os.path.join(tempfile.mkdtemp(), "stats.pt")
            >>> saliency.save(path)
            >>> ParameterSaliency(SmallCNN(width=4, depth=2)).load(path).count
            10
        """
        if self.mean is None or self.std is None:
            raise RuntimeError("ParameterSaliency has no statistics to save: call fit(loader) first")
        torch.save(
            {
                "format": STATS_FORMAT,
                "mean": self.mean.detach().cpu(),
                "std": self.std.detach().cpu(),
                "count": int(self.count),
                "layers": list(self.layer_sizes),
                "sizes": list(self.layer_sizes.values()),
            },
            path,
        )

    def load(self, path: str | Path) -> ParameterSaliency:
        """Load statistics saved by :meth:`save` (``torch.load(weights_only=True)``), validated before use.

        .. math:: \\mu, \\sigma \\in \\mathbb{R}^F \\text{ finite}, \\quad \\sigma > 0, \\quad
            F = \\sum_\\ell O_\\ell \\text{ of the analysed layers}

        Every problem raises a ``ValueError`` that names the file: unreadable or empty file, missing keys, layer
        names or sizes that differ from this model's analysed layers (names the model does not have are listed),
        ``mean``/``std`` of the wrong shape or dtype, non-finite values, ``std <= 0`` or ``count < 2``. Nothing is
        changed on ``self`` unless everything is valid.

        Args:
            path: a file written by :meth:`save`.

        Returns:
            ``self``.

        Examples:
            >>> import tempfile, os
            >>> from captum_wsam.models import SmallCNN
            >>> path = os.path.join(tempfile.mkdtemp(), "bad.pt")
            >>> torch.save({"format": 1, "mean": torch.ones(3)}, path)
            >>> ParameterSaliency(SmallCNN(width=4, depth=2)).load(path)  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: ParameterSaliency statistics in '...bad.pt' lack the keys ['count', 'layers', 'sizes', 'std']
        """
        known = [name for name, _ in self.model.named_modules()]
        self.mean, self.std, self.count = read_statistics(path, self.layer_sizes, known)
        return self

    def top_filters(
        self, inputs: Tensor, target: TargetType = None, k: int = 10, additional_forward_args: Any = None
    ) -> list[list[tuple[str, int, float]]]:
        """The ``k`` most salient filters of each sample, most salient first.

        .. math:: \\operatorname{top}_k \\; \\hat s(x_b, y_b)

        Returns:
            Per sample, ``k`` triples ``(layer name, filter index, score)``.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> top = saliency.top_filters(torch.rand(2, 3, 32, 32), target=0, k=3)
            >>> len(top), len(top[0]), top[0][0][0] in saliency.layers
            (2, 3, True)
        """
        check_positive_int(k, "k")
        if k > self.num_filters:
            raise ValueError(f"k must be at most the number of filters ({self.num_filters}), got {k}")
        result = self.attribute_detailed(inputs, target, additional_forward_args)
        values, indices = result.flat.topk(k, dim=1)
        index = result.filter_index
        return [
            [(*index[j], float(v)) for v, j in zip(row_values.tolist(), row_indices.tolist())]
            for row_values, row_indices in zip(values, indices)
        ]

    def input_saliency(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        k: int = 10,
        boost: float = 100.0,
        additional_forward_args: Any = None,
    ) -> Tensor | tuple[Tensor, ...]:
        """Input-space saliency: pixels that drive the most salient filters (double backpropagation).

        .. math:: M(x) = \\nabla_x \\cos\\big(\\hat s(x, y), \\, s'\\big), \\qquad s' = \\hat s(x, y) \\text{ with
            its top-}k \\text{ entries} \\times \\text{boost, detached}

        Levin et al. display :math:`|M|`: pass the result to
        ``captum.attr.visualization.visualize_image_attr(..., sign="absolute_value")``.

        Args:
            inputs: batch :math:`(B, C, H, W)`.
            target: as in :meth:`attribute`.
            k: filters boosted per sample.
            boost: boost factor.
            additional_forward_args: extra positional arguments of the model.

        Returns:
            Same shape and dtype as ``inputs`` (a tuple for a tuple of inputs): an input attribution, usable with
            ``captum.metrics.infidelity``.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> saliency.input_saliency(torch.rand(2, 3, 32, 32), target=0, k=3).shape
            torch.Size([2, 3, 32, 32])
        """
        tensors = self._check_inputs(inputs)
        check_positive_int(k, "k")
        if k > self.num_filters:
            raise ValueError(f"k must be at most the number of filters ({self.num_filters}), got {k}")
        check_in_range(boost, "boost", 0.0, None, low_inclusive=False)
        self._check_fitted(self.mode)
        with self._guarded(*tensors):
            xs, raw, *_ = self._pass(tensors, target, additional_forward_args, create_graph=True)
            grads = input_space_saliency(self._scores(raw, self.mode), xs, k, float(boost))
        out = tuple(g.detach().to(t.dtype) for g, t in zip(grads, tensors))
        return out if isinstance(inputs, tuple) else out[0]

    def prune_top_filters(
        self,
        inputs: Tensor,
        target: TargetType,
        k: int,
        trials: int = 5,
        seed: int = 0,
        additional_forward_args: Any = None,
    ) -> PruningResult:
        """Levin et al.'s check: zero each misclassified sample's ``k`` most salient filters on a copy of the model.

        .. math:: \\#\\{b : f_{\\theta \\odot m_b}(x_b) = y_b, \\; f_\\theta(x_b) \\ne y_b\\}, \\qquad
            m_b = 0 \\text{ on } \\operatorname{top}_k \\hat s(x_b, y_b), \\; 1 \\text{ elsewhere}

        compared with the same count for ``k`` filters drawn uniformly at random per sample (``trials`` seeded
        draws). The copy runs in eval mode; the user's model is not modified.

        Args:
            inputs: batch :math:`(B, C, H, W)`.
            target: true class per sample (required).
            k: filters zeroed per sample.
            trials: random draws to compare with.
            seed: seed of the random draws.
            additional_forward_args: extra positional arguments of the model.

        Returns:
            :class:`PruningResult`.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> report = saliency.prune_top_filters(torch.rand(4, 3, 32, 32), torch.tensor([0, 1, 2, 3]), k=2)
            >>> report.fixed_salient <= report.num_misclassified, len(report.fixed_random)
            (True, 5)
        """
        check_type(inputs, "inputs", Tensor)
        if target is None:
            raise ValueError("target must hold the true classes for prune_top_filters, got None")
        check_positive_int(k, "k")
        if k > self.num_filters:
            raise ValueError(f"k must be at most the number of filters ({self.num_filters}), got {k}")
        check_positive_int(trials, "trials")
        check_positive_int(seed, "seed", allow_zero=True)
        result = self.attribute_detailed(inputs, target, additional_forward_args)
        wrong = (~result.correct).nonzero().flatten()
        scores, labels = result.flat[wrong], result.target[wrong]
        samples = inputs.detach()[wrong.to(inputs.device)]
        args = forward_args(additional_forward_args)
        args = tuple(a[wrong.to(a.device)] if isinstance(a, Tensor) and a.shape[:1] == inputs.shape[:1] else a
                     for a in args)
        if not len(wrong):
            return PruningResult(k, wrong, 0, [0] * trials, labels, seed)

        with exclusive(self.model):  # no other thread's hooks or modes are copied along
            replica = copy.deepcopy(self.model).eval()
        salient, fixed_random = pruned_predictions(replica, self.layer_sizes, scores, samples, args, k, trials, seed)
        return PruningResult(k, wrong, int((salient == labels).sum()),
                             [int((p == labels).sum()) for p in fixed_random], salient, seed)

    def plot_profile(self, result: ParameterSaliencyResult, correct: Tensor | None = None, **kwargs: Any) -> Any:
        """Figure of the filter-wise profiles of correct vs incorrect samples; see :func:`plot_profile`."""
        return plot_profile(result, correct, **kwargs)


__all__ = ["ParameterSaliency", "ParameterSaliencyResult", "PruningResult", "cross_entropy_per_sample", "plot_profile"]
