"""Pure tensor maths of the style activation maps: Grad-CAM on styled inputs, WSAM weighting, WSAM variance.

Moreno-Vera, Medina & Poco, 2023, "WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker and
Their Influence in Image Classification" (ICAART 2023, DOI 10.5220/0011795400003417, arXiv:2308.14995), built on
Selvaraju et al., 2017, "Grad-CAM: Visual Explanations from Deep Networks via Gradient-based Localization"
(arXiv:1610.02391). With :math:`A^k` the activations of the chosen layer on the styled input
:math:`x_{\\alpha,\\sigma}` and :math:`y^c` the score of class :math:`c`:

.. math::

    \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}, \\qquad
    \\mathrm{SAM}^c_{\\alpha,\\sigma} = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k_{\\alpha,\\sigma}\\Big), \\qquad
    \\mathrm{WSAM}^c = \\frac{1}{\\Omega} \\sum_\\alpha \\sum_\\sigma y^c_{\\alpha,\\sigma}\\,
    \\mathrm{SAM}^c_{\\alpha,\\sigma},

    \\mathrm{WSAM}^c_{variance} = \\frac{1}{Z\\,m} \\sum_{i=1}^{m} \\big\\lVert \\mathrm{WSAM}^c_i - y^c_i I^c_i
    \\big\\rVert_2^2,

with :math:`\\Omega` = #styles × #intensities, :math:`y^c_{\\alpha,\\sigma}` the softmax probability of class
:math:`c` on the styled input, :math:`I^c_i` the Grad-CAM map of the unstyled image (α = 1), :math:`Z = H W` and
:math:`m` the number of samples of class :math:`c`. Everything here works on scalar maps (not on the colour heat-map
images of the reference script); the classes in :mod:`captum_wsam.attr.sam`, :mod:`captum_wsam.attr.wsam` and
:mod:`captum_wsam.metrics.wsam_variance` run the model and delegate to these functions.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .._checks import check_choice, check_positive_int, check_tensor

WEIGHTINGS = ("probability", "none", "alpha_probability")


def grad_cam_map(
    activations: Tensor, gradients: Tensor, relu_attributions: bool = True, attr_dim_summation: bool = True
) -> Tensor:
    """Grad-CAM (= SAM when the activations come from a styled input) from a layer's activations and gradients.

    .. math::

        \\delta^c_k = \\frac{1}{Z} \\sum_{ij} \\frac{\\partial y^c}{\\partial A^k_{ij}}, \\qquad
        M^c = \\mathrm{ReLU}\\Big(\\sum_k \\delta^c_k A^k\\Big)

    The same operations, in the same order, as ``captum.attr.LayerGradCam`` (mean of the gradients over every
    dimension after the channel one, product, sum over channels, ReLU).

    Args:
        activations: :math:`A`, shape :math:`(N, K, *)` (``*`` the spatial dimensions, possibly none).
        gradients: :math:`\\partial y^c / \\partial A`, same shape.
        relu_attributions: apply the ReLU of the definition (``False`` keeps the sign).
        attr_dim_summation: sum over the channel dimension :math:`k` (``False`` keeps :math:`\\delta_k A^k`).

    Returns:
        Shape :math:`(N, 1, *)` with ``attr_dim_summation``, else :math:`(N, K, *)`.

    Examples:
        >>> A, G = torch.rand(2, 8, 4, 4), torch.randn(2, 8, 4, 4)
        >>> grad_cam_map(A, G).shape, bool((grad_cam_map(A, G) >= 0).all())
        (torch.Size([2, 1, 4, 4]), True)
    """
    if activations.shape != gradients.shape:
        raise ValueError(
            f"gradients must have the shape of activations {tuple(activations.shape)}, got {tuple(gradients.shape)}"
        )
    if gradients.dim() > 2:
        weights = torch.mean(gradients, dim=tuple(range(2, gradients.dim())), keepdim=True)
    else:
        weights = gradients
    scaled = weights * activations
    if attr_dim_summation:
        scaled = torch.sum(scaled, dim=1, keepdim=True)
    return F.relu(scaled) if relu_attributions else scaled


def wsam_weights(probabilities: Tensor, alphas: Tensor, weighting: str = "probability") -> Tensor:
    """Weight of each styled map in the WSAM average.

    .. math::

        w_{\\sigma,\\alpha} = \\begin{cases} y^c_{\\alpha,\\sigma} & \\text{probability (the paper)}\\\\
        1 & \\text{none}\\\\ \\alpha\\, y^c_{\\alpha,\\sigma} & \\text{alpha\\_probability} \\end{cases}

    Args:
        probabilities: :math:`y^c_{\\alpha,\\sigma}`, shape :math:`(S, A, B)`.
        alphas: the intensities, shape :math:`(A,)`.
        weighting: ``"probability"``, ``"none"`` or ``"alpha_probability"``.

    Returns:
        Weights of shape :math:`(S, A, B)`.

    Examples:
        >>> y = torch.full((2, 3, 4), 0.5)
        >>> wsam_weights(y, torch.tensor([0.25, 0.5, 1.0]), "alpha_probability")[0, :, 0].tolist()
        [0.125, 0.25, 0.5]
    """
    check_choice(weighting, "weighting", WEIGHTINGS)
    check_tensor(probabilities, "probabilities", ndim=3)
    check_tensor(alphas, "alphas", ndim=1)
    if alphas.numel() != probabilities.shape[1]:
        raise ValueError(f"alphas must hold {probabilities.shape[1]} values, got {alphas.numel()}")
    if weighting == "probability":
        return probabilities
    if weighting == "none":
        return torch.ones_like(probabilities)
    return alphas.to(probabilities)[None, :, None] * probabilities


def weighted_style_average(maps: Tensor, weights: Tensor) -> Tensor:
    """The WSAM average over styles and intensities of weighted style activation maps.

    .. math::

        \\mathrm{WSAM}^c = \\frac{1}{\\Omega} \\sum_\\alpha \\sum_\\sigma w_{\\sigma,\\alpha}\\,
        \\mathrm{SAM}^c_{\\alpha,\\sigma}, \\qquad \\Omega = S A

    Args:
        maps: :math:`\\mathrm{SAM}`, shape :math:`(S, A, B, *)`.
        weights: shape :math:`(S, A, B)`.

    Returns:
        Shape :math:`(B, *)`.

    Examples:
        >>> maps = torch.ones(2, 3, 4, 1, 5, 5)
        >>> out = weighted_style_average(maps, torch.full((2, 3, 4), 0.5))
        >>> out.shape, bool(torch.allclose(out, torch.full_like(out, 0.5)))
        (torch.Size([4, 1, 5, 5]), True)
    """
    if maps.dim() < 3 or weights.shape != maps.shape[:3]:
        raise ValueError(
            f"weights must have shape (S, A, B) = {tuple(maps.shape[:3])} of maps, got {tuple(weights.shape)}"
        )
    omega = maps.shape[0] * maps.shape[1]
    expanded = weights.reshape(*weights.shape, *([1] * (maps.dim() - 3))).to(maps)
    return (expanded * maps).sum(dim=(0, 1)) / omega


def wsam_variance_terms(wsam: Tensor, reference_map: Tensor, reference_probability: Tensor) -> Tensor:
    """Per-sample term of the WSAM variance: the mean squared gap between WSAM and the weighted unstyled Grad-CAM.

    .. math::

        v_i = \\frac{1}{Z} \\sum_{p} \\big(\\mathrm{WSAM}^c_i[p] - y^c_i\\, I^c_i[p]\\big)^2

    (:math:`Z` the number of map elements per sample, :math:`H W` for one-channel maps.)

    Args:
        wsam: shape :math:`(B, *)`.
        reference_map: :math:`I^c`, the Grad-CAM map at α = 1, same shape.
        reference_probability: :math:`y^c`, shape :math:`(B,)`.

    Returns:
        Shape :math:`(B,)`.

    Examples:
        >>> w, I = torch.ones(3, 1, 2, 2), torch.ones(3, 1, 2, 2)
        >>> wsam_variance_terms(w, I, torch.tensor([1.0, 0.0, 0.5])).tolist()
        [0.0, 1.0, 0.25]
    """
    if wsam.shape != reference_map.shape:
        raise ValueError(
            f"reference_map must have the shape of wsam {tuple(wsam.shape)}, got {tuple(reference_map.shape)}"
        )
    if reference_probability.shape != wsam.shape[:1]:
        raise ValueError(
            f"reference_probability must have shape ({wsam.shape[0]},), got {tuple(reference_probability.shape)}"
        )
    weight = reference_probability.reshape(-1, *([1] * (wsam.dim() - 1))).to(wsam)
    gap = (wsam - weight * reference_map).flatten(1)
    return gap.pow(2).mean(dim=1)


def accumulate_per_class(
    sums: Tensor, counts: Tensor, terms: Tensor, labels: Tensor
) -> tuple[Tensor, Tensor]:
    """Add per-sample terms to per-class running sums and counts (streaming, in place on ``sums`` and ``counts``).

    .. math::

        s_c \\mathrel{+}= \\sum_{i: l_i = c} v_i, \\qquad n_c \\mathrel{+}= |\\{i: l_i = c\\}|

    Args:
        sums: running sums, shape :math:`(K,)` (float, ideally float64).
        counts: running counts, shape :math:`(K,)` (same dtype as ``sums``, so one all-reduce sums both).
        terms: per-sample values, shape :math:`(B,)`.
        labels: integer class of each sample, shape :math:`(B,)`, values in :math:`[0, K)`.

    Returns:
        ``(sums, counts)``, the same tensors, updated.

    Examples:
        >>> s, n = torch.zeros(3, dtype=torch.float64), torch.zeros(3, dtype=torch.float64)
        >>> s, n = accumulate_per_class(s, n, torch.tensor([1.0, 2.0, 4.0]), torch.tensor([0, 2, 0]))
        >>> s.tolist(), n.tolist()
        ([5.0, 0.0, 2.0], [2.0, 0.0, 1.0])
    """
    if labels.dim() != 1 or labels.shape != terms.shape:
        raise ValueError(f"labels must have shape {tuple(terms.shape)} of terms, got {tuple(labels.shape)}")
    if labels.is_floating_point():
        raise TypeError(f"labels must hold integer classes, got dtype {labels.dtype}")
    num_classes = sums.numel()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], got values in "
                         f"[{int(labels.min())}, {int(labels.max())}]")
    index = labels.to(device=sums.device, dtype=torch.long)
    sums.index_add_(0, index, terms.detach().to(sums))
    counts.index_add_(0, index, torch.ones_like(terms, dtype=counts.dtype, device=counts.device))
    return sums, counts


def variance_from_sums(sums: Tensor, counts: Tensor) -> Tensor:
    """Per-class mean of the accumulated terms; ``nan`` for a class without samples.

    .. math::

        \\mathrm{WSAM}^c_{variance} = s_c / n_c

    Args:
        sums: shape :math:`(K,)`.
        counts: shape :math:`(K,)`.

    Returns:
        Shape :math:`(K,)`.

    Examples:
        >>> variance_from_sums(torch.tensor([4.0, 0.0]), torch.tensor([2.0, 0.0])).tolist()
        [2.0, nan]
    """
    return torch.where(counts > 0, sums / counts.clamp(min=1), torch.full_like(sums, float("nan")))


def tokens_to_grid(tokens: Tensor, num_prefix_tokens: int = 1, grid_size: tuple[int, int] | None = None) -> Tensor:
    """Token activations of a vision transformer as a channels-first map (pytorch-grad-cam's ``reshape_transform``).

    Dosovitskiy et al., 2021, "An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale"
    (arXiv:2010.11929): after the class token(s), the :math:`N = h w` patch tokens are the patches in row-major order.

    .. math::

        A_{b,d,i,j} = T_{b,\\,P + i w + j,\\,d}, \\qquad T \\in \\mathbb{R}^{B \\times (P + h w) \\times D}

    Args:
        tokens: :math:`(B, P + N, D)`.
        num_prefix_tokens: :math:`P`, the class (and distillation/register) tokens to drop.
        grid_size: :math:`(h, w)`; default the square :math:`h = w = \\sqrt{N}`.

    Returns:
        Shape :math:`(B, D, h, w)`.

    Examples:
        >>> tokens_to_grid(torch.rand(2, 1 + 16, 8)).shape
        torch.Size([2, 8, 4, 4])
    """
    check_tensor(tokens, "tokens", ndim=3)
    count = tokens.shape[1] - num_prefix_tokens
    if grid_size is None:
        side = round(count**0.5)
        grid_size = (side, side)
    if count <= 0 or grid_size[0] * grid_size[1] != count:
        raise ValueError(
            f"tokens must hold {num_prefix_tokens} prefix token(s) plus a {grid_size[0]}x{grid_size[1]} grid of patch "
            f"tokens, got shape {tuple(tokens.shape)}; pass reshape_transform= for other layouts"
        )
    grid = tokens[:, num_prefix_tokens:].reshape(tokens.shape[0], grid_size[0], grid_size[1], tokens.shape[2])
    return grid.permute(0, 3, 1, 2)


def channels_last_to_first(maps: Tensor) -> Tensor:
    """A channels-last map :math:`(B, H, W, C)` (Swin and MaxViT blocks in torchvision) as :math:`(B, C, H, W)`.

    .. math:: A_{b,c,i,j} = M_{b,i,j,c}

    Examples:
        >>> channels_last_to_first(torch.rand(2, 7, 5, 16)).shape
        torch.Size([2, 16, 7, 5])
    """
    check_tensor(maps, "maps", ndim=4)
    return maps.permute(0, 3, 1, 2)


def chunk_slices(total: int, chunk_size: int | None) -> list[slice]:
    """Consecutive slices of at most ``chunk_size`` elements covering ``range(total)`` (one slice when ``None``).

    Examples:
        >>> chunk_slices(5, 2)
        [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    if chunk_size is None:
        return [slice(0, total)]
    check_positive_int(chunk_size, "chunk_size")
    return [slice(start, min(start + chunk_size, total)) for start in range(0, total, chunk_size)]


__all__ = [
    "WEIGHTINGS",
    "accumulate_per_class",
    "channels_last_to_first",
    "chunk_slices",
    "grad_cam_map",
    "tokens_to_grid",
    "variance_from_sums",
    "weighted_style_average",
    "wsam_variance_terms",
    "wsam_weights",
]
