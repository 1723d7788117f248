r"""StyleAugment: differentiable style randomization as a Kornia intensity augmentation.

Jackson, Abarghouei, Bonner, Breckon and Obara (2019), "Style Augmentation: Data Augmentation via Style
Randomization", CVPR Workshops, arXiv:1809.05375, keep an image's shape and randomize its colour, contrast and
texture; Moreno-Vera, Medina and Poco ("WSAM: Visual Explanations from Style Augmentation as Adversarial Attacker",
the seed of this package's SAM/WSAM) draw a style around a precomputed style vector and blend it with the image's
own style with an intensity α:

.. math::

    \hat z_i = \bar z_i + \mathcal N(0, \sigma^2),\qquad o_i = \operatorname{transfer}(x_i, \hat z_i, \alpha_i).

The transfer is a pluggable backend (:class:`~captum_wsam.augment.backend.StyleBackend`): the default
:class:`~captum_wsam.augment.TextureTransfer` swaps texture (patch swap, Chen and Schmidt 2016);
:class:`~captum_wsam.augment.LinearStyleTransfer` changes colour and contrast only; :class:`~captum_wsam.augment.
JacksonStyleNet` is the authors' pretrained network.

**α convention (the seed's and the WSAM code's, the opposite of Jackson et al.): α is the weight of the image's own
style. α = 1 returns the input exactly; α = 0 applies the full style. "The less intensity, the more style."**
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch
from kornia.augmentation import IntensityAugmentationBase2D
from torch import Tensor, nn

from .._checks import check_finite, check_images, check_in_range, check_range_pair, check_tensor, check_type
from .backend import check_style_backend
from .pixel_space import PixelSpace
from .style_bank import StyleBank
from .texture_transfer import TextureTransfer

_LOW_PRECISION = (torch.float16, torch.bfloat16)


def _rows(value: Tensor, batch: int, params: dict[str, Tensor], name: str) -> Tensor:
    """Per-sample rows of a parameter for a batch of ``batch`` (Kornia 0.9 passes the full batch; 0.8 the gated)."""
    if value.shape[0] == batch:
        return value
    if value.shape[0] == 1:
        return value.expand(batch, *value.shape[1:])
    gate = params.get("batch_prob")
    if gate is not None and gate.shape[0] == value.shape[0] and int((gate > 0.5).sum()) == batch:
        return value[gate > 0.5]
    raise ValueError(f"params[{name!r}] has {value.shape[0]} rows for a batch of {batch}")


class StyleAugment(IntensityAugmentationBase2D):
    r"""Randomize the style (texture, colour, contrast) of images while keeping their shapes; differentiable.

    For every sample, a style :math:`\bar z_i` is drawn from :attr:`style_bank`, perturbed as
    :math:`\hat z_i = \bar z_i + \sigma\,s\odot\varepsilon` (:math:`s` the per-coordinate spread of the bank,
    :math:`\varepsilon\sim\mathcal N(0, I)`), and applied with :math:`\alpha\sim U(\alpha_{\min}, \alpha_{\max})`:

    .. math:: o_i = \operatorname{transfer}(x_i, \hat z_i, \alpha_i)

    With the default :class:`~captum_wsam.augment.TextureTransfer` every detail patch of :math:`o` comes from the
    style image (the texture is swapped) and the colours follow the style's; with
    :class:`~captum_wsam.augment.LinearStyleTransfer` (``transfer=LinearStyleTransfer()``) the image's own patch
    features are re-coloured and re-contrasted (colour and contrast only). With a generative backend
    (:class:`~captum_wsam.augment.JacksonStyleNet`) and no ``styles=``, every image gets a fresh style
    :math:`\hat z_i \sim \mathcal N(\mu, \Sigma)` (``params["style_vector"]``), as in the authors' code; the
    backend's default bank then only serves the deterministic :meth:`stylize`/:meth:`stylize_grid` (SAM/WSAM).

    .. warning::
        **α is the weight of the image's own style** (the WSAM seed's convention): **α = 1 returns the input
        exactly, α = 0 applies the full style**. Jackson et al.'s ``styleaug`` uses the opposite convention
        (their α is the style strength, ours is :math:`1 - \alpha`).

    Randomness lives only in the sampled parameters ``style_index`` :math:`(B,)`, ``alpha`` :math:`(B,)` and
    ``style_noise`` :math:`(B, V)` (or ``style_vector`` :math:`(B, V)` with a generative backend; Kornia's
    global-RNG convention), so ``aug(x, params=aug._params)`` reproduces the output bit for bit. ``params`` without
    ``style_noise`` mean zero noise. Differentiable with respect to the input and to α; float16/bfloat16 inputs are
    processed in float32 and cast back. Used per sample (a Dataset ``transform`` on :math:`(3, H, W)` images), pass
    ``keepdim=True`` so that the output keeps the input's shape.

    Args:
        alpha: α or its sampling range ``(min, max)`` in [0, 1]. The default (0.2, 0.6) is where the default
            backend swaps the texture (weight 0.8 to 1) and keeps the shapes: it gave the largest shape-bias gain in
            ``benchmarks/bench_shape_bias.py``; the WSAM seed found 0.3 to 0.8 best with its linear transfer (pass
            ``alpha=(0.3, 0.8)`` with :class:`~captum_wsam.augment.LinearStyleTransfer`).
        p: probability of stylizing each sample.
        same_on_batch: one style, α and noise for the whole batch.
        keepdim: keep a :math:`(C, H, W)` input's shape.
        transfer: the backend, any :class:`~captum_wsam.augment.backend.StyleBackend` (default
            :class:`~captum_wsam.augment.TextureTransfer`; or :class:`~captum_wsam.augment.LinearStyleTransfer`,
            :class:`~captum_wsam.augment.JacksonStyleNet`).
        styles: a :class:`~captum_wsam.augment.StyleBank`, style images :math:`(S, 3, H, W)`, or a folder of images;
            default: the transfer's default bank (48 procedural textures for the weight-free backends).
        style_noise: :math:`\sigma`, the style noise relative to the bank's spread (0 disables it).
        normalization: ``None`` (inputs are [0, 1] pixels) or ``(mean, std)``, per-channel sequences or tensors
            (torchattacks' ``set_normalization_used`` convention): inputs are normalized tensors
            :math:`x = (p - \mu) / s`, styling happens on the pixels :math:`p = x s + \mu` and the output is
            normalized again, :math:`o = (\operatorname{transfer}(p, \hat z, \alpha) - \mu) / s`. Use it behind
            ``torchvision.transforms.Normalize`` (e.g. ImageNet statistics).

    Raises:
        ValueError: without ``normalization``, for inputs outside [0, 1] (the message suggests
            ``normalization=``); with it, for inputs whose pixels fall outside [0, 1].

    Shape:
        - Input: :math:`(B, 3, H, W)` or :math:`(3, H, W)`; pixels in [0, 1] (after undoing ``normalization``).
        - Output: the input's shape (``keepdim=True``) or :math:`(B, 3, H, W)`, in the input's space.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> aug = StyleAugment(p=1.0)
        >>> x = torch.rand(2, 3, 32, 32)
        >>> out = aug(x)
        >>> out.shape, len(aug.style_bank), sorted(k for k in aug._params if k.startswith(("style", "alpha")))
        (torch.Size([2, 3, 32, 32]), 48, ['alpha', 'style_index', 'style_noise'])
        >>> bool(aug(x, params=aug._params).equal(out)), bool(aug.stylize(x, 3, 1.0).equal(x))
        (True, True)

        ImageNet-normalized inputs, as torchvision's pretrained pipelines feed them:

        >>> mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
        >>> normalize = lambda p: (p - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)
        >>> aug = StyleAugment(p=1.0, normalization=(mean, std))
        >>> out = aug(normalize(x))
        >>> plain = StyleAugment(p=1.0)(x, params=aug._params)
        >>> torch.allclose(out, normalize(plain), atol=1e-5)
        True
    """

    def __init__(
        self,
        alpha: float | tuple[float, float] = (0.2, 0.6),
        p: float = 0.5,
        same_on_batch: bool = False,
        keepdim: bool = False,
        transfer: nn.Module | None = None,
        styles: StyleBank | Tensor | str | os.PathLike[str] | None = None,
        style_noise: float = 0.1,
        normalization: Any = None,
    ) -> None:
        pixel_space = PixelSpace(normalization)  # validates normalization (names the argument)
        alpha_range = check_range_pair(alpha, "alpha", 0.0, 1.0)
        check_in_range(p, "p", 0.0, 1.0)
        check_type(same_on_batch, "same_on_batch", bool)
        check_type(keepdim, "keepdim", bool)
        check_in_range(style_noise, "style_noise", 0.0)
        if transfer is not None:
            check_style_backend(transfer, "transfer")
        super().__init__(p=p, same_on_batch=same_on_batch, p_batch=1.0, keepdim=keepdim)
        self.alpha = alpha_range
        self.style_noise = float(style_noise)
        self.pixel_space = pixel_space
        self.transfer = TextureTransfer() if transfer is None else transfer
        if styles is None:
            bank = self.transfer.default_style_bank()
        elif isinstance(styles, StyleBank):
            bank = styles
        elif isinstance(styles, (Tensor, str, os.PathLike)):
            if isinstance(styles, Tensor):
                check_images(styles, "styles", channels=3)
            bank = StyleBank.from_images(styles, transfer=self.transfer)
        else:
            raise TypeError(f"styles must be a StyleBank, an image tensor or a folder, got {type(styles).__name__}")
        bank.check_compatible(self.transfer, "styles")
        self.style_bank = bank
        # A generative backend (JacksonStyleNet) draws a fresh style per image unless a finite bank is given.
        self.fresh_styles = styles is None and callable(getattr(self.transfer, "sample_styles", None))

    @property
    def normalization(self) -> Any:
        """The ``(mean, std)`` given to the constructor, or ``None`` (inputs are [0, 1] pixels)."""
        return self.pixel_space.normalization

    def _check_pixels(self, inputs: Tensor, name: str) -> None:
        """Raise (naming ``name``, suggesting ``normalization=``) unless the pixels of ``inputs`` lie in [0, 1]."""
        if torch.compiler.is_compiling():  # a data-dependent raise would break torch.compile(fullgraph=True)
            return
        with torch.no_grad():
            self.pixel_space.check_range(self.pixel_space.to_pixels(inputs.detach()), name)

    # ------------------------------------------------------------------ Kornia hooks
    def generate_parameters(self, batch_shape: tuple[int, ...]) -> dict[str, Tensor]:
        """Draw ``alpha`` and either ``style_index`` with ``style_noise`` (a bank) or ``style_vector`` (a fresh style
        from a generative backend's ``sample_styles``) per sample; one draw with ``same_on_batch``."""
        batch = batch_shape[0]
        draws = 1 if self.same_on_batch else batch
        low, high = self.alpha
        alpha = low + (high - low) * torch.rand(draws, device=self.device, dtype=self.dtype)
        if self.fresh_styles:
            vectors = self.transfer.sample_styles(draws).to(device=self.device, dtype=self.dtype)
            if self.same_on_batch:
                alpha, vectors = alpha.repeat(batch), vectors.repeat(batch, 1)
            return {"style_vector": vectors, "alpha": alpha}
        style_index = torch.randint(len(self.style_bank), (draws,), device=self.device)
        noise = torch.randn(draws, self.style_bank.vectors.shape[1], device=self.device, dtype=self.dtype)
        if self.same_on_batch:
            style_index, alpha, noise = style_index.repeat(batch), alpha.repeat(batch), noise.repeat(batch, 1)
        return {"style_index": style_index, "alpha": alpha, "style_noise": noise}

    def validate_tensor(self, input: Tensor) -> None:
        check_images(input, "input")  # also called on masks, which have one channel

    def apply_transform(
        self, input: Tensor, params: dict[str, Tensor], flags: dict[str, Any], transform: Tensor | None = None
    ) -> Tensor:
        check_images(input, "input", channels=3)
        batch = input.shape[0]
        if ("style_index" not in params and "style_vector" not in params) or "alpha" not in params:
            raise ValueError(f"params must hold 'alpha' and 'style_index' or 'style_vector', got keys {sorted(params)}")
        alpha = _rows(torch.as_tensor(params["alpha"]).reshape(-1), batch, params, "alpha")
        if "style_vector" in params:
            styles = _rows(params["style_vector"], batch, params, "style_vector")
        else:
            index = _rows(params["style_index"], batch, params, "style_index")
            noise = params.get("style_noise")
            noise = None if noise is None else _rows(noise, batch, params, "style_noise")
            styles = self.style_bank.sample(index, noise, self.style_noise)
        gate = params.get("batch_prob")
        # Compiled, every sample is stylized (no data-dependent selection); Kornia blends the skipped ones back.
        if self.p == 1.0 or gate is None or gate.shape[0] != batch or torch.compiler.is_compiling():
            return self._stylize(input, styles, alpha)
        # Only the gated samples are stylized; Kornia blends the others back from the input.
        chosen = (gate > 0.5).nonzero().flatten().to(input.device)
        if chosen.numel() == 0:
            return input
        stylized = self._stylize(input[chosen], styles[chosen.to(styles.device)], alpha[chosen.to(alpha.device)])
        return input.index_put((chosen,), stylized)

    def forward(self, input: Tensor, params: dict[str, Tensor] | None = None, **kwargs: Any) -> Tensor:
        check_tensor(input, "input", ndim=(3, 4), floating=True)
        if input.shape[-3] != 3:
            raise ValueError(f"input must have 3 channels, got shape {tuple(input.shape)}")
        if not torch.compiler.is_compiling():  # a data-dependent raise would break torch.compile(fullgraph=True)
            check_finite(input, "input")
            self._check_pixels(input, "input")
        return super().forward(input, params=params, **kwargs)

    # ------------------------------------------------------------------ deterministic API (SAM/WSAM)
    def _stylize(self, inputs: Tensor, styles: Tensor, alpha: Tensor) -> Tensor:
        """Model-space ``inputs`` to pixels, the backend's transfer, back to model space; α = 1 exact identity."""
        work = inputs.float() if inputs.dtype in _LOW_PRECISION else inputs
        alpha = alpha.to(device=work.device, dtype=work.dtype)
        pixels = self.pixel_space.to_pixels(work)
        out = self.pixel_space.to_model(self.transfer.render(self.transfer.prepare(pixels), styles.to(work), alpha))
        out = torch.where((alpha == 1).view(-1, 1, 1, 1), work, out)
        return out.to(inputs.dtype)

    def _style_indices(self, style: int | Tensor, batch: int, name: str = "style") -> Tensor:
        count = len(self.style_bank)
        if isinstance(style, Tensor):
            if style.is_floating_point() or style.dim() > 1 or style.numel() not in (1, batch):
                raise ValueError(f"{name} must be an int or a ({batch},) integer tensor, got {style!r}")
            index = style.reshape(-1).long()
        else:
            if isinstance(style, bool) or not isinstance(style, int):
                raise TypeError(f"{name} must be an int or an integer tensor, got {type(style).__name__}")
            index = torch.tensor([style])
        if index.numel() and (index.min() < 0 or index.max() >= count):
            raise ValueError(f"{name} must index the style bank (0..{count - 1}), got {index.tolist()}")
        return index.expand(batch) if index.numel() == 1 else index

    @staticmethod
    def _alphas(alpha: float | Tensor, batch: int | None, like: Tensor, name: str = "alpha") -> Tensor:
        if isinstance(alpha, Tensor):
            if not alpha.is_floating_point():
                raise TypeError(f"{name} must be a float or a floating tensor, got dtype {alpha.dtype}")
            flat = alpha.reshape(-1)
            if batch is not None and flat.numel() not in (1, batch):
                raise ValueError(f"{name} must hold 1 or {batch} values, got shape {tuple(alpha.shape)}")
            if flat.numel() and (flat.min() < 0 or flat.max() > 1):
                raise ValueError(f"{name} must lie in [0, 1], got values {flat.tolist()}")
            return flat.to(like.device)
        check_in_range(alpha, name, 0.0, 1.0)
        return torch.tensor([float(alpha)], dtype=like.dtype, device=like.device)

    def stylize(self, inputs: Tensor, style: int | Tensor, alpha: float | Tensor) -> Tensor:
        r"""Stylize with a fixed style and α: deterministic (no noise, no ``p``) and differentiable.

        .. math:: o = \operatorname{transfer}(x, \bar z_{\text{style}}, \alpha)

        Equal to ``forward`` with ``params`` fixing ``style_index``/``alpha`` and zero noise.
        **α = 1 returns** ``inputs`` **exactly; α = 0 is the full style.**

        Args:
            inputs: :math:`(B, 3, H, W)` in [0, 1] (normalized with ``normalization`` if one was given).
            style: a style index, or a :math:`(B,)` long tensor of indices into :attr:`style_bank`.
            alpha: a number in [0, 1] or a :math:`(B,)` tensor (may require grad).

        Returns:
            :math:`(B, 3, H, W)`, the dtype of ``inputs``.

        Examples:
            >>> aug = StyleAugment()
            >>> x = torch.rand(2, 3, 32, 32)
            >>> aug.stylize(x, torch.tensor([0, 5]), 0.3).shape, bool(aug.stylize(x, 0, 1.0).equal(x))
            (torch.Size([2, 3, 32, 32]), True)
        """
        check_images(inputs, "inputs", channels=3)
        self._check_pixels(inputs, "inputs")
        batch = inputs.shape[0]
        index = self._style_indices(style, batch)
        alphas = self._alphas(alpha, batch, inputs).expand(batch)
        return self._stylize(inputs, self.style_bank.sample(index), alphas)

    def stylize_grid(
        self, inputs: Tensor, styles: Sequence[int] | Tensor, alphas: Sequence[float] | Tensor
    ) -> Tensor:
        r"""Every style × every α for a batch, with the content statistics of each image computed once.

        ``out[s, a]`` equals ``stylize(inputs, styles[s], alphas[a])``; the content side of ``inputs`` (the
        backend's ``prepare``: pyramid, patch statistics, whitening matrices) is computed once and shared by all
        :math:`S \times A` stylizations. Differentiable with respect to ``inputs`` (and ``alphas`` if a tensor).

        Args:
            inputs: :math:`(B, 3, H, W)` in [0, 1] (normalized with ``normalization`` if one was given).
            styles: :math:`S` style indices.
            alphas: :math:`A` values in [0, 1].

        Returns:
            :math:`(S, A, B, 3, H, W)`.

        Examples:
            >>> aug = StyleAugment()
            >>> grid = aug.stylize_grid(torch.rand(2, 3, 32, 32), [0, 1, 2], [0.0, 0.5, 1.0])
            >>> grid.shape
            torch.Size([3, 3, 2, 3, 32, 32])
        """
        check_images(inputs, "inputs", channels=3)
        self._check_pixels(inputs, "inputs")
        style_list = styles.reshape(-1).tolist() if isinstance(styles, Tensor) else list(styles)
        if not style_list:
            raise ValueError("styles must hold at least one style index, got an empty sequence")
        index = torch.cat([self._style_indices(s, 1, "styles") for s in style_list])
        if isinstance(alphas, Tensor):
            alpha_values = self._alphas(alphas, None, inputs, "alphas")
        else:
            alpha_values = torch.cat([self._alphas(a, 1, inputs, "alphas") for a in alphas]) if alphas else None
        if alpha_values is None or alpha_values.numel() == 0:
            raise ValueError("alphas must hold at least one value, got an empty sequence")
        batch = inputs.shape[0]
        work = inputs.float() if inputs.dtype in _LOW_PRECISION else inputs
        content = self.transfer.prepare(self.pixel_space.to_pixels(work))
        vectors = self.style_bank.sample(index).to(work)
        alpha_values = alpha_values.to(work.dtype)
        rows = []
        for s in range(len(style_list)):
            row = []
            for a in range(alpha_values.numel()):
                alpha = alpha_values[a].expand(batch)
                out = self.pixel_space.to_model(self.transfer.render(content, vectors[s].expand(batch, -1), alpha))
                row.append(torch.where((alpha == 1).view(-1, 1, 1, 1), work, out))
            rows.append(torch.stack(row))
        return torch.stack(rows).to(inputs.dtype)


__all__ = ["StyleAugment"]
