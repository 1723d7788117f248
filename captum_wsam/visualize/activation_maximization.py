"""Activation maximization: synthesize the image a unit (or class) responds to most, by regularized gradient ascent.

Yosinski, Clune, Nguyen, Fuchs & Lipson (2015), "Understanding Neural Networks Through Deep Visualization", ICML Deep
Learning Workshop, arXiv:1506.06579, Sec. 3 (the IN5400 lecture's eq. 1,
:math:`I^* = \\arg\\max_I s_y(I) - R(I)`): starting from small noise, repeat

.. math:: x \\leftarrow r_\\theta\\big(x + \\eta \\, \\nabla_x f(x)\\big)

with :math:`f` a class logit or the mean activation of one channel of a layer, and :math:`r_\\theta` L2 decay, a
Gaussian blur every ``blur_every`` steps and (optionally) clipping of small-norm pixels; the gradient is taken at a
randomly jittered copy of the image (Mordvintsev et al. 2015). The regularizers are in
:mod:`captum_wsam.visualize.functional`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import check_in_range, check_positive_int, check_submodule, check_type
from .._state import eval_mode, frozen_parameters, untouched
from ._capture import forward_capture
from .functional import clip_small_norm, gaussian_blur, l2_decay, normalized_ascent_step
from .functional import jitter as roll_image


@dataclass(frozen=True)
class ActivationMaximizationResult:
    """Outcome of :func:`activation_maximization`.

    Attributes:
        image: :math:`(1, C, H, W)` synthesized image in ``value_range``.
        history: :math:`(steps,)` objective :math:`f` at each step (at the jittered image the gradient was taken at).
    """

    image: Tensor
    history: Tensor


def _objective(model: nn.Module, layer: nn.Module | None, index: int, image: Tensor) -> Tensor:
    output, activation = forward_capture(model, layer, image)
    if layer is None:
        return output[:, index].sum()
    if activation.dim() < 2 or index >= activation.shape[1]:
        raise ValueError(f"channel must index dim 1 of the layer output {tuple(activation.shape)}, got {index}")
    return activation[:, index].mean()


def activation_maximization(
    model: nn.Module,
    target: int | None = None,
    layer: nn.Module | None = None,
    channel: int | None = None,
    steps: int = 100,
    lr: float = 0.05,
    l2: float = 1e-3,
    blur_every: int = 4,
    blur_sigma: float = 0.5,
    jitter: int = 2,
    norm_percentile: float | None = None,
    size: tuple[int, int] = (32, 32),
    channels: int = 3,
    init_std: float = 0.05,
    value_range: tuple[float, float] = (0.0, 1.0),
    seed: int = 0,
    progress: bool = True,
) -> ActivationMaximizationResult:
    """Regularized gradient ascent from noise toward a class logit or a channel of a layer (Yosinski et al. 2015).

    .. math::
        x_{t+1} = \\operatorname{clip}\\Big(B_t\\big(c + (1 - \\lambda_2)
        (x_t + \\eta \\, \\tilde g_t - c)\\big)\\Big),
        \\quad \\tilde g_t = \\frac{J_t^{-1}\\nabla f(J_t x_t)}{\\operatorname{mean}|\\nabla f|}

    with :math:`J_t` a random circular shift of at most ``jitter`` pixels, :math:`B_t` a Gaussian blur on every
    ``blur_every``-th step, :math:`c` the middle of ``value_range``, and :math:`f` the logit ``target`` or the mean of
    ``channel`` of ``layer``'s output.

    Args:
        model: classifier; run in eval mode with frozen parameters, left as found.
        target: class whose logit is maximized (give either ``target`` or ``layer`` and ``channel``).
        layer: submodule whose ``channel`` is maximized instead.
        channel: channel of ``layer``'s output.
        steps: ascent steps.
        lr: step size :math:`\\eta` in pixel units (the gradient is normalized).
        l2: L2 decay :math:`\\lambda_2` per step.
        blur_every: blur every this many steps (0 disables).
        blur_sigma: Gaussian blur width.
        jitter: maximum shift in pixels (0 disables).
        norm_percentile: clip pixels with a channel norm below this percentile every step (``None`` disables).
        size: :math:`(H, W)` of the image.
        channels: :math:`C` of the image.
        init_std: standard deviation of the initial noise around :math:`c`.
        value_range: pixel range the image is clipped to.
        seed: seed of the initial noise and of the jitter shifts.
        progress: show a tqdm bar.

    Returns:
        An :class:`ActivationMaximizationResult` (``image`` :math:`(1, C, H, W)`, ``history`` :math:`(steps,)`).

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> result = activation_maximization(SmallCNN(width=4, depth=2), target=1, steps=5, progress=False)
        >>> result.image.shape, result.history.shape
        (torch.Size([1, 3, 32, 32]), torch.Size([5]))
    """
    check_type(model, "model", nn.Module)
    if (target is None) == (layer is None):
        raise ValueError(f"give either target (a class) or layer and channel, got target={target!r}, layer={layer!r}")
    if layer is not None:
        check_submodule(layer, model, "layer")
        if channel is None:
            raise ValueError("channel must be given with layer, got None")
        check_positive_int(channel, "channel", allow_zero=True)
    else:
        check_positive_int(target, "target", allow_zero=True)
        if channel is not None:
            raise ValueError(f"channel is only used with layer, got channel={channel!r} and layer=None")
    for value, name in ((steps, "steps"), (channels, "channels")):
        check_positive_int(value, name)
    for value, name in ((blur_every, "blur_every"), (jitter, "jitter"), (seed, "seed")):
        check_positive_int(value, name, allow_zero=True)
    check_in_range(lr, "lr", 0.0, None, low_inclusive=False)
    check_in_range(l2, "l2", 0.0, 1.0, high_inclusive=False)
    check_in_range(blur_sigma, "blur_sigma", 0.0, None, low_inclusive=False)
    check_in_range(init_std, "init_std", 0.0, None)
    if norm_percentile is not None:
        check_in_range(norm_percentile, "norm_percentile", 0.0, 100.0)
    height, width = _check_size(size)
    low, high = _check_value_range(value_range)
    center = (low + high) / 2

    generator = torch.Generator().manual_seed(seed)
    device = next(model.parameters()).device if any(True for _ in model.parameters()) else torch.device("cpu")
    noise = torch.randn(1, channels, height, width, generator=generator)
    shifts = torch.randint(-jitter, jitter + 1, (steps, 2), generator=generator).tolist()
    image = (center + init_std * noise).clamp(low, high).to(device)
    index = target if layer is None else channel
    history = []
    with untouched(model), eval_mode(model), frozen_parameters(model):
        with torch.no_grad():
            logits = model(image)
        if layer is None and not 0 <= index < logits.shape[1]:
            raise ValueError(f"target must lie in [0, {logits.shape[1] - 1}], got {index}")
        for step in tqdm(range(steps), desc="activation maximization", disable=not progress, leave=False):
            dy, dx = shifts[step]
            shifted = roll_image(image, (dy, dx)).detach().requires_grad_(True)
            value = _objective(model, layer, index, shifted)
            (gradient,) = torch.autograd.grad(value, shifted)
            gradient = roll_image(gradient, (-dy, -dx))
            with torch.no_grad():
                image = normalized_ascent_step(image, gradient, lr)
                image = l2_decay(image, l2, center)
                if blur_every and (step + 1) % blur_every == 0:
                    image = gaussian_blur(image, blur_sigma)
                if norm_percentile is not None:
                    image = clip_small_norm(image, norm_percentile, center)
                image = image.clamp(low, high)
            history.append(value.item())
    return ActivationMaximizationResult(image=image.detach(), history=torch.tensor(history))


def _check_size(size: Any) -> tuple[int, int]:
    if isinstance(size, int) and not isinstance(size, bool):
        size = (size, size)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"size must be an int or an (H, W) pair, got {size!r}")
    for side in size:
        check_positive_int(side, "size")
    return int(size[0]), int(size[1])


def _check_value_range(value_range: Any) -> tuple[float, float]:
    if not isinstance(value_range, (tuple, list)) or len(value_range) != 2:
        raise TypeError(f"value_range must be a (low, high) pair, got {value_range!r}")
    low, high = value_range
    check_in_range(low, "value_range[0]")
    check_in_range(high, "value_range[1]")
    if not low < high:
        raise ValueError(f"value_range must satisfy low < high, got {tuple(value_range)!r}")
    return float(low), float(high)


def plot_activation_maximization(result: ActivationMaximizationResult, title: str = "") -> Any:
    """Show the synthesized image and the objective per step side by side.

    Returns:
        The matplotlib ``Figure``.

    Examples:
        >>> result = ActivationMaximizationResult(torch.rand(1, 3, 8, 8), torch.arange(5.0))
        >>> len(plot_activation_maximization(result).axes)
        2
    """
    import matplotlib.pyplot as plt

    check_type(result, "result", ActivationMaximizationResult)
    fig, (left, right) = plt.subplots(1, 2, figsize=(6, 2.6))
    image = result.image[0]
    image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-12)
    left.imshow(image.permute(1, 2, 0).squeeze(-1).cpu().numpy(), cmap="gray" if image.shape[0] == 1 else None)
    left.set_title(title, fontsize=8)
    left.axis("off")
    right.plot(result.history.tolist())
    right.set_xlabel("step")
    right.set_ylabel("objective")
    fig.tight_layout()
    return fig


__all__ = ["ActivationMaximizationResult", "activation_maximization", "plot_activation_maximization"]
