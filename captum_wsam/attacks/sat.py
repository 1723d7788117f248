"""Saliency-based adversarial training attacks: SAT, PGD-SAT and TRADES-SAT as ``torchattacks`` attacks.

P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD 2020,
arXiv:2006.07828. Official code: github.com/Puneet2000/SAT_ECML2020 (``attack.py``, ``gradcam.py``), read for the
branch magnitudes and the saliency scaling; no code was copied.

The SAT perturbation replaces the adversarial search by a saliency map :math:`s` (the gradient of the true-class
logit thresholded by sign, a min–max scaled CAM/SmoothGrad/IG map, or a weak saliency from masks/boxes):

.. math::

    g_i = \\begin{cases} s_i & \\text{with probability } p_t = 1 - a^{t/10} \\\\
    z_i \\sim \\mathcal{U}\\{-1, 1\\} & \\text{otherwise} \\end{cases}, \\qquad
    x' = \\operatorname{clip}_{[0,1]}(x - \\epsilon g)

Saliency scaling (``saliency_scaling``): ``"sign"`` :math:`s = \\operatorname{sign}(m)` for gradient maps;
``"minmax"`` :math:`s = (m - \\min m) / (\\max m - \\min m) \\in [0, 1]` per sample, as the official code scales its
CAM, SmoothGrad and IG maps (the step only darkens salient pixels); ``"minmax_signed"``
:math:`s = 2 (m - \\min m) / (\\max m - \\min m) - 1 \\in [-1, 1]` (non-salient pixels are brightened too).

PGD-SAT and TRADES-SAT draw, per batch, the SAT perturbation with probability ``sat_prob`` (0.5) and otherwise a
5-step PGD (cross-entropy, Madry et al. 2018, arXiv:1706.06083) or TRADES-KL PGD (Zhang et al. 2019,
arXiv:1901.08573) perturbation. By default the SAT branch stays in the :math:`\\epsilon`-ball torchattacks users
expect (random start, then projection); ``official=True`` reproduces the official branch magnitudes: PGD-SAT adds the
uniform start and then a full :math:`\\epsilon` step without projection (:math:`\\|x' - x\\|_\\infty \\le 2\\epsilon`),
TRADES-SAT has no random start (:math:`|x' - x| = \\epsilon` wherever :math:`|g| = 1` and the clip to [0, 1] is not
active).

Randomness is sampled, then applied: :meth:`SAT.sample_params` returns a :class:`SATParams` (the branch and every
random draw), and ``attack(images, labels, params=params)`` applies it; the branch a call took is ``params.branch``.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_in_range, check_positive_int
from ._base import check_labels
from ._sat_core import (
    SALIENCY_SCALINGS,
    SaliencySource,
    SATParams,
    _SATBase,
    minmax_unit_saliency,
    sat_perturb_unprojected,
)


class SAT(_SATBase):
    """Saliency-based adversarial perturbation (Mangla et al. 2020): a saliency step instead of an adversarial search.

    .. math::

        x' = \\operatorname{clip}_{[0,1]}(x - \\epsilon g), \\quad g_i = s_i \\text{ w.p. } p_t = 1 - a^{t/10},
        \\text{ else } z_i \\sim \\mathcal{U}\\{-1, 1\\}

    Saliency sources, in order of precedence: ``masks=`` or ``boxes=`` given with the batch (weak saliency: +1 inside,
    −1 outside), ``saliency_maps=`` (precomputed, e.g. by a teacher offline), the ``saliency`` attribution given at
    construction (any Captum attribution on a teacher model, e.g. ``captum.attr.IntegratedGradients(teacher)`` or
    ``LayerGradCam`` (upsampled to the image)), and by default the gradient of the true-class logit of the attacked
    model itself (Captum's ``Saliency`` with ``abs=False``). Gradient maps are thresholded by sign
    (``saliency_scaling="sign"``, the default, as the official code does for guided backprop); CAM, SmoothGrad and IG
    maps are min–max scaled as in the official code with ``saliency_scaling="minmax"``:
    :math:`s = (m - \\min m) / (\\max m - \\min m) \\in [0, 1]` per sample, so the step only darkens salient pixels;
    ``"minmax_signed"`` scales to :math:`2 (m - \\min m) / (\\max m - \\min m) - 1 \\in [-1, 1]` (non-salient pixels
    are brightened). In targeted mode the step goes towards the target class's saliency.

    Args:
        model: classifier returning logits on [0, 1] images (see ``set_normalization_used``).
        eps: :math:`\\epsilon \\ge 0` (default 8/255).
        a: base of the schedule :math:`p_t = 1 - a^{t/10}`, :math:`0 < a < 1` (default 0.6).
        epoch: current epoch :math:`t` (or call :meth:`set_epoch`).
        saliency: Captum attribution or callable ``(images, labels) -> map``; ``None``: the model's input gradient.
        saliency_scaling: ``"sign"`` (to {−1, 0, 1}), ``"minmax"`` (per sample to [0, 1], official) or
            ``"minmax_signed"`` (per sample to [−1, 1]).
        saliency_kwargs: extra keyword arguments of ``saliency.attribute`` (e.g. ``{"baselines": 0.0}``).
        generator: optional CPU generator for the random parts (default: torch's global generator).

    Shape:
        - images: :math:`(B, C, H, W)` in [0, 1], finite; labels: :math:`(B,)`.
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

    def _sample(self, images: Tensor) -> SATParams:
        return self._sat_draws(images, None)

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        boxes: Tensor | None = None,
        saliency_maps: Tensor | None = None,
        params: SATParams | None = None,
    ) -> Tensor:
        """SAT images :math:`x'` for ``images`` (see the class docstring for the keyword arguments)."""
        images, labels = self._prepare(images, labels)
        if params is not None:
            params = self._check_params(params, images)
        saliency, sign = self._saliency(images, labels, masks, boxes, saliency_maps)
        params = self._sample(images) if params is None else params
        return self._sat_images(images, saliency, sign, params).detach()


class PGDSAT(_SATBase):
    """PGD-SAT (Mangla et al. 2020): per batch, SAT after a random start with probability ``sat_prob``, else PGD.

    .. math::

        x' = \\begin{cases} \\operatorname{clip}_{[0,1]}\\big(x + \\operatorname{clip}_{[-\\epsilon,\\epsilon]}
        (\\delta_0 - \\epsilon g)\\big) & \\text{w.p. } q \\text{ (default)} \\\\
        \\operatorname{clip}_{[0,1]}(x + \\delta_0 - \\epsilon g) & \\text{w.p. } q
        \\text{ (} \\texttt{official=True} \\text{)} \\\\
        \\mathrm{PGD}_{K}(x; \\epsilon, \\alpha) \\text{ on } \\mathrm{CE}(f(x'), y) \\text{ from } x + \\delta_0
        & \\text{otherwise} \\end{cases}, \\qquad \\delta_0 \\sim \\mathcal{U}[-\\epsilon, \\epsilon]^d

    By default the SAT branch is projected on the :math:`\\epsilon`-ball, as torchattacks users expect;
    ``official=True`` takes the official code's full :math:`\\epsilon` step after the start, without projection
    (:math:`\\|x' - x\\|_\\infty \\le 2\\epsilon`), and its PGD takes the first gradient at the unclipped start.
    The branch is drawn with the other random parts by :meth:`sample_params`: to know which branch a call takes,
    sample first, read ``params.branch`` and pass ``params=params``.

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
        official: the official branch magnitudes (unprojected SAT step) instead of the :math:`\\epsilon`-ball.

    Shape:
        As :class:`SAT` (``masks``/``boxes``/``saliency_maps`` are used by the SAT branch); with ``official=True``
        the SAT branch's output satisfies :math:`\\|x' - x\\|_\\infty \\le 2\\epsilon`.

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> atk = PGDSAT(SmallCNN(width=4, depth=2).eval(), generator=torch.Generator().manual_seed(0))
        >>> images = torch.rand(2, 3, 32, 32)
        >>> params = atk.sample_params(images)
        >>> adv = atk(images, torch.tensor([0, 1]), params=params)
        >>> bool((adv - images).abs().max() <= 8 / 255 + 1e-6), params.branch in ("sat", "pgd")
        (True, True)
    """

    _branches = ("sat", "pgd")

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
        official: bool = False,
    ) -> None:
        check_in_range(alpha, "alpha", 0.0, None)
        check_positive_int(steps, "steps")
        check_in_range(sat_prob, "sat_prob", 0.0, 1.0)
        super().__init__(
            "PGDSAT", model, eps, a, epoch, saliency, saliency_scaling, saliency_kwargs, generator, official
        )
        self.alpha, self.steps, self.sat_prob = float(alpha), steps, float(sat_prob)
        self.supported_mode = ["default", "targeted"]

    def _sample(self, images: Tensor) -> SATParams:
        start = self._uniform_start(images)
        if self._coin(self.sat_prob):
            return self._sat_draws(images, start)
        return SATParams("pgd", start=start)

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        boxes: Tensor | None = None,
        saliency_maps: Tensor | None = None,
        params: SATParams | None = None,
    ) -> Tensor:
        """PGD-SAT images :math:`x'` (one branch per call, ``params.branch``)."""
        images, labels = self._prepare(images, labels, require_labels=True)
        params = self._sample(images) if params is None else self._check_params(params, images)
        if params.branch == "sat":
            saliency, sign = self._saliency(images, labels, masks, boxes, saliency_maps)
            return self._sat_images(images, saliency, sign, params).detach()
        target = self.get_target_label(images, labels) if self.targeted else labels
        direction = -1.0 if self.targeted else 1.0

        def loss(logits: Tensor) -> Tensor:
            check_labels(target, images.shape[0], logits.shape[1])
            return direction * F.cross_entropy(logits, target)

        assert params.start is not None  # checked by _check_params
        return self._pgd(images, params.start, self.steps, self.alpha, loss)


