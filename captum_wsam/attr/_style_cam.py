"""What SAM, WSAM and WSAM variance share: Grad-CAM on styled inputs, inputs in pixel space, the model guard.

Moreno-Vera, Medina & Poco, 2023, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker and
Their Influence in Image Classification" (ICAART 2023, DOI 10.5220/0011795400003417, arXiv:2308.14995): every map of
the family is Grad-CAM (Selvaraju et al., 2017, arXiv:1610.02391) of a layer on a styled input,

.. math::

    \\mathrm{SAM}^c_{\\alpha,\\sigma} = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k_{\\alpha,\\sigma}\\Big), \\qquad
    \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}\\Big|_{x_{\\alpha,\\sigma}},
    \\qquad x_{\\alpha,\\sigma} = N\\big(\\mathrm{StyleAugment}(N^{-1}(x); \\sigma, \\alpha)\\big),

with :math:`N(p) = (p - \\mu) / s` the model's input normalization (identity without ``normalization=``). This
module holds the one forward/backward pass (:func:`grad_cam_and_probabilities`, built on the function Captum's
``LayerGradCam`` uses), input handling (Tensor or tuple of Tensors, finiteness, [0, 1] pixel range, normalization),
and the model guard; layer layouts of token models and model outputs that are not tensors are adapted by
:mod:`captum_wsam.attr.adapters`. :mod:`~captum_wsam.attr.sam`, :mod:`~captum_wsam.attr.wsam` and
:mod:`~captum_wsam.metrics.wsam_variance` import from here only; the maths is in
:mod:`captum_wsam.attr.functional`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import (
    check_finite,
    check_images,
    check_normalization,
    check_positive_int,
    check_style_index,
    check_submodule,
    check_target,
)
from .._compat import compute_layer_gradients_and_eval, format_additional_forward_args, select_targets
from .._state import eval_mode, frozen_parameters, kept_buffers, untouched
from .._typing import ForwardFunc, TargetType
from ..augment.pixel_space import PixelSpace
from .adapters import ReshapeTransform, logits_of
from .functional import grad_cam_map


# ------------------------------------------------------------------------------------------------ the stylizer
def default_augment() -> Any:
    """The augment used when ``augment=None``: a default :class:`captum_wsam.augment.StyleAugment`."""
    from ..augment import StyleAugment

    return StyleAugment()


def check_augment(augment: Any, name: str = "augment", *, grid: bool = False) -> None:
    """Raise ``TypeError`` unless ``augment`` offers ``stylize`` (and ``stylize_grid`` when ``grid``).

    An augment with a ``transfer`` network (:class:`~captum_wsam.augment.StyleAugment`) has it checked against the
    :class:`~captum_wsam.augment.backend.StyleBackend` protocol too.
    """
    needed = ("stylize", "stylize_grid") if grid else ("stylize",)
    missing = [method for method in needed if not callable(getattr(augment, method, None))]
    if missing:
        raise TypeError(
            f"{name} must provide {' and '.join(needed)} (like captum_wsam.augment.StyleAugment), "
            f"got {type(augment).__name__} without {', '.join(missing)}"
        )
    transfer = getattr(augment, "transfer", None)
    if isinstance(transfer, nn.Module):
        from ..augment.backend import check_style_backend

        check_style_backend(transfer, f"{name}.transfer")


def check_forward_and_layer(forward_func: Any, layer: Any) -> None:
    """Raise unless ``forward_func`` is callable and ``layer`` a module inside it (when it is a module)."""
    if not callable(forward_func):
        raise TypeError(f"forward_func must be a model or a callable, got {type(forward_func).__name__}")
    check_submodule(layer, forward_func, "layer")


def check_style(style: Any, num_styles: int | None, name: str = "style") -> None:
    """Raise unless ``style`` is ``None`` or an index (int or integer tensor) into a bank of ``num_styles`` styles."""
    if style is not None:
        check_style_index(style, num_styles, name)


def bank_size(augment: Any) -> int | None:
    """Number of styles in ``augment.style_bank`` (``None`` when it has no sized bank)."""
    bank = getattr(augment, "style_bank", None)
    try:
        return len(bank) if bank is not None else None
    except TypeError:
        return None


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


def resolve_styles(styles: Any, num_styles: int | None, seed: int) -> list[int]:
    """A count of styles (drawn once without replacement with ``seed``) or explicit style indices."""
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
        check_style_index(style, num_styles, "styles")
    return list(styles)


# ------------------------------------------------------------------------------------------------ inputs
def format_images(inputs: Any, name: str = "inputs") -> tuple[tuple[Tensor, ...], bool]:
    """Captum's "Tensor or tuple of Tensors": each an image batch :math:`(B, C, H, W)`, finite, same ``B``.

    Returns:
        ``(images, is_tuple)``; inference tensors (made under ``torch.inference_mode()``) are cloned into normal
        tensors, so that autograd can use them.
    """
    is_tuple = isinstance(inputs, tuple)
    images = inputs if is_tuple else (inputs,)
    if not images:
        raise ValueError(f"{name} must hold at least one tensor, got an empty tuple")
    for index, image in enumerate(images):
        label = f"{name}[{index}]" if is_tuple else name
        check_images(image, label)
        check_finite(image, label)
    if len({image.shape[0] for image in images}) != 1:
        raise ValueError(f"{name} must share one batch size, got shapes {[tuple(i.shape) for i in images]}")
    images = tuple(image.clone() if image.is_inference() else image for image in images)
    return images, is_tuple


def augment_normalization(normalization: Any, augment: Any, name: str = "normalization") -> Any:
    """The normalization SAM/WSAM work with, given their own and the augment's (``StyleAugment(normalization=)``).

    A normalized augment implies normalized inputs: its ``(mean, std)`` is taken when ``normalization`` is ``None``;
    both given, they must agree.
    """
    own = getattr(augment, "normalization", None)
    if own is None or normalization is None:
        return normalization if own is None else own
    check_normalization(normalization, name=name)
    if not all(torch.equal(torch.as_tensor(a, dtype=torch.float64).reshape(-1),
                           torch.as_tensor(b, dtype=torch.float64).reshape(-1))
               for a, b in zip(normalization, own)):
        raise ValueError(f"{name}={normalization!r} differs from the augment's normalization={own!r}; give it once "
                         "(on the augment or here) or make them equal")
    return normalization


def pixel_stylizer(augment: Any, stylize: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """``stylize`` (a call on ``augment``) as a function of [0, 1] pixels, whatever space ``augment`` works in.

    A normalized :class:`~captum_wsam.augment.StyleAugment` takes and returns model-space tensors: pixels are mapped
    there and back (``PixelSpace.to_model``/``to_pixels``); any other augment is called on the pixels directly.
    """
    space = getattr(augment, "pixel_space", None)
    if not isinstance(space, PixelSpace) or space.normalization is None:
        return stylize
    return lambda pixels: space.to_pixels(stylize(space.to_model(pixels)))


def check_pixels(images: tuple[Tensor, ...], space: PixelSpace, name: str = "inputs") -> None:
    """Raise (naming the argument, suggesting ``normalization=``) unless every image's pixels lie in [0, 1]."""
    with torch.no_grad():
        for index, image in enumerate(images):
            space.check_range(space.to_pixels(image.detach()), f"{name}[{index}]" if len(images) > 1 else name)


