"""Faithfulness metrics: does removing what an attribution calls important change the model's output?

- *deletion / insertion* -- Petsiuk, Das & Saenko (2018), "RISE: Randomized Input Sampling for Explanation of
  Black-box Models", BMVC, arXiv:1806.07421. Pixels are ranked by the map :math:`M = \\sum_c A_c` (most relevant
  first). Deletion replaces the :math:`k`-th fraction of most relevant pixels by a baseline (0) and records the class
  probability :math:`p_c`; insertion starts from a blurred image and puts the most relevant pixels back. The areas
  under the curves summarise them: low deletion AUC and high insertion AUC are good.

  .. math::

      \\text{del}_k = p_c\\big(x \\odot (1 - m_k) + b \\odot m_k\\big), \\quad
      \\text{ins}_k = p_c\\big(x \\odot m_k + \\text{blur}(x) \\odot (1 - m_k)\\big), \\quad
      \\text{AUC} = \\int_0^1 p_c \\, d\\!f

  with :math:`m_k` the :math:`\\lfloor k H W / S \\rfloor` most relevant pixels, :math:`k = 0 \\dots S`, and the AUC by
  the trapezoidal rule over the removed fraction :math:`f` (RISE's ``auc`` for equal steps).

- *ROAD* -- Rong, Leemann, Nguyen, Fiedler, Seidel, Kasneci & Kasneci (2022), "A Consistent and Efficient
  Evaluation Strategy for Attribution Methods", ICML, arXiv:2202.00449 (RemOve And Debias). Removed pixels are not
  set to a constant, whose shape would itself leak the class, but imputed by *noisy linear imputation*: each removed
  pixel is the weighted mean of its 8 neighbours (weights 1/6 direct, 1/12 diagonal, renormalised at the border),
  the linear system solved jointly over all removed pixels, plus Gaussian noise :math:`\\sigma = 0.01`. The curves
  over removed fractions are MoRF (most relevant first, low is good) and LeRF (least relevant first, high is good);
  ``combined`` is the mean of :math:`(\\text{LeRF} - \\text{MoRF}) / 2` (pytorch-grad-cam's ``ROADCombined``).

  .. math::

      \\Big(\\sum_{j \\in \\mathcal N(i)} w_{ij}\\Big) u_i - \\sum_{j \\in \\mathcal N(i) \\cap R} w_{ij} u_j
      = \\sum_{j \\in \\mathcal N(i) \\setminus R} w_{ij} x_j \\quad (i \\in R), \\qquad
      \\tilde x_i = u_i + \\varepsilon_i, \\; \\varepsilon_i \\sim \\mathcal N(0, \\sigma^2)

  The reference code solves it with a sparse direct solver per image; here all images and channels are solved at
  once by Jacobi-preconditioned conjugate gradients on convolutions (the system is symmetric positive definite).

Both accept the attributions as a tensor or as anything that computes them: a Captum ``Attribution`` (its
``attribute(inputs, target=..., **attribute_kwargs)`` is called) or a callable with that signature. The model runs in
eval mode without gradients and is left exactly as found; every perturbed batch goes through it in chunks of
``batch_size`` images (all steps of all images, no per-image loop).

The blur and the imputation live in :mod:`captum_wsam.metrics.perturbation`, the result types and
:func:`plot_faithfulness` in :mod:`captum_wsam.metrics.faithfulness_results`; both are re-exported here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from .._checks import (
    check_choice,
    check_finite,
    check_images,
    check_in_range,
    check_positive_int,
    check_target,
    check_type,
)
from .._state import eval_mode, kept_buffers, untouched
from .._typing import TargetType
from .faithfulness_results import DeletionInsertionResult, ROADResult, plot_faithfulness  # re-exported
from .localisation import attribution_map
from .perturbation import (  # gaussian_blur, noisy_linear_imputation, ROAD_NEIGHBOUR_WEIGHTS: re-exported
    IMPUTATION_ELEMENTS,
    ROAD_NEIGHBOUR_WEIGHTS,  # noqa: F401
    gaussian_blur,
    noisy_linear_imputation,
)

#: A tensor of attributions, a Captum ``Attribution`` or a callable ``(inputs, target=..., **kwargs) -> Tensor``.
AttributionSource = Any
#: A baseline: a number, a tensor broadcastable to the inputs, ``"blur"`` or a callable ``inputs -> substrate``.
Substrate = float | Tensor | str | Callable[[Tensor], Tensor]

MODES = ("both", "deletion", "insertion")


def _check_model(model: Any) -> None:
    if not callable(model):
        raise TypeError(f"model must be an nn.Module or a callable returning logits, got {type(model).__name__}")


def _check_source(attributions: Any, inputs: Tensor) -> None:
    if isinstance(attributions, tuple) and len(attributions) == 1:
        attributions = attributions[0]
    if isinstance(attributions, Tensor):
        if attributions.dim() not in (3, 4) or len(attributions) != len(inputs):
            raise ValueError(f"attributions must have shape (N, H, W) or (N, C, H, W) with N = {len(inputs)}, got "
                             f"{tuple(attributions.shape)}")
        if not attributions.is_floating_point():
            raise TypeError(f"attributions must have a floating-point dtype, got {attributions.dtype}")
        return
    if not callable(getattr(attributions, "attribute", None)) and not callable(attributions):
        raise TypeError("attributions must be a tensor, a Captum Attribution or a callable (inputs, target=...) -> "
                        f"Tensor, got {type(attributions).__name__}")


def _check_substrate(value: Any, name: str, inputs: Tensor) -> None:
    if isinstance(value, str):
        check_choice(value, name, ("blur",))
    elif isinstance(value, Tensor):
        try:
            torch.broadcast_shapes(value.shape, inputs.shape)
        except RuntimeError as error:
            raise ValueError(f"{name} must broadcast to the inputs {tuple(inputs.shape)}, got shape "
                             f"{tuple(value.shape)}") from error
    elif not callable(value):
        check_in_range(value, name)


def _substrate(value: Substrate, inputs: Tensor) -> Tensor:
    if isinstance(value, str):
        return gaussian_blur(inputs)
    if isinstance(value, Tensor):
        return value.to(inputs).expand_as(inputs)
    if callable(value):
        result = value(inputs)
        if not isinstance(result, Tensor) or result.shape != inputs.shape:
            raise ValueError(f"a substrate callable must return a tensor of shape {tuple(inputs.shape)}, got "
                             f"{getattr(result, 'shape', type(result).__name__)}")
        return result.detach()
    return torch.full_like(inputs, float(value))


def _check_common(model: Any, inputs: Any, attributions: Any, softmax: Any, batch_size: Any,
                  attribute_kwargs: Any, progress: Any) -> None:
    _check_model(model)
    check_images(inputs, "inputs")
    check_finite(inputs, "inputs")
    _check_source(attributions, inputs)
    if isinstance(attributions, Tensor):
        check_finite(attributions, "attributions")
    check_type(softmax, "softmax", bool)
    if batch_size is not None:
        check_positive_int(batch_size, "batch_size")
    if attribute_kwargs is not None:
        check_type(attribute_kwargs, "attribute_kwargs", dict)
    check_type(progress, "progress", bool)


def resolve_target(model: Callable[[Tensor], Tensor], inputs: Tensor, target: TargetType) -> tuple[Tensor, Tensor]:
    """Run ``model`` once on ``inputs`` (no gradient) and turn a Captum ``target`` into class indices :math:`(N,)`.

    ``None`` picks the predicted class of each input (what RISE and ROAD explain). Returns ``(target, logits)``.

    Examples:
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> target, logits = resolve_target(model, torch.rand(2, 3, 2, 2), 1)
        >>> target.tolist(), logits.shape
        ([1, 1], torch.Size([2, 3]))
    """
    with torch.no_grad():
        logits = model(inputs)
    if not isinstance(logits, Tensor) or logits.dim() != 2 or len(logits) != len(inputs):
        raise ValueError(f"model must return logits of shape ({len(inputs)}, K), got "
                         f"{getattr(logits, 'shape', type(logits).__name__)}")
    check_target(target, logits.shape[1], len(inputs))
    if target is None:
        return logits.argmax(1), logits
    if isinstance(target, (list, tuple)) and not all(isinstance(t, int) for t in target):
        raise ValueError(f"target must be class indices for a (N, K) output, got {target!r}")
    indices = torch.as_tensor(target, device=logits.device).long().reshape(-1)
    return indices.expand(len(inputs)).clone(), logits


def compute_attributions(
    attributions: AttributionSource, inputs: Tensor, target: Tensor, attribute_kwargs: dict[str, Any] | None = None
) -> Tensor:
    """The attribution tensor: given, or computed by a Captum ``Attribution`` or a callable on a copy of ``inputs``.

    Examples:
        >>> from captum.attr import Saliency
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 3))
        >>> compute_attributions(Saliency(model), torch.rand(2, 3, 2, 2), torch.tensor([0, 1])).shape
        torch.Size([2, 3, 2, 2])
    """
    _check_source(attributions, inputs)
    if isinstance(attributions, tuple) and len(attributions) == 1:
        attributions = attributions[0]
    if isinstance(attributions, Tensor):
        return attributions.detach()
    attribute = attributions.attribute if callable(getattr(attributions, "attribute", None)) else attributions
    copy = inputs.detach().clone().requires_grad_()  # gradient methods need it; the caller's tensor is untouched
    result = attribute(copy, target=target, **(attribute_kwargs or {}))
    if isinstance(result, tuple) and len(result) == 1:
        result = result[0]
    if not isinstance(result, Tensor):
        raise TypeError(f"the attribution must return a tensor (or a 1-tuple), got {type(result).__name__}")
    _check_source(result, inputs)
    return result.detach()


def pixel_ranks(maps: Tensor) -> Tensor:
    """Rank of every pixel, 0 for the most relevant (largest :math:`M`), ties in row-major order: :math:`(N, H W)`.

    Examples:
        >>> pixel_ranks(torch.tensor([[[0.1, 0.9], [0.5, 0.5]]])).tolist()
        [[3, 0, 1, 2]]
    """
    flat = maps.reshape(len(maps), -1)
    order = torch.argsort(flat, dim=1, descending=True, stable=True)
    ranks = torch.empty_like(order)
    ranks.scatter_(1, order, torch.arange(flat.shape[1], device=flat.device).expand_as(order))
    return ranks


def _scores(model: Callable[[Tensor], Tensor], make_images: Callable[[Tensor, Tensor], Tensor], jobs: int,
            target: Tensor, softmax: bool, batch_size: int, progress: bool, desc: str,
            build_size: int | None = None) -> Tensor:
    """Target-class score of ``make_images(job, sample)`` for every (job, sample) pair.

    Images are built ``build_size`` at a time (default ``batch_size``) and go through the model ``batch_size`` at a
    time.
    """
    n = len(target)
    flat = torch.arange(jobs * n, device=target.device)
    out = torch.empty(jobs * n, dtype=torch.float32, device=target.device)
    for built in tqdm(flat.split(build_size or batch_size), desc=desc, disable=not progress, leave=False):
        images = make_images(built // n, built % n)
        for start in range(0, len(built), batch_size):
            chunk = built[start : start + batch_size]
            logits = model(images[start : start + batch_size])
            values = logits.float().softmax(1) if softmax else logits.float()
            out[chunk] = values.gather(1, target[chunk % n][:, None])[:, 0]
    return out.reshape(jobs, n)


def deletion_insertion(
    model: nn.Module | Callable[[Tensor], Tensor],
    inputs: Tensor,
    attributions: AttributionSource,
    target: TargetType = None,
    steps: int = 20,
    mode: str = "both",
    deletion_baseline: Substrate = 0.0,
    insertion_baseline: Substrate = "blur",
    softmax: bool = True,
    batch_size: int | None = None,
    attribute_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> DeletionInsertionResult:
    """Deletion and insertion curves with their AUC (Petsiuk, Das & Saenko 2018, RISE, arXiv:1806.07421).

    .. math::

        \\text{del}_k = p_c\\big(x \\odot (1 - m_k) + b \\odot m_k\\big), \\qquad
        \\text{ins}_k = p_c\\big(x \\odot m_k + \\text{blur}(x) \\odot (1 - m_k)\\big), \\qquad k = 0 \\dots S

    :math:`m_k` marks the :math:`\\lfloor k H W / S \\rfloor` pixels of largest :math:`M = \\sum_c A_c` (ties in
    row-major order; layer maps are upsampled to the input size) and :math:`p_c` is the softmax probability of the
    target class. The :math:`S - 1` intermediate steps of each curve are the only model passes besides the inputs
    themselves and the substrate, all batched; a substrate that is the same for every sample (a constant, the
    default for deletion) costs one image instead of a batch.

    Args:
        model: the classifier (module or callable returning logits :math:`(N, K)`); run in eval mode without
            gradients and left as found.
        inputs: :math:`(N, C, H, W)` images.
        attributions: a tensor :math:`(N, H, W)` / :math:`(N, 1, h, w)` / :math:`(N, C, H, W)`, a Captum
            ``Attribution`` or a callable ``(inputs, target=..., **attribute_kwargs) -> Tensor``.
        target: Captum target; ``None`` explains the predicted class.
        steps: :math:`S`, the number of steps from nothing to all pixels.
        mode: ``"both"``, ``"deletion"`` or ``"insertion"`` (each curve costs about :math:`S` batches).
        deletion_baseline: what deleted pixels become: a number, a tensor broadcastable to the inputs, ``"blur"`` or a
            callable ``inputs -> substrate``.
        insertion_baseline: the canvas insertion starts from (default: RISE's Gaussian blur, kernel 11, σ = 5).
        softmax: score with the softmax probability (RISE); ``False`` uses the raw logit.
        batch_size: images per model pass (default: ``len(inputs)``).
        attribute_kwargs: extra keyword arguments of the attribution call.
        progress: show a tqdm bar over the model passes.

    Returns:
        A :class:`DeletionInsertionResult`: curves :math:`(S + 1, N)`, ``deletion_auc`` and ``insertion_auc``
        :math:`(N,)`.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2).eval()
        >>> result = deletion_insertion(model, torch.rand(2, 3, 16, 16), Saliency(model), target=[0, 1], steps=4,
        ...                             progress=False)
        >>> result.deletion.shape, result.insertion_auc.shape
        (torch.Size([5, 2]), torch.Size([2]))
    """
    _check_common(model, inputs, attributions, softmax, batch_size, attribute_kwargs, progress)
    check_positive_int(steps, "steps")
    check_choice(mode, "mode", MODES)
    _check_substrate(deletion_baseline, "deletion_baseline", inputs)
    _check_substrate(insertion_baseline, "insertion_baseline", inputs)
    n, _, h, w = inputs.shape
    batch_size = batch_size or n
    with untouched(model, inputs), eval_mode(model), kept_buffers(model):
        target, logits = resolve_target(model, inputs.detach(), target)
        maps = attribution_map(compute_attributions(attributions, inputs, target, attribute_kwargs), (h, w))
        with torch.no_grad():
            x = inputs.detach()
            ranks = pixel_ranks(maps).reshape(n, 1, h, w)
            counts = torch.arange(steps + 1, device=x.device) * (h * w) // steps
            original = (logits.float().softmax(1) if softmax else logits.float()).gather(1, target[:, None])[:, 0]
            curves = {}
            for curve in ("deletion", "insertion"):
                if mode not in ("both", curve):
                    continue
                substrate = _substrate(deletion_baseline if curve == "deletion" else insertion_baseline, x)
                # Deletion step 0 and insertion step S are the inputs themselves: no model pass needed.
                first = 1 if curve == "deletion" else 0
                step_counts = counts[first : first + steps]

                def make_images(job: Tensor, sample: Tensor, curve: str = curve, substrate: Tensor = substrate,
                                step_counts: Tensor = step_counts) -> Tensor:
                    top = ranks[sample] < step_counts[job][:, None, None, None]
                    use_substrate = top if curve == "deletion" else ~top
                    return torch.where(use_substrate, substrate[sample], x[sample])

                jobs = steps
                if curve == "deletion" and bool((substrate == substrate[:1]).all()):
                    # The last deletion step removes every pixel: each image is the substrate, and a substrate
                    # that is the same for every sample (a constant, the default) is one image, not a batch.
                    jobs = steps - 1
                    logits = model(substrate[:1])
                    probabilities = logits.float().softmax(1) if softmax else logits.float()
                    last = probabilities[0, target][None]
                scores = _scores(model, make_images, jobs, target, softmax, batch_size, progress, curve)
                if jobs < steps:
                    scores = torch.cat([scores, last])
                known = original[None]
                curves[curve] = torch.cat([known, scores]) if curve == "deletion" else torch.cat([scores, known])
    return DeletionInsertionResult(
        fractions=counts.float() / (h * w),
        deletion=curves.get("deletion"),
        insertion=curves.get("insertion"),
        target=target,
    )


def road(
    model: nn.Module | Callable[[Tensor], Tensor],
    inputs: Tensor,
    attributions: AttributionSource,
    target: TargetType = None,
    percentages: Sequence[float] = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    mode: str = "both",
    noise: float = 0.01,
    softmax: bool = True,
    seed: int = 0,
    batch_size: int | None = None,
    attribute_kwargs: dict[str, Any] | None = None,
    progress: bool = True,
) -> ROADResult:
    """ROAD, RemOve And Debias (Rong et al. 2022, arXiv:2202.00449): scores after noisy linear imputation.

    .. math::

        \\text{MoRF}_p = p_c\\big(\\text{NLI}(x, \\operatorname{top}_{p}(M))\\big), \\qquad
        \\text{LeRF}_p = p_c\\big(\\text{NLI}(x, \\operatorname{bottom}_{p}(M))\\big), \\qquad
        \\text{combined} = \\frac{1}{|P|} \\sum_p \\frac{\\text{LeRF}_p - \\text{MoRF}_p}{2}

    with :math:`\\operatorname{top}_p(M)` the :math:`\\operatorname{round}(p H W)` most relevant pixels (ties in
    row-major order) and NLI the :func:`noisy_linear_imputation`.

    Args:
        model: the classifier (module or callable returning logits); run in eval mode without gradients, left as
            found.
        inputs: :math:`(N, C, H, W)` images.
        attributions: a tensor, a Captum ``Attribution`` or a callable ``(inputs, target=..., **kwargs) -> Tensor``.
        target: Captum target; ``None`` explains the predicted class.
        percentages: fractions of pixels to remove, each in (0, 1).
        mode: ``"both"``, ``"morf"`` or ``"lerf"``.
        noise: standard deviation of the imputation noise (the paper: 0.01 for images in [0, 1]).
        softmax: score with the softmax probability; ``False`` uses the raw logit.
        seed: seed of the imputation noise (imputation chunk ``j`` draws from seed ``seed + j``; the global RNG is
            untouched).
        batch_size: images per model pass (default: ``len(inputs)``); imputation works on chunks of at least
            :math:`2^{23}` elements (all images and percentages at once on small inputs).
        attribute_kwargs: extra keyword arguments of the attribution call.
        progress: show a tqdm bar over the passes.

    Returns:
        A :class:`ROADResult`: ``morf`` / ``lerf`` :math:`(P, N)`, ``original`` and ``combined`` :math:`(N,)`.

    Examples:
        >>> from captum.attr import Saliency
        >>> from captum_wsam.models import SmallCNN
        >>> model = SmallCNN(width=4, depth=2).eval()
        >>> result = road(model, torch.rand(2, 3, 16, 16), Saliency(model), target=0, percentages=(0.2, 0.5),
        ...               progress=False)
        >>> result.morf.shape, result.combined.shape
        (torch.Size([2, 2]), torch.Size([2]))
    """
    _check_common(model, inputs, attributions, softmax, batch_size, attribute_kwargs, progress)
    if isinstance(percentages, (str, bytes)) or not isinstance(percentages, Sequence) or not percentages:
        raise TypeError(f"percentages must be a non-empty sequence of fractions, got {percentages!r}")
    for value in percentages:
        check_in_range(value, "percentages", 0.0, 1.0, low_inclusive=False, high_inclusive=False)
    check_choice(mode, "mode", ("both", "morf", "lerf"))
    check_in_range(noise, "noise", 0.0, None)
    check_positive_int(seed, "seed", allow_zero=True)
    n, _, h, w = inputs.shape
    batch_size = batch_size or n
    fractions = torch.tensor([float(p) for p in percentages])
    with untouched(model, inputs), eval_mode(model), kept_buffers(model):
        target, logits = resolve_target(model, inputs.detach(), target)
        maps = attribution_map(compute_attributions(attributions, inputs, target, attribute_kwargs), (h, w))
        with torch.no_grad():
            x = inputs.detach()
            ranks = pixel_ranks(maps).reshape(n, h, w)
            counts = torch.tensor([round(float(p) * h * w) for p in percentages], device=x.device).clamp(1, h * w - 1)
            original = (logits.float().softmax(1) if softmax else logits.float()).gather(1, target[:, None])[:, 0]
            orders = [o for o in ("morf", "lerf") if mode in ("both", o)]
            chunk_index = iter(range(10**9))

            def make_images(job: Tensor, sample: Tensor) -> Tensor:
                order, step = job // len(percentages), job % len(percentages)
                count = counts[step][:, None, None]
                lerf = torch.tensor([orders[o] == "lerf" for o in order.tolist()], device=x.device)[:, None, None]
                removed = torch.where(lerf, ranks[sample] >= h * w - count, ranks[sample] < count)
                generator = torch.Generator().manual_seed(seed + next(chunk_index))
                return noisy_linear_imputation(x[sample], removed, noise=noise, generator=generator)

            # Conjugate gradients take as many iterations for one image as for many: impute large chunks at once.
            build_size = max(batch_size, IMPUTATION_ELEMENTS // inputs[0].numel())
            scores = _scores(model, make_images, len(orders) * len(percentages), target, softmax, batch_size,
                             progress, "ROAD", build_size).reshape(len(orders), len(percentages), n)
    curves = dict(zip(orders, scores))
    return ROADResult(percentages=fractions, original=original, morf=curves.get("morf"), lerf=curves.get("lerf"),
                      target=target)



__all__ = [
    "DeletionInsertionResult",
    "ROADResult",
    "compute_attributions",
    "deletion_insertion",
    "gaussian_blur",
    "noisy_linear_imputation",
    "pixel_ranks",
    "plot_faithfulness",
    "resolve_target",
    "road",
]
