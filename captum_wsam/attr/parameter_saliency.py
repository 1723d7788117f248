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
the batched pass, Captum's ``attribute`` and the reference statistics (``fit``, ``save``, ``load``) are in
:mod:`captum_wsam.attr.parameter_saliency_attribution`; this module adds Levin et al.'s analyses on top of them.
"""

from __future__ import annotations

import copy
from typing import Any

from torch import Tensor

from .._checks import check_in_range, check_positive_int, check_type
from .._state import exclusive
from .._typing import TargetType
from .parameter_saliency_attribution import ParameterSaliencyAttribution, cross_entropy_per_sample
from .parameter_saliency_functional import input_space_saliency
from .parameter_saliency_pass import forward_args
from .parameter_saliency_pruning import pruned_predictions
from .parameter_saliency_results import ParameterSaliencyResult, PruningResult, plot_profile


class ParameterSaliency(ParameterSaliencyAttribution):
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
        >>> import torch
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


    def top_filters(
        self, inputs: Tensor, target: TargetType = None, k: int = 10, additional_forward_args: Any = None
    ) -> list[list[tuple[str, int, float]]]:
        """The ``k`` most salient filters of each sample, most salient first.

        .. math:: \\operatorname{top}_k \\; \\hat s(x_b, y_b)

        Returns:
            Per sample, ``k`` triples ``(layer name, filter index, score)``.

        Examples:
            >>> import torch
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
            >>> import torch
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
            >>> import torch
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
