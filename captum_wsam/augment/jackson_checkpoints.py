r"""The original checkpoints of Jackson et al. (2019): verified download and validated, code-free loading.

Jackson, Abarghouei, Bonner, Breckon and Obara (2019), "Style Augmentation: Data Augmentation via Style
Randomization", CVPR Workshops, arXiv:1809.05375, publish three files (github.com/philipjackson/style-augmentation,
MIT): the transformer (``state_dict_ghiasi``), the style predictor (``state_dict_stylepredictor``) and the embedding
statistics (``pbn_embedding_mean``, ``pbn_embedding_covariance``, ``imagenet_embedding_mean``). They are downloaded
at the pinned commit :data:`UPSTREAM_COMMIT` and accepted only when their git blob id matches,

.. math:: \mathrm{id}(f) = \mathrm{SHA1}\big(\texttt{b"blob "} \,\|\, \mathrm{size}(f) \,\|\, \texttt{b"\\0"}
          \,\|\, f\big),

and read with ``torch.load(weights_only=True)`` (a file that needs code to unpickle is refused), every parameter
checked for its key and shape before anything is loaded.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from .jackson_networks import EMBEDDING_DIM

UPSTREAM_COMMIT = "0273e2e66a894d553c7466773802e09eae41f698"
UPSTREAM_URL = f"https://raw.githubusercontent.com/philipjackson/style-augmentation/{UPSTREAM_COMMIT}/styleaug/checkpoints"
#: git blob ids (SHA-1 of ``b"blob <size>\0" + content``) of the three files at :data:`UPSTREAM_COMMIT`.
CHECKPOINT_BLOB_IDS: dict[str, str] = {
    "checkpoint_transformer.pth": "6cbd6a379ac2a2f2c39bb1c95f282ee6a81f9eef",
    "checkpoint_stylepredictor.pth": "5406294bf41d364e80fa75a8c1b0b373df935378",
    "checkpoint_embeddings.pth": "ce01fabe62f113d76f49a60e39524cacd1330b06",
}


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
    file and raises ``RuntimeError``. A failed download (offline machine) raises ``RuntimeError`` saying which files
    to fetch by hand and in which folder to put them.

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
            url = f"{base_url.rstrip('/')}/{file_name}"
            try:
                download(url, path, progress)
            except OSError as error:  # urllib's URLError and socket errors are OSErrors
                raise RuntimeError(
                    f"could not download {file_name} from {url} ({error}). Offline: on a connected machine download "
                    f"{', '.join(sorted(expected))} from {base_url.rstrip('/')}/ and put them in {folder} "
                    "(or pass cache_dir= to the folder holding them); or load local copies with "
                    "JacksonStyleNet.from_checkpoints(transformer=..., predictor=..., embeddings=...). The default "
                    "StyleAugment backends (TextureTransfer, LinearStyleTransfer) need no weights."
                ) from error
        if not path.exists():
            raise RuntimeError(f"downloading {file_name} from {base_url} produced no file at {path}")
        actual = git_blob_sha1(path)
        if actual != blob_id:
            path.unlink()
            raise RuntimeError(f"{file_name} has git blob id {actual}, expected {blob_id}; the file was deleted")
        paths[file_name] = path
    return paths


def load_original_checkpoints(
    transformer_module: nn.Module,
    predictor_module: nn.Module,
    transformer: str | os.PathLike[str] | Mapping[str, Any],
    predictor: str | os.PathLike[str] | Mapping[str, Any],
    embeddings: str | os.PathLike[str] | Mapping[str, Any],
) -> tuple[Tensor, Tensor, Tensor]:
    r"""Load the original transformer and predictor weights into two modules; return the embedding statistics.

    .. math:: \theta_k \leftarrow \mathrm{state}[k] \quad \text{for every parameter } k
              \text{ (key and shape checked first)}

    Each file is read with ``torch.load(weights_only=True)``. Expected layouts: ``{"state_dict_ghiasi": ...}``,
    ``{"state_dict_stylepredictor": ...}`` and ``{"pbn_embedding_mean": (100,), "pbn_embedding_covariance":
    (100, 100), "imagenet_embedding_mean": (100,)}``; extra keys are ignored, as the original loader did.

    Args:
        transformer_module: a :class:`~captum_wsam.augment.jackson_networks.GhiasiTransformer` (loaded in place).
        predictor_module: a :class:`~captum_wsam.augment.jackson_networks.JacksonStylePredictor` (loaded in place).
        transformer: path to ``checkpoint_transformer.pth`` (or its loaded dict).
        predictor: path to ``checkpoint_stylepredictor.pth`` (or its loaded dict).
        embeddings: path to ``checkpoint_embeddings.pth`` (or its loaded dict).

    Returns:
        ``(pbn_mean, pbn_covariance, imagenet_mean)`` in float64.

    Shape:
        :math:`(100,)`, :math:`(100, 100)`, :math:`(100,)`.

    Raises:
        ValueError: a key is missing or a tensor has the wrong shape (the message names the file and the key).

    Examples:
        >>> from captum_wsam.augment.jackson_networks import GhiasiTransformer, JacksonStylePredictor
        >>> source, target = GhiasiTransformer(), GhiasiTransformer()
        >>> predictor = JacksonStylePredictor()
        >>> stats = {"pbn_embedding_mean": torch.zeros(100), "pbn_embedding_covariance": torch.eye(100),
        ...          "imagenet_embedding_mean": torch.zeros(100)}
        >>> mean, cov, _ = load_original_checkpoints(target, predictor, {"state_dict_ghiasi": source.state_dict()},
        ...     {"state_dict_stylepredictor": predictor.state_dict()}, stats)
        >>> cov.shape, bool(torch.equal(target.layers[0].conv.weight, source.layers[0].conv.weight))
        (torch.Size([100, 100]), True)
    """
    transformer_ckpt = _read_checkpoint(transformer, "transformer")
    _load_module_state(transformer_module, _state_from(transformer_ckpt, "state_dict_ghiasi", "transformer"),
                       "transformer")
    predictor_ckpt = _read_checkpoint(predictor, "predictor")
    _load_module_state(predictor_module, _state_from(predictor_ckpt, "state_dict_stylepredictor", "predictor"),
                       "predictor")
    stats = _read_checkpoint(embeddings, "embeddings")
    mean = _embedding_tensor(stats, "pbn_embedding_mean", (EMBEDDING_DIM,), "embeddings")
    covariance = _embedding_tensor(stats, "pbn_embedding_covariance", (EMBEDDING_DIM, EMBEDDING_DIM), "embeddings")
    imagenet = _embedding_tensor(stats, "imagenet_embedding_mean", (EMBEDDING_DIM,), "embeddings")
    return mean, covariance, imagenet


__all__ = [
    "CHECKPOINT_BLOB_IDS",
    "UPSTREAM_COMMIT",
    "UPSTREAM_URL",
    "fetch_checkpoints",
    "git_blob_sha1",
    "load_original_checkpoints",
]
