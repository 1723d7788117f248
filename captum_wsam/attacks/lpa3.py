"""LP-A3: label-preserving adversarial auto-augment as a ``torchattacks`` attack.

K. Yang, Y. Sun, J. Su, F. He, X. Tian, F. Huang, T. Zhou, D. Tao (2022), "Adversarial Auto-Augment with Label
Preservation: A Representation Learning Principle Guided Approach", NeurIPS 2022, arXiv:2211.00824.

The augmentation moves the sample as far as possible in a normalized (LPIPS-like) feature space of the model while
keeping the log-probability of its label:

.. math::

    \\max_{x' \\in [0,1]^d} \\|\\phi(x') - \\phi(x)\\|_2 \\quad \\text{s.t.} \\quad
    \\log p(y|x) - \\log p(y|x') \\le b

solved with the "fast Lagrangian" steps of the official code (from C. Laidlaw, S. Singla, S. Feizi (2021),
"Perceptual Adversarial Robustness", arXiv:2006.12655): :math:`N` steps of size :math:`\\eta_i = b\\,0.1^{i/N}`
with multiplier :math:`\\lambda_i = \\lambda\\,0.1^{1-i/N}`, each a normalized gradient step divided by a
finite-difference sensitivity of the constraint.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torchattacks.attack import Attack

from .._checks import check_in_range, check_positive_int, check_submodule, check_type
from .._state import hook_handles
from . import functional as SF
from ._base import ModelSafeMixin, check_eps, check_labels


class LPA3(ModelSafeMixin, Attack):
    """Label-preserving adversarial augmentation (Yang et al. 2022) with fast-Lagrangian steps.

    .. math::

        x'_{i+1} = \\operatorname{clip}_{[0,1]}\\Big(x'_i - \\frac{\\eta_i}{\\sigma_i + 10^{-4}} \\hat g_i\\Big),
        \\quad \\hat g_i = \\frac{\\nabla \\mathcal{L}}{\\|\\nabla \\mathcal{L}\\|}, \\quad
        \\mathcal{L} = -\\|\\phi(x') - \\phi(x)\\| + \\lambda_i \\max(0, \\log p(y|x) - \\log p(y|x') - b)

    with :math:`\\sigma_i = |\\log p(y|x'_i) - \\log p(y|x'_i - h \\hat g_i)| / h`, starting from
    :math:`x'_0 = x + \\mathcal{U}[-0.01, 0.01]^d`. ``labels`` are the labels to preserve (the official code, and
    :class:`~captum_wsam.train.LPA3Trainer`, pass the model's predictions).

    Deviation from the official code (documented, switchable): with ``feasible=True`` (default) each sample returns
    the iterate with the largest feature distance among those that satisfy the constraint (the start point
    :math:`x` itself qualifies), so the label log-probability drop never exceeds ``bound``; the official code returns
    the last iterate, which may violate it (``feasible=False`` does the same, and is
    :class:`~captum_wsam.train.LPA3Trainer`'s default: on trained models ``feasible=True`` often returns only the
    random start). To run BatchNorm in training mode during the attack as the official auxiliary BatchNorm does, call
    ``set_model_training_mode(model_training=True, batchnorm_training=True)``; the running statistics are restored
    after the call. The feature space :math:`\\phi` stacks the outputs of ``layers`` (default:
    every direct child of the model whose output is 4-D), normalized by
    :func:`~captum_wsam.attacks.functional.normalize_flatten_features`.

    Args:
        model: classifier returning logits on [0, 1] images.
        layers: modules of ``model`` whose outputs form :math:`\\phi`.
        bound: label-preservation bound :math:`b > 0` (default 0.1).
        lam: multiplier :math:`\\lambda \\ge 0` (default 0.1).
        steps: iterations :math:`N` (default 5).
        h: finite-difference length of the sensitivity (default 0.1).
        init: half-width of the uniform random start (default 0.01).
        eps: optional :math:`\\ell_\\infty` radius (``None``: only the [0, 1] range bounds :math:`x'`).
        feasible: return the best feasible iterate (see above).
        generator: optional CPU generator for the random start.

    Shape:
        - images: :math:`(B, C, H, W)` in [0, 1]; labels: :math:`(B,)` (``None``: the model's predictions).
        - output: :math:`(B, C, H, W)` in [0, 1].

    Examples:
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2).eval()
        >>> images = torch.rand(3, 3, 32, 32)
        >>> atk = LPA3(model, bound=0.1, generator=torch.Generator().manual_seed(0))
        >>> adv = atk(images)
        >>> labels = model(images).argmax(1)
        >>> drop = SF.label_log_prob(model(images), labels) - SF.label_log_prob(model(adv), labels)
        >>> adv.shape, bool((drop <= 0.1 + 1e-4).all())
        (torch.Size([3, 3, 32, 32]), True)
    """

    def __init__(
        self,
        model: nn.Module,
        layers: Sequence[nn.Module] | None = None,
        bound: float = 0.1,
        lam: float = 0.1,
        steps: int = 5,
        h: float = 0.1,
        init: float = 0.01,
        eps: float | None = None,
        feasible: bool = True,
        generator: torch.Generator | None = None,
    ) -> None:
        check_type(model, "model", nn.Module)
        if layers is not None:
            check_type(layers, "layers", (list, tuple))
            if not layers:
                raise ValueError("layers must name at least one module, got an empty sequence")
            for i, layer in enumerate(layers):
                check_submodule(layer, model, f"layers[{i}]")
        check_in_range(bound, "bound", 0.0, None, low_inclusive=False)
        check_in_range(lam, "lam", 0.0, None)
        check_positive_int(steps, "steps")
        check_in_range(h, "h", 0.0, None, low_inclusive=False)
        check_in_range(init, "init", 0.0, None)
        eps = None if eps is None else check_eps(eps)
        check_type(feasible, "feasible", bool)
        if generator is not None:
            check_type(generator, "generator", torch.Generator)
        super().__init__("LPA3", model)
        self.layers = None if layers is None else list(layers)
        self.bound, self.lam, self.steps, self.h, self.init = float(bound), float(lam), steps, float(h), float(init)
        self.eps = eps
        self.feasible = feasible
        self.generator = generator
        self.supported_mode = ["default"]

    def _logits_and_features(self, images: Tensor, store: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        store.clear()
        logits = self.get_logits(images)
        ranks = (2, 4) if self.layers is not None else (4,)
        features = [f for f in store if isinstance(f, Tensor) and f.dim() in ranks]
        if not features:
            raise ValueError("LPA3 found no 4-D feature map among the model's children; pass layers=[...]")
        return logits, list(features)

    def _project(self, adv: Tensor, images: Tensor) -> Tensor:
        if self.eps is not None:
            return SF.project_linf(adv, images, self.eps)
        return adv.clamp(0, 1)

    def forward(self, images: Tensor, labels: Tensor | None = None) -> Tensor:
        """LP-A3 augmentations :math:`x'` of ``images`` preserving ``labels`` (default: predictions)."""
        images, labels = self._prepare(images, labels)
        layers = self.layers if self.layers is not None else list(self.model.children())
        store: list[Tensor] = []
        with hook_handles() as handles:
            for layer in layers:
                handles.append(layer.register_forward_hook(lambda _m, _i, out: store.append(out)))
            with torch.no_grad():
                logits, features = self._logits_and_features(images, store)
                if labels is None:
                    labels = logits.argmax(1)
                check_labels(labels, images.shape[0], logits.shape[1])
                clean_log_prob = SF.label_log_prob(logits, labels)
                reference = SF.normalize_flatten_features(features)
            start = (2 * torch.rand(images.shape, generator=self.generator) - 1) * self.init
            adv = self._project(images + start.to(images.device, images.dtype), images)
            best, best_distance = images, torch.zeros(images.shape[0], device=images.device)
            # the official code returns the last iterate unevaluated; feasible=True evaluates it once more (no gradient)
            for iteration in range(self.steps + 1 if self.feasible else self.steps):
                step, multiplier = SF.lagrangian_schedule(iteration, self.steps, self.bound, self.lam)
                searching = iteration < self.steps  # the last evaluation only updates the best feasible iterate
                adv.requires_grad_(searching)
                with torch.set_grad_enabled(searching):
                    logits, features = self._logits_and_features(adv, store)
                    log_prob = SF.label_log_prob(logits, labels)
                    distance = SF.feature_distance(features, reference)
                    drop = clean_log_prob - log_prob
                if self.feasible:
                    with torch.no_grad():  # where, not boolean indexing: no host-device sync per step
                        better = (drop <= self.bound) & (distance > best_distance)
                        best = torch.where(better.view(-1, 1, 1, 1), adv.detach(), best)
                        best_distance = torch.where(better, distance.detach(), best_distance)
                if not searching:
                    break
                objective = SF.lagrangian_objective(distance, drop, self.bound, multiplier).sum()
                gradient = torch.autograd.grad(objective, adv)[0]
                with torch.no_grad():
                    direction = SF.normalized_gradient(gradient)
                    probe = SF.label_log_prob(self._logits_and_features(adv - self.h * direction, store)[0], labels)
                    sensitivity = (log_prob.detach() - probe).abs() / self.h
                    update = SF.lagrangian_step(gradient, sensitivity, step, direction=direction)
                    adv = self._project(adv.detach() + update, images)
        return (best if self.feasible else adv).detach()


__all__ = ["LPA3"]
