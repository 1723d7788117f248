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

from .._checks import (
    check_alphas,
    check_choice,
    check_grad_allowed,
    check_normalization,
    check_positive_int,
    check_type,
)
from .._compat import format_additional_forward_args
from .._typing import ForwardFunc, TargetType
from ._style_cam import (
    PixelSpace,
    augment_normalization,
    bank_size,
    check_augment,
    check_forward_and_layer,
    check_pixels,
    default_augment,
    format_images,
    grad_cam_and_probabilities,
    model_guard,
    pixel_stylizer,
    predicted_classes,
    resolve_styles,
    select_forward_args,
    select_target,
    styled_copies,
)
from .adapters import resolve_reshape_transform
from .functional import WEIGHTINGS, chunk_slices, weighted_style_average, wsam_weights


class WSAM(LayerAttribution, GradientAttribution):
    """Weighted Style Activation Map: SAMs over S styles × A intensities, weighted by the class probability.

    .. math::

        \\mathrm{WSAM}^c = \\frac{1}{\\Omega} \\sum_{\\alpha} \\sum_{\\sigma} y^c_{\\alpha,\\sigma}\\,
        \\mathrm{SAM}^c_{\\alpha,\\sigma}, \\qquad \\Omega = S A

    **Which class** (``target=None``): with ``class_per_style=True`` (the default) every styled copy explains its
    own top-1 class :math:`c_{\\alpha,\\sigma} = \\arg\\max f(x_{\\alpha,\\sigma})`, weighted by its probability
    :math:`\\max \\mathrm{softmax} f(x_{\\alpha,\\sigma})` -- what the authors' code computes, and what
    ``SAM(target=None)`` does for one copy, so ``WSAM(target=None)`` is the probability-weighted mean of the
    ``SAM(target=None)`` maps. The default follows the authors because WSAM is meant to show how styling moves the
    explanation, class flips included. ``class_per_style=False`` explains the class predicted on the unstyled image
    for every copy (the paper's formula for one class :math:`c`). A given ``target`` is always used for every copy
    (as :func:`~captum_wsam.metrics.wsam_variance` does with the labels).

    Args:
        forward_func: the model, or any callable returning class scores :math:`(N, K)` (or a mapping/object with
            ``logits``).
        layer: the layer to explain.
        augment: the stylizer, with ``stylize`` and ``stylize_grid``; ``None`` builds a default
            :class:`captum_wsam.augment.StyleAugment`.
        alphas: the intensities α in [0, 1] (1 = no style), non-empty.
        styles: a count (that many distinct styles of ``augment.style_bank``, drawn once with ``seed`` and reused
            by every call) or explicit style indices (a sequence or an integer tensor).
        seed: seed of the style draw when ``styles`` is a count.
        device_ids: device ids when ``forward_func`` applies a ``DataParallel`` model.
        class_per_style: with ``target=None``, explain each styled copy's own top-1 class (see above).
        reshape_transform: as in :class:`~captum_wsam.attr.SAM` (``"auto"``: torchvision ViT/Swin built-ins).
        normalization: ``(mean, std)`` of normalized inputs, as in :class:`~captum_wsam.attr.SAM`.

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
        *,
        class_per_style: bool = True,
        reshape_transform: Any = "auto",
        normalization: Any = None,
    ) -> None:
        check_forward_and_layer(forward_func, layer)
        self.alphas = check_alphas(alphas)
        check_positive_int(seed, "seed", allow_zero=True)
        check_type(class_per_style, "class_per_style", bool)
        check_normalization(normalization)
        self.reshape_transform = resolve_reshape_transform(forward_func, layer, reshape_transform)
        augment = default_augment() if augment is None else augment
        self.pixel_space = PixelSpace(augment_normalization(normalization, augment))
        check_augment(augment, grid=True)
        self.styles = resolve_styles(styles, bank_size(augment), seed)
        LayerAttribution.__init__(self, forward_func, layer, device_ids)
        GradientAttribution.__init__(self, forward_func)
        self.augment = augment
        self.class_per_style = class_per_style

    @property
    def num_styles(self) -> int:
        """S, the number of styles."""
        return len(self.styles)

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
        weighting: str = "probability",
        chunk_size: int | None = None,
        return_sams: bool = False,
        attribute_to_layer_input: bool = False,
        relu_attributions: bool = True,
        attr_dim_summation: bool = True,
        interpolate_to_input: bool = False,
        grad_kwargs: dict[str, Any] | None = None,
    ) -> Tensor | tuple[Tensor, Tensor, Tensor]:
        """WSAM of ``inputs`` for ``target``.

        .. math::

            \\mathrm{WSAM}^c = \\frac{1}{S A} \\sum_{\\alpha} \\sum_{\\sigma} w_{\\sigma,\\alpha}\\,
            \\mathrm{SAM}^c_{\\alpha,\\sigma}, \\qquad w = y^c_{\\alpha,\\sigma} \\;(\\text{probability}),\\;
            1 \\;(\\text{none}),\\; \\alpha\\, y^c_{\\alpha,\\sigma} \\;(\\text{alpha\\_probability})

        Args:
            inputs: images, shape :math:`(B, C, H, W)`, floating point, finite, in [0, 1] (or normalized with the
                constructor's ``normalization``); or a tuple of such batches (each stylized the same way).
            target: Captum target, used for every styled copy; ``None``: each copy's own top-1 class with
                ``class_per_style=True`` (default), else the class predicted on the unstyled image.
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
            grad_kwargs: keyword arguments for ``torch.autograd.grad`` (as Captum's ``LayerGradCam``).

        Returns:
            The WSAM, shape :math:`(B, 1, h, w)` (a 1-tuple for tuple ``inputs``, as Captum's metrics expect); with
            ``return_sams`` a tuple ``(wsam, sams, probabilities)``
            with ``sams`` of shape :math:`(S, A, B, 1, h, w)` and ``probabilities``
            :math:`y^c_{\\alpha,\\sigma}` of shape :math:`(S, A, B)` (of each copy's explained class).

        Raises:
            ValueError: non-finite inputs, inputs outside [0, 1] without ``normalization``, bad arguments.
            RuntimeError: under ``torch.inference_mode()``.

        Examples:
            >>> from captum_wsam.models import SmallCNN
            >>> model, x = SmallCNN().eval(), torch.rand(2, 3, 32, 32)
            >>> wsam = WSAM(model, model.block4, alphas=(0.5,), styles=2)
            >>> a, b = wsam.attribute(x, target=0), wsam.attribute(x, target=0, chunk_size=1)
            >>> a.shape, bool(torch.allclose(a, b, atol=1e-6))
            (torch.Size([2, 1, 2, 2]), True)
        """
        check_grad_allowed("WSAM.attribute")
        images, is_tuple = format_images(inputs)
        check_choice(weighting, "weighting", WEIGHTINGS)
        if chunk_size is not None:
            check_positive_int(chunk_size, "chunk_size")
        for flag, name in ((return_sams, "return_sams"), (attribute_to_layer_input, "attribute_to_layer_input"),
                           (relu_attributions, "relu_attributions"), (attr_dim_summation, "attr_dim_summation"),
                           (interpolate_to_input, "interpolate_to_input")):
            check_type(flag, name, bool)
        if grad_kwargs is not None:
            check_type(grad_kwargs, "grad_kwargs", dict)
        check_pixels(images, self.pixel_space)
        first = images[0]
        batch_size = first.shape[0]
        args = format_additional_forward_args(additional_forward_args)
        num_styles, num_alphas = self.num_styles, len(self.alphas)
        copies_per_image = num_styles * num_alphas
        images_per_group = batch_size if chunk_size is None else max(1, min(batch_size, chunk_size // copies_per_image))
        sams: Tensor | None = None
        probabilities = torch.empty(num_styles, num_alphas, batch_size, dtype=first.dtype, device=first.device)

        with model_guard(self.forward_func, *images):
            if target is None and not self.class_per_style:
                target = predicted_classes(self.forward_func, [image.detach() for image in images], args)
            for group in chunk_slices(batch_size, images_per_group):
                grids = styled_copies(
                    tuple(image[group] for image in images), self.pixel_space,
                    pixel_stylizer(self.augment, lambda x: self.augment.stylize_grid(x, self.styles, self.alphas)),
                )
                group_size = grids[0].shape[2]
                styled = tuple(grid.reshape(copies_per_image * group_size, *grid.shape[3:]) for grid in grids)
                image_index = torch.arange(group.start, group.stop).repeat(copies_per_image)
                group_maps, group_probs = [], []
                for part in chunk_slices(styled[0].shape[0], chunk_size):
                    maps, probs, _ = grad_cam_and_probabilities(
                        self.forward_func,
                        self.layer,
                        tuple(s[part] for s in styled),
                        select_target(target, image_index[part]),
                        select_forward_args(args, image_index[part], batch_size),
                        device_ids=self.device_ids,
                        attribute_to_layer_input=attribute_to_layer_input,
                        relu_attributions=relu_attributions,
                        attr_dim_summation=attr_dim_summation,
                        target_check=None if target is None else (target, batch_size),
                        reshape_transform=self.reshape_transform,
                        grad_kwargs=grad_kwargs,
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
            size = tuple(first.shape[-2:])
            wsam = LayerAttribution.interpolate(wsam, size, "bilinear")
            if return_sams:
                flat = LayerAttribution.interpolate(sams.flatten(0, 2), size, "bilinear")
                sams = flat.reshape(num_styles, num_alphas, batch_size, *flat.shape[1:])
        if return_sams:
            return wsam, sams, probabilities
        return (wsam,) if is_tuple else wsam


__all__ = ["WSAM"]
