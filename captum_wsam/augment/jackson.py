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
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.models.inception import BasicConv2d, InceptionA, InceptionB, InceptionC

from .._checks import check_images, check_positive_int, check_tensor, check_type
from .style_bank import StyleBank

EMBEDDING_DIM = 100
UPSTREAM_COMMIT = "0273e2e66a894d553c7466773802e09eae41f698"
UPSTREAM_URL = f"https://raw.githubusercontent.com/philipjackson/style-augmentation/{UPSTREAM_COMMIT}/styleaug/checkpoints"
#: git blob ids (SHA-1 of ``b"blob <size>\0" + content``) of the three files at :data:`UPSTREAM_COMMIT`.
CHECKPOINT_BLOB_IDS: dict[str, str] = {
    "checkpoint_transformer.pth": "6cbd6a379ac2a2f2c39bb1c95f282ee6a81f9eef",
    "checkpoint_stylepredictor.pth": "5406294bf41d364e80fa75a8c1b0b373df935378",
    "checkpoint_embeddings.pth": "ce01fabe62f113d76f49a60e39524cacd1330b06",
}
_MIN_PREDICTOR_SIDE = 75  # Inception-v3 up to Mixed_6e needs at least 75×75 inputs


# --------------------------------------------------------------------------------------------- transformer
class _ConvInstanceReLU(nn.Module):
    """Reflection pad, convolution, instance norm, ReLU (the three unconditioned input layers)."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, stride: int = 1) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv = nn.Conv2d(channels_in, channels_out, kernel_size, stride)
        self.instancenorm = nn.InstanceNorm2d(channels_out)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.relu(self.instancenorm(self.conv(self.reflection_pad(x))))


def _conditional(norm: Tensor, gamma: nn.Linear, beta: nn.Linear, embedding: Tensor) -> Tensor:
    return gamma(embedding)[:, :, None, None] * norm + beta(embedding)[:, :, None, None]


class _ConditionalUpsampleConv(nn.Module):
    """Optional nearest ×2 upsampling, reflection pad, convolution, conditional instance norm, optional ReLU."""

    def __init__(self, channels_in: int, channels_out: int, kernel_size: int, upsample: bool, activation: bool) -> None:
        super().__init__()
        self.upsample_layer = nn.Upsample(scale_factor=2) if upsample else None
        self.reflection_pad = nn.ReflectionPad2d(kernel_size // 2)
        self.conv = nn.Conv2d(channels_in, channels_out, kernel_size)
        self.instancenorm = nn.InstanceNorm2d(channels_out)
        self.fc_beta = nn.Linear(EMBEDDING_DIM, channels_out)
        self.fc_gamma = nn.Linear(EMBEDDING_DIM, channels_out)
        self.activation = nn.ReLU() if activation else None

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        if self.upsample_layer is not None:
            x = self.upsample_layer(x)
        x = _conditional(self.instancenorm(self.conv(self.reflection_pad(x))), self.fc_gamma, self.fc_beta, embedding)
        return x if self.activation is None else self.activation(x)


class _ConditionalResidualBlock(nn.Module):
    """Two 3×3 convolutions with conditional instance norm (ReLU between them) and an identity skip."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.reflection_pad = nn.ReflectionPad2d(1)
        self.conv1 = nn.Conv2d(channels, channels, 3)
        self.conv2 = nn.Conv2d(channels, channels, 3)
        self.instancenorm = nn.InstanceNorm2d(channels)
        self.fc_beta1 = nn.Linear(EMBEDDING_DIM, channels)
        self.fc_gamma1 = nn.Linear(EMBEDDING_DIM, channels)
        self.fc_beta2 = nn.Linear(EMBEDDING_DIM, channels)
        self.fc_gamma2 = nn.Linear(EMBEDDING_DIM, channels)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        y = self.instancenorm(self.conv1(self.reflection_pad(x)))
        y = self.relu(_conditional(y, self.fc_gamma1, self.fc_beta1, embedding))
        y = self.instancenorm(self.conv2(self.reflection_pad(y)))
        return x + _conditional(y, self.fc_gamma2, self.fc_beta2, embedding)


