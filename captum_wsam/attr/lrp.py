r"""LRP as rule objects configuring one engine (zennit's design), as Captum attributions: :class:`LRP` and
:class:`LayerLRP`; and :func:`plot_relevance`.

Paper: S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller, W. Samek (2015), "On Pixel-Wise Explanations
for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7): e0130140,
DOI 10.1371/journal.pone.0130140; composites as in C. J. Anders et al. (2021), "Software for Dataset-wide XAI",
arXiv:2106.13200. Relevance starts at the target logit, :math:`R = f_c(x)`, and each Conv/Linear layer applies its
rule

.. math::

    R_j = \sum_k \frac{a_j \rho(w_{jk})}{\epsilon + \sum_{j'} a_{j'} \rho(w_{j'k})} R_k ,

in **one** forward and **one** backward pass (:mod:`captum_wsam.attr.lrp_engine`; rules in
:mod:`captum_wsam.attr.lrp_rules`, composites in :mod:`captum_wsam.attr.lrp_composites`). The older αβ attribution
:class:`LRPAlphaBeta` (:mod:`captum_wsam.attr.lrp_alpha_beta`), its :class:`AlphaBetaRule`, ``FIRST_LAYER_RULES``,
``SUPPORTED_TYPES`` and ``unsupported_layers`` are re-exported here (their former home).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .._checks import (
    check_grad_allowed,
    check_images,
    check_submodule,
    check_target,
    check_type,
)
from .._compat import _format_additional_forward_args, _select_targets
from .._state import hook_handles
from .._typing import TargetType
from .lrp_alpha_beta import LRPAlphaBeta, _single_input, convergence_delta, unsupported_layers
from .lrp_alpha_beta_propagation import FIRST_LAYER_RULES, SUPPORTED_TYPES, AlphaBetaRule
from .lrp_alpha_beta_propagation import MAX_POOL_RULES as MAX_POOL_RULES
from .lrp_alpha_beta_propagation import MAX_POOL_TYPES as MAX_POOL_TYPES
from .lrp_alpha_beta_propagation import PASS_THROUGH_TYPES as PASS_THROUGH_TYPES
from .lrp_canonizers import (
    shared_eval_mode,
)
from .lrp_composites import Composite, EpsilonPlus
from .lrp_engine import Propagation, model_logits, unsupported_modules
from .lrp_rules import (
    ZBox,
)


def _check_in_box(inputs: Tensor, box: ZBox) -> None:
    """Raise unless ``inputs`` (in pixel space after undoing the box's normalization) lie in ``[low, high]``."""
    pixels = inputs
    if box.normalization is not None:
        mean, std = (torch.as_tensor(part, dtype=inputs.dtype, device=inputs.device).reshape(
            1, -1, *([1] * (inputs.dim() - 2))) for part in box.normalization)
        pixels = inputs * std + mean
    low = torch.as_tensor(box.low, dtype=inputs.dtype, device=inputs.device)
    high = torch.as_tensor(box.high, dtype=inputs.dtype, device=inputs.device)
    try:
        torch.broadcast_shapes(low.shape, inputs.shape)
        torch.broadcast_shapes(high.shape, inputs.shape)
    except RuntimeError as error:
        raise ValueError(f"the ZBox bounds of shapes {tuple(low.shape)} and {tuple(high.shape)} do not broadcast to "
                         f"the inputs of shape {tuple(inputs.shape)}") from error
    tol = 1e-5
    if bool((pixels < low - tol).any()) or bool((pixels > high + tol).any()):
        hint = "" if box.normalization is not None else " (normalized inputs? ZBox(..., normalization=(mean, std)))"
        raise ValueError(f"inputs must lie in the ZBox bounds [low, high], got pixel values in "
                         f"[{pixels.min().item():.4g}, {pixels.max().item():.4g}]{hint}")


def _raise_if_no_rule(model: nn.Module) -> None:
    found = unsupported_modules(model)
    if found:
        path, module = found[0]
        raise TypeError(f"LRP has no rule for module {path or '<root>'!r} ({type(module).__name__}); see "
                        "captum_wsam.attr.lrp_engine for the supported modules")


class LRP(GradientAttribution):
    r"""Layer-wise relevance propagation with any composite of rules (zennit's design), as a Captum
    ``GradientAttribution`` with the ``attribute()`` conventions of :class:`LRPAlphaBeta`.

    Paper: S. Bach et al. (2015), "On Pixel-Wise Explanations for Non-Linear Classifier Decisions by Layer-Wise
    Relevance Propagation", PLoS ONE 10(7): e0130140; G. Montavon et al. (2019), "Layer-Wise Relevance Propagation:
    An Overview", LNCS 11700; transformers after A. Ali et al. (2022), arXiv:2202.07304.

    .. math:: R_{\text{output}} = f_c(x), \qquad R_j = \sum_k \frac{a_j \rho(w_{jk})}{\epsilon + \sum_{j'} a_{j'}
              \rho(w_{j'k})} R_k \text{ (per the layer's rule)}, \qquad \sum_i R_i \approx f_c(x)

    One forward and one backward pass (:mod:`captum_wsam.attr.lrp_engine`): Conv/Linear run their rule, BatchNorms
    are folded into the layer before them (or treated as affine layers), element-wise activations pass relevance
    unchanged, LayerNorm and attention propagate conservatively. Every torchvision classification model is covered;
    a module the engine cannot handle raises a ``TypeError`` naming it. The model is left exactly as found, also
    when several threads use it at once.

    Args:
        model: the classifier; may return a tensor, a mapping with ``"logits"`` or an object with ``.logits``.
        composite: the rules (default ``EpsilonPlus(first_layer=ZBox(0.0, 1.0))``).
        canonize: fold BatchNorms into the Conv/Linear they follow.

    Examples:
        >>> import torchvision
        >>> model = torchvision.models.mobilenet_v3_small(num_classes=4).eval()
        >>> from captum_wsam.attr import EpsilonPlus, ZBox
        >>> lrp = LRP(model, composite=EpsilonPlus(first_layer=ZBox(0.0, 1.0)))
        >>> relevance, delta = lrp.attribute(torch.rand(2, 3, 32, 32), target=1, return_convergence_delta=True)
        >>> relevance.shape, delta.shape
        (torch.Size([2, 3, 32, 32]), torch.Size([2]))
    """

    def __init__(self, model: nn.Module, composite: Composite | None = None, *, canonize: bool = True) -> None:
        check_type(model, "model", nn.Module)
        if composite is None:
            composite = EpsilonPlus(first_layer=ZBox(0.0, 1.0))
        check_type(composite, "composite", Composite)
        check_type(canonize, "canonize", bool)
        composite.check_names(model)
        _raise_if_no_rule(model)
        super().__init__(model)
        self.model, self.composite, self.canonize = model, composite, canonize

    @property
    def multiplies_by_inputs(self) -> bool:
        """``True``: relevance is a decomposition of the output, i.e. already "multiplied by the inputs"."""
        return True

    def has_convergence_delta(self) -> bool:
        """``True``: :meth:`compute_convergence_delta` measures how much relevance was absorbed or created."""
        return True

    def _run(self, inputs: Tensor, target: TargetType, additional_forward_args: Any, capture: nn.Module | None = None,
             capture_input: bool = False) -> tuple[Tensor, Tensor, Any]:
        """``(gradient at the input or captured tensor, selected outputs, propagation)`` of one pass."""
        check_grad_allowed(type(self).__name__)
        if isinstance(self.composite.first_layer, ZBox):
            _check_in_box(inputs, self.composite.first_layer)
        _raise_if_no_rule(self.model)  # again: the model may have changed since the constructor
        extra = _format_additional_forward_args(additional_forward_args) or ()
        with shared_eval_mode(self.model), hook_handles() as handles, torch.enable_grad():
            leaf = (inputs.clone() if inputs.is_inference() else inputs).detach().requires_grad_(True)
            run = Propagation(self.model, self.composite, leaf, self.canonize, capture, capture_input)
            run.patch(handles)
            output = model_logits(self.model(leaf, *extra))
            if output.dim() == 2:
                check_target(target, output.shape[1], output.shape[0])
            selected = _select_targets(output, target).reshape(len(output), -1).sum(1)
            if run.first is None:
                raise ValueError("the model ran no Conv/Linear layer: LRP has nothing to propagate through")
            if capture is None:
                sources = [leaf]
            else:
                tensors = run.captured if isinstance(run.captured, tuple) else (run.captured,)
                sources = [t for t in tensors if isinstance(t, Tensor) and t.requires_grad]
                if run.captured is None or not sources:
                    raise ValueError("the layer was not called with a tensor on the path to the output (a layer "
                                     "inside an attention or Squeeze-Excitation block is handled as part of it)")
            grads = torch.autograd.grad(selected, sources, torch.ones_like(selected), allow_unused=True)
        relevance = tuple(run.relevance_of(t, torch.zeros_like(t) if g is None else g)
                          for t, g in zip(sources, grads))
        return relevance, selected.detach(), run

    @log_usage(part_of_slo=True)
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_convergence_delta: bool = False,
    ) -> Tensor | tuple[Tensor] | tuple[Tensor | tuple[Tensor], Tensor]:
        r"""Relevance of every input element for the ``target`` output, by one forward and one backward pass.

        .. math:: R_{\text{output}} = f_c(x) \;\longrightarrow\; R_i = \text{LRP}(x)_i

        Works under the caller's ``torch.no_grad()`` (gradients are turned on for its own pass), inside Captum's
        ``NoiseTunnel`` and ``captum.metrics.sensitivity_max``.

        Args:
            inputs: a batch :math:`(B, \dots)` (or a 1-tuple holding it), floating point and finite; within the
                first layer's ``ZBox`` bounds when it has one.
            target: Captum's target (an int, one index per sample, or ``None`` for a one-output model).
            additional_forward_args: further arguments of the model's ``forward``, after the inputs.
            return_convergence_delta: also return :math:`\sum_i R_i - f_c(x)` per sample.

        Returns:
            The relevance, shape and dtype of ``inputs`` (a 1-tuple when ``inputs`` was one), and with
            ``return_convergence_delta`` the delta, shape :math:`(B,)`.

        Raises:
            TypeError: a module without a rule (the message names its path) or a badly typed argument.
            ValueError: bad or non-finite inputs, inputs outside the box, a bad target.
            RuntimeError: called under ``torch.inference_mode()``.

        Examples:
            >>> _ = torch.manual_seed(0)
            >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 8, bias=False), nn.GELU(),
            ...                       nn.Linear(8, 3, bias=False))
            >>> from captum_wsam.attr import Composite, Epsilon
            >>> lrp = LRP(model, composite=Composite([(nn.Linear, Epsilon(0.0))]))
            >>> relevance, delta = lrp.attribute(torch.rand(4, 3, 2, 2), target=0, return_convergence_delta=True)
            >>> relevance.shape, bool(delta.abs().max() < 1e-5)
            (torch.Size([4, 3, 2, 2]), True)
        """
        inputs, is_tuple = _single_input(inputs)
        check_type(return_convergence_delta, "return_convergence_delta", bool)
        (relevance,), selected, _ = self._run(inputs, target, additional_forward_args)
        relevance = relevance.detach()
        result: Tensor | tuple[Tensor] = (relevance,) if is_tuple else relevance
        if return_convergence_delta:
            return result, self.compute_convergence_delta(relevance, selected)
        return result

    def compute_convergence_delta(self, attributions: Tensor | tuple[Tensor, ...], output: Tensor) -> Tensor:
        r"""How much relevance was absorbed (biases) or created: :math:`\sum_i R_i - f_c(x)` per sample.

        Args:
            attributions: relevance from :meth:`attribute`, shape :math:`(B, \dots)` (or a tuple of such).
            output: the target outputs :math:`f_c(x)`, shape :math:`(B,)` or :math:`(B, 1)`.

        Returns:
            The delta, shape :math:`(B,)`.

        Examples:
            >>> lrp = LRP(nn.Linear(3, 2, bias=False))
            >>> lrp.compute_convergence_delta(torch.ones(2, 3), torch.tensor([3.0, 2.5])).tolist()
            [0.0, 0.5]
        """
        return convergence_delta(attributions, output)


