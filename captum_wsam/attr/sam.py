"""SAM, the Style Activation Map: Grad-CAM computed on a stylized input, as a Captum layer attribution.

Moreno-Vera, Medina & Poco, 2023, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker and
Their Influence in Image Classification" (ICAART 2023, DOI 10.5220/0011795400003417, arXiv:2308.14995). For a style
:math:`\\sigma` and an intensity :math:`\\alpha` (α = 1: the image unchanged, α = 0: the full style), with
:math:`A^k_{\\alpha,\\sigma}` the activations of the chosen layer on :math:`x_{\\alpha,\\sigma} =
\\mathrm{StyleAugment}(x; \\sigma, \\alpha)`:

.. math::

    \\mathrm{SAM}^c_{\\alpha,\\sigma} = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k_{\\alpha,\\sigma}\\Big), \\qquad
    \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}\\Big|_{x_{\\alpha,\\sigma}}

The maths lives in :func:`captum_wsam.attr.functional.grad_cam_map`; this module wires the augment, the model and
Captum's layer-gradient machinery (``compute_layer_gradients_and_eval``, the function ``LayerGradCam`` uses, so that
DataParallel models work the same way). The class probability of the styled input (needed by WSAM) comes from the
same forward pass as the gradients.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .._checks import check_images, check_in_range, check_submodule, check_target, check_type
from .._compat import _format_additional_forward_args, _select_targets, compute_layer_gradients_and_eval
from .._state import eval_mode, frozen_parameters, untouched
from .._typing import ForwardFunc, TargetType
from .functional import grad_cam_map


def default_augment() -> Any:
    """The augment used when ``augment=None``: a default :class:`captum_wsam.augment.StyleAugment`.

    Raises:
        TypeError: when this installation has no ``StyleAugment`` (pass an ``augment`` explicitly then).
    """
    try:
        from ..augment import StyleAugment
    except ImportError as error:  # pragma: no cover - depends on the StyleAugment sub-package being present
        raise TypeError(
            "augment=None needs captum_wsam.augment.StyleAugment, which this installation lacks; pass an augment "
            "with stylize(inputs, style, alpha) and stylize_grid(inputs, styles, alphas) methods"
        ) from error
    return StyleAugment()


def check_augment(augment: Any, name: str = "augment", *, grid: bool = False) -> None:
    """Raise ``TypeError`` unless ``augment`` offers ``stylize`` (and ``stylize_grid`` when ``grid``)."""
    needed = ("stylize", "stylize_grid") if grid else ("stylize",)
    missing = [method for method in needed if not callable(getattr(augment, method, None))]
    if missing:
        raise TypeError(
            f"{name} must provide {' and '.join(needed)} (like captum_wsam.augment.StyleAugment), "
            f"got {type(augment).__name__} without {', '.join(missing)}"
        )


def check_forward_and_layer(forward_func: Any, layer: Any) -> None:
    """Raise unless ``forward_func`` is callable and ``layer`` a module inside it (when it is a module)."""
    if not callable(forward_func):
        raise TypeError(f"forward_func must be a model or a callable, got {type(forward_func).__name__}")
    check_submodule(layer, forward_func, "layer")


def check_style(style: Any, num_styles: int | None, name: str = "style") -> None:
    """Raise unless ``style`` is ``None``, an index into a bank of ``num_styles`` styles, or an integer tensor."""
    if style is None:
        return
    if isinstance(style, Tensor):
        if style.is_floating_point() or style.is_complex():
            raise TypeError(f"{name} must hold integer style indices, got dtype {style.dtype}")
        if num_styles is not None and style.numel() and (style.min() < 0 or style.max() >= num_styles):
            raise ValueError(f"{name} must lie in [0, {num_styles - 1}] for a bank of {num_styles} styles, "
                             f"got {style.reshape(-1).tolist()}")
        return
    if isinstance(style, bool) or not isinstance(style, int):
        raise TypeError(f"{name} must be an int style index, an integer tensor or a params dict, "
                        f"got {type(style).__name__}")
    if num_styles is not None and not 0 <= style < num_styles:
        raise ValueError(f"{name} must lie in [0, {num_styles - 1}] for a bank of {num_styles} styles, got {style}")


def replay_style(augment: Any, inputs: Tensor, params: dict[str, Tensor], alpha: float) -> Tensor:
    """Stylize with sampled params (Kornia's ``aug._params``): their style and noise, intensity ``alpha``, all samples.

    Uses the augment's Kornia override point ``apply_transform`` (sample, then apply), so the style noise drawn at
    sampling time is replayed exactly; ``batch_prob`` is dropped so that every sample is stylized.
    """
    if not callable(getattr(augment, "apply_transform", None)):
        raise TypeError(f"style given as params needs an augment with apply_transform (Kornia), got "
                        f"{type(augment).__name__}")
    if "style_index" not in params:
        raise ValueError(f"style params must hold 'style_index', got keys {sorted(params)}")
    replay = {k: v for k, v in params.items() if k not in ("batch_prob", "alpha")}
    replay["alpha"] = torch.full((inputs.shape[0],), float(alpha), dtype=inputs.dtype, device=inputs.device)
    return augment.apply_transform(inputs, replay, {})


def bank_size(augment: Any) -> int | None:
    """Number of styles in ``augment.style_bank`` (``None`` when it has no sized bank)."""
    bank = getattr(augment, "style_bank", None)
    try:
        return len(bank) if bank is not None else None
    except TypeError:
        return None


@contextmanager
def model_guard(forward_func: Any, *inputs: Tensor) -> Iterator[None]:
    """Eval mode and frozen parameters while attributing; modes, ``requires_grad`` and ``.grad`` restored on exit.

    Eval mode keeps BatchNorm running statistics untouched and makes every styled copy independent of the others
    (so results do not depend on batching); frozen parameters spare the weight gradients.
    """
    with ExitStack() as stack:
        stack.enter_context(untouched(forward_func, *inputs))
        stack.enter_context(eval_mode(forward_func))
        stack.enter_context(frozen_parameters(forward_func))
        yield


def grad_cam_and_probabilities(
    forward_func: ForwardFunc,
    layer: nn.Module,
    inputs: Tensor,
    target: TargetType,
    additional_forward_args: Any = None,
    *,
    device_ids: list[int] | None = None,
    attribute_to_layer_input: bool = False,
    relu_attributions: bool = True,
    attr_dim_summation: bool = True,
    target_check: tuple[TargetType, int] | None = None,
) -> tuple[tuple[Tensor, ...], Tensor, Tensor | None]:
    """Grad-CAM maps of ``inputs`` and the softmax probability of the target, from one forward and one backward.

    .. math::

        M^c = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k\\Big), \\qquad y^c = \\mathrm{softmax}(f(x))_c

    ``target=None`` picks the class predicted on ``inputs``. The caller manages the model's state
    (see :func:`model_guard`).

    Args:
        forward_func: the model (returns scores of shape :math:`(N, K)` or any output Captum's ``target`` indexes).
        layer: the layer whose activations and gradients are used.
        inputs: images, shape :math:`(N, C, H, W)`.
        target: Captum target, or ``None`` for the predicted class.
        additional_forward_args: passed to ``forward_func`` after ``inputs``.
        device_ids: device ids of a ``DataParallel`` model (defaults to its own ``device_ids``).
        attribute_to_layer_input: use the layer's input instead of its output.
        relu_attributions: apply the ReLU.
        attr_dim_summation: sum over channels.
        target_check: ``(target, batch_size)`` to range-check against the number of classes once it is known
            (before the backward pass), for callers that expand the user's target.

    Returns:
        ``(maps, probabilities, predicted)``: the maps (one tensor per layer tensor, each :math:`(N, 1, h, w)`),
        the probability of the target class :math:`(N,)` and, for ``target=None``, the predicted classes
        :math:`(N,)` (else ``None``).

    Examples:
        >>> model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(), torch.nn.LazyLinear(5))
        >>> _ = model(torch.rand(1, 3, 8, 8))
        >>> maps, probs, predicted = grad_cam_and_probabilities(model, model[0], torch.rand(2, 3, 8, 8), None)
        >>> maps[0].shape, probs.shape, predicted.shape
        (torch.Size([2, 1, 6, 6]), torch.Size([2]), torch.Size([2]))
    """
    record: dict[str, Tensor] = {}

    def forward_selected(*args: Any) -> Tensor:
        output = forward_func(*args)
        if not isinstance(output, Tensor) or output.dim() < 2:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(f"forward_func must return class scores of shape (N, K), got {shape}")
        if target_check is not None and output.dim() == 2:
            check_target(target_check[0], output.shape[1], target_check[1])
        chosen: TargetType = target
        if target is None:
            chosen = output.detach().argmax(dim=1)
            if chosen.dim() > 1:
                raise ValueError("target=None needs a 2-D output (N, K); pass a target for other outputs")
            record["predicted"] = chosen
        elif output.dim() == 2 and target_check is None:
            check_target(target, output.shape[1], output.shape[0])
        probabilities = torch.softmax(output.detach(), dim=1)
        record["probabilities"] = _select_targets(probabilities, chosen)
        return _select_targets(output, chosen)

    if device_ids is None:
        device_ids = getattr(forward_func, "device_ids", None)
    gradients, activations = compute_layer_gradients_and_eval(
        forward_selected,
        layer,
        (inputs,),
        None,
        _format_additional_forward_args(additional_forward_args),
        device_ids=device_ids,
        attribute_to_layer_input=attribute_to_layer_input,
    )
    maps = tuple(
        grad_cam_map(activation.detach(), gradient, relu_attributions, attr_dim_summation)
        for activation, gradient in zip(activations, gradients)
    )
    return maps, record["probabilities"], record.get("predicted")


class SAM(LayerAttribution, GradientAttribution):
    """Style Activation Map: Grad-CAM of the chosen layer on the input stylized with style σ at intensity α.

    .. math::

        \\mathrm{SAM}^c_{\\alpha,\\sigma} = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k_{\\alpha,\\sigma}\\Big), \\qquad
        \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}\\Big|_{x_{\\alpha,\\sigma}}

    A drop-in for ``captum.attr.LayerGradCam``: with ``alpha=1`` (no style) it returns exactly
    ``LayerGradCam(forward_func, layer).attribute(inputs, target, relu_attributions=True)``. The model runs in eval
    mode with frozen parameters during the call and is left as it was found.

    Args:
        forward_func: the model, or any callable returning class scores :math:`(N, K)`.
        layer: the layer to explain (a submodule of ``forward_func`` when it is a module).
        augment: the stylizer, with ``stylize(inputs, style, alpha)``; ``None`` builds a default
            :class:`captum_wsam.augment.StyleAugment`.
        device_ids: device ids when ``forward_func`` applies a ``DataParallel`` model (as in Captum).

    Examples:
        >>> from captum.attr import LayerGradCam
        >>> from captum_wsam.models import SmallCNN
        >>> model, x = SmallCNN().eval(), torch.rand(2, 3, 32, 32)
        >>> sam = SAM(model, model.block3)
        >>> sam.attribute(x, target=1, alpha=0.3, style=0).shape
        torch.Size([2, 1, 4, 4])
        >>> reference = LayerGradCam(model, model.block3).attribute(x, 1, relu_attributions=True)
        >>> bool(torch.equal(sam.attribute(x, target=1, alpha=1.0), reference))
        True
    """

    def __init__(
        self, forward_func: ForwardFunc, layer: nn.Module, augment: Any = None, device_ids: list[int] | None = None
    ) -> None:
        check_forward_and_layer(forward_func, layer)
        augment = default_augment() if augment is None else augment
        check_augment(augment)
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self.augment = augment

    @log_usage()
    def attribute(
        self,
        inputs: Tensor,
        target: TargetType = None,
        additional_forward_args: Any = None,
        alpha: float = 0.5,
        style: int | Tensor | dict[str, Tensor] | None = None,
        attribute_to_layer_input: bool = False,
        relu_attributions: bool = True,
        attr_dim_summation: bool = True,
        interpolate_to_input: bool = False,
    ) -> Tensor | tuple[Tensor, ...]:
        """SAM of ``inputs`` for ``target`` under style ``style`` at intensity ``alpha``.

        .. math::

            \\mathrm{SAM}^c_{\\alpha,\\sigma}(x) = \\mathrm{GradCAM}^c(x_{\\alpha,\\sigma}), \\qquad
            x_{\\alpha,\\sigma} = \\mathrm{StyleAugment}(x; \\sigma, \\alpha)

        Args:
            inputs: images, shape :math:`(B, C, H, W)`, floating point.
            target: Captum target (int, per-sample list or tensor, tuples for N-D outputs); ``None`` explains the
                class predicted on the styled input, as the reference code does.
            additional_forward_args: extra arguments for ``forward_func`` (not stylized).
            alpha: intensity in [0, 1]; 1 keeps the image (plain Grad-CAM), 0 applies the full style.
            style: index into ``augment.style_bank``, a :math:`(B,)` integer tensor of per-sample indices, or
                params sampled by the augment (``aug._params``: their ``style_index`` and ``style_noise`` are
                replayed exactly, α comes from ``alpha``); ``None`` means style 0.
            attribute_to_layer_input: explain the layer's input instead of its output.
            relu_attributions: apply the ReLU of the definition (default ``True``; ``False`` keeps the sign).
            attr_dim_summation: sum over channels (as ``LayerGradCam``).
            interpolate_to_input: upsample the map bilinearly to :math:`(H, W)` with
                ``LayerAttribution.interpolate``.

        Returns:
            Shape :math:`(B, 1, h, w)` (the layer's resolution, or :math:`(B, 1, H, W)` with
            ``interpolate_to_input``); a tuple when the layer has several tensors.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> model = SmallCNN().eval()
            >>> SAM(model, model.block4).attribute(torch.rand(3, 3, 32, 32), alpha=0.0,
            ...                                    interpolate_to_input=True).shape
            torch.Size([3, 1, 32, 32])
        """
        check_images(inputs, "inputs")
        check_in_range(alpha, "alpha", 0.0, 1.0)
        if not isinstance(style, dict):
            check_style(style, bank_size(self.augment))
        for flag, name in ((attribute_to_layer_input, "attribute_to_layer_input"),
                           (relu_attributions, "relu_attributions"), (attr_dim_summation, "attr_dim_summation"),
                           (interpolate_to_input, "interpolate_to_input")):
            check_type(flag, name, bool)
        with torch.no_grad():
            if isinstance(style, dict):
                styled = replay_style(self.augment, inputs.detach(), style, alpha)
            else:
                styled = self.augment.stylize(inputs.detach(), 0 if style is None else style, float(alpha))
        with model_guard(self.forward_func, inputs):
            maps, _, _ = grad_cam_and_probabilities(
                self.forward_func,
                self.layer,
                styled,
                target,
                additional_forward_args,
                device_ids=self.device_ids,
                attribute_to_layer_input=attribute_to_layer_input,
                relu_attributions=relu_attributions,
                attr_dim_summation=attr_dim_summation,
            )
        if interpolate_to_input:
            maps = tuple(LayerAttribution.interpolate(m, tuple(inputs.shape[-2:]), "bilinear") for m in maps)
        return maps[0] if len(maps) == 1 else maps


__all__ = ["SAM", "grad_cam_and_probabilities", "model_guard"]