class GhiasiTransformer(nn.Module):
    r"""Ghiasi et al. (2017) style transformer with conditional instance norm, in Jackson et al.'s layout.

    .. math:: o = \sigma\big(\mathrm{Dec}_z(\mathrm{Res}_z^{5}(\mathrm{Enc}(x)))\big)

    Parameter names match ``state_dict_ghiasi`` of the original checkpoint (``layers.0.conv.weight``, ...).
    Inputs whose sides are not multiples of 4 are reflection-padded and the output cropped back.

    Examples:
        >>> net = GhiasiTransformer()
        >>> net(torch.rand(2, 3, 30, 33), torch.randn(2, 100)).shape
        torch.Size([2, 3, 30, 33])
    """

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList([
            _ConvInstanceReLU(3, 32, 9),
            _ConvInstanceReLU(32, 64, 3, stride=2),
            _ConvInstanceReLU(64, 128, 3, stride=2),
            *(_ConditionalResidualBlock(128) for _ in range(5)),
            _ConditionalUpsampleConv(128, 64, 3, upsample=True, activation=True),
            _ConditionalUpsampleConv(64, 32, 3, upsample=True, activation=True),
            _ConditionalUpsampleConv(32, 3, 9, upsample=False, activation=False),
        ])

    def forward(self, x: Tensor, embedding: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        pad_h, pad_w = (-height) % 4, (-width) % 4
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect" if min(height, width) > 4 else "replicate")
        for index, layer in enumerate(self.layers):
            x = layer(x) if index < 3 else layer(x, embedding)
        return torch.sigmoid(x[..., :height, :width])


# --------------------------------------------------------------------------------------------- style predictor
class JacksonStylePredictor(nn.Module):
    r"""Inception-v3 truncated after ``Mixed_6e``, mean-pooled, then linear :math:`768 \to 100`.

    The input in [0, 1] is preprocessed exactly as in the original code (ImageNet normalization followed by the
    conversion to Inception's :math:`[-1, 1]` scaling, including the original's 0.255 for the blue channel's first
    step, which the pretrained weights were trained with). Images smaller than 75×75 are upsampled bilinearly first.
    Parameter names match ``state_dict_stylepredictor`` (``Conv2d_1a_3x3.conv.weight``, ..., ``fc.weight``).
    """

    def __init__(self) -> None:
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, kernel_size=3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, kernel_size=3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, kernel_size=3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, kernel_size=1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, kernel_size=3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.fc = nn.Linear(768, EMBEDDING_DIM)
        mean = torch.tensor([0.485, 0.456, 0.406])
        first_std = torch.tensor([0.229, 0.224, 0.255])
        second_std = torch.tensor([0.229, 0.224, 0.225])
        # x -> (x - mean) / first_std * (second_std / 0.5) + (mean - 0.5) / 0.5, as one affine map per channel
        self.register_buffer("_scale", (second_std / 0.5 / first_std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("_shift", (-mean / first_std * (second_std / 0.5) + (mean - 0.5) / 0.5).view(1, 3, 1, 1),
                             persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        side = min(x.shape[-2:])
        if side < _MIN_PREDICTOR_SIDE:
            scale = _MIN_PREDICTOR_SIDE / side
            size = (round(x.shape[-2] * scale), round(x.shape[-1] * scale))
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        x = x * self._scale.to(x.dtype) + self._shift.to(x.dtype)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, kernel_size=3, stride=2)
        for block in (self.Mixed_5b, self.Mixed_5c, self.Mixed_5d, self.Mixed_6a, self.Mixed_6b, self.Mixed_6c,
                      self.Mixed_6d, self.Mixed_6e):
            x = block(x)
        return self.fc(x.mean(dim=(2, 3)))


# --------------------------------------------------------------------------------------------- checkpoints
def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    """Git's blob id of a file: SHA-1 of ``b"blob <size>\\0" + content`` (what a GitHub tree lists).

    Examples:
        >>> import pathlib, tempfile
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     path = pathlib.Path(folder) / "hello.txt"
        ...     _ = path.write_bytes(b"hello\\n")
        ...     git_blob_sha1(path)  # same as `git hash-object`
        'ce013625030ba8dba906f756967f9e9ca394464a'
    """
    digest = hashlib.sha1(usedforsecurity=False)
    digest.update(f"blob {os.path.getsize(path)}\0".encode())
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_checkpoint(source: str | os.PathLike[str] | Mapping[str, Any], name: str) -> Mapping[str, Any]:
    if isinstance(source, Mapping):
        return source
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path or a loaded checkpoint dict, got {type(source).__name__}")
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    if not isinstance(checkpoint, Mapping):
        raise ValueError(f"{name} must hold a dict, got {type(checkpoint).__name__} in {str(source)!r}")
    return checkpoint


def _state_from(checkpoint: Mapping[str, Any], key: str, name: str) -> Mapping[str, Tensor]:
    if key not in checkpoint:
        raise ValueError(f"{name} lacks the key {key!r} of the original layout; keys: {sorted(checkpoint)[:8]}")
    state = checkpoint[key]
    if not isinstance(state, Mapping):
        raise ValueError(f"{name}[{key!r}] must be a state dict, got {type(state).__name__}")
    return state


def _load_module_state(module: nn.Module, state: Mapping[str, Tensor], name: str) -> None:
    """Load ``state`` into ``module`` after checking every expected key and shape (extra keys are ignored)."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"{name} lacks {len(missing)} parameter(s) of the original layout, e.g. {missing[:4]}")
    for key, value in expected.items():
        if key in state:
            if not isinstance(state[key], Tensor):
                raise ValueError(f"{name}[{key!r}] must be a tensor, got {type(state[key]).__name__}")
            if tuple(state[key].shape) != tuple(value.shape):
                raise ValueError(f"{name}[{key!r}] must have shape {tuple(value.shape)}, got "
                                 f"{tuple(state[key].shape)}")
    module.load_state_dict({k: state[k] for k in expected if k in state}, strict=False)


def _embedding_tensor(checkpoint: Mapping[str, Any], key: str, shape: tuple[int, ...], name: str) -> Tensor:
    if key not in checkpoint:
        raise ValueError(f"{name} lacks the key {key!r} of the original layout; keys: {sorted(checkpoint)[:8]}")
    value = checkpoint[key]
    if not isinstance(value, Tensor) or value.numel() != torch.Size(shape).numel():
        got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f"{name}[{key!r}] must be a tensor of shape {shape}, got {got}")
    return value.detach().reshape(shape).to(torch.float64)


def _fetch_url(url: str, destination: Path, progress: bool) -> None:
    torch.hub.download_url_to_file(url, str(destination), progress=progress)


def fetch_checkpoints(
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
    *,
    base_url: str = UPSTREAM_URL,
    blob_ids: Mapping[str, str] | None = None,
    fetch: Callable[[str, Path, bool], None] | None = None,
) -> dict[str, Path]:
    """Download (if absent) and verify the three checkpoint files; return their paths.

    Every file, cached or freshly downloaded, is checked against its git blob id before use; a mismatch deletes the
    file and raises ``RuntimeError``.

    Args:
        cache_dir: where to keep the files (default: ``<torch hub dir>/checkpoints/style-augmentation-0273e2e``).
        progress: show download progress bars.
        base_url: folder URL holding the files (default: the upstream repository at the pinned commit); ``file://``
            URLs work.
        blob_ids: expected git blob id per file name (default :data:`CHECKPOINT_BLOB_IDS`).
        fetch: ``fetch(url, destination, progress)`` downloading one file (default ``torch.hub.download_url_to_file``).

    Returns:
        ``{file name: path}``.
    """
    expected = dict(CHECKPOINT_BLOB_IDS if blob_ids is None else blob_ids)
    folder = Path(torch.hub.get_dir()) / "checkpoints" / f"style-augmentation-{UPSTREAM_COMMIT[:7]}"
    folder = folder if cache_dir is None else Path(cache_dir)
    folder.mkdir(parents=True, exist_ok=True)
    download = _fetch_url if fetch is None else fetch
    paths = {}
    for file_name, blob_id in expected.items():
        path = folder / file_name
        if not path.exists():
            download(f"{base_url.rstrip('/')}/{file_name}", path, progress)
        if not path.exists():
            raise RuntimeError(f"downloading {file_name} from {base_url} produced no file at {path}")
        actual = git_blob_sha1(path)
        if actual != blob_id:
            path.unlink()
            raise RuntimeError(f"{file_name} has git blob id {actual}, expected {blob_id}; the file was deleted")
        paths[file_name] = path
    return paths


# --------------------------------------------------------------------------------------------- the backend
@dataclass(frozen=True)
class JacksonContent:
    """Content side of a Jackson stylization: the images and their own style embeddings :math:`z_c` (B, 100)."""

    images: Tensor
    embeddings: Tensor


class JacksonStyleNet(nn.Module):
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

    def forward(self, inputs: Tensor, styles: Tensor, alpha: Tensor) -> Tensor:
        """Restyle ``inputs`` :math:`(B, 3, H, W)` with embeddings :math:`(B, 100)` and α :math:`(B,)`."""
        return self.render(self.prepare(inputs), styles, alpha)

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
        transformer_ckpt = _read_checkpoint(transformer, "transformer")
        _load_module_state(net.transformer, _state_from(transformer_ckpt, "state_dict_ghiasi", "transformer"),
                           "transformer")
        predictor_ckpt = _read_checkpoint(predictor, "predictor")
        _load_module_state(net.predictor, _state_from(predictor_ckpt, "state_dict_stylepredictor", "predictor"),
                           "predictor")
        stats = _read_checkpoint(embeddings, "embeddings")
        mean = _embedding_tensor(stats, "pbn_embedding_mean", (EMBEDDING_DIM,), "embeddings")
        covariance = _embedding_tensor(stats, "pbn_embedding_covariance", (EMBEDDING_DIM, EMBEDDING_DIM), "embeddings")
        imagenet = _embedding_tensor(stats, "imagenet_embedding_mean", (EMBEDDING_DIM,), "embeddings")
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
    "UPSTREAM_COMMIT",
    "UPSTREAM_URL",
    "GhiasiTransformer",
    "JacksonContent",
    "JacksonStyleNet",
    "JacksonStylePredictor",
    "fetch_checkpoints",
    "git_blob_sha1",
]
