r"""JacksonStyleNet: the pretrained style-augmentation network of Jackson et al. (2019), differentiable.

Jackson, Abarghouei, Bonner, Breckon and Obara (2019), "Style Augmentation: Data Augmentation via Style
Randomization", CVPR Workshops, arXiv:1809.05375 (code: github.com/philipjackson/style-augmentation, MIT), restyle an
image with the arbitrary-style transformer of Ghiasi, Lee, Kudlur, Dumoulin and Shlens (2017), "Exploring the
structure of a real-time, arbitrary neural artistic stylization network", BMVC, arXiv:1705.06830:

- **transformer**: three conv–InstanceNorm–ReLU layers (9×9/1, 3×3/2, 3×3/2), five residual blocks and three
  conv layers (two after a nearest ×2 upsampling, the last 9×9 without activation), every one after the first three
  with *conditional* instance norm :math:`\gamma(z)\,\frac{h - \mu(h)}{\sigma(h)} + \beta(z)` whose
  :math:`\gamma, \beta` are linear in a 100-d style embedding :math:`z`; sigmoid output;
- **style predictor**: Inception-v3 truncated after ``Mixed_6e``, mean-pooled, linear :math:`768 \to 100`;
- **style sampling**: :math:`z \sim \mathcal N(\mu, \Sigma)`, the Painter-by-Numbers embedding statistics, mixed with
  the image's own embedding :math:`z_c`.

Here the mixing follows this package's (and the WSAM seed's) convention, **α = weight of the image's own style**:
:math:`z = \alpha\,z_c + (1-\alpha)\,\hat z` (Jackson et al. write :math:`\alpha\,\hat z + (1-\alpha)\,z_c`). Unlike
the original, the output is not detached, so gradients reach the input. Checkpoints in the original layouts load with
``torch.load(weights_only=True)``; :meth:`JacksonStyleNet.from_pretrained` downloads them at a pinned commit and
checks their git blob ids.

The networks are in :mod:`captum_wsam.augment.jackson_networks`, checkpoint download and loading in
:mod:`captum_wsam.augment.jackson_checkpoints`; their public names are re-exported here.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .._checks import check_images, check_positive_int, check_tensor, check_type
from .backend import StyleBackendModule
from .jackson_checkpoints import (
    CHECKPOINT_BLOB_IDS,
    UPSTREAM_COMMIT,
    UPSTREAM_URL,
    fetch_checkpoints,
    git_blob_sha1,
    load_original_checkpoints,
)
from .jackson_networks import EMBEDDING_DIM, GhiasiTransformer, JacksonStylePredictor
from .style_bank import StyleBank


# --------------------------------------------------------------------------------------------- the backend
@dataclass(frozen=True)
class JacksonContent:
    """Content side of a Jackson stylization: the images and their own style embeddings :math:`z_c` (B, 100)."""

    images: Tensor
    embeddings: Tensor


class JacksonStyleNet(StyleBackendModule):
    r"""Jackson et al.'s style augmentation network as a :class:`~captum_wsam.augment.StyleAugment` backend.

    .. math:: o = \mathrm{Transformer}\big(c,\ \alpha\,z_c + (1-\alpha)\,\hat z\big),\qquad
              z_c = \mathrm{Predictor}(c),\quad \hat z \sim \mathcal N(\mu_{\text{PBN}}, \Sigma_{\text{PBN}})

    **α is the weight of the image's own style (α = 1: own embedding; α = 0: full random style)**, the opposite of
    the original code's α. :class:`~captum_wsam.augment.StyleAugment` returns the input itself at α = 1 exactly; the
    network only approximately reconstructs an image from its own embedding. Differentiable (nothing is detached).
    Built randomly initialized; load weights with :meth:`from_checkpoints` or :meth:`from_pretrained`.

    Args:
        use_style_predictor: compute :math:`z_c` with the style predictor (as the original default); ``False`` uses
            the mean ImageNet embedding for every image (faster).

    Examples:
        >>> net = JacksonStyleNet(use_style_predictor=False)  # random weights; see from_pretrained
        >>> styles = net.default_style_bank(count=4).vectors
        >>> net(torch.rand(2, 3, 32, 32), styles[:2], torch.tensor([0.0, 0.5])).shape
        torch.Size([2, 3, 32, 32])
    """

    pbn_mean: Tensor
    pbn_factor: Tensor
    imagenet_mean: Tensor

    def __init__(self, use_style_predictor: bool = True) -> None:
        super().__init__()
        check_type(use_style_predictor, "use_style_predictor", bool)
        self.transformer = GhiasiTransformer()
        self.predictor = JacksonStylePredictor()
        self.use_style_predictor = use_style_predictor
        self.register_buffer("pbn_mean", torch.zeros(EMBEDDING_DIM))
        self.register_buffer("pbn_factor", torch.eye(EMBEDDING_DIM))
        self.register_buffer("imagenet_mean", torch.zeros(EMBEDDING_DIM))

    @property
    def config(self) -> dict[str, Any]:
        """What a :class:`~captum_wsam.augment.StyleBank` must match: 100-d Jackson embeddings."""
        return {"backend": "jackson", "embedding_dim": EMBEDDING_DIM}

    @property
    def style_dim(self) -> int:
        """Length of a style vector (the embedding): 100."""
        return EMBEDDING_DIM

    def set_embedding_statistics(self, mean: Tensor, covariance: Tensor, imagenet_mean: Tensor) -> None:
        r"""Set :math:`\mu_{\text{PBN}}`, :math:`\Sigma_{\text{PBN}}` (stored as a factor :math:`A`,
        :math:`AA^\top = \Sigma`) and the mean ImageNet embedding."""
        check_tensor(covariance, "covariance", ndim=2)
        eigenvalues, vectors = torch.linalg.eigh(covariance.to(torch.float64))
        factor = vectors * eigenvalues.clamp(min=0).sqrt()
        with torch.no_grad():
            self.pbn_mean.copy_(mean.reshape(-1))
            self.pbn_factor.copy_(factor)
            self.imagenet_mean.copy_(imagenet_mean.reshape(-1))

    def sample_embeddings(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        r""":math:`\hat z = \mu + A\varepsilon`, :math:`\varepsilon \sim \mathcal N(0, I)`: :math:`(n, 100)`."""
        noise = torch.randn(count, EMBEDDING_DIM, generator=generator, dtype=torch.float64)
        return (noise @ self.pbn_factor.double().cpu().T + self.pbn_mean.double().cpu()).to(self.pbn_mean)

    def sample_styles(self, count: int, generator: torch.Generator | None = None) -> Tensor:
        r"""Fresh style embeddings :math:`\hat z \sim \mathcal N(\mu_{\text{PBN}}, \Sigma_{\text{PBN}})`,
        :math:`(\text{count}, 100)`, from the global RNG unless ``generator`` is given: what the official
        ``StyleAugmentor`` draws for every image, and what :class:`~captum_wsam.augment.StyleAugment` calls per sample
        when no ``styles=`` bank is given."""
        check_positive_int(count, "count")
        return self.sample_embeddings(count, generator)

    def default_style_bank(self, count: int = 64, seed: int = 0) -> StyleBank:
        """``count`` embeddings drawn from :math:`\\mathcal N(\\mu_{\\text{PBN}}, \\Sigma_{\\text{PBN}})` with a seeded
        generator: the fixed styles that SAM/WSAM's deterministic ``stylize``/``stylize_grid`` index. Random
        augmentation draws fresh embeddings instead (:meth:`sample_styles`)."""
        vectors = self.sample_embeddings(count, torch.Generator().manual_seed(seed))
        return StyleBank(vectors, [f"pbn_{i:03d}" for i in range(count)], self.config)

    def encode_styles(self, images: Tensor) -> Tensor:
        """Style embeddings :math:`(S, 100)` of style images :math:`(S, 3, H, W)` in [0, 1] (the style predictor)."""
        check_images(images, "images", channels=3)
        return self.predictor(images)

    def prepare(self, inputs: Tensor) -> JacksonContent:
        """The images and their own embeddings :math:`z_c` (predictor, or mean ImageNet embedding)."""
        if self.use_style_predictor:
            embeddings = self.predictor(inputs)
        else:
            embeddings = self.imagenet_mean.to(inputs).expand(inputs.shape[0], -1)
        return JacksonContent(inputs, embeddings)

    def render(self, content: JacksonContent, styles: Tensor, alpha: Tensor) -> Tensor:
        r"""Restyle with :math:`z = \alpha z_c + (1-\alpha)\hat z`; :math:`(B, 3, H, W)` in [0, 1]."""
        a = alpha.to(content.embeddings).view(-1, 1)
        embedding = a * content.embeddings + (1 - a) * styles.to(content.embeddings)
        return self.transformer(content.images, embedding)

    @classmethod
    def from_checkpoints(
        cls,
        transformer: str | os.PathLike[str] | Mapping[str, Any],
        predictor: str | os.PathLike[str] | Mapping[str, Any],
        embeddings: str | os.PathLike[str] | Mapping[str, Any],
        use_style_predictor: bool = True,
    ) -> JacksonStyleNet:
        """Build the network from the three original checkpoint files (legacy or zip torch format).

        Files are read with ``torch.load(weights_only=True)``: a file that needs arbitrary code to unpickle is
        refused. Expected layouts: ``{"state_dict_ghiasi": ...}``, ``{"state_dict_stylepredictor": ...}`` and
        ``{"pbn_embedding_mean": (100,), "pbn_embedding_covariance": (100, 100), "imagenet_embedding_mean": (100,)}``.
        Every parameter is required with its exact shape (extra keys are ignored, as the original loader did).

        Args:
            transformer: path to ``checkpoint_transformer.pth`` (or its loaded dict).
            predictor: path to ``checkpoint_stylepredictor.pth`` (or its loaded dict).
            embeddings: path to ``checkpoint_embeddings.pth`` (or its loaded dict).
            use_style_predictor: see the class.

        Returns:
            The network in eval mode.
        """
        net = cls(use_style_predictor=use_style_predictor)
        mean, covariance, imagenet = load_original_checkpoints(net.transformer, net.predictor, transformer, predictor,
                                                               embeddings)
        net.set_embedding_statistics(mean, covariance, imagenet)
        return net.eval()

    @classmethod
    def from_pretrained(
        cls,
        cache_dir: str | os.PathLike[str] | None = None,
        progress: bool = True,
        *,
        use_style_predictor: bool = True,
        base_url: str = UPSTREAM_URL,
        blob_ids: Mapping[str, str] | None = None,
        fetch: Callable[[str, Path, bool], None] | None = None,
    ) -> JacksonStyleNet:
        """Download Jackson et al.'s checkpoints at the pinned commit, verify their git blob ids, load them.

        Files go to ``cache_dir`` (default: the torch hub cache, ``<hub>/checkpoints/style-augmentation-0273e2e``)
        and are reused; a file whose git blob id differs from :data:`CHECKPOINT_BLOB_IDS` is deleted and
        ``RuntimeError`` is raised. ``base_url``, ``blob_ids`` and ``fetch`` redirect the download (mirrors, tests);
        see :func:`fetch_checkpoints`.
        """
        paths = fetch_checkpoints(cache_dir, progress, base_url=base_url, blob_ids=blob_ids, fetch=fetch)
        return cls.from_checkpoints(
            paths["checkpoint_transformer.pth"],
            paths["checkpoint_stylepredictor.pth"],
            paths["checkpoint_embeddings.pth"],
            use_style_predictor=use_style_predictor,
        )


__all__ = [
    "CHECKPOINT_BLOB_IDS",
    "EMBEDDING_DIM",
    "UPSTREAM_COMMIT",
    "UPSTREAM_URL",
    "GhiasiTransformer",
    "JacksonContent",
    "JacksonStyleNet",
    "JacksonStylePredictor",
    "fetch_checkpoints",
    "git_blob_sha1",
    "load_original_checkpoints",
]
