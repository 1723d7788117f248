"""The SAT family's shared core: saliency sources and scaling, sampled random draws, the SAT step.

P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD 2020,
arXiv:2006.07828. Official code: github.com/Puneet2000/SAT_ECML2020 (``attack.py``, ``gradcam.py``), read for the
branch magnitudes and the saliency scaling; no code was copied. The public attacks are in :mod:`.sat`.

Saliency scaling: ``"sign"`` :math:`s = \\operatorname{sign}(m)`; ``"minmax"`` (official)
:math:`s = (m - \\min m) / (\\max m - \\min m) \\in [0, 1]`; ``"minmax_signed"``
:math:`s = 2 (m - \\min m) / (\\max m - \\min m) - 1 \\in [-1, 1]`.
The SAT step: :math:`x' = \\operatorname{clip}_{[0,1]}(x + \\operatorname{clip}_{[-\\epsilon,\\epsilon]}(\\delta_0
- \\epsilon g))` (default) or :math:`\\operatorname{clip}_{[0,1]}(x + \\delta_0 - \\epsilon g)` (``official=True``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchattacks.attack import Attack

from .._checks import (
    check_choice,
    check_finite,
    check_images,
    check_in_range,
    check_tensor,
    check_type,
)
from .._state import eval_mode, untouched
from . import functional as SF
from ._base import ModelSafeMixin, check_eps, check_labels

SaliencySource = Any  # a Captum attribution (has ``attribute``) or a callable ``(images, labels) -> map``
SALIENCY_SCALINGS = ("sign", "minmax", "minmax_signed")


def minmax_unit_saliency(saliency: Tensor, eps: float = 1e-12) -> Tensor:
    """Per-sample min–max scaling of a saliency map to :math:`[0, 1]`, as the official code scales CAM/SmoothGrad/IG.

    .. math:: s_i = \\frac{m_i - \\min_j m_j}{\\max_j m_j - \\min_j m_j}

    (min and max over all elements of one sample; a constant map, where the official code divides 0 by 0, gives 0).

    Args:
        saliency: map :math:`m`, :math:`(B, \\ldots)`.
        eps: guard against a zero range.

    Returns:
        Same shape, values in :math:`[0, 1]`.

    Examples:
        >>> s = minmax_unit_saliency(torch.tensor([[0.0, 1.0, 4.0], [2.0, 2.0, 2.0]]))
        >>> s.tolist()
        [[0.0, 0.25, 1.0], [0.0, 0.0, 0.0]]
    """
    flat = saliency.reshape(saliency.shape[0], -1)
    low = flat.min(dim=1, keepdim=True).values
    span = flat.max(dim=1, keepdim=True).values - low
    scaled = torch.where(span > eps, (flat - low) / span.clamp_min(eps), torch.zeros_like(flat))
    return scaled.reshape(saliency.shape)


def sat_perturb_unprojected(images: Tensor, direction: Tensor, eps: float, start: Tensor | None = None) -> Tensor:
    """The official PGD-SAT / TRADES-SAT step: a full :math:`\\epsilon` step from the start, no projection.

    .. math:: x' = \\operatorname{clip}_{[0,1]}(x + \\delta_0 - \\epsilon g), \\qquad
              \\|x' - x\\|_\\infty \\le \\|\\delta_0\\|_\\infty + \\epsilon

    (:math:`\\le 2\\epsilon` with PGD-SAT's uniform start; TRADES-SAT has :math:`\\delta_0 = 0`).

    Args:
        images: :math:`x` in [0, 1], :math:`(B, C, H, W)`.
        direction: :math:`g`, broadcastable to ``images``.
        eps: :math:`\\epsilon \\ge 0`.
        start: optional :math:`\\delta_0`, shape of ``images`` (``None``: 0).

    Returns:
        :math:`x'`, shape of ``images``.

    Examples:
        >>> x = torch.full((1, 1, 1, 2), 0.5)
        >>> out = sat_perturb_unprojected(x, torch.ones(1, 1, 1, 2), 0.1, torch.tensor([-0.1, 0.1]).view(1, 1, 1, 2))
        >>> [round(v, 4) for v in out.flatten().tolist()]
        [0.3, 0.5]
    """
    shifted = images - eps * direction if start is None else images + start - eps * direction
    return shifted.clamp(0, 1)


@dataclass(frozen=True)
class SATParams:
    """The random draws of one SAT, PGD-SAT or TRADES-SAT call (sample with ``sample_params``, then apply).

    .. math:: \\text{branch} \\sim q, \\quad \\text{use}_i = [u_i < p_t], \\quad z_i \\in \\{-1, 1\\}, \\quad \\delta_0

    Attributes:
        branch: ``"sat"`` (the saliency step), ``"pgd"`` (PGD-SAT's PGD) or ``"trades"`` (TRADES-SAT's KL PGD).
        use_saliency: SAT branch only: bool, where the direction follows the saliency, :math:`(B, C, H, W)`.
        signs: SAT branch only: the random signs :math:`z` elsewhere, :math:`(B, C, H, W)`.
        start: :math:`\\delta_0`: the uniform start in :math:`[-\\epsilon, \\epsilon]` (PGD-SAT; TRADES-SAT's SAT branch
            unless ``official``), :math:`0.001\\,\\mathcal{N}(0, I)` (TRADES branch), or ``None`` (plain SAT;
            official TRADES-SAT's SAT branch).

    Examples:
        >>> from captum_wsam.attacks import PGDSAT
        >>> from captum_wsam.models import SmallCNN
        >>> atk = PGDSAT(SmallCNN(width=4, depth=2).eval(), generator=torch.Generator().manual_seed(0))
        >>> images, labels = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
        >>> params = atk.sample_params(images)
        >>> params.branch in ("sat", "pgd"), atk(images, labels, params=params).shape
        (True, torch.Size([2, 3, 32, 32]))
    """

    branch: str
    use_saliency: Tensor | None = None
    signs: Tensor | None = None
    start: Tensor | None = None


class _SATBase(ModelSafeMixin, Attack):
    """Saliency handling shared by SAT, PGD-SAT and TRADES-SAT (validation, saliency source, SAT step)."""

    _branches: tuple[str, ...] = ("sat",)

    def __init__(
        self,
        name: str,
        model: nn.Module,
        eps: float,
        a: float,
        epoch: float,
        saliency: SaliencySource | None,
        saliency_scaling: str,
        saliency_kwargs: dict[str, Any] | None,
        generator: torch.Generator | None,
        official: bool = False,
    ) -> None:
        check_type(model, "model", nn.Module)
        eps = check_eps(eps)
        check_in_range(a, "a", 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_in_range(epoch, "epoch", 0.0, None)
        check_choice(saliency_scaling, "saliency_scaling", SALIENCY_SCALINGS)
        check_type(official, "official", bool)
        if saliency is not None and not (hasattr(saliency, "attribute") or callable(saliency)):
            raise TypeError(
                f"saliency must be a Captum attribution or a callable (images, labels) -> map, got {saliency!r}"
            )
        if generator is not None:
            check_type(generator, "generator", torch.Generator)
        super().__init__(name, model)
        self.eps = eps
        self.a = float(a)
        self.epoch = float(epoch)
        self.saliency = saliency
        self.saliency_scaling = saliency_scaling
        self.saliency_kwargs = dict(saliency_kwargs or {})
        self.generator = generator
        self.official = official

    @property
    def p(self) -> float:
        """Current probability :math:`p_t = 1 - a^{t/10}` that an element follows the saliency."""
        return SF.sat_probability(self.epoch, self.a)

    def set_epoch(self, epoch: float) -> None:
        """Set the training epoch :math:`t` of the :math:`p_t` schedule (the trainers call this every epoch)."""
        check_in_range(epoch, "epoch", 0.0, None)
        self.epoch = float(epoch)

    # -------------------------------------------------------------------------------------------------- sampling
    def _sat_draws(self, images: Tensor, start: Tensor | None) -> SATParams:
        use, signs = SF.sample_sat_params(images.shape, self.p, self.generator, images.device)
        return SATParams("sat", use, signs.to(images.dtype), start)

    def _uniform_start(self, images: Tensor) -> Tensor:
        noise = torch.rand(images.shape, generator=self.generator).to(images.device, images.dtype)
        return (2 * noise - 1) * self.eps

    def _coin(self, probability: float) -> bool:
        return bool(torch.rand((), generator=self.generator) < probability)

    def _check_params(self, params: Any, images: Tensor) -> SATParams:
        check_type(params, "params", SATParams)
        check_choice(params.branch, "params.branch", self._branches)
        needed = ("use_saliency", "signs") if params.branch == "sat" else ("start",)
        for field_name in needed:
            if getattr(params, field_name) is None:
                raise ValueError(f"params.{field_name} is needed by the {params.branch!r} branch, got None")
        for field_name in ("use_saliency", "signs", "start"):
            value = getattr(params, field_name)
            if value is not None:
                check_type(value, f"params.{field_name}", Tensor)
                if value.shape != images.shape:
                    raise ValueError(
                        f"params.{field_name} must have the shape of images {tuple(images.shape)}, "
                        f"got {tuple(value.shape)}"
                    )
                check_finite(value, f"params.{field_name}")
        return params

    # -------------------------------------------------------------------------------------------------- saliency
    def _gradient_saliency(self, images: Tensor, labels: Tensor) -> Tensor:
        # Saliency of Simonyan et al. (Captum's ``Saliency(abs=False)``) on the attacked model: d logit_y / d x.
        x = images.clone().requires_grad_(True)
        logits = self.get_logits(x)
        check_labels(labels, images.shape[0], logits.shape[1])
        score = logits.gather(1, labels[:, None]).sum()
        return torch.autograd.grad(score, x)[0]

    def _teacher_saliency(self, images: Tensor, labels: Tensor) -> Tensor:
        source = self.saliency
        teacher = getattr(source, "forward_func", None)
        with eval_mode(teacher), untouched(teacher):
            if hasattr(source, "attribute"):
                result = source.attribute(images, target=labels, **self.saliency_kwargs)
            else:
                result = source(images, labels, **self.saliency_kwargs)
        if isinstance(result, tuple):
            result = result[0]
        check_tensor(result, "saliency map", ndim=4)
        check_finite(result, "saliency map")
        if result.shape[-2:] != images.shape[-2:]:  # layer attributions (CAMs) are upsampled to the image
            result = F.interpolate(result, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return result.detach().to(images.dtype)

    def _scale(self, saliency_map: Tensor) -> Tensor:
        if self.saliency_scaling == "sign":
            return SF.threshold_saliency(saliency_map)
        if self.saliency_scaling == "minmax":
            return minmax_unit_saliency(saliency_map)
        return SF.minmax_saliency(saliency_map)

    def _saliency(
        self,
        images: Tensor,
        labels: Tensor | None,
        masks: Tensor | None,
        boxes: Tensor | None,
        saliency_maps: Tensor | None,
    ) -> tuple[Tensor, float]:
        """Saliency :math:`s` and the sign of the step (-1: away from the class, +1: towards a target class)."""
        batch, _, height, width = images.shape
        given = [n for n, v in (("masks", masks), ("boxes", boxes), ("saliency_maps", saliency_maps)) if v is not None]
        if len(given) > 1:
            raise ValueError(f"pass at most one of masks, boxes and saliency_maps, got {', '.join(given)}")
        if (masks is not None or boxes is not None) and self.targeted:
            raise ValueError("weak saliency from masks or boxes has no target class; use the default attack mode")
        if masks is not None:
            check_tensor(masks, "masks", ndim=(3, 4))
            masks = masks if masks.dim() == 4 else masks[:, None]
            if masks.shape[0] != batch or masks.shape[1] != 1 or masks.shape[-2:] != (height, width):
                raise ValueError(f"masks must have shape ({batch}, 1, {height}, {width}), got {tuple(masks.shape)}")
            check_finite(masks, "masks")
            return SF.weak_saliency(masks.to(images.device)), -1.0
        if boxes is not None:
            check_tensor(boxes, "boxes", ndim=2)
            if boxes.shape != (batch, 4):
                raise ValueError(f"boxes must have shape ({batch}, 4), got {tuple(boxes.shape)}")
            check_finite(boxes, "boxes")
            return SF.weak_saliency(SF.boxes_to_masks(boxes.to(images.device).float(), height, width)), -1.0
        if saliency_maps is not None:
            check_tensor(saliency_maps, "saliency_maps", ndim=4, floating=True)
            if saliency_maps.shape[0] != batch or saliency_maps.shape[-2:] != (height, width):
                raise ValueError(
                    f"saliency_maps must have shape ({batch}, 1 or C, {height}, {width}), "
                    f"got {tuple(saliency_maps.shape)}"
                )
            check_finite(saliency_maps, "saliency_maps")
            return self._scale(saliency_maps.to(images.device, images.dtype)), -1.0
        if labels is None:
            with torch.no_grad():
                labels = self.get_logits(images).argmax(1)
        sign = -1.0
        if self.targeted:
            labels, sign = self.get_target_label(images, labels), 1.0
        if self.saliency is None:
            saliency_map = self._gradient_saliency(images, labels)
        else:
            saliency_map = self._teacher_saliency(images, labels)
        return self._scale(saliency_map), sign

    def _sat_images(self, images: Tensor, saliency: Tensor, sign: float, params: SATParams) -> Tensor:
        assert params.use_saliency is not None and params.signs is not None  # checked by _check_params
        signs = params.signs.to(images.device, images.dtype)
        direction = -sign * SF.sat_direction(saliency, params.use_saliency.to(images.device), signs)
        start = None if params.start is None else params.start.to(images.device, images.dtype)
        if self.official:
            return sat_perturb_unprojected(images, direction, self.eps, start)
        return SF.sat_perturb(images, direction, self.eps, start)

    def _pgd(self, images: Tensor, start: Tensor, steps: int, alpha: float, loss: Callable[[Tensor], Tensor]) -> Tensor:
        start = start.to(images.device, images.dtype)
        # the official code takes its first gradient at the unclipped start x + delta_0
        adv = images + start if self.official else SF.project_linf(images + start, images, self.eps)
        for _ in range(steps):
            adv.requires_grad_(True)
            grad = torch.autograd.grad(loss(self.get_logits(adv)), adv)[0]
            adv = SF.project_linf(adv.detach() + alpha * grad.sign(), images, self.eps)
        return adv.detach()

    def sample_params(self, images: Tensor) -> SATParams:
        """Draw the branch and every random part of one call for ``images`` (from ``generator``, in a fixed order).

        Args:
            images: the batch the parameters are for (only its shape, device and dtype are read).

        Returns:
            A :class:`SATParams`; pass it as ``params=`` to apply it (same params, same images: same output).
        """
        check_images(images, "images")
        return self._sample(images)

    def _sample(self, images: Tensor) -> SATParams:
        raise NotImplementedError

    @property
    def last_branch(self) -> str:
        """Removed (it was hidden state written by every call): read ``params.branch`` of :meth:`sample_params`."""
        raise AttributeError(
            f"{type(self).__name__}.last_branch was removed: draw params = attack.sample_params(images), call "
            "attack(images, labels, params=params) and read params.branch"
        )



__all__ = ["SALIENCY_SCALINGS", "SATParams", "SaliencySource", "minmax_unit_saliency", "sat_perturb_unprojected"]
