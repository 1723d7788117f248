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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from captum.attr import Attribution
from torch import Tensor, nn
from torch.autograd.graph import get_gradient_edge
from tqdm.auto import tqdm

from .._checks import check_choice, check_in_range, check_positive_int, check_target, check_tensor, check_type
from .._state import eval_mode, hook_handles, untouched
from .._typing import LossFunc, TargetType
from ..train import split_batch
from .parameter_saliency_functional import (
    MODES,
    conv2d_filter_saliency,
    conv2d_per_sample_weight_grad,
    input_space_saliency,
    layer_slices,
    normalize_saliency,
    welford_merge,
    welford_std,
)

_STATS_FORMAT = 1


def cross_entropy_per_sample(logits: Tensor, target: Tensor) -> Tensor:
    """Default loss: cross-entropy per sample, :math:`-\\log \\operatorname{softmax}(z)_y`, shape :math:`(B,)`."""
    return F.cross_entropy(logits, target, reduction="none")


@dataclass(frozen=True)
class ParameterSaliencyResult:
    """Filter-wise parameter saliency of a batch.

    Attributes:
        flat: :math:`(B, F)` scores in ``mode`` (all layers' filters side by side, layer order of the model).
        raw: :math:`(B, F)` raw filter-wise saliency (mean of :math:`|\\nabla_W \\mathcal{L}|` over each filter).
        filter_index: ``F`` pairs ``(layer name, filter)``: column ``j`` of ``flat`` is filter
            ``filter_index[j][1]`` of layer ``filter_index[j][0]``.
        layer_sizes: filters per layer, in column order.
        mode: ``"standardized"``, ``"norm"`` or ``"raw"``.
        target: :math:`(B,)` classes the loss was taken for.
        prediction: :math:`(B,)` predicted classes (argmax of the logits).
        loss: :math:`(B,)` per-sample loss.
        parameters: with ``parameter_wise=True``, per layer the per-sample :math:`|\\nabla_W \\mathcal{L}|` of shape
            :math:`(B, O, C/G, k_h, k_w)`; else ``None``.
    """

    flat: Tensor
    raw: Tensor
    filter_index: list[tuple[str, int]]
    layer_sizes: dict[str, int]
    mode: str
    target: Tensor
    prediction: Tensor
    loss: Tensor
    parameters: dict[str, Tensor] | None = field(default=None, repr=False)

    @property
    def profiles(self) -> dict[str, Tensor]:
        """Per layer, the :math:`(B, O_\\ell)` scores (views of :attr:`flat`)."""
        slices = layer_slices(list(self.layer_sizes.values()))
        return {name: self.flat[:, part] for name, part in zip(self.layer_sizes, slices)}

    @property
    def correct(self) -> Tensor:
        """Bool :math:`(B,)`: the prediction equals the target."""
        return self.prediction == self.target

    def layer_means(self) -> Tensor:
        """:math:`(B, \\text{layers})` mean score of each layer (the layer-wise profile)."""
        return torch.stack([part.mean(1) for part in self.profiles.values()], dim=1)


@dataclass(frozen=True)
class PruningResult:
    """Outcome of :meth:`ParameterSaliency.prune_top_filters` (Levin et al.'s check of the salient filters).

    Attributes:
        k: filters zeroed per sample.
        misclassified: indices (into the batch) of the samples that were misclassified.
        fixed_salient: how many of them become correct when their own top-``k`` filters are zeroed.
        fixed_random: per random trial, how many become correct when ``k`` random filters are zeroed.
        salient_prediction: predictions of the misclassified samples after zeroing their top-``k`` filters.
        seed: seed of the random filter draws.
    """

    k: int
    misclassified: Tensor
    fixed_salient: int
    fixed_random: list[int]
    salient_prediction: Tensor
    seed: int

    @property
    def num_misclassified(self) -> int:
        """Number of misclassified samples."""
        return int(self.misclassified.numel())

    @property
    def fixed_random_mean(self) -> float:
        """Mean over trials of :attr:`fixed_random`."""
        return sum(self.fixed_random) / max(1, len(self.fixed_random))