class TRADESSAT(_SATBase):
    """TRADES-SAT (Mangla et al. 2020): per batch, SAT w.p. ``sat_prob``, else TRADES-KL PGD.

    .. math::

        x' = \\begin{cases} \\operatorname{clip}_{[0,1]}\\big(x + \\operatorname{clip}_{[-\\epsilon,\\epsilon]}
        (\\delta_0 - \\epsilon g)\\big), \\; \\delta_0 \\sim \\mathcal{U}[-\\epsilon, \\epsilon]^d
        & \\text{w.p. } q \\text{ (default)} \\\\
        \\operatorname{clip}_{[0,1]}(x - \\epsilon g)
        & \\text{w.p. } q \\text{ (} \\texttt{official=True} \\text{)} \\\\
        \\mathrm{PGD}_{K} \\text{ on } \\mathrm{KL}\\big(p(x) \\,\\|\\, p(x')\\big) \\text{ from }
        x + 0.001\\,\\mathcal{N}(0, I) & \\text{otherwise} \\end{cases}

    ``official=True`` follows the official code: the SAT branch has no random start (:math:`|x' - x| = \\epsilon`
    wherever :math:`|g| = 1` and [0, 1] is not reached) and the KL PGD takes its first gradient at the unclipped start.
    Train with :class:`~captum_wsam.train.AdversarialTrainer` ``loss="trades"``:
    :math:`\\mathrm{CE}(f(x), y) + \\beta \\, \\mathrm{KL}(p(x) \\| p(x'))`. The KL branch needs no labels (default
    attack mode only); the SAT branch uses them for the gradient saliency. The branch is ``params.branch`` of
    :meth:`sample_params` (``"sat"`` or ``"trades"``).

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
        official: the official SAT branch (no random start) instead of the projected start + step.

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

    _branches = ("sat", "trades")

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
        official: bool = False,
    ) -> None:
        check_in_range(alpha, "alpha", 0.0, None)
        check_positive_int(steps, "steps")
        check_in_range(sat_prob, "sat_prob", 0.0, 1.0)
        super().__init__(
            "TRADESSAT", model, eps, a, epoch, saliency, saliency_scaling, saliency_kwargs, generator, official
        )
        self.alpha, self.steps, self.sat_prob = float(alpha), steps, float(sat_prob)
        self.supported_mode = ["default"]

    def _sample(self, images: Tensor) -> SATParams:
        if self._coin(self.sat_prob):
            return self._sat_draws(images, None if self.official else self._uniform_start(images))
        noise = torch.randn(images.shape, generator=self.generator).to(images.device, images.dtype)
        return SATParams("trades", start=0.001 * noise)

    def forward(
        self,
        images: Tensor,
        labels: Tensor | None = None,
        masks: Tensor | None = None,
        boxes: Tensor | None = None,
        saliency_maps: Tensor | None = None,
        params: SATParams | None = None,
    ) -> Tensor:
        """TRADES-SAT images :math:`x'` (one branch per call, ``params.branch``)."""
        images, labels = self._prepare(images, labels)
        params = self._sample(images) if params is None else self._check_params(params, images)
        if params.branch == "sat":
            saliency, sign = self._saliency(images, labels, masks, boxes, saliency_maps)
            return self._sat_images(images, saliency, sign, params).detach()
        with torch.no_grad():
            clean_logits = self.get_logits(images)
        if labels is not None:
            check_labels(labels, images.shape[0], clean_logits.shape[1])
        clean_probs = clean_logits.softmax(1)

        def loss(logits: Tensor) -> Tensor:
            return F.kl_div(F.log_softmax(logits, dim=1), clean_probs, reduction="sum")

        assert params.start is not None  # checked by _check_params
        return self._pgd(images, params.start, self.steps, self.alpha, loss)


__all__ = [
    "PGDSAT",
    "SALIENCY_SCALINGS",
    "SAT",
    "TRADESSAT",
    "SATParams",
    "minmax_unit_saliency",
    "sat_perturb_unprojected",
]