class LayerLRP(LRP, LayerAttribution):
    r"""Relevance at a layer's output (or input) by the rules of a composite, with Captum's ``LayerLRP``
    conventions.

    .. math:: R_t = t \odot \frac{\partial^{\text{LRP}} f_c}{\partial t} , \qquad \sum R_t \approx f_c(x)

    (Bach et al. 2015, PLoS ONE 10(7): e0130140.)

    Args:
        model: the classifier.
        layer: a module of ``model`` (not one inside an attention or Squeeze-Excitation block).
        composite: the rules (default ``EpsilonPlus(first_layer=ZBox(0.0, 1.0))``).
        canonize: fold BatchNorms into the Conv/Linear they follow.

    Examples:
        >>> import torchvision
        >>> model = torchvision.models.resnet18(num_classes=3).eval()
        >>> layer_lrp = LayerLRP(model, model.layer2)
        >>> relevance = layer_lrp.attribute(torch.rand(2, 3, 32, 32), target=0)
        >>> relevance.shape
        torch.Size([2, 128, 4, 4])
    """

    def __init__(self, model: nn.Module, layer: nn.Module, composite: Composite | None = None, *,
                 canonize: bool = True) -> None:
        LRP.__init__(self, model, composite, canonize=canonize)
        check_submodule(layer, model, "layer")
        LayerAttribution.__init__(self, model, layer)

    @log_usage(part_of_slo=True)
    def attribute(  # type: ignore[override]
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_convergence_delta: bool = False,
        attribute_to_layer_input: bool = False,
        verbose: bool = False,
    ) -> Tensor | tuple[Tensor, ...] | tuple[Tensor | tuple[Tensor, ...], Tensor]:
        r"""Relevance of the layer's output (or input) for the ``target`` output.

        .. math:: R_t = t \odot g_t

        Args:
            inputs: a batch :math:`(B, \dots)` (or a 1-tuple holding it).
            target: Captum's target.
            additional_forward_args: further arguments of the model's ``forward``.
            return_convergence_delta: also return :math:`\sum R_t - f_c(x)` per sample.
            attribute_to_layer_input: relevance of the layer's (first) input instead of its output.
            verbose: accepted for Captum compatibility (nothing is printed).

        Returns:
            The relevance, shape of the layer's output (a tuple when it returns several tensors), and with
            ``return_convergence_delta`` the delta, shape :math:`(B,)`.

        Examples:
            >>> model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
            >>> LayerLRP(model, model[1]).attribute(torch.rand(3, 4), target=1).shape
            torch.Size([3, 6])
        """
        inputs, _ = _single_input(inputs)
        check_type(return_convergence_delta, "return_convergence_delta", bool)
        check_type(attribute_to_layer_input, "attribute_to_layer_input", bool)
        relevance, selected, _ = self._run(inputs, target, additional_forward_args, self.layer,
                                           attribute_to_layer_input)
        relevance = tuple(r.detach() for r in relevance)
        result: Tensor | tuple[Tensor, ...] = relevance[0] if len(relevance) == 1 else relevance
        if return_convergence_delta:
            return result, self.compute_convergence_delta(relevance, selected)
        return result