@contextmanager
def _zeroed_filters(layers: dict[str, nn.Conv2d], masks: dict[str, Tensor]) -> Iterator[None]:
    """Make each conv of ``layers`` behave, for sample ``b``, as if the filters where ``masks[name][b]`` is True had
    zero weights (the output channel then only holds the bias)."""
    def make_hook(mask: Tensor) -> Callable[..., Tensor]:
        def hook(module: nn.Conv2d, _: Any, output: Tensor) -> Tensor:
            keep = (~mask).to(output.dtype)[:, :, None, None]
            if module.bias is None:
                return output * keep
            return output * keep + module.bias[None, :, None, None] * (1 - keep)
        return hook

    with hook_handles() as handles:
        for name, layer in layers.items():
            handles.append(layer.register_forward_hook(make_hook(masks[name])))
        yield


class ParameterSaliency(Attribution):
    """Parameter-space saliency maps (Levin et al. 2021) of the conv filters of a classifier.

    .. math:: \\hat s(x, y)_k = \\Big(\\operatorname{mean}_{i \\in \\mathcal{F}_k}
        \\big|\\partial \\mathcal{L}(f_\\theta(x), y) / \\partial \\theta_i\\big| - \\mu_k\\Big) / \\sigma_k

    Per-sample gradients come from one batched forward and backward: hooks capture each conv layer's input and the
    gradient of the summed per-sample losses w.r.t. its output, and per-sample weight gradients follow by batched
    contraction (:func:`~captum_wsam.attr.parameter_saliency_functional.conv2d_filter_saliency`). The pass runs with
    every module in eval mode (BatchNorm on running statistics, so samples do not interact); the model's modes,
    buffers, ``requires_grad`` and ``.grad`` are left exactly as found.

    Args:
        model: classifier returning logits :math:`(B, K)`.
        loss_fn: ``loss_fn(logits, target)`` returning one loss per sample :math:`(B,)`; default cross-entropy.
        layers: conv layers to analyse (modules or their names in ``model``); default every ``nn.Conv2d``.
        mode: ``"standardized"`` (needs :meth:`fit` or :meth:`load`), ``"norm"`` (:math:`\\bar s / \\mu`, idem)
            or ``"raw"``.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
        >>> result = saliency.attribute(torch.rand(3, 3, 32, 32), target=torch.tensor([0, 1, 2]))
        >>> result.flat.shape, {name: p.shape[1] for name, p in result.profiles.items()}
        (torch.Size([3, 12]), {'block1.conv': 4, 'block2.conv': 8})
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
        super().__init__(model)
        self.model = model
        self.loss_fn: LossFunc = cross_entropy_per_sample if loss_fn is None else loss_fn
        self.mode = mode
        self.layers = self._resolve_layers(model, layers)
        self.count = 0
        self.mean: Tensor | None = None
        self.std: Tensor | None = None

    @staticmethod
    def _resolve_layers(
        model: nn.Module, layers: Sequence[nn.Module | str] | nn.Module | str | None
    ) -> dict[str, nn.Conv2d]:
        named = list(model.named_modules())
        if layers is None:
            found = {name: m for name, m in named if isinstance(m, nn.Conv2d)}
            if not found:
                raise ValueError(
                    f"model ({type(model).__name__}) has no nn.Conv2d layer: parameter saliency is defined per conv "
                    "filter; pass layers=[...] with conv layers"
                )
            return found
        requested = [layers] if isinstance(layers, (nn.Module, str)) else list(layers)
        if not requested:
            raise ValueError("layers must name at least one nn.Conv2d layer, got an empty sequence")
        by_name = dict(named)
        resolved: dict[str, nn.Conv2d] = {}
        for layer in requested:
            if isinstance(layer, str):
                if layer not in by_name:
                    raise ValueError(f"layers: model has no submodule named {layer!r}")
                name, module = layer, by_name[layer]
            else:
                check_type(layer, "layers", nn.Module)
                name = next((n for n, m in named if m is layer), None)
                if name is None:
                    raise ValueError(f"layers must be submodules of the model, got {type(layer).__name__} not in it")
                module = layer
            if not isinstance(module, nn.Conv2d):
                raise TypeError(f"layers must be nn.Conv2d layers, got {name!r}: {type(module).__name__}")
            resolved[name] = module
        order = {name: i for i, (name, _) in enumerate(named)}
        return dict(sorted(resolved.items(), key=lambda item: order[item[0]]))

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

    @staticmethod
    def _forward_args(additional_forward_args: Any) -> tuple:
        if additional_forward_args is None:
            return ()
        return tuple(additional_forward_args) if isinstance(additional_forward_args, tuple) else (
            additional_forward_args,)

    @staticmethod
    def _target_vector(target: TargetType, logits: Tensor) -> Tensor:
        batch = logits.shape[0]
        if target is None:
            return logits.detach().argmax(1)
        if isinstance(target, (list, tuple)) and not all(isinstance(t, int) for t in target):
            raise TypeError("target must be an int, a sequence of ints or a 1-D tensor of class indices; "
                            f"got {target!r} (tuples for multi-dimensional outputs are not supported)")
        check_target(target, logits.shape[1], batch)
        values = torch.as_tensor(target, device=logits.device).long().reshape(-1)
        return values.expand(batch) if values.numel() == 1 else values

    def _pass(
        self,
        inputs: Tensor,
        target: TargetType,
        additional_forward_args: Any,
        create_graph: bool = False,
        parameter_wise: bool = False,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor, dict[str, Tensor] | None]:
        """One batched forward/backward; returns ``(x, raw (B, F), target, prediction, loss, parameters)``.

        Must run inside :meth:`_guarded` (eval mode, hooks removed, model restored).
        """
        x = inputs.detach().requires_grad_(True)
        captured: dict[str, list[tuple[Tensor, Any]]] = {name: [] for name in self.layers}

        def make_hook(name: str) -> Callable[..., None]:
            def hook(_: nn.Module, args: tuple, output: Tensor) -> None:
                if not output.requires_grad:
                    raise RuntimeError(f"the output of layer {name!r} does not require grad (is it run under "
                                       "torch.no_grad() inside the model?)")
                layer_input = args[0] if create_graph else args[0].detach()
                captured[name].append((layer_input, get_gradient_edge(output)))
            return hook

        with hook_handles() as handles:
            for name, layer in self.layers.items():
                handles.append(layer.register_forward_hook(make_hook(name)))
            logits = self.model(x, *self._forward_args(additional_forward_args))
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[0] != x.shape[0]:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"model must return logits of shape (B, K) with B={x.shape[0]}, got {shape}")
        target_vector = self._target_vector(target, logits)
        loss = self.loss_fn(logits, target_vector)
        if not isinstance(loss, Tensor) or loss.shape != (x.shape[0],):
            shape = tuple(loss.shape) if isinstance(loss, Tensor) else type(loss).__name__
            raise ValueError(f"loss_fn must return one loss per sample, shape ({x.shape[0]},), got {shape} "
                             "(use reduction='none')")
        calls = [(name, i) for name, items in captured.items() for i in range(len(items))]
        edges = [captured[name][i][1] for name, i in calls]
        grads = torch.autograd.grad(loss.sum(), edges, create_graph=create_graph, allow_unused=True) if edges else ()
        grad_of = dict(zip(calls, grads))

        saliency, parameters = [], {} if parameter_wise else None
        for name, layer in self.layers.items():
            settings = {"kernel_size": layer.kernel_size, "stride": layer.stride, "padding": layer.padding,
                        "dilation": layer.dilation, "groups": layer.groups, "padding_mode": layer.padding_mode}
            uses = [(a, grad_of[(name, i)]) for i, (a, _) in enumerate(captured[name])
                    if grad_of[(name, i)] is not None]
            if len(uses) == 1 and not parameter_wise:
                saliency.append(conv2d_filter_saliency(uses[0][0], uses[0][1], **settings))
                continue
            # Shared layers (several calls) or parameter-wise output: per-sample gradients summed over the calls.
            weight_grad = x.new_zeros(x.shape[0], *layer.weight.shape)
            for layer_input, grad_output in uses:
                weight_grad = weight_grad + conv2d_per_sample_weight_grad(layer_input, grad_output, **settings)
            magnitude = weight_grad.abs()
            saliency.append(magnitude.flatten(2).mean(-1))
            if parameters is not None:
                parameters[name] = magnitude if create_graph else magnitude.detach()
        raw = torch.cat(saliency, dim=1)
        prediction = logits.detach().argmax(1)
        return x, raw, target_vector, prediction, loss.detach(), parameters

    @contextmanager
    def _guarded(self, *tensors: Tensor) -> Iterator[None]:
        """Eval mode for the pass; modes, ``requires_grad`` and ``.grad`` restored on exit, even on error."""
        with untouched(self.model, *tensors), eval_mode(self.model):
            yield

    def _scores(self, raw: Tensor, mode: str) -> Tensor:
        return normalize_saliency(raw, mode, self.mean, self.std)

    @staticmethod
    def _check_inputs(inputs: Any) -> None:
        check_tensor(inputs, "inputs", floating=True)
        if inputs.dim() < 2:
            raise ValueError(f"inputs must be a batch with a leading batch dimension, got shape {tuple(inputs.shape)}")

    # ---------------------------------------------------------------------------------------------------- public API
    def attribute(
        self,
        inputs: Tensor,
        target: TargetType = None,
        additional_forward_args: Any = None,
        parameter_wise: bool = False,
    ) -> ParameterSaliencyResult:
        """Filter-wise parameter saliency of every sample (one batched forward and backward).

        .. math:: \\hat s(x_b, y_b)_k = \\big(\\operatorname{mean}_{i \\in \\mathcal{F}_k}
            |\\nabla_{\\theta_i} \\mathcal{L}(f(x_b), y_b)| - \\mu_k\\big) / \\sigma_k

        Args:
            inputs: batch :math:`(B, \\dots)` (e.g. images :math:`(B, C, H, W)`).
            target: class per sample for the loss (Captum convention: an int, a list or a 1-D tensor); ``None``
                takes the predicted class. Levin et al. use the true label.
            additional_forward_args: extra positional arguments of the model (Captum convention).
            parameter_wise: also return the per-sample :math:`|\\nabla_W \\mathcal{L}|` of every weight.

        Returns:
            :class:`ParameterSaliencyResult`; ``flat`` is :math:`(B, F)` and ``profiles[name]`` is :math:`(B, O)`.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> result = saliency.attribute(torch.rand(2, 3, 32, 32), target=1, parameter_wise=True)
            >>> result.raw.shape, result.parameters["block2.conv"].shape, bool((result.raw >= 0).all())
            (torch.Size([2, 12]), torch.Size([2, 8, 4, 3, 3]), True)
        """
        self._check_inputs(inputs)
        check_type(parameter_wise, "parameter_wise", bool)
        self._check_fitted(self.mode)
        with self._guarded(inputs):
            _, raw, target_vector, prediction, loss, parameters = self._pass(
                inputs, target, additional_forward_args, parameter_wise=parameter_wise
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
            >>> saliency.attribute(torch.rand(2, 3, 32, 32), target=0).flat.shape
            torch.Size([2, 12])
        """
        if not isinstance(loader, Iterable):
            raise TypeError(f"loader must be an iterable of (images, labels) batches, got {type(loader).__name__}")
        check_type(progress, "progress", bool)
        count, mean, m2 = 0, None, None
        for batch in tqdm(loader, desc="ParameterSaliency.fit", disable=not progress, leave=False):
            images, labels, _ = split_batch(batch)
            self._check_inputs(images)
            device = next(iter(self.layers.values())).weight.device
            images, labels = images.to(device), labels.to(device)
            with self._guarded(images):
                _, raw, *_ = self._pass(images, labels, None)
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
                "format": _STATS_FORMAT,
                "mean": self.mean.detach().cpu(),
                "std": self.std.detach().cpu(),
                "count": int(self.count),
                "layers": list(self.layer_sizes),
                "sizes": list(self.layer_sizes.values()),
            },
            path,
        )

    def load(self, path: str | Path) -> ParameterSaliency:
        """Load statistics saved by :meth:`save` (``torch.load(weights_only=True)``); layers must match.

        Returns:
            ``self``.
        """
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("format") != _STATS_FORMAT:
            raise ValueError(f"path {str(path)!r} does not hold ParameterSaliency statistics (format {_STATS_FORMAT})")
        if state["layers"] != list(self.layer_sizes) or state["sizes"] != list(self.layer_sizes.values()):
            raise ValueError(
                f"statistics in {str(path)!r} are for layers {list(zip(state['layers'], state['sizes']))}, this "
                f"ParameterSaliency analyses {list(self.layer_sizes.items())}"
            )
        self.mean, self.std, self.count = state["mean"], state["std"], int(state["count"])
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
        result = self.attribute(inputs, target, additional_forward_args)
        values, indices = result.flat.topk(k, dim=1)
        index = result.filter_index
        return [
            [(*index[j], float(v)) for v, j in zip(row_values.tolist(), row_indices.tolist())]
            for row_values, row_indices in zip(values, indices)
        ]

    def input_saliency(
        self,
        inputs: Tensor,
        target: TargetType = None,
        k: int = 10,
        boost: float = 100.0,
        additional_forward_args: Any = None,
    ) -> Tensor:
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
            Same shape and dtype as ``inputs``.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> saliency = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw")
            >>> saliency.input_saliency(torch.rand(2, 3, 32, 32), target=0, k=3).shape
            torch.Size([2, 3, 32, 32])
        """
        self._check_inputs(inputs)
        check_positive_int(k, "k")
        if k > self.num_filters:
            raise ValueError(f"k must be at most the number of filters ({self.num_filters}), got {k}")
        check_in_range(boost, "boost", 0.0, None, low_inclusive=False)
        self._check_fitted(self.mode)
        with self._guarded(inputs):
            x, raw, *_ = self._pass(inputs, target, additional_forward_args, create_graph=True)
            grad = input_space_saliency(self._scores(raw, self.mode), x, k, float(boost))
        return grad.detach().to(inputs.dtype)

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
        if target is None:
            raise ValueError("target must hold the true classes for prune_top_filters, got None")
        check_positive_int(k, "k")
        if k > self.num_filters:
            raise ValueError(f"k must be at most the number of filters ({self.num_filters}), got {k}")
        check_positive_int(trials, "trials")
        check_positive_int(seed, "seed", allow_zero=True)
        result = self.attribute(inputs, target, additional_forward_args)
        wrong = (~result.correct).nonzero().flatten()
        scores, labels = result.flat[wrong], result.target[wrong]
        samples = inputs.detach()[wrong.to(inputs.device)]
        args = self._forward_args(additional_forward_args)
        args = tuple(a[wrong.to(a.device)] if isinstance(a, Tensor) and a.shape[:1] == inputs.shape[:1] else a
                     for a in args)
        if not len(wrong):
            return PruningResult(k, wrong, 0, [0] * trials, labels, seed)

        replica = copy.deepcopy(self.model).eval()
        names = list(self.layers)
        replica_layers = {name: replica.get_submodule(name) for name in names}
        slices = dict(zip(names, layer_slices(list(self.layer_sizes.values()))))

        def predict(chosen: Tensor) -> Tensor:
            mask = torch.zeros_like(scores, dtype=torch.bool).scatter_(1, chosen, True)
            masks = {name: mask[:, part].to(samples.device) for name, part in slices.items()}
            with torch.no_grad(), _zeroed_filters(replica_layers, masks):
                return replica(samples, *args).argmax(1).to(labels.device)

        salient = predict(scores.topk(k, dim=1).indices)
        generator = torch.Generator().manual_seed(seed)
        fixed_random = []
        for _ in range(trials):
            chosen = torch.rand(scores.shape, generator=generator).argsort(dim=1)[:, :k].to(scores.device)
            fixed_random.append(int((predict(chosen) == labels).sum()))
        return PruningResult(k, wrong, int((salient == labels).sum()), fixed_random, salient, seed)

    def plot_profile(self, result: ParameterSaliencyResult, correct: Tensor | None = None, **kwargs: Any) -> Any:
        """Figure of the filter-wise profiles of correct vs incorrect samples; see :func:`plot_profile`."""
        return plot_profile(result, correct, **kwargs)


def plot_profile(
    result: ParameterSaliencyResult,
    correct: Tensor | None = None,
    figsize: tuple[float, float] = (12.0, 6.5),
    title: str | None = None,
) -> Any:
    """Filter-wise saliency profiles averaged over correct and over incorrect samples, side by side (Levin et al.,
    Fig. 2), and below them the layer-wise means of both groups.

    .. math:: \\bar{\\hat s}_k^{\\text{group}} = \\frac{1}{|\\text{group}|} \\sum_{b \\in \\text{group}}
        \\hat s(x_b, y_b)_k

    Args:
        result: output of :meth:`ParameterSaliency.attribute`.
        correct: bool :math:`(B,)` grouping; default ``result.correct``.
        figsize: matplotlib figure size.
        title: optional figure title.

    Returns:
        ``matplotlib.figure.Figure`` with three axes.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> result = ParameterSaliency(SmallCNN(width=4, depth=2), mode="raw").attribute(torch.rand(4, 3, 32, 32), 0)
        >>> len(plot_profile(result, torch.tensor([True, False, True, False])).axes)
        3
    """
    import matplotlib.pyplot as plt

    check_type(result, "result", ParameterSaliencyResult)
    groups = result.correct if correct is None else correct
    check_tensor(groups, "correct", ndim=1)
    if groups.dtype != torch.bool or groups.numel() != result.flat.shape[0]:
        raise ValueError(f"correct must be a bool tensor of shape ({result.flat.shape[0]},), got "
                         f"{groups.dtype} {tuple(groups.shape)}")
    groups = groups.to(result.flat.device)
    scores = result.flat.detach().float().cpu()
    groups = groups.cpu()
    names = list(result.layer_sizes)
    slices = layer_slices(list(result.layer_sizes.values()))
    figure = plt.figure(figsize=figsize, layout="constrained")
    grid = figure.add_gridspec(2, 2, height_ratios=(3, 2))
    top = [figure.add_subplot(grid[0, 0])]
    top.append(figure.add_subplot(grid[0, 1], sharey=top[0]))
    bottom = figure.add_subplot(grid[1, :])
    ylabel = {"standardized": "standardized saliency", "norm": "saliency / reference mean", "raw": "saliency"}
    layer_means = {}
    for axis, (label, members) in zip(top, (("correct", groups), ("incorrect", ~groups))):
        count = int(members.sum())
        for i, part in enumerate(slices):
            if i % 2:
                axis.axvspan(part.start - 0.5, part.stop - 0.5, color="0.92", lw=0)
        if count:
            profile = scores[members].mean(0)
            axis.plot(range(scores.shape[1]), profile.tolist(), lw=0.8, color="C0" if label == "correct" else "C3")
            layer_means[label] = torch.stack([profile[part].mean() for part in slices])
        else:
            axis.text(0.5, 0.5, f"no {label} samples", transform=axis.transAxes, ha="center")
        axis.set_title(f"{label} samples (n={count})")
        axis.set_xlabel("filter (layers shaded alternately, input → output)")
        axis.set_xlim(-0.5, scores.shape[1] - 0.5)
    top[0].set_ylabel(ylabel[result.mode])
    positions = list(range(len(names)))
    for offset, (label, color) in zip((-0.2, 0.2), (("correct", "C0"), ("incorrect", "C3"))):
        if label in layer_means:
            bottom.bar([p + offset for p in positions], layer_means[label].tolist(), width=0.4, color=color,
                       label=label)
    bottom.set_xticks(positions, names, rotation=30, ha="right", fontsize=8)
    bottom.set_ylabel(f"layer mean ({result.mode})")
    bottom.axhline(0, color="0.5", lw=0.5)
    bottom.legend()
    if title:
        figure.suptitle(title)
    return figure


__all__ = ["ParameterSaliency", "ParameterSaliencyResult", "PruningResult", "cross_entropy_per_sample", "plot_profile"]
