r"""LRP αβ as a Captum attribution that works on real networks (VGG, ResNet, BatchNorm, in-place ReLU).

Paper: S. Bach, A. Binder, G. Montavon, F. Klauschen, K.-R. Müller, W. Samek (2015), "On Pixel-Wise Explanations
for Non-Linear Classifier Decisions by Layer-Wise Relevance Propagation", PLoS ONE 10(7): e0130140,
DOI 10.1371/journal.pone.0130140. Relevance starts at the target logit, :math:`R = f_c(x)`, and flows down layer by
layer with the αβ rule

.. math::

    R_j = \sum_k \Big( \alpha \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+}
          - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^-} \Big) R_k , \qquad \alpha - \beta = 1,

a special rule in the first layer (z^B, flat, w² or αβ), proportional redistribution in average pooling and residual
additions, winner-take-all (or proportional) max-pooling, and pass-through ReLU/Dropout/Flatten/Identity. The maths
lives in :mod:`captum_wsam.attr.lrp_relevance`, the per-call propagation in
:mod:`captum_wsam.attr.lrp_alpha_beta_propagation`, the canonization in :mod:`captum_wsam.attr.lrp_canonizers`; this
class validates, patches the model's layers for the length of one call and runs **one** forward and **one** backward
pass. Re-exported by :mod:`captum_wsam.attr.lrp` (its former home).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from captum.attr import GradientAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .._checks import (
    check_choice,
    check_finite,
    check_grad_allowed,
    check_normalization,
    check_number,
    check_target,
    check_tensor,
    check_type,
)
from .._compat import _format_additional_forward_args, _select_targets
from .._state import hook_handles
from .._typing import TargetType
from .lrp_alpha_beta_propagation import (
    FIRST_LAYER_RULES,
    MAX_POOL_RULES,
    SUPPORTED_TYPES,
    AlphaBetaRule,
    _Propagation,
)
from .lrp_canonizers import (
    normalization_of,
    shared_eval_mode,
)
from .lrp_engine import model_logits


def _check_bound(value: Any, name: str) -> None:
    if isinstance(value, Tensor):
        check_tensor(value, name, floating=True)
        if not torch.isfinite(value).all():
            raise ValueError(f"{name} must be finite, got {value}")
    else:
        check_number(value, name)


def unsupported_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Leaves of ``model`` that LRP αβ has no rule for (and ``MaxPool`` returning indices), as ``(path, module)``.

    Args:
        model: any module.

    Returns:
        The offending ``(path, module)`` pairs, in registration order (empty when the model is supported).

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 2))
        >>> [(path, type(m).__name__) for path, m in unsupported_layers(model)]
        [('1', 'Sigmoid')]
    """
    found = []
    for name, module in model.named_modules():
        if list(module.children()):
            if list(module.parameters(recurse=False)):
                found.append((name, module))
            continue
        supported = isinstance(module, SUPPORTED_TYPES) or normalization_of(module) is not None
        if not supported or getattr(module, "return_indices", False):
            found.append((name, module))
    return found


def convergence_delta(attributions: Tensor | tuple[Tensor, ...], output: Tensor) -> Tensor:
    r"""Relevance absorbed (biases) or created, per sample: :math:`\Delta = \sum_i R_i - f_c(x)`.

    Shared by :class:`LRPAlphaBeta`, :class:`~captum_wsam.attr.LRP` and :class:`~captum_wsam.attr.LayerLRP`.

    Args:
        attributions: relevance of shape :math:`(B, \dots)`, or a tuple of such.
        output: the target outputs :math:`f_c(x)`, shape :math:`(B,)` or :math:`(B, 1)`.

    Returns:
        :math:`(B,)`.

    Examples:
        >>> convergence_delta(torch.ones(2, 3), torch.tensor([3.0, 2.5])).tolist()
        [0.0, 0.5]
    """
    parts = attributions if isinstance(attributions, tuple) else (attributions,)
    total = sum(part.reshape(len(part), -1).sum(1) for part in parts)
    return total - output.reshape(len(parts[0]), -1).sum(1)


