"""Parameter-space saliency as a Captum attribution: per-sample filter-wise gradient magnitudes and their reference
statistics.

Levin, Shu, Borgnia, Huang, Goldblum & Goldstein, 2021, "Where do models go wrong? Parameter-space saliency maps for
explainability", arXiv:2108.01335 (NeurIPS 2022).

.. math:: \\hat s(x, y)_k = \\frac{\\frac{1}{|\\mathcal{F}_k|} \\sum_{i \\in \\mathcal{F}_k}
    |\\partial \\mathcal{L}(x, y) / \\partial \\theta_i| - \\mu_k}{\\sigma_k}

with :math:`\\mu_k, \\sigma_k` the mean and standard deviation over a reference set.

:class:`ParameterSaliencyAttribution` holds the batched pass (every conv layer's input and output gradient captured
in one forward and backward), Captum's ``attribute``, and the reference statistics (:meth:`fit`, :meth:`save`,
:meth:`load`). The analyses Levin et al. build on the scores (top filters, input-space saliency, the pruning check)
are in :class:`captum_wsam.attr.parameter_saliency.ParameterSaliency`, the class to use.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import torch
import torch.nn.functional as F
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import check_choice, check_finite, check_grad_allowed, check_tensor, check_type
from .._state import eval_mode, kept_buffers, untouched
from .._typing import LossFunc, TargetType
from ..data.batches import renamed_data_argument, split_batch
from .parameter_saliency_functional import MODES, normalize_saliency, welford_merge, welford_std
from .parameter_saliency_pass import batched_filter_saliency, resolve_conv_layers
from .parameter_saliency_results import STATS_FORMAT, ParameterSaliencyResult, read_statistics


def cross_entropy_per_sample(logits: Tensor, target: Tensor) -> Tensor:
    """Default loss: cross-entropy per sample, :math:`-\\log \\operatorname{softmax}(z)_y`, shape :math:`(B,)`."""
    return F.cross_entropy(logits, target, reduction="none")


class ParameterSaliencyAttribution(GradientAttribution):
    """The Captum-attribution part of :class:`~captum_wsam.attr.parameter_saliency.ParameterSaliency` (Levin et al.
    2021): the batched pass, ``attribute``/``attribute_detailed`` and the reference statistics
    (``fit``/``save``/``load``).

    .. math:: \\hat s(x, y)_k = \\Big(\\operatorname{mean}_{i \\in \\mathcal{F}_k}
        \\big|\\partial \\mathcal{L}(f_\\theta(x), y) / \\partial \\theta_i\\big| - \\mu_k\\Big) / \\sigma_k

    Args:
        model: classifier returning logits :math:`(B, K)`.
        loss_fn: ``loss_fn(logits, target)`` returning one loss per sample :math:`(B,)`; default cross-entropy.
        layers: conv layers to analyse (modules or their names in ``model``); default every ``nn.Conv2d``.
        mode: ``"standardized"``, ``"norm"`` or ``"raw"`` (see :class:`ParameterSaliency`).

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> ParameterSaliencyAttribution(SmallCNN(width=4, depth=2), mode="raw").num_filters
        12
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
            >>> from captum_wsam.attr import ParameterSaliency
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
            >>> from captum_wsam.attr import ParameterSaliency
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

    @renamed_data_argument("loader")
    def fit(self, data: Iterable[Any], progress: bool = True) -> Self:
        """Reference mean and standard deviation of the raw filter-wise saliency, streamed over ``data``.

        .. math:: \\mu_k = \\frac{1}{N} \\sum_n \\bar s(x_n, y_n)_k, \\qquad
            \\sigma_k = \\sqrt{\\tfrac{1}{N-1} \\sum_n (\\bar s(x_n, y_n)_k - \\mu_k)^2} \\quad (\\sigma_k \\le
            10^{-14} \\to 1)

        Batches are merged with Welford/Chan updates in float64 (one pass, constant memory). Levin et al. use the
        true labels of a validation set, so each batch's labels are the targets.

        Args:
            data: iterable of ``(images, labels[, info])`` batches (e.g. a ``DataLoader`` of ShapesTextures); the
                old name ``loader=`` still works with a ``DeprecationWarning``.
            progress: show a tqdm bar.

        Returns:
            ``self`` (``mean``, ``std`` and ``count`` set).

        Examples:
            >>> from torch.utils.data import DataLoader
            >>> from captum_wsam.data import ShapesTextures
            >>> from captum_wsam.attr import ParameterSaliency
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2))
            >>> saliency.fit(DataLoader(ShapesTextures(n=8, size=32), batch_size=4), progress=False).count
            8
            >>> saliency.attribute(torch.rand(2, 3, 32, 32), target=0).shape
            torch.Size([2, 12])
        """
        if not isinstance(data, Iterable):
            raise TypeError(f"data must be an iterable of (images, labels) batches, got {type(data).__name__}")
        check_type(progress, "progress", bool)
        count, mean, m2 = 0, None, None
        for batch in tqdm(data, desc="ParameterSaliency.fit", disable=not progress, leave=False):
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
            raise ValueError(f"data must yield at least 2 samples to estimate a standard deviation, got {count}")
        self.count, self.mean, self.std = count, mean, welford_std(count, m2)
        return self

    def save(self, path: str | Path) -> None:
        """Save the reference statistics (``mean``, ``std``, ``count``, layer names and sizes) with ``torch.save``.

        Examples:
            >>> import tempfile, os
            >>> from captum_wsam.attr import ParameterSaliency
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

    def load(self, path: str | Path) -> Self:
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
            >>> from captum_wsam.attr import ParameterSaliency
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


__all__ = ["ParameterSaliencyAttribution", "cross_entropy_per_sample"]
