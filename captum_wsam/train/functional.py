"""Pure tensor maths of the training losses and of LP-A3's sample selection (no model, no optimizer).

The loop (:class:`~captum_wsam.train.AdversarialTrainer`) computes logits and hands them to these functions; a reader
checks each formula here, next to its paper. :math:`J` is the cross-entropy, :math:`x'` the attacked (or augmented)
input, :math:`p(\\cdot)` the softmax of the logits.

References:
    - I. Goodfellow, J. Shlens, C. Szegedy (2015), "Explaining and Harnessing Adversarial Examples", ICLR 2015,
      arXiv:1412.6572 (mixed loss).
    - A. Madry, A. Makelov, L. Schmidt, D. Tsipras, A. Vladu (2018), "Towards Deep Learning Models Resistant to
      Adversarial Attacks", ICLR 2018, arXiv:1706.06083 (adversarial cross-entropy).
    - H. Zhang, Y. Yu, J. Jiao, E. Xing, L. El Ghaoui, M. Jordan (2019), "Theoretically Principled Trade-off between
      Robustness and Accuracy", ICML 2019, arXiv:1901.08573 (TRADES).
    - P. Mangla, V. Singh, V. N. Balasubramanian (2020), "On Saliency Maps and Adversarial Robustness", ECML-PKDD
      2020, arXiv:2006.07828 (SAT, PGD-SAT: adversarial cross-entropy; TRADES-SAT: TRADES).
    - K. Yang, Y. Sun, J. Su, F. He, X. Tian, F. Huang, T. Zhou, D. Tao (2022), "Adversarial Auto-Augment with Label
      Preservation: A Representation Learning Principle Guided Approach", NeurIPS 2022, arXiv:2211.00824 (LP-A3 loss
      and sample selection; the official code is github.com/CausalLearning/LPA3, ``FixMatch/fixmatch_LPA3.py``).
"""

from __future__ import annotations

import math

import torch  # noqa: F401 (the doctests use it)
import torch.nn.functional as F
from torch import Tensor

# ------------------------------------------------------------------------------------------------------------ losses


def adversarial_loss(adv_logits: Tensor, labels: Tensor) -> Tensor:
    """Cross-entropy at the attacked inputs (PGD-AT, Madry et al. 2018; SAT and PGD-SAT, Mangla et al. 2020).

    .. math:: \\mathcal{L} = \\frac{1}{B} \\sum_i J(x'_i, y_i)

    Args:
        adv_logits: logits :math:`f(x')` of shape :math:`(B, K)`.
        labels: :math:`(B,)` class indices.

    Returns:
        Scalar loss.

    Examples:
        >>> abs(adversarial_loss(torch.zeros(2, 4), torch.tensor([0, 3])).item() - math.log(4)) < 1e-6
        True
    """
    return F.cross_entropy(adv_logits, labels)


def mixed_loss(clean_logits: Tensor, adv_logits: Tensor, labels: Tensor, alpha: float) -> Tensor:
    """FGSM adversarial training's mixed objective (Goodfellow et al. 2015, Eq. 6).

    .. math:: \\mathcal{L} = \\alpha J(x, y) + (1 - \\alpha) J(x', y)

    Args:
        clean_logits: :math:`f(x)`, shape :math:`(B, K)`.
        adv_logits: :math:`f(x')`, shape :math:`(B, K)`.
        labels: :math:`(B,)`.
        alpha: :math:`\\alpha \\in [0, 1]`.

    Returns:
        Scalar loss.

    Examples:
        >>> logits = torch.zeros(2, 4)
        >>> torch.isclose(mixed_loss(logits, logits, torch.tensor([0, 1]), 0.3), torch.tensor(math.log(4))).item()
        True
    """
    return alpha * F.cross_entropy(clean_logits, labels) + (1 - alpha) * F.cross_entropy(adv_logits, labels)


def trades_loss(clean_logits: Tensor, adv_logits: Tensor, labels: Tensor, beta: float) -> Tensor:
    """TRADES (Zhang et al. 2019, Eq. 5; TRADES-SAT of Mangla et al. 2020).

    .. math:: \\mathcal{L} = \\frac{1}{B} \\sum_i \\Big[ J(x_i, y_i) + \\beta\\, \\mathrm{KL}\\big(p(x_i) \\,\\|\\,
              p(x'_i)\\big) \\Big]

    Args:
        clean_logits: :math:`f(x)`, shape :math:`(B, K)`.
        adv_logits: :math:`f(x')`, shape :math:`(B, K)`.
        labels: :math:`(B,)`.
        beta: :math:`\\beta \\ge 0`.

    Returns:
        Scalar loss.

    Examples:
        >>> logits = torch.randn(3, 5)
        >>> labels = torch.tensor([0, 1, 2])
        >>> torch.isclose(trades_loss(logits, logits, labels, 6.0), F.cross_entropy(logits, labels)).item()
        True
    """
    kl = F.kl_div(F.log_softmax(adv_logits, 1), F.softmax(clean_logits, 1), reduction="batchmean")
    return F.cross_entropy(clean_logits, labels) + beta * kl


