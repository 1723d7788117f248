"""Presets of the training loop: SAT, PGD-SAT and TRADES-SAT (Mangla et al. 2020) and LP-A3 (Yang et al. 2022).

Each preset builds its attack and configures :class:`~captum_wsam.train.AdversarialTrainer`; the loop is unchanged.

References:
    - P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD
      2020, arXiv:2006.07828.
    - K. Yang, Y. Sun, J. Su, F. He, X. Tian, F. Huang, T. Zhou, D. Tao (2022), "Adversarial Auto-Augment with Label
      Preservation: A Representation Learning Principle Guided Approach", NeurIPS 2022, arXiv:2211.00824; official
      code github.com/CausalLearning/LPA3 (``FixMatch/fixmatch_LPA3.py``), whose loop :class:`LPA3Trainer` follows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from .._checks import check_choice, check_type
from ..attacks import LPA3, PGDSAT, SAT, TRADESSAT
from .batchnorm import auxiliary_statistics
from .loop import AdversarialTrainer


class SATTrainer(AdversarialTrainer):
    """Preset: SAT, PGD-SAT or TRADES-SAT training (Mangla et al. 2020, arXiv:2006.07828).

    .. math::

        \\text{SAT / PGD-SAT: } J(x', y), \\qquad \\text{TRADES-SAT: } J(x, y) + \\beta\\,\\mathrm{KL}(p(x) \\|
        p(x'))

    with :math:`x'` from :class:`~captum_wsam.attacks.SAT`, :class:`~captum_wsam.attacks.PGDSAT` or
    :class:`~captum_wsam.attacks.TRADESSAT`, whose :math:`p_t = 1 - a^{t/10}` follows the epoch.

    Saliency cache (the default with the model's own gradient saliency): SAT takes one saliency map per sample as
    given ("s is given to us in the form of a saliency map"), so the model acts as its own teacher with maps one
    epoch old: the map used at epoch :math:`t` was taken in the training step of the same sample at epoch
    :math:`t - 1`. For SAT and PGD-SAT (``saliency_cache="log_prob"``) it is
    :math:`\\operatorname{sign} \\nabla_{x'} \\log p(y|x')`, which the training backward delivers with the weight
    gradients (:math:`-\\nabla_{x'} J`; :math:`x'` is within :math:`\\epsilon` of :math:`x`): a step costs no extra
    pass. For TRADES-SAT (``"logit"``) it is the paper's :math:`\\operatorname{sign} \\nabla_x f_y(x)` at the clean
    image, from one input-only backward on the retained graph. BatchNorm is in training mode in both. Epoch 0 needs
    no map (:math:`p_0 = 0`). ``saliency_cache=None`` computes :math:`\\nabla_x f_y(x)` of the current model on the
    fly in every step (one more forward and backward, evaluation-mode BatchNorm). The cache assumes that a sample's
    image stays aligned from one epoch to the next: with random crops or flips in the Dataset, a map would be applied
    to a moved image, so use ``saliency_cache=None`` there (photometric augmentation, such as ``augment=StyleAugment``,
    is fine).

    Args:
        model: classifier.
        optimizer: optimizer over ``model``'s parameters.
        variant: ``"sat"``, ``"pgd"`` (PGD-SAT) or ``"trades"`` (TRADES-SAT).
        eps: :math:`\\epsilon` (default 8/255).
        weak_saliency: ``None`` (saliency from ``saliency``/the model), ``"mask"`` or ``"box"`` (from the batch's
            ``info``, as ShapesTextures provides).
        saliency: Captum attribution on a teacher (see :class:`~captum_wsam.attacks.SAT`).
        saliency_scaling: ``"sign"``, ``"minmax"`` or ``"minmax_signed"`` (see :class:`~captum_wsam.attacks.SAT`).
        saliency_cache: ``"auto"`` (default): ``"log_prob"`` for SAT and PGD-SAT, ``"logit"`` for TRADES-SAT when
            the saliency is the model's own gradient (no ``weak_saliency``, no ``saliency``, ``"sign"`` scaling),
            else ``None``; or ``"log_prob"``, ``"logit"``, ``None`` (see above and :class:`AdversarialTrainer`).
        a: schedule base.
        sat_prob: probability of the SAT branch for PGD-SAT/TRADES-SAT.
        steps: PGD steps of PGD-SAT/TRADES-SAT.
        beta: TRADES weight.
        generator: optional CPU generator of the attack's random draws.
        official: PGD-SAT/TRADES-SAT with the official code's branch magnitudes (see
            :class:`~captum_wsam.attacks.PGDSAT`, :class:`~captum_wsam.attacks.TRADESSAT`); plain SAT has no such
            switch, so ``official=True`` with ``variant="sat"`` is refused.
        **kwargs: further :class:`AdversarialTrainer` arguments.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> trainer = SATTrainer(model, torch.optim.SGD(model.parameters(), lr=0.05), weak_saliency="mask",
        ...                      progress=False)
        >>> len(trainer.fit(ShapesTextures(n=16, size=32), epochs=1, batch_size=8))
        1
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        variant: str = "sat",
        *,
        eps: float = 8 / 255,
        weak_saliency: str | None = None,
        saliency: Any = None,
        saliency_scaling: str = "sign",
        saliency_cache: str | None = "auto",
        a: float = 0.6,
        sat_prob: float = 0.5,
        steps: int = 5,
        beta: float = 1.0,
        generator: torch.Generator | None = None,
        official: bool = False,
        **kwargs: Any,
    ) -> None:
        check_choice(variant, "variant", ("sat", "pgd", "trades"))
        check_type(official, "official", bool)
        if official and variant == "sat":
            raise ValueError("official=True applies to variant='pgd' or 'trades' (PGD-SAT, TRADES-SAT); plain SAT "
                             "has one form")
        check_choice(weak_saliency, "weak_saliency", (None, "mask", "box"))
        if saliency_cache == "auto":
            own = weak_saliency is None and saliency is None and saliency_scaling == "sign"
            saliency_cache = None if not own else "logit" if variant == "trades" else "log_prob"
        common = {"eps": eps, "a": a, "saliency": saliency, "saliency_scaling": saliency_scaling,
                  "generator": generator}
        if variant == "sat":
            attack = SAT(model, **common)
        elif variant == "pgd":
            attack = PGDSAT(model, steps=steps, sat_prob=sat_prob, official=official, **common)
        else:
            attack = TRADESSAT(model, steps=steps, sat_prob=sat_prob, official=official, **common)
        inputs = {} if weak_saliency is None else {weak_saliency: "masks" if weak_saliency == "mask" else "boxes"}
        super().__init__(model, optimizer, attack, "trades" if variant == "trades" else "ce", beta=beta,
                         attack_inputs=inputs, saliency_cache=saliency_cache, **kwargs)


class LPA3Trainer(AdversarialTrainer):
    """Preset: LP-A3 training as in the official code (Yang et al. 2022, arXiv:2211.00824).

    .. math:: \\mathcal{L} = J(x, y) + [t > t_w] \\, w \\, \\frac{1}{|S|} \\sum_{i \\in S}
              \\mathbb{1}[c_i \\ge 0.9] \\, J(x'_i, \\hat y_i)

    The defaults reproduce the loop of the official ``FixMatch/fixmatch_LPA3.py`` (github.com/CausalLearning/LPA3)
    with the supervised cross-entropy in place of FixMatch's losses:

    - selection: :math:`S` holds the samples whose EMA (momentum 0.01) of the KL change of their predictions is above
      :func:`~captum_wsam.train.functional.instability_threshold`, recomputed at the start of every epoch; in the
      first epoch every sample is selected (the official ``threshold = 1``);
    - warm-up: the LP-A3 term is trained in epochs :math:`t > t_w` (0-based, the official ``epoch > warmup_adv``;
      the official code counts "epochs" of 1024 steps, here an epoch is one pass over the data); ``warmup=-1``
      trains it from the first epoch;
    - targets and mask: :math:`\\hat y` are the clean predictions of the training forward and a selected sample's
      term counts when their probability :math:`c_i \\ge 0.9` (``threshold_lpa3``); masked samples still count in
      :math:`|S|`;
    - attack: :class:`~captum_wsam.attacks.LPA3` with ``feasible=False`` (the official code returns the last iterate)
      and, with ``attack_batchnorm="train"``, BatchNorm in training mode during the attack: the attacked batch is
      normalized with its own statistics, as the official auxiliary BatchNorm (``adv=True``) does, and the model's
      running statistics are left as they were (the auxiliary layer's own statistics are never read in training).
      The augmented samples then pass through the model's own layers in training mode (a generic trainer cannot add
      the auxiliary BatchNorm's affine parameters).

    ``feasible=True`` is a documented option: the attack then returns, per sample, the farthest iterate that keeps
    the label log-probability drop within ``bound`` (never violating the constraint, but on trained models it often
    returns only the random start).

    Args:
        model: classifier.
        optimizer: optimizer over ``model``'s parameters.
        bound: label-preservation bound :math:`b` (0.1, the official default).
        lam: Lagrange multiplier :math:`\\lambda` (0.1).
        steps: fast-Lagrangian steps (5).
        layers: feature layers of :math:`\\phi` (default: the model's 4-D children).
        feasible: return the best feasible iterate instead of the last one (official: ``False``).
        h: finite-difference length of the attack's sensitivity (0.1).
        init: half-width of the attack's uniform random start (0.01).
        eps: optional :math:`\\ell_\\infty` radius of the attack (``None``, as the official code).
        attack_batchnorm: ``"train"`` (official, see above) or ``"eval"`` (running statistics during the attack).
        ratio: selected fraction :math:`r` (0.1).
        warmup: :math:`t_w` (5; ``-1``: no warm-up).
        weight: :math:`w` (1).
        momentum: EMA momentum of the instability memory (0.01).
        confidence: the mask's threshold on :math:`c_i` (0.9; ``0`` keeps every selected sample).
        target: labels the augmentation preserves and trains on: ``"pred"`` (:math:`\\hat y`, the official code,
            which runs inside semi-supervised methods) or ``"label"`` (:math:`y`; :math:`c_i = p(y_i|x_i)`).
        generator: optional CPU generator of the attack's random start.
        **kwargs: further :class:`AdversarialTrainer` arguments.

    Examples:
        >>> from captum_wsam.data import ShapesTextures
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2)
        >>> trainer = LPA3Trainer(model, torch.optim.SGD(model.parameters(), lr=0.05), warmup=0, ratio=0.5,
        ...                       progress=False)
        >>> len(trainer.fit(ShapesTextures(n=16, size=32), epochs=2, batch_size=8)), trainer.attack.feasible
        (2, False)
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        *,
        bound: float = 0.1,
        lam: float = 0.1,
        steps: int = 5,
        layers: Sequence[nn.Module] | None = None,
        feasible: bool = False,
        h: float = 0.1,
        init: float = 0.01,
        eps: float | None = None,
        attack_batchnorm: str = "train",
        ratio: float = 0.1,
        warmup: int = 5,
        weight: float = 1.0,
        momentum: float = 0.01,
        confidence: float = 0.9,
        target: str = "pred",
        generator: torch.Generator | None = None,
        **kwargs: Any,
    ) -> None:
        check_choice(attack_batchnorm, "attack_batchnorm", ("train", "eval"))
        attack = LPA3(model, layers=layers, bound=bound, lam=lam, steps=steps, h=h, init=init, eps=eps,
                      feasible=feasible, generator=generator)
        if attack_batchnorm == "train":  # BatchNorm on the attacked batch's statistics; buffers restored by LPA3
            attack.set_model_training_mode(model_training=True, batchnorm_training=True, dropout_training=False)
        super().__init__(model, optimizer, attack, "ce", lpa3_ratio=ratio, lpa3_warmup=warmup, lpa3_weight=weight,
                         lpa3_momentum=momentum, lpa3_target=target, lpa3_confidence=confidence, **kwargs)
        self.attack_batchnorm = attack_batchnorm

    def attack_batch(self, images: Tensor, labels: Tensor, **kwargs: Any) -> Tensor:
        """The LP-A3 augmentation; with ``attack_batchnorm="train"`` on auxiliary BatchNorm statistics."""
        if self.attack_batchnorm != "train":
            return super().attack_batch(images, labels, **kwargs)
        with auxiliary_statistics(self.model):
            return super().attack_batch(images, labels, **kwargs)


__all__ = ["LPA3Trainer", "SATTrainer"]
