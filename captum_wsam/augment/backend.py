"""The style-transfer backend interface of :class:`~captum_wsam.augment.StyleAugment`, as a ``typing.Protocol``.

A backend turns content images and style vectors into stylized images in two steps, so that the content side of an
image is computed once and reused for every style and intensity (what SAM/WSAM's ``stylize_grid`` relies on):

.. math::

    c = \\mathrm{prepare}(x), \\qquad x_{\\alpha,\\sigma} = \\mathrm{render}(c, z_\\sigma, \\alpha), \\qquad
    z_\\sigma = \\mathrm{encode\\_styles}(s_\\sigma) \\in \\mathbb{R}^{\\mathrm{style\\_dim}}

Two backends ship with the package: :class:`~captum_wsam.augment.LinearStyleTransfer` (Li et al., 2019, "Learning
Linear Transformations for Fast Image and Video Style Transfer", arXiv:1808.04537; closed-form here) and
:class:`~captum_wsam.augment.JacksonStyleNet` (Jackson et al., 2019, "Style Augmentation: Data Augmentation via Style
Randomization", arXiv:1809.05375). Any ``nn.Module`` with the members of :class:`StyleBackend` plugs in;
:func:`check_style_backend` checks all of them at once and names what is missing.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch import Tensor, nn

#: Members a backend must offer: methods (called) and properties (read).
BACKEND_METHODS = ("prepare", "render", "encode_styles", "default_style_bank")
BACKEND_PROPERTIES = ("config", "style_dim")


@runtime_checkable
class StyleBackend(Protocol):
    """What :class:`~captum_wsam.augment.StyleAugment` needs from a style-transfer network.

    .. math::

        x_{\\alpha,\\sigma} = \\mathrm{render}(\\mathrm{prepare}(x), z_\\sigma, \\alpha)

    Members:
        prepare: ``prepare(inputs)`` → content statistics of images :math:`(B, 3, H, W)` in [0, 1] (any object;
            passed back to ``render`` unchanged, possibly for several styles).
        render: ``render(content, styles, alpha)`` → stylized images :math:`(B, 3, H, W)` in [0, 1] from style
            vectors :math:`(B, V)` and intensities α :math:`(B,)` (α = 1 the content, α = 0 the full style).
        encode_styles: ``encode_styles(images)`` → style vectors :math:`(S, V)` of style images.
        default_style_bank: ``default_style_bank()`` → the :class:`~captum_wsam.augment.StyleBank` used when
            ``StyleAugment(styles=None)``.
        config: a dict a :class:`~captum_wsam.augment.StyleBank` must match (backend name and settings).
        style_dim: :math:`V`, the length of a style vector.

    Examples:
        >>> from captum_wsam.augment import LinearStyleTransfer
        >>> isinstance(LinearStyleTransfer(), StyleBackend)
        True
    """

    @property
    def config(self) -> dict[str, Any]: ...

    @property
    def style_dim(self) -> int: ...

    def prepare(self, inputs: Tensor) -> Any: ...

    def render(self, content: Any, styles: Tensor, alpha: Tensor) -> Tensor: ...

    def encode_styles(self, images: Tensor) -> Tensor: ...

    def default_style_bank(self) -> Any: ...


def check_style_backend(obj: Any, name: str = "transfer") -> None:
    """Raise ``TypeError`` unless ``obj`` is an ``nn.Module`` with every member of :class:`StyleBackend`.

    Checks everything at once and names every missing or wrong member: the four methods must be callable,
    ``config`` must be a dict and ``style_dim`` a positive int.

    .. math::

        \\text{missing} = \\{\\text{prepare}, \\text{render}, \\text{encode\\_styles}, \\text{default\\_style\\_bank},
        \\text{config}, \\text{style\\_dim}\\} \\setminus \\text{members}(obj) = \\emptyset

    Args:
        obj: the candidate backend.
        name: the argument name used in the message.

    Returns:
        ``None``.

    Examples:
        >>> import torch
        >>> from captum_wsam.augment import LinearStyleTransfer
        >>> check_style_backend(LinearStyleTransfer())
        >>> check_style_backend(torch.nn.Identity())
        Traceback (most recent call last):
        ...
        TypeError: transfer must implement the StyleBackend protocol (captum_wsam.augment.backend), got Identity \
missing prepare(), render(), encode_styles(), default_style_bank(), config, style_dim
    """
    if not isinstance(obj, nn.Module):
        raise TypeError(f"{name} must be an nn.Module implementing StyleBackend, got {type(obj).__name__}")
    problems = [f"{method}()" for method in BACKEND_METHODS if not callable(getattr(obj, method, None))]
    try:
        config = obj.config
    except AttributeError:
        problems.append("config")
    else:
        if not isinstance(config, dict):
            problems.append(f"config (a dict, got {type(config).__name__})")
    try:
        style_dim = obj.style_dim
    except AttributeError:
        problems.append("style_dim")
    else:
        if isinstance(style_dim, bool) or not isinstance(style_dim, int) or style_dim <= 0:
            problems.append(f"style_dim (a positive int, got {style_dim!r})")
    if problems:
        raise TypeError(
            f"{name} must implement the StyleBackend protocol (captum_wsam.augment.backend), got "
            f"{type(obj).__name__} missing {', '.join(problems)}"
        )


class StyleBackendModule(nn.Module):
    r"""Base class of the shipped backends: ``forward`` is :math:`\mathrm{render}(\mathrm{prepare}(x), z, \alpha)`.

    Subclasses implement the members of :class:`StyleBackend`; third-party backends need not inherit from it (the
    protocol is structural).

    Examples:
        >>> from captum_wsam.augment import LinearStyleTransfer
        >>> isinstance(LinearStyleTransfer(), StyleBackendModule)
        True
    """

    def forward(self, inputs: Tensor, styles: Tensor, alpha: Tensor) -> Tensor:
        r"""Stylize ``inputs`` :math:`(B, 3, H, W)` in [0, 1] with style vectors :math:`(B, V)` and α :math:`(B,)`.

        Returns:
            :math:`(B, 3, H, W)` in [0, 1].
        """
        return self.render(self.prepare(inputs), styles, alpha)


__all__ = ["BACKEND_METHODS", "BACKEND_PROPERTIES", "StyleBackend", "StyleBackendModule", "check_style_backend"]