class LRPAlphaBeta(GradientAttribution):
    r"""Layer-wise relevance propagation with the αβ rule (Bach et al. 2015), as a Captum ``GradientAttribution``.

    .. math::

        R_j = \sum_k \Big( \alpha \frac{(a_j w_{jk})^+}{\sum_{j'} (a_{j'} w_{j'k})^+}
              - \beta \frac{(a_j w_{jk})^-}{\sum_{j'} (a_{j'} w_{j'k})^-} \Big) R_k ,
        \qquad R_{\text{output}} = f_c(x)

    Each call patches the model's layers (instance ``forward`` patches, removed in ``finally``) so that one forward
    and one backward pass compute the relevance: Conv/Linear carry αβ relevance as a modified gradient
    (:func:`~captum_wsam.attr.lrp_rules.alpha_beta_forward`), the first Conv/Linear applies ``first_layer``,
    BatchNorms are folded into the layer before them (``canonize``). Supported leaves: ``Conv1d/2d/3d``, ``Linear``,
    ``BatchNorm1d/2d/3d``, max/average pooling (adaptive too), ``ReLU``, ``Dropout``, ``Flatten``, ``Identity``;
    containers (``nn.Sequential``, torchvision ``BasicBlock``/``Bottleneck``…) may add, reshape and average tensors in
    their ``forward``: those linear operations redistribute relevance proportionally.

    Relevance is conserved (:math:`\sum_i R_i = f_c(x)`) when no layer has a bias and, for :math:`\beta > 0`,
    every neuron carrying relevance has both positive and negative contributions (a neuron without negative
    contributions passes on :math:`\alpha R_k`, as the rule is defined). Biases, folded BatchNorms included, absorb
    part of the relevance; :meth:`compute_convergence_delta` reports the difference instead of hiding it.

    Args:
        model: the classifier (an ``nn.Module``); it is left exactly as found.
        alpha: weight of positive contributions, ``alpha >= 1``.
        beta: weight of negative contributions, ``alpha - 1``.
        first_layer: rule of the first Conv/Linear, which must receive the inputs (or a reshaped view of them):
            ``"zbox"`` (z^B for inputs in ``[low, high]``), ``"flat"``, ``"wsquare"`` or ``"alphabeta"``.
        low: lowest input value for ``"zbox"``: a number or a tensor broadcastable to the inputs (e.g. per channel,
            :math:`(1, C, 1, 1)`, for normalized inputs).
        high: highest input value for ``"zbox"``.
        epsilon: stabilizer added to every denominator (with its sign).
        canonize: fold BatchNorms into the preceding Conv/Linear and compute ReLUs out-of-place; without it
            BatchNorms are passed by their gradient (the LRP-0 rule).
        max_pool: ``"winner"`` (winner-take-all) or ``"proportional"`` (to the activations in the window).
        rules: per-layer :class:`AlphaBetaRule`, keyed by module path (``"features.0"``) or type (``nn.Linear``);
            paths win over types and over ``first_layer``.
        normalization: ``(mean, std)`` per channel when the inputs are normalized, :math:`x' = (x - m) / s`
            (torchattacks' ``set_normalization_used`` convention): ``low`` and ``high`` stay in pixel space and
            become :math:`(l - m) / s`, :math:`(h - m) / s`. A ``torchvision.transforms.Normalize`` (or a
            parameter-free module with ``mean`` and ``std``) as the model's first module is folded the same way.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2).eval()
        >>> lrp = LRPAlphaBeta(model, alpha=2.0, beta=1.0)
        >>> x = torch.rand(2, 3, 16, 16)
        >>> relevance, delta = lrp.attribute(x, target=1, return_convergence_delta=True)
        >>> relevance.shape, delta.shape
        (torch.Size([2, 3, 16, 16]), torch.Size([2]))
    """

    def __init__(
        self,
        model: nn.Module,
        alpha: float = 2.0,
        beta: float = 1.0,
        first_layer: str = "zbox",
        low: float | Tensor = 0.0,
        high: float | Tensor = 1.0,
        epsilon: float = 1e-9,
        canonize: bool = True,
        *,
        max_pool: str = "winner",
        rules: Mapping[str | type, AlphaBetaRule] | None = None,
        normalization: tuple[Any, Any] | None = None,
    ) -> None:
        check_type(model, "model", nn.Module)
        check_normalization(normalization)
        self.rule = AlphaBetaRule(alpha, beta)
        check_choice(first_layer, "first_layer", FIRST_LAYER_RULES)
        _check_bound(low, "low")
        _check_bound(high, "high")
        low_t, high_t = torch.as_tensor(low), torch.as_tensor(high)
        try:
            torch.broadcast_shapes(low_t.shape, high_t.shape)
        except RuntimeError as error:
            raise ValueError(f"low and high must broadcast together, got shapes {tuple(low_t.shape)} and "
                             f"{tuple(high_t.shape)}") from error
        if bool((low_t >= high_t).any()):
            raise ValueError(f"low must be < high everywhere, got low={low!r}, high={high!r}")
        check_number(epsilon, "epsilon")
        if epsilon <= 0:
            raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
        check_type(canonize, "canonize", bool)
        check_choice(max_pool, "max_pool", MAX_POOL_RULES)
        rules = dict(rules or {})
        for key, value in rules.items():
            if not (isinstance(key, str) or (isinstance(key, type) and issubclass(key, nn.Module))):
                raise TypeError(f"rules keys must be module paths (str) or module types, got {key!r}")
            check_type(value, f"rules[{key!r}]", AlphaBetaRule)
        unknown = [key for key in rules if isinstance(key, str) and key not in dict(model.named_modules())]
        if unknown:
            raise ValueError(f"rules names a module that is not in the model: {unknown[0]!r}")
        _raise_if_unsupported(model)
        super().__init__(model)
        self.model = model
        self.first_layer = first_layer
        if normalization is not None:
            mean, std = (torch.as_tensor(part, dtype=torch.float64).reshape(1, -1, 1, 1) for part in normalization)
            low, high = (torch.as_tensor(low) - mean) / std, (torch.as_tensor(high) - mean) / std
        self.low, self.high, self.epsilon = low, high, float(epsilon)
        self.normalization = normalization
        self.canonize, self.max_pool, self.rules = canonize, max_pool, rules

    @property
    def multiplies_by_inputs(self) -> bool:
        """``True``: relevance is a decomposition of the output, i.e. already "multiplied by the inputs"."""
        return True

    def has_convergence_delta(self) -> bool:
        """``True``: :meth:`compute_convergence_delta` measures how much relevance was absorbed or created."""
        return True

    @log_usage(part_of_slo=True)
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor],
        target: TargetType = None,
        additional_forward_args: Any = None,
        return_convergence_delta: bool = False,
    ) -> Tensor | tuple[Tensor] | tuple[Tensor | tuple[Tensor], Tensor]:
        r"""Relevance of every input element for the ``target`` output, by one forward and one backward pass.

        .. math:: R_{\text{output}} = f_c(x) \;\longrightarrow\; R_i = \text{LRP}_{\alpha\beta}(x)_i

        Args:
            inputs: a batch :math:`(B, \dots)` (or a 1-tuple holding it), floating point; within ``[low, high]``
                for ``first_layer="zbox"``.
            target: Captum's target (an int, one index per sample, or ``None`` for a one-output model).
            additional_forward_args: further arguments of the model's ``forward``, after the inputs.
            return_convergence_delta: also return :math:`\sum_i R_i - f_c(x)` per sample.

        Returns:
            The relevance, shape and dtype of ``inputs`` (a 1-tuple when ``inputs`` was one), and with
            ``return_convergence_delta`` the delta, shape :math:`(B,)`.

        Raises:
            TypeError: an unsupported layer (the message names its path) or a badly typed argument.
            ValueError: bad inputs or target; inputs outside ``[low, high]`` for ``"zbox"``.
            RuntimeError: a Conv/Linear/BatchNorm called twice in one forward pass.

        Examples:
            >>> _ = torch.manual_seed(0)
            >>> model = nn.Sequential(nn.Flatten(), nn.Linear(12, 32, bias=False), nn.ReLU(),
            ...                       nn.Linear(32, 3, bias=False))
            >>> x = torch.rand(4, 3, 2, 2)
            >>> lrp = LRPAlphaBeta(model, alpha=1.0, beta=0.0)
            >>> relevance, delta = lrp.attribute(x, target=0, return_convergence_delta=True)
            >>> relevance.shape, bool(delta.abs().max() < 1e-4)
            (torch.Size([4, 3, 2, 2]), True)
        """
        inputs, is_tuple = _single_input(inputs)
        check_type(return_convergence_delta, "return_convergence_delta", bool)
        check_grad_allowed("LRPAlphaBeta")
        if self.first_layer == "zbox":
            self._check_box(inputs)
        _raise_if_unsupported(self.model)
        extra = _format_additional_forward_args(additional_forward_args) or ()

        # per-thread forward patches and a shared eval mode: concurrent calls leave the model as it was (issue 16);
        # parameters are never touched (every rule reads detached weights), so requires_grad and .grad stay as they are
        with shared_eval_mode(self.model), hook_handles() as handles, torch.enable_grad():
            leaf = (inputs.clone() if inputs.is_inference() else inputs).detach().requires_grad_(True)
            run = _Propagation(self, leaf)
            run.patch(handles)
            output = model_logits(self.model(leaf, *extra))
            if output.dim() == 2:
                check_target(target, output.shape[1], output.shape[0])
            selected = _select_targets(output, target).reshape(len(output), -1).sum(1)
            if run.first is None:
                raise ValueError("the model ran no Conv/Linear layer: LRP αβ has nothing to propagate through")
            (relevance,) = torch.autograd.grad(selected, leaf, torch.ones_like(selected))
            relevance = relevance.detach()
        result: Tensor | tuple[Tensor] = (relevance,) if is_tuple else relevance
        if return_convergence_delta:
            return result, self.compute_convergence_delta(relevance, selected.detach())
        return result

    def compute_convergence_delta(self, attributions: Tensor | tuple[Tensor, ...], output: Tensor) -> Tensor:
        r"""How much relevance was absorbed (biases) or created: :math:`\sum_i R_i - f_c(x)` per sample.

        Args:
            attributions: relevance from :meth:`attribute`, shape :math:`(B, \dots)` (or a tuple of such).
            output: the target outputs :math:`f_c(x)`, shape :math:`(B,)` or :math:`(B, 1)`.

        Returns:
            The delta, shape :math:`(B,)`.

        Examples:
            >>> lrp = LRPAlphaBeta(nn.Linear(3, 2, bias=False))
            >>> lrp.compute_convergence_delta(torch.ones(2, 3), torch.tensor([3.0, 2.5])).tolist()
            [0.0, 0.5]
        """
        return convergence_delta(attributions, output)

    def _check_box(self, inputs: Tensor) -> None:
        for bound, name in ((self.low, "low"), (self.high, "high")):
            if isinstance(bound, Tensor):
                try:
                    shape = torch.broadcast_shapes(bound.shape, inputs.shape)
                except RuntimeError as error:
                    raise ValueError(f"{name} of shape {tuple(bound.shape)} does not broadcast to the inputs of "
                                     f"shape {tuple(inputs.shape)}") from error
                if shape != inputs.shape:
                    raise ValueError(f"{name} of shape {tuple(bound.shape)} does not broadcast to the inputs of "
                                     f"shape {tuple(inputs.shape)}")
        low = torch.as_tensor(self.low, dtype=inputs.dtype, device=inputs.device)
        high = torch.as_tensor(self.high, dtype=inputs.dtype, device=inputs.device)
        tol = 1e-5 if self.normalization is not None else 1e-6
        if bool((inputs < low - tol).any()) or bool((inputs > high + tol).any()):
            hint = "" if self.normalization is not None else " (normalized inputs? pass normalization=(mean, std))"
            raise ValueError(
                f"inputs must lie in [low, high] for first_layer='zbox', got values in "
                f"[{inputs.min().item():.4g}, {inputs.max().item():.4g}]{hint}"
            )


def _raise_if_unsupported(model: nn.Module) -> None:
    found = unsupported_layers(model)
    if found:
        path, module = found[0]
        raise TypeError(
            f"LRPAlphaBeta has no rule for module {path or '<root>'!r} ({type(module).__name__}); supported leaves: "
            "Conv1d/2d/3d, Linear, BatchNorm, MaxPool (no indices), AvgPool, ReLU, Dropout, Flatten, Identity"
        )


def _single_input(inputs: Any) -> tuple[Tensor, bool]:
    """The input tensor of an ``attribute()`` call (a tensor or a 1-tuple), checked; and whether it was a tuple."""
    is_tuple = isinstance(inputs, tuple)
    if is_tuple:
        if len(inputs) != 1:
            raise ValueError(f"inputs must be one tensor (or a 1-tuple), got a tuple of {len(inputs)}")
        inputs = inputs[0]
    check_tensor(inputs, "inputs", floating=True)
    if inputs.dim() < 2:
        raise ValueError(f"inputs must have a batch dimension, got shape {tuple(inputs.shape)}")
    check_finite(inputs, "inputs")
    return inputs, is_tuple


__all__ = [
    "LRPAlphaBeta",
    "convergence_delta",
    "unsupported_layers",
]
