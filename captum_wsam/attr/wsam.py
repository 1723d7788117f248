"""WSAM, the Weighted Style Activation Map: the probability-weighted mean of SAMs over styles and intensities.

Moreno-Vera, Medina & Poco, 2023, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker and
Their Influence in Image Classification" (ICAART 2023, DOI 10.5220/0011795400003417, arXiv:2308.14995):

.. math::

    \\mathrm{WSAM}^c = \\frac{1}{\\Omega} \\sum_{\\alpha} \\sum_{\\sigma} y^c_{\\alpha,\\sigma}\\,
    \\mathrm{SAM}^c_{\\alpha,\\sigma}, \\qquad \\Omega = \\#\\text{styles} \\times \\#\\text{intensities},

with :math:`y^c_{\\alpha,\\sigma}` the softmax probability of class :math:`c` on the styled input. The reference code
explains one image and one style at a time; here all :math:`S A` styled copies of a batch go through the model in
batched chunks, the probabilities come from the same forward pass as the Grad-CAM gradients, and the content
statistics of each image are computed once (``augment.stylize_grid``). The maths is in
:mod:`captum_wsam.attr.functional`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from captum.attr import GradientAttribution, LayerAttribution
from captum.log import log_usage
from torch import Tensor, nn

from .._checks import check_choice, check_images, check_in_range, check_positive_int, check_type
from .._compat import _format_additional_forward_args
from .._typing import ForwardFunc, TargetType
from .functional import WEIGHTINGS, chunk_slices, weighted_style_average, wsam_weights
from .sam import (
    bank_size,
    check_augment,
    check_forward_and_layer,
    check_style,
    default_augment,
    grad_cam_and_probabilities,
    model_guard,
)


def _check_alphas(alphas: Any) -> tuple[float, ...]:
    if isinstance(alphas, Tensor):
        alphas = alphas.reshape(-1).tolist()
    if not isinstance(alphas, (list, tuple)):
        raise TypeError(f"alphas must be a sequence of numbers in [0, 1], got {type(alphas).__name__}")
    if len(alphas) == 0:
        raise ValueError("alphas must not be empty, got ()")
    for value in alphas:
        check_in_range(value, "alphas", 0.0, 1.0)
    return tuple(float(a) for a in alphas)


def _resolve_styles(styles: Any, num_styles: int | None, seed: int) -> list[int]:
    """A count of styles (sampled once without replacement with ``seed``) or explicit style indices."""
    if isinstance(styles, Tensor):
        if styles.is_floating_point() or styles.is_complex():
            raise TypeError(f"styles must hold integer style indices, got dtype {styles.dtype}")
        styles = styles.reshape(-1).tolist()
    if isinstance(styles, int) and not isinstance(styles, bool):
        check_positive_int(styles, "styles")
        if num_styles is None:
            raise TypeError("styles given as a count needs augment.style_bank; pass explicit style indices instead")
        if styles > num_styles:
            raise ValueError(f"styles must be at most the {num_styles} styles of the bank, got {styles}")
        generator = torch.Generator().manual_seed(seed)
        return sorted(torch.randperm(num_styles, generator=generator)[:styles].tolist())
    if not isinstance(styles, (list, tuple)):
        raise TypeError(f"styles must be a count, a sequence of style indices or a Tensor, got {type(styles).__name__}")
    if len(styles) == 0:
        raise ValueError("styles must not be empty, got ()")
    for style in styles:
        check_style(style, num_styles, "styles")
    return list(styles)


def _select_target(target: TargetType, image_index: Tensor) -> TargetType:
    """The target of each styled copy from the target of its image (Captum's conventions)."""
    if isinstance(target, Tensor) and target.numel() > 1:
        return target.reshape(-1)[image_index.to(target.device)]
    if isinstance(target, list):
        return [target[i] for i in image_index.tolist()]
    return target


def _select_forward_args(args: tuple[Any, ...] | None, image_index: Tensor, batch_size: int) -> tuple[Any, ...] | None:
    """Per-copy additional forward arguments: tensors with a batch dimension follow their image."""
    if args is None:
        return None
    return tuple(
        a[image_index.to(a.device)] if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == batch_size else a
        for a in args
    )


class WSAM(LayerAttribution, GradientAttribution):
    """Weighted Style Activation Map: SAMs over S styles × A intensities, weighted by the class probability.

    .. math::

        \\mathrm{WSAM}^c = \\frac{1}{\\Omega} \\sum_{\\alpha} \\sum_{\\sigma} y^c_{\\alpha,\\sigma}\\,
        \\mathrm{SAM}^c_{\\alpha,\\sigma}, \\qquad \\Omega = S A

    Args:
        forward_func: the model, or any callable returning class scores :math:`(N, K)`.
        layer: the layer to explain.
        augment: the stylizer, with ``stylize`` and ``stylize_grid``; ``None`` builds a default
            :class:`captum_wsam.augment.StyleAugment`.
        alphas: the intensities α in [0, 1] (1 = no style), non-empty.
        styles: a count (that many distinct styles of ``augment.style_bank``, drawn once with ``seed`` and reused
            by every call) or explicit style indices (a sequence or an integer tensor).
        seed: seed of the style draw when ``styles`` is a count.
        device_ids: device ids when ``forward_func`` applies a ``DataParallel`` model.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN().eval()
        >>> wsam = WSAM(model, model.block3, alphas=(0.3, 0.7), styles=3)
        >>> attribution, sams, probabilities = wsam.attribute(torch.rand(2, 3, 32, 32), return_sams=True)
        >>> attribution.shape, sams.shape, probabilities.shape
        (torch.Size([2, 1, 4, 4]), torch.Size([3, 2, 2, 1, 4, 4]), torch.Size([3, 2, 2]))
    """

    def __init__(
        self,
        forward_func: ForwardFunc,
        layer: nn.Module,
        augment: Any = None,
        alphas: Sequence[float] | Tensor = (0.2, 0.4, 0.6, 0.8),
        styles: int | Sequence[int] | Tensor = 6,
        seed: int = 0,
        device_ids: list[int] | None = None,
    ) -> None:
        check_forward_and_layer(forward_func, layer)
        self.alphas = _check_alphas(alphas)
        check_positive_int(seed, "seed", allow_zero=True)
        augment = default_augment() if augment is None else augment
        check_augment(augment, grid=True)
        self.styles = _resolve_styles(styles, bank_size(augment), seed)
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self.augment = augment

    @property
    def num_styles(self) -> int:
        """S, the number of styles."""
        return len(self.styles)

    @log_usage()
    def attribute(
        self,
        inputs: Tensor,
        target: TargetType = None,
        additional_forward_args: Any = None,
        weighting: str = "probability",
        chunk_size: int | None = None,
        return_sams: bool = False,
        attribute_to_layer_input: bool = False,
        relu_attributions: bool = True,
        attr_dim_summation: bool = True,
        interpolate_to_input: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        """WSAM of ``inputs`` for ``target``.

        .. math::

            \\mathrm{WSAM}^c = \\frac{1}{S A} \\sum_{\\alpha} \\sum_{\\sigma} w_{\\sigma,\\alpha}\\,
            \\mathrm{SAM}^c_{\\alpha,\\sigma}, \\qquad w = y^c_{\\alpha,\\sigma} \\;(\\text{probability}),\\;
            1 \\;(\\text{none}),\\; \\alpha\\, y^c_{\\alpha,\\sigma} \\;(\\text{alpha\\_probability})

        Args:
            inputs: images, shape :math:`(B, C, H, W)`, floating point.
            target: Captum target; ``None`` explains the class predicted on the unstyled image (one class per
                image, the same for all its styled copies).
            additional_forward_args: extra arguments for ``forward_func``; tensors with a batch dimension of
                :math:`B` follow their image.
            weighting: ``"probability"`` (the paper), ``"none"`` or ``"alpha_probability"`` (the variants of the
                reference code).
            chunk_size: at most this many styled images per forward/backward pass (``None``: all :math:`S A B` at
                once). The result does not depend on it (up to floating-point rounding).
            return_sams: also return the grid of SAMs and probabilities.
            attribute_to_layer_input: explain the layer's input instead of its output.
            relu_attributions: apply the ReLU of the SAM definition.
            attr_dim_summation: sum over channels.
            interpolate_to_input: upsample the maps bilinearly to :math:`(H, W)`.

        Returns:
            The WSAM, shape :math:`(B, 1, h, w)`; with ``return_sams`` a tuple ``(wsam, sams, probabilities)``
            with ``sams`` of shape :math:`(S, A, B, 1, h, w)` and ``probabilities``
            :math:`y^c_{\\alpha,\\sigma}` of shape :math:`(S, A, B)`.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> model, x = SmallCNN().eval(), torch.rand(2, 3, 32, 32)
            >>> wsam = WSAM(model, model.block4, alphas=(0.5,), styles=2)
            >>> a, b = wsam.attribute(x, target=0), wsam.attribute(x, target=0, chunk_size=1)
            >>> a.shape, bool(torch.allclose(a, b, atol=1e-6))
            (torch.Size([2, 1, 2, 2]), True)
        """
        check_images(inputs, "inputs")
        check_choice(weighting, "weighting", WEIGHTINGS)
        if chunk_size is not None:
            check_positive_int(chunk_size, "chunk_size")
        for flag, name in ((return_sams, "return_sams"), (attribute_to_layer_input, "attribute_to_layer_input"),
                           (relu_attributions, "relu_attributions"), (attr_dim_summation, "attr_dim_summation"),
                           (interpolate_to_input, "interpolate_to_input")):
            check_type(flag, name, bool)
        batch_size = inputs.shape[0]
        args = _format_additional_forward_args(additional_forward_args)
        num_styles, num_alphas = self.num_styles, len(self.alphas)
        copies_per_image = num_styles * num_alphas
        images_per_group = batch_size if chunk_size is None else max(1, min(batch_size, chunk_size // copies_per_image))
        images = inputs.detach()
        sams: Tensor | None = None
        probabilities = torch.empty(num_styles, num_alphas, batch_size, dtype=inputs.dtype, device=inputs.device)

        with model_guard(self.forward_func, inputs):
            if target is None:
                target = self._predicted_classes(images, args)
            for group in chunk_slices(batch_size, images_per_group):
                with torch.no_grad():
                    grid = self.augment.stylize_grid(images[group], self.styles, self.alphas)
                group_size = grid.shape[2]
                styled = grid.reshape(copies_per_image * group_size, *grid.shape[3:])
                image_index = torch.arange(group.start, group.stop).repeat(copies_per_image)
                group_maps, group_probs = [], []
                for part in chunk_slices(styled.shape[0], chunk_size):
                    maps, probs, _ = grad_cam_and_probabilities(
                        self.forward_func,
                        self.layer,
                        styled[part],
                        _select_target(target, image_index[part]),
                        _select_forward_args(args, image_index[part], batch_size),
                        device_ids=self.device_ids,
                        attribute_to_layer_input=attribute_to_layer_input,
                        relu_attributions=relu_attributions,
                        attr_dim_summation=attr_dim_summation,
                        target_check=(target, batch_size),
                    )
                    if len(maps) != 1:
                        raise ValueError(f"layer must produce a single tensor for WSAM, got {len(maps)}")
                    group_maps.append(maps[0])
                    group_probs.append(probs)
                group_maps_tensor = torch.cat(group_maps).reshape(num_styles, num_alphas, group_size,
                                                                  *group_maps[0].shape[1:])
                if sams is None:
                    sams = group_maps_tensor.new_empty(num_styles, num_alphas, batch_size, *group_maps[0].shape[1:])
                sams[:, :, group] = group_maps_tensor
                probabilities[:, :, group] = torch.cat(group_probs).reshape(num_styles, num_alphas, group_size)

        assert sams is not None
        weights = wsam_weights(probabilities, torch.tensor(self.alphas, dtype=probabilities.dtype), weighting)
        wsam = weighted_style_average(sams, weights)
        if interpolate_to_input:
            size = tuple(inputs.shape[-2:])
            wsam = LayerAttribution.interpolate(wsam, size, "bilinear")
            if return_sams:
                flat = LayerAttribution.interpolate(sams.flatten(0, 2), size, "bilinear")
                sams = flat.reshape(num_styles, num_alphas, batch_size, *flat.shape[1:])
        if return_sams:
            return wsam, sams, probabilities
        return wsam

    def _predicted_classes(self, images: Tensor, args: tuple[Any, ...] | None) -> Tensor:
        """Class predicted on the unstyled images (one no-grad forward pass of the batch)."""
        with torch.no_grad():
            output = self.forward_func(images, *(args or ()))
        if not isinstance(output, Tensor) or output.dim() != 2:
            shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
            raise ValueError(f"target=None needs forward_func to return scores of shape (N, K), got {shape}")
        return output.argmax(dim=1)


__all__ = ["WSAM"]