def lpa3_loss(aug_logits: Tensor, targets: Tensor, confidence: Tensor, threshold: float = 0.9) -> Tensor:
    """LP-A3's loss on the augmented samples, with the official code's confidence mask (Yang et al. 2022).

    .. math:: \\mathcal{L}_{\\text{LP-A3}} = \\frac{1}{|S|} \\sum_{i \\in S} \\mathbb{1}[c_i \\ge \\tau]\\,
              J(x'_i, \\hat y_i)

    :math:`S` is the selected subset of the batch, :math:`\\hat y_i` the labels the augmentation preserved and
    :math:`c_i` the clean prediction's probability of :math:`\\hat y_i` (``max_probs[mask_smooth]`` in the official
    ``fixmatch_LPA3.py``, with ``threshold_lpa3 = 0.9``). Masked samples still count in :math:`|S|`, as there.

    Args:
        aug_logits: :math:`f(x'_S)`, shape :math:`(|S|, K)`.
        targets: :math:`\\hat y_S`, shape :math:`(|S|,)`.
        confidence: :math:`c_S`, shape :math:`(|S|,)`.
        threshold: :math:`\\tau` (``0`` keeps every sample).

    Returns:
        Scalar loss.

    Examples:
        >>> logits = torch.zeros(2, 4)
        >>> loss = lpa3_loss(logits, torch.tensor([0, 1]), torch.tensor([0.95, 0.5]))
        >>> torch.isclose(loss, torch.tensor(math.log(4) / 2)).item()
        True
    """
    mask = (confidence >= threshold).to(aug_logits.dtype)
    return (F.cross_entropy(aug_logits, targets, reduction="none") * mask).mean()


# ------------------------------------------------------------------------------------------ LP-A3 sample selection


def prediction_instability(probs: Tensor, previous: Tensor, eps: float = 1e-12) -> Tensor:
    """Change of a sample's predicted distribution since it was last seen (LP-A3's selection signal).

    .. math:: \\Delta_i = \\mathrm{KL}(p_t(x_i) \\,\\|\\, p_{t-1}(x_i))
              = \\sum_k p_{t,k} (\\log p_{t,k} - \\log p_{t-1,k})

    The official code averages over the :math:`K` classes (``F.kl_div(..., reduction='none').mean(dim=1)``) and
    stores :math:`-\\Delta`; both are monotone maps of :math:`\\Delta` and select the same samples.

    Args:
        probs: current probabilities :math:`(B, K)`.
        previous: stored probabilities :math:`(B, K)`.
        eps: floor inside the logarithms.

    Returns:
        :math:`(B,)`, non-negative.

    Examples:
        >>> p = torch.tensor([[0.5, 0.5]])
        >>> prediction_instability(p, p).tolist(), bool(prediction_instability(p, torch.tensor([[0.9, 0.1]])) > 0)
        ([0.0], True)
    """
    return (probs * (probs.clamp_min(eps).log() - previous.clamp_min(eps).log())).sum(dim=1).clamp_min(0)


def ema_update(memory: Tensor, value: Tensor, momentum: float) -> Tensor:
    """Exponential moving average :math:`m \\leftarrow \\mu m + (1 - \\mu) v` (``mem_tc`` of the official code).

    .. math:: m \\leftarrow \\mu m + (1 - \\mu) v

    Args:
        memory: :math:`m`.
        value: :math:`v`, same shape.
        momentum: :math:`\\mu \\in [0, 1)` (0.01 in the official code).

    Returns:
        Updated memory (new tensor), same shape.

    Examples:
        >>> ema_update(torch.tensor([1.0]), torch.tensor([3.0]), 0.5).tolist()
        [2.0]
    """
    return momentum * memory + (1 - momentum) * value


def selection_threshold(instability: Tensor, ratio: float) -> float:
    """Top-k threshold: the :math:`\\lceil rN \\rceil`-th largest value (select with :math:`\\Delta_i \\ge \\tau`).

    .. math:: \\tau = \\Delta_{(\\lceil rN \\rceil)} \\text{ (descending order)}

    Kept for compatibility; the trainer follows the official rule, :func:`instability_threshold`.

    Args:
        instability: :math:`(N,)` smoothed instabilities of the whole training set.
        ratio: :math:`r \\in (0, 1]`.

    Returns:
        :math:`\\tau`.

    Examples:
        >>> selection_threshold(torch.tensor([0.1, 0.4, 0.3, 0.2]), 0.5)
        0.30000001192092896
    """
    k = max(1, math.ceil(ratio * instability.numel()))
    return instability.flatten().topk(k).values[-1].item()


def instability_threshold(instability: Tensor, ratio: float) -> float:
    """LP-A3's selection threshold as the official code computes it at the start of every data epoch.

    .. math:: \\tau = \\Delta_{[\\lfloor (1 - r) N \\rfloor]} \\text{ (ascending order, 0-based)}, \\qquad
              S = \\{ i : \\Delta_i > \\tau \\}

    The official code sorts ``mem_tc`` :math:`= -\\mathrm{EMA}(\\Delta)` in descending order, takes
    ``threshold = mem_tc[indices[int((1 - ratio) * N)]]`` and selects ``mem_tc < threshold``: with distinct values
    :math:`N - \\lfloor (1 - r) N \\rfloor - 1` samples, the most unstable ones.

    Args:
        instability: :math:`(N,)` smoothed instabilities.
        ratio: :math:`r \\in (0, 1]`.

    Returns:
        :math:`\\tau` (select with ``instability > tau``).

    Examples:
        >>> values = torch.tensor([0.1, 0.4, 0.3, 0.2, 0.5])
        >>> tau = instability_threshold(values, 0.5)
        >>> tau, (values > tau).tolist()
        (0.30000001192092896, [False, True, False, False, True])
    """
    values = instability.flatten().sort().values
    position = min(int((1 - ratio) * values.numel()), values.numel() - 1)
    return values[position].item()


__all__ = [
    "adversarial_loss",
    "ema_update",
    "instability_threshold",
    "lpa3_loss",
    "mixed_loss",
    "prediction_instability",
    "selection_threshold",
    "trades_loss",
]
