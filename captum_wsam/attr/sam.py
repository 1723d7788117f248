"""SAM, the Style Activation Map: Grad-CAM computed on a stylized input, as a Captum layer attribution.

Moreno-Vera, Medina & Poco, 2023, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker and
Their Influence in Image Classification" (ICAART 2023, DOI 10.5220/0011795400003417, arXiv:2308.14995). For a style
:math:`\\sigma` and an intensity :math:`\\alpha` (α = 1: the image unchanged, α = 0: the full style), with
:math:`A^k_{\\alpha,\\sigma}` the activations of the chosen layer on :math:`x_{\\alpha,\\sigma} =
\\mathrm{StyleAugment}(x; \\sigma, \\alpha)`:

.. math::

    \\mathrm{SAM}^c_{\\alpha,\\sigma} = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k_{\\alpha,\\sigma}\\Big), \\qquad
    \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}\\Big|_{x_{\\alpha,\\sigma}}

The maths lives in :func:`captum_wsam.attr.functional.grad_cam_map`; the pass shared with WSAM and WSAM variance
(Captum's ``compute_layer_gradients_and_eval``, the function ``LayerGradCam`` uses, so that DataParallel models work
the same way) and the input handling live in :mod:`captum_wsam.attr._style_cam`; this module wires them.
"""

from __future__ import annotations

from typing import Any

import torch  # noqa: F401 - used by the doctests
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .._checks import check_grad_allowed, check_in_range, check_normalization, check_type
from .._typing import ForwardFunc, TargetType
from ._style_cam import (
    PixelSpace,
    augment_normalization,
    bank_size,
    check_augment,
    check_forward_and_layer,
    check_pixels,
    check_style,
    default_augment,
    format_images,
    grad_cam_and_probabilities,
    model_guard,
    pixel_stylizer,
    replay_style,
    styled_copies,
)
from .adapters import resolve_reshape_transform