def plot_relevance(
    images: Tensor,
    maps: Mapping[str, Tensor],
    *,
    predictions: list[str] | None = None,
) -> Any:
    r"""Images (first column) and one heatmap per method, summed over channels, blue < 0 < red.

    Each heatmap is scaled to its own largest magnitude, :math:`h / \max |h|`, on a symmetric colour scale.

    Args:
        images: :math:`(B, C, H, W)` images in [0, 1].
        maps: method name → relevance or attribution of the same shape (or :math:`(B, 1, H', W')` maps, resized).
        predictions: optional row titles (e.g. predicted classes).

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> fig = plot_relevance(torch.rand(2, 3, 8, 8), {"LRP": torch.randn(2, 3, 8, 8)})
        >>> len(fig.axes)
        4
    """
    import matplotlib.pyplot as plt

    check_images(images, "images")
    rows, cols = len(images), len(maps) + 1
    fig, axes = plt.subplots(rows, cols, figsize=(1.8 * cols, 1.8 * rows), squeeze=False)
    for row in range(rows):
        axes[row, 0].imshow(images[row].detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy())
        axes[row, 0].set_ylabel(predictions[row] if predictions else "", fontsize=8)
        for col, (name, values) in enumerate(maps.items(), start=1):
            heat = values[row : row + 1].detach().float().sum(1, keepdim=True)
            heat = nn.functional.interpolate(heat, size=images.shape[-2:], mode="bilinear")[0, 0]
            scale = heat.abs().max().clamp_min(1e-12)
            axes[row, col].imshow((heat / scale).cpu().numpy(), cmap="seismic", vmin=-1, vmax=1)
            if row == 0:
                axes[row, col].set_title(name, fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    return fig


__all__ = [
    "FIRST_LAYER_RULES",
    "LRP",
    "SUPPORTED_TYPES",
    "AlphaBetaRule",
    "LRPAlphaBeta",
    "LayerLRP",
    "plot_relevance",
    "unsupported_layers",
]
