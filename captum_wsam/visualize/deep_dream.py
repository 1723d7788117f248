"""DeepDream: amplify what a layer already sees in an image, octave by octave.

Mordvintsev, Olah & Tyka (2015), "Inceptionism: Going Deeper into Neural Networks", Google Research Blog (and the
accompanying ``deepdream`` notebook). Gradient ascent on the image of

.. math:: f(x) = \\tfrac{1}{2} \\operatorname{mean} \\, A_\\ell(x)^2, \\qquad \\nabla_{A_\\ell} f \\propto A_\\ell

(the lecture's "set the gradient of the layer equal to its activation"), run on an image pyramid: the image is
processed from the coarsest octave to the finest, carrying the amplified detail :math:`x - x_{octave}` up each octave,
with random jitter and normalized gradient steps (:mod:`captum_wsam.visualize.functional`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import check_images, check_in_range, check_positive_int, check_submodule, check_type
from .._state import eval_mode, frozen_parameters, untouched
from ._capture import forward_capture
from .activation_maximization import _check_value_range
from .functional import jitter as roll_image
from .functional import normalized_ascent_step


def octave_sizes(size: tuple[int, int], octaves: int, octave_scale: float) -> list[tuple[int, int]]:
    """Image sizes of the pyramid, finest first: :math:`\\lfloor (H, W) / s^k \\rceil`, :math:`k = 0 \\dots n-1`.

    Examples:
        >>> octave_sizes((32, 32), 3, 1.4)
        [(32, 32), (23, 23), (16, 16)]
    """
    check_positive_int(octaves, "octaves")
    check_in_range(octave_scale, "octave_scale", 1.0, None, low_inclusive=False)
    return [(max(1, round(size[0] / octave_scale**k)), max(1, round(size[1] / octave_scale**k)))
            for k in range(octaves)]


def deep_dream(
    model: nn.Module,
    image: Tensor,
    layer: nn.Module,
    steps: int = 10,
    octaves: int = 3,
    octave_scale: float = 1.4,
    lr: float = 0.02,
    jitter: int = 2,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    progress: bool = True,
) -> Tensor:
    """DeepDream ``image`` at ``layer`` (Mordvintsev et al. 2015).

    For octaves :math:`k = n-1 \\dots 0` (coarse to fine), with :math:`x^{(k)}` the image resized to octave :math:`k`
    and :math:`d` the detail carried up (upsampled bilinearly, 0 at the coarsest octave):

    .. math::
        x \\leftarrow x^{(k)} + d, \\quad
        x \\leftarrow \\operatorname{clip}\\Big(x + \\eta \\frac{J^{-1}\\nabla f(Jx)}{\\operatorname{mean}|\\nabla f|}
        \\Big) \\; (\\text{steps times}), \\quad d \\leftarrow x - x^{(k)}

    with :math:`f = \\frac12 \\operatorname{mean} A_\\ell^2` per sample and :math:`J` a random shift.

    Args:
        model: the network; run in eval mode with frozen parameters, left as found.
        image: :math:`(B, C, H, W)` images in ``value_range``; not modified.
        layer: submodule whose activations are amplified.
        steps: ascent steps per octave.
        octaves: number of pyramid levels (the coarsest must still be a valid input of ``model``).
        octave_scale: size ratio between consecutive octaves (> 1).
        lr: step size in pixel units (the gradient is normalized per sample).
        jitter: maximum random shift in pixels (0 disables).
        value_range: pixel range the image is clipped to.
        seed: seed of the jitter shifts.
        progress: show a tqdm bar over all steps.

    Returns:
        :math:`(B, C, H, W)` dreamed images, same dtype and device as ``image``.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> deep_dream(model, torch.rand(1, 3, 32, 32), model.block2, steps=2, progress=False).shape
        torch.Size([1, 3, 32, 32])
    """
    check_type(model, "model", nn.Module)
    check_images(image, "image")
    check_submodule(layer, model, "layer")
    check_positive_int(steps, "steps")
    check_positive_int(jitter, "jitter", allow_zero=True)
    check_positive_int(seed, "seed", allow_zero=True)
    check_in_range(lr, "lr", 0.0, None, low_inclusive=False)
    low, high = _check_value_range(value_range)
    sizes = octave_sizes(tuple(image.shape[-2:]), octaves, octave_scale)
    generator = torch.Generator().manual_seed(seed)
    shifts = torch.randint(-jitter, jitter + 1, (octaves * steps, 2), generator=generator).tolist()

    base = image.detach()
    detail = torch.zeros_like(base)
    bar = tqdm(total=octaves * steps, desc="deep dream", disable=not progress, leave=False)
    with untouched(model, image), eval_mode(model), frozen_parameters(model):
        for k, size in enumerate(reversed(sizes)):
            octave_base = base if size == tuple(base.shape[-2:]) else F.interpolate(
                base, size=size, mode="bilinear", align_corners=False)
            detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
            dream = (octave_base + detail).clamp(low, high)
            for step in range(steps):
                dy, dx = shifts[k * steps + step]
                shifted = roll_image(dream, (dy, dx)).detach().requires_grad_(True)
                _, activation = forward_capture(model, layer, shifted)
                objective = 0.5 * activation.pow(2).flatten(1).mean(1).sum()
                (gradient,) = torch.autograd.grad(objective, shifted)
                with torch.no_grad():
                    dream = normalized_ascent_step(dream, roll_image(gradient, (-dy, -dx)), lr).clamp(low, high)
                bar.update()
            detail = dream - octave_base
    bar.close()
    return dream.detach()


__all__ = ["deep_dream", "octave_sizes"]
