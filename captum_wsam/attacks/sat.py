"""Saliency-based adversarial training attacks: SAT, PGD-SAT and TRADES-SAT as ``torchattacks`` attacks.

P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD 2020,
arXiv:2006.07828.

The SAT perturbation replaces the adversarial search by a saliency map :math:`s` (the gradient of the true-class
logit thresholded by sign, a min–max scaled CAM/SmoothGrad map, or a weak saliency from masks/boxes):

.. math::

    g_i = \\begin{cases} s_i & \\text{with probability } p_t = 1 - a^{t/10} \\\\
    z_i \\sim \\mathcal{U}\\{-1, 1\\} & \\text{otherwise} \\end{cases}, \\qquad
    x' = \\operatorname{clip}_{[0,1]}(x - \\epsilon g)

PGD-SAT and TRADES-SAT draw, per batch, the SAT perturbation (after a uniform random start) with probability
``sat_prob`` (0.5) and otherwise a 5-step PGD (cross-entropy, Madry et al. 2018, arXiv:1706.06083) or TRADES-KL PGD
(Zhang et al. 2019, arXiv:1901.08573) perturbation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchattacks.attack import Attack

from .._checks import check_choice, check_in_range, check_positive_int, check_tensor, check_type
from .._state import eval_mode, untouched
from . import functional as SF
from ._base import ModelSafeMixin, check_eps, check_labels

SaliencySource = Any  # a Captum attribution (has ``attribute``) or a callable ``(images, labels) -> map``


class _SATBase(ModelSafeMixin, Attack):
    """Saliency handling shared by SAT, PGD-SAT and TRADES-SAT (validation, saliency source, SAT step)."""

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
    ) -> None:
        check_type(model, "model", nn.Module)
        eps = check_eps(eps)
        check_in_range(a, "a", 0.0, 1.0, low_inclusive=False, high_inclusive=False)
        check_in_range(epoch, "epoch", 0.0, None)
        check_choice(saliency_scaling, "saliency_scaling", ("sign", "minmax"))
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

    @property
    def p(self) -> float:
        """Current probability :math:`p_t = 1 - a^{t/10}` that an element follows the saliency."""
        return SF.sat_probability(self.epoch, self.a)

    def set_epoch(self, epoch: float) -> None:
        """Set the training epoch :math:`t` of the :math:`p_t` schedule (the trainers call this every epoch)."""
        check_in_range(epoch, "epoch", 0.0, None)
        self.epoch = float(epoch)

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
        if result.shape[-2:] != images.shape[-2:]:  # layer attributions (CAMs) are upsampled to the image
            result = F.interpolate(result, size=images.shape[-2:], mode="bilinear", align_corners=False)
        return result.detach().to(images.dtype)

    def _scale(self, saliency_map: Tensor) -> Tensor:
        if self.saliency_scaling == "sign":
            return SF.threshold_saliency(saliency_map)
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
            return SF.weak_saliency(masks.to(images.device)), -1.0
        if boxes is not None:
            check_tensor(boxes, "boxes", ndim=2)
            if boxes.shape != (batch, 4):
                raise ValueError(f"boxes must have shape ({batch}, 4), got {tuple(boxes.shape)}")
            return SF.weak_saliency(SF.boxes_to_masks(boxes.to(images.device).float(), height, width)), -1.0
        if saliency_maps is not None:
            check_tensor(saliency_maps, "saliency_maps", ndim=4, floating=True)
            if saliency_maps.shape[0] != batch or saliency_maps.shape[-2:] != (height, width):
                raise ValueError(
                    f"saliency_maps must have shape ({batch}, 1 or C, {height}, {width}), "
                    f"got {tuple(saliency_maps.shape)}"
                )
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

    def _sat_images(self, images: Tensor, saliency: Tensor, sign: float, start: Tensor | None) -> Tensor:
        use, signs = SF.sample_sat_params(images.shape, self.p, self.generator, images.device)
        direction = SF.sat_direction(saliency, use, signs.to(images.dtype))
        return SF.sat_perturb(images, -sign * direction, self.eps, start)

    def _uniform_start(self, images: Tensor) -> Tensor:
        noise = torch.rand(images.shape, generator=self.generator).to(images.device, images.dtype)
        return (2 * noise - 1) * self.eps

    def _coin(self, probability: float) -> bool:
        return bool(torch.rand((), generator=self.generator) < probability)

    def _pgd(self, images: Tensor, start: Tensor, steps: int, alpha: float, loss: Callable[[Tensor], Tensor]) -> Tensor:
        adv = SF.project_linf(images + start, images, self.eps)
        for _ in range(steps):
            adv.requires_grad_(True)
            grad = torch.autograd.grad(loss(self.get_logits(adv)), adv)[0]
            adv = SF.project_linf(adv.detach() + alpha * grad.sign(), images, self.eps)
        return adv.detach()


class SAT(_SATBase):
    """Saliency-based adversarial perturbation (Mangla et al. 2020): a saliency step instead of an adversarial search.

    .. math::

        x' = \\operatorname{clip}_{[0,1]}(x - \\epsilon g), \\quad g_i = s_i \\text{ w.p. } p_t = 1 - a^{t/10},
        \\text{ else } z_i \\sim \\mathcal{U}\\{-1, 1\\}

    Saliency sources, in order of precedence: ``masks=`` or ``boxes=`` given with the batch (weak saliency: +1 inside,
    −1 outside), ``saliency_maps=`` (precomputed, e.g. by a teacher offline), the ``saliency`` attribution given at
    construction (any Captum attribution on a teacher model, e.g. ``captum.attr.IntegratedGradients(teacher)`` or
    ``LayerGradCam`` (upsampled to the image)), and by default the gradient of the true-class logit of the attacked
    model itself (Captum's ``Saliency`` with ``abs=False``). Gradient maps are thresholded by sign, CAM/SmoothGrad
    maps should use ``saliency_scaling="minmax"``. In targeted mode the step goes towards the target class's saliency.

    Args:
        model: classifier returning logits on [0, 1] images (see ``set_normalization_used``).
        eps: :math:`\\epsilon \\ge 0` (default 8/255).
        a: base of the schedule :math:`p_t = 1 - a^{t/10}`, :math:`0 < a < 1` (default 0.6).
        epoch: current epoch :math:`t` (or call :meth:`set_epoch`).
        saliency: Captum attribution or callable ``(images, labels) -> map``; ``None``: the model's input gradient.
        saliency_scaling: ``"sign"`` (threshold to {−1, 0, 1}) or ``"minmax"`` (per-sample to [−1, 1]).
        saliency_kwargs: extra keyword arguments of ``saliency.attribute`` (e.g. ``{"baselines": 0.0}``).
        generator: optional CPU generator for the random parts (default: torch's global generator).

    Shape:
        - images: :math:`(B, C, H, W)` in [0, 1]; labels: :math:`(B,)`.
        - masks: :math:`(B, 1, H, W)` or :math:`(B, H, W)` bool; boxes: :math:`(B, 4)` ``(x_min, y_min, x_max,
          y_max)`` in pixels, max exclusive (as in ShapesTextures' ``info``).
        - output: :math:`(B, C, H, W)` with :math:`\\|x' - x\\|_\\infty \\le \\epsilon`, in [0, 1].

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2).eval()
        >>> images, labels = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
        >>> atk = SAT(model, eps=8 / 255, epoch=10, generator=torch.Generator().manual_seed(0))
        >>> adv = atk(images, labels)
        >>> adv.shape, bool((adv - images).abs().max() <= 8 / 255 + 1e-6)
        (torch.Size([2, 3, 32, 32]), True)
        >>> masks = torch.zeros(2, 1, 32, 32, dtype=torch.bool)
        >>> atk(images, labels, masks=masks).shape
        torch.Size([2, 3, 32, 32])
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        a: float = 0.6,
        epoch: float = 0,
        saliency: SaliencySource | None = None,
        saliency_scaling: str = "sign",
        saliency_kwargs: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__("SAT", model, eps, a, epoch, saliency, saliency_scaling, saliency_kwargs, generator)
        self.supported_mode = ["default", "targeted"]

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        boxes: Tensor | None = None,
        saliency_maps: Tensor | None = None,
    ) -> Tensor:
        """SAT images :math:`x'` for ``images`` (see the class docstring for the keyword arguments)."""
        images, labels = self._prepare(images, labels)
        saliency, sign = self._saliency(images, labels, masks, boxes, saliency_maps)
        return self._sat_images(images, saliency, sign, None).detach()


class PGDSAT(_SATBase):
    """PGD-SAT (Mangla et al. 2020): per batch, SAT after a random start with probability ``sat_prob``, else PGD.

    .. math::

        x' = \\begin{cases} \\operatorname{clip}_{[0,1]}\\big(x + \\operatorname{clip}_{[-\\epsilon,\\epsilon]}
        (\\delta_0 - \\epsilon g)\\big), \\; \\delta_0 \\sim \\mathcal{U}[-\\epsilon, \\epsilon]^d
        & \\text{w.p. } q \\\\
        \\mathrm{PGD}_{K}(x; \\epsilon, \\alpha) \\text{ on } \\mathrm{CE}(f(x'), y) & \\text{otherwise}
        \\end{cases}

    The branch taken by the last call is in :attr:`last_branch` (``"sat"`` or ``"pgd"``).

    Args:
        model: classifier returning logits.
        eps: :math:`\\epsilon \\ge 0` (default 8/255).
        alpha: PGD step size (default 2/255).
        steps: PGD steps :math:`K` (default 5).
        sat_prob: probability :math:`q` of the SAT branch (default 0.5).
        a: schedule base of :math:`p_t`.
        epoch: current epoch.
        saliency: as in :class:`SAT`.
        saliency_scaling: as in :class:`SAT`.
        saliency_kwargs: as in :class:`SAT`.
        generator: optional CPU generator for every random draw.

    Shape:
        As :class:`SAT` (``masks``/``boxes``/``saliency_maps`` are used by the SAT branch).

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> atk = PGDSAT(SmallCNN(width=4, depth=2).eval(), generator=torch.Generator().manual_seed(0))
        >>> images = torch.rand(2, 3, 32, 32)
        >>> adv = atk(images, torch.tensor([0, 1]))
        >>> bool((adv - images).abs().max() <= 8 / 255 + 1e-6), atk.last_branch in ("sat", "pgd")
        (True, True)
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 5,
        sat_prob: float = 0.5,
        a: float = 0.6,
        epoch: float = 0,
        saliency: SaliencySource | None = None,
        saliency_scaling: str = "sign",
        saliency_kwargs: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        check_in_range(alpha, "alpha", 0.0, None)
        check_positive_int(steps, "steps")
        check_in_range(sat_prob, "sat_prob", 0.0, 1.0)
        super().__init__("PGDSAT", model, eps, a, epoch, saliency, saliency_scaling, saliency_kwargs, generator)
        self.alpha, self.steps, self.sat_prob = float(alpha), steps, float(sat_prob)
        self.supported_mode = ["default", "targeted"]
        self.last_branch = ""

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        boxes: Tensor | None = None,
        saliency_maps: Tensor | None = None,
    ) -> Tensor:
        """PGD-SAT images :math:`x'` (one branch per call)."""
        images, labels = self._prepare(images, labels, require_labels=True)
        start = self._uniform_start(images)
        if self._coin(self.sat_prob):
            self.last_branch = "sat"
            saliency, sign = self._saliency(images, labels, masks, boxes, saliency_maps)
            return self._sat_images(images, saliency, sign, start).detach()
        self.last_branch = "pgd"
        target = self.get_target_label(images, labels) if self.targeted else labels
        direction = -1.0 if self.targeted else 1.0

        def loss(logits: Tensor) -> Tensor:
            check_labels(target, images.shape[0], logits.shape[1])
            return direction * F.cross_entropy(logits, target)

        return self._pgd(images, start, self.steps, self.alpha, loss)


class TRADESSAT(_SATBase):
    """TRADES-SAT (Mangla et al. 2020): per batch, SAT after a random start w.p. ``sat_prob``, else TRADES-KL PGD.

    .. math::

        x' = \\begin{cases} \\text{SAT after a uniform random start} & \\text{w.p. } q \\\\
        \\mathrm{PGD}_{K} \\text{ on } \\mathrm{KL}\\big(p(x) \\,\\|\\, p(x')\\big) \\text{ from }
        x + 0.001\\,\\mathcal{N}(0, I) & \\text{otherwise} \\end{cases}

    Train with :class:`~captum_wsam.train.AdversarialTrainer` ``loss="trades"``:
    :math:`\\mathrm{CE}(f(x), y) + \\beta \\, \\mathrm{KL}(p(x) \\| p(x'))`. The KL branch needs no labels (default
    attack mode only); the SAT branch uses them for the gradient saliency.

    Args:
        model: classifier returning logits.
        eps: :math:`\\epsilon \\ge 0` (default 8/255).
        alpha: PGD step size (default 2/255).
        steps: PGD steps :math:`K` (default 5).
        sat_prob: probability :math:`q` of the SAT branch (default 0.5).
        a: schedule base of :math:`p_t`.
        epoch: current epoch.
        saliency: as in :class:`SAT`.
        saliency_scaling: as in :class:`SAT`.
        saliency_kwargs: as in :class:`SAT`.
        generator: optional CPU generator for every random draw.

    Shape:
        As :class:`SAT`.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> atk = TRADESSAT(SmallCNN(width=4, depth=2).eval(), generator=torch.Generator().manual_seed(1))
        >>> images = torch.rand(2, 3, 32, 32)
        >>> adv = atk(images, torch.tensor([0, 1]))
        >>> bool((adv - images).abs().max() <= 8 / 255 + 1e-6), bool(adv.min() >= 0)
        (True, True)
    """

    def __init__(
        self,
        model: nn.Module,
        eps: float = 8 / 255,
        alpha: float = 2 / 255,
        steps: int = 5,
        sat_prob: float = 0.5,
        a: float = 0.6,
        epoch: float = 0,
        saliency: SaliencySource | None = None,
        saliency_scaling: str = "sign",
        saliency_kwargs: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        check_in_range(alpha, "alpha", 0.0, None)
        check_positive_int(steps, "steps")
        check_in_range(sat_prob, "sat_prob", 0.0, 1.0)
        super().__init__("TRADESSAT", model, eps, a, epoch, saliency, saliency_scaling, saliency_kwargs, generator)
        self.alpha, self.steps, self.sat_prob = float(alpha), steps, float(sat_prob)
        self.supported_mode = ["default"]
        self.last_branch = ""

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        boxes: Tensor | None = None,
        saliency_maps: Tensor | None = None,
    ) -> Tensor:
        """TRADES-SAT images :math:`x'` (one branch per call)."""
        images, labels = self._prepare(images, labels)
        if self._coin(self.sat_prob):
            self.last_branch = "sat"
            saliency, sign = self._saliency(images, labels, masks, boxes, saliency_maps)
            return self._sat_images(images, saliency, sign, self._uniform_start(images)).detach()
        self.last_branch = "trades"
        with torch.no_grad():
            clean_logits = self.get_logits(images)
        if labels is not None:
            check_labels(labels, images.shape[0], clean_logits.shape[1])
        clean_probs = clean_logits.softmax(1)
        noise = torch.randn(images.shape, generator=self.generator).to(images.device, images.dtype)

        def loss(logits: Tensor) -> Tensor:
            return F.kl_div(F.log_softmax(logits, dim=1), clean_probs, reduction="sum")

        return self._pgd(images, 0.001 * noise, self.steps, self.alpha, loss)


__all__ = ["PGDSAT", "SAT", "TRADESSAT"]