class SAM(LayerAttribution, GradientAttribution):
    """Style Activation Map: Grad-CAM of the chosen layer on the input stylized with style σ at intensity α.

    .. math::

        \\mathrm{SAM}^c_{\\alpha,\\sigma} = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k_{\\alpha,\\sigma}\\Big), \\qquad
        \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}\\Big|_{x_{\\alpha,\\sigma}}

    A drop-in for ``captum.attr.LayerGradCam``: with ``alpha=1`` (no style) it returns exactly
    ``LayerGradCam(forward_func, layer).attribute(inputs, target, relu_attributions=True)``; it takes a Tensor or a
    tuple of Tensors, ``grad_kwargs``, and works under the caller's ``torch.no_grad()`` (``NoiseTunnel``,
    ``captum.metrics.sensitivity_max``). The model runs in eval mode with frozen parameters during the call and is
    left as it was found, also when several threads call it on one model (they take turns).

    Args:
        forward_func: the model, or any callable returning class scores :math:`(N, K)` (a mapping with
            ``"logits"`` or an object with ``.logits`` is read through
            :func:`~captum_wsam.attr.adapters.logits_of`; see :class:`~captum_wsam.attr.LogitsAdapter`).
        layer: the layer to explain (a submodule of ``forward_func`` when it is a module).
        augment: the stylizer, with ``stylize(inputs, style, alpha)``; ``None`` builds a default
            :class:`captum_wsam.augment.StyleAugment`.
        device_ids: device ids when ``forward_func`` applies a ``DataParallel`` model (as in Captum).
        reshape_transform: maps the layer's activations (and gradients) to :math:`(N, C, h, w)` (pytorch-grad-cam's
            convention); ``"auto"`` (default) picks the built-in one for torchvision ViT (class token dropped,
            tokens → grid) and Swin (channels-last → channels-first) layers and none otherwise; ``None`` for none.
        normalization: ``(mean, std)`` of the model's input normalization (torchattacks' ``set_normalization_used``
            convention): inputs are then normalized tensors, styling happens on the pixels
            :math:`x s + \\mu` and the model sees normalized tensors. Without it inputs must lie in [0, 1].

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
        self,
        forward_func: ForwardFunc,
        layer: nn.Module,
        augment: Any = None,
        device_ids: list[int] | None = None,
        *,
        reshape_transform: Any = "auto",
        normalization: Any = None,
    ) -> None:
        check_forward_and_layer(forward_func, layer)
        check_normalization(normalization)
        self.reshape_transform = resolve_reshape_transform(forward_func, layer, reshape_transform)
        augment = default_augment() if augment is None else augment
        self.pixel_space = PixelSpace(augment_normalization(normalization, augment))
        check_augment(augment)
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self.augment = augment

    @property
    def normalization(self) -> Any:
        """The ``(mean, std)`` given to the constructor, or ``None``."""
        return self.pixel_space.normalization

    @log_usage()
    def attribute(
        self,
        inputs: Tensor | tuple[Tensor, ...],
        target: TargetType = None,
        additional_forward_args: Any = None,
        alpha: float = 0.5,
        style: int | Tensor | dict[str, Tensor] | None = None,
        attribute_to_layer_input: bool = False,
        relu_attributions: bool = True,
        attr_dim_summation: bool = True,
        interpolate_to_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | tuple[Tensor, ...]:
        """SAM of ``inputs`` for ``target`` under style ``style`` at intensity ``alpha``.

        .. math::

            \\mathrm{SAM}^c_{\\alpha,\\sigma}(x) = \\mathrm{GradCAM}^c(x_{\\alpha,\\sigma}), \\qquad
            x_{\\alpha,\\sigma} = \\mathrm{StyleAugment}(x; \\sigma, \\alpha)

        Args:
            inputs: images, shape :math:`(B, C, H, W)`, floating point, finite, in [0, 1] (or normalized with the
                constructor's ``normalization``); or a tuple of such batches (each stylized the same way, passed
                to ``forward_func`` in order).
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
            grad_kwargs: keyword arguments for ``torch.autograd.grad`` (as ``LayerGradCam``).

        Returns:
            Shape :math:`(B, 1, h, w)` (the layer's resolution, or :math:`(B, 1, H, W)` with
            ``interpolate_to_input``); a tuple when the layer has several tensors, and always a tuple (one map per
            layer tensor) for tuple ``inputs`` -- the structure Captum's metrics (``sensitivity_max``) expect.

        Raises:
            ValueError: non-finite inputs, inputs outside [0, 1] without ``normalization``, bad ``alpha``,
                ``style`` or ``target``.
            RuntimeError: under ``torch.inference_mode()`` (no gradient can be computed there).

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> model = SmallCNN().eval()
            >>> SAM(model, model.block4).attribute(torch.rand(3, 3, 32, 32), alpha=0.0,
            ...                                    interpolate_to_input=True).shape
            torch.Size([3, 1, 32, 32])
        """
        check_grad_allowed("SAM.attribute")
        images, is_tuple = format_images(inputs)
        check_in_range(alpha, "alpha", 0.0, 1.0)
        if not isinstance(style, dict):
            check_style(style, bank_size(self.augment))
        for flag, name in ((attribute_to_layer_input, "attribute_to_layer_input"),
                           (relu_attributions, "relu_attributions"), (attr_dim_summation, "attr_dim_summation"),
                           (interpolate_to_input, "interpolate_to_input")):
            check_type(flag, name, bool)
        if grad_kwargs is not None:
            check_type(grad_kwargs, "grad_kwargs", dict)
        check_pixels(images, self.pixel_space)

        def stylize(pixels: Tensor) -> Tensor:
            if isinstance(style, dict):
                return replay_style(self.augment, pixels, style, alpha)
            return self.augment.stylize(pixels, 0 if style is None else style, float(alpha))

        styled = styled_copies(images, self.pixel_space, pixel_stylizer(self.augment, stylize))
        with model_guard(self.forward_func, *images):
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
                reshape_transform=self.reshape_transform,
                grad_kwargs=grad_kwargs,
            )
        if interpolate_to_input:
            size = tuple(images[0].shape[-2:])
            maps = tuple(LayerAttribution.interpolate(m, size, "bilinear") for m in maps)
        if is_tuple:
            return maps
        return maps[0] if len(maps) == 1 else maps


__all__ = ["SAM", "grad_cam_and_probabilities", "model_guard"]