def styled_copies(
    images: tuple[Tensor, ...], space: PixelSpace, stylize: Callable[[Tensor], Tensor]
) -> tuple[Tensor, ...]:
    """Each image batch taken to pixels, stylized by ``stylize`` and taken back to model space (no gradient)."""
    with torch.no_grad():
        return tuple(space.to_model(stylize(space.to_pixels(image.detach()))) for image in images)


# ---------------------------------------------------------------------------------------- the guard and the pass
@contextmanager
def model_guard(forward_func: Any, *inputs: Tensor) -> Iterator[None]:
    """Eval mode and frozen parameters while attributing; modes, buffers, ``requires_grad``, ``.grad`` restored.

    Eval mode keeps BatchNorm running statistics untouched (and every buffer is restored bitwise besides) and makes
    every styled copy independent of the others (so results do not depend on batching); frozen parameters spare the
    weight gradients. The model's lock (:func:`captum_wsam._state.exclusive`) is held throughout, so concurrent calls
    from several threads run one after the other and leave the model as they found it.
    """
    with ExitStack() as stack:
        stack.enter_context(untouched(forward_func, *inputs))
        stack.enter_context(kept_buffers(forward_func))
        stack.enter_context(eval_mode(forward_func))
        stack.enter_context(frozen_parameters(forward_func))
        yield


def grad_cam_and_probabilities(
    forward_func: ForwardFunc,
    layer: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    target: TargetType,
    additional_forward_args: Any = None,
    *,
    device_ids: list[int] | None = None,
    attribute_to_layer_input: bool = False,
    relu_attributions: bool = True,
    attr_dim_summation: bool = True,
    target_check: tuple[TargetType, int] | None = None,
    reshape_transform: ReshapeTransform | None = None,
    grad_kwargs: dict[str, Any] | None = None,
) -> tuple[tuple[Tensor, ...], Tensor, Tensor | None]:
    """Grad-CAM maps of ``inputs`` and the softmax probability of the target, from one forward and one backward.

    .. math::

        M^c = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k\\Big), \\qquad y^c = \\mathrm{softmax}(f(x))_c

    ``target=None`` picks the class predicted on ``inputs``. Gradients are turned on for the pass (so it works under
    the caller's ``torch.no_grad()``, as in Captum's ``NoiseTunnel``). The caller manages the model's state
    (see :func:`model_guard`).

    Args:
        forward_func: the model (returns scores of shape :math:`(N, K)`, a mapping with ``"logits"`` or an object
            with ``.logits``).
        layer: the layer whose activations and gradients are used.
        inputs: images, shape :math:`(N, C, H, W)`, or a tuple of such batches.
        target: Captum target, or ``None`` for the predicted class.
        additional_forward_args: passed to ``forward_func`` after ``inputs``.
        device_ids: device ids of a ``DataParallel`` model (defaults to its own ``device_ids``).
        attribute_to_layer_input: use the layer's input instead of its output.
        relu_attributions: apply the ReLU.
        attr_dim_summation: sum over channels.
        target_check: ``(target, batch_size)`` to range-check against the number of classes once it is known
            (before the backward pass), for callers that expand the user's target.
        reshape_transform: applied to activations and gradients before the Grad-CAM maths (token layouts).
        grad_kwargs: passed to ``torch.autograd.grad`` (as in Captum's ``LayerGradCam``).

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
        output = logits_of(forward_func(*args))
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
        record["probabilities"] = select_targets(probabilities, chosen)
        return select_targets(output, chosen)

    if device_ids is None:
        device_ids = getattr(forward_func, "device_ids", None)
    with torch.enable_grad():
        gradients, activations = compute_layer_gradients_and_eval(
            forward_selected,
            layer,
            inputs if isinstance(inputs, tuple) else (inputs,),
            None,
            format_additional_forward_args(additional_forward_args),
            device_ids=device_ids,
            attribute_to_layer_input=attribute_to_layer_input,
            grad_kwargs=grad_kwargs,
        )
    pairs = [(activation.detach(), gradient.detach()) for activation, gradient in zip(activations, gradients)]
    if reshape_transform is not None:
        pairs = [(reshape_transform(a), reshape_transform(g)) for a, g in pairs]
    maps = tuple(grad_cam_map(a, g, relu_attributions, attr_dim_summation) for a, g in pairs)
    return maps, record["probabilities"], record.get("predicted")


def select_target(target: TargetType, image_index: Tensor) -> TargetType:
    """The target of each styled copy from the target of its image (Captum's conventions)."""
    if isinstance(target, Tensor) and target.numel() > 1:
        return target.reshape(-1)[image_index.to(target.device)]
    if isinstance(target, list):
        return [target[i] for i in image_index.tolist()]
    return target


def select_forward_args(args: tuple[Any, ...] | None, image_index: Tensor, batch_size: int) -> tuple[Any, ...] | None:
    """Per-copy additional forward arguments: tensors with a batch dimension follow their image."""
    if args is None:
        return None
    return tuple(
        a[image_index.to(a.device)] if isinstance(a, Tensor) and a.dim() > 0 and a.shape[0] == batch_size else a
        for a in args
    )


def predicted_classes(forward_func: Any, images: Sequence[Tensor], args: tuple[Any, ...] | None) -> Tensor:
    """Class predicted on the (unstyled) images: one no-grad forward pass of the batch."""
    with torch.no_grad():
        output = logits_of(forward_func(*images, *(args or ())))
    if not isinstance(output, Tensor) or output.dim() != 2:
        shape = tuple(output.shape) if isinstance(output, Tensor) else type(output).__name__
        raise ValueError(f"target=None needs forward_func to return scores of shape (N, K), got {shape}")
    return output.argmax(dim=1)


__all__ = [
    "PixelSpace",
    "bank_size",
    "check_augment",
    "check_forward_and_layer",
    "check_pixels",
    "check_style",
    "default_augment",
    "format_images",
    "grad_cam_and_probabilities",
    "model_guard",
    "predicted_classes",
    "replay_style",
    "resolve_styles",
    "select_forward_args",
    "select_target",
    "styled_copies",
]
