"""JacksonStyleNet: original checkpoint layouts (legacy and zip), weights_only, verified download, gradients."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
import torch

from captum_wsam.augment import JacksonStyleNet, StyleAugment
from captum_wsam.augment.jackson import CHECKPOINT_BLOB_IDS, fetch_checkpoints, git_blob_sha1

FILES = ("checkpoint_transformer.pth", "checkpoint_stylepredictor.pth", "checkpoint_embeddings.pth")


def _random_statistics(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    a = torch.randn(100, 100, generator=g, dtype=torch.float64)
    return {
        "pbn_embedding_mean": torch.randn(100, generator=g),  # float32, as upstream
        "pbn_embedding_covariance": a @ a.T / 100,  # float64
        "imagenet_embedding_mean": torch.randn(100, generator=g, dtype=torch.float64),
    }


@pytest.fixture(scope="module")
def reference() -> JacksonStyleNet:
    torch.manual_seed(0)
    net = JacksonStyleNet()
    stats = _random_statistics()
    net.set_embedding_statistics(stats["pbn_embedding_mean"], stats["pbn_embedding_covariance"],
                                 stats["imagenet_embedding_mean"])
    return net.eval()


def _write_checkpoints(net: JacksonStyleNet, folder: Path, legacy: bool) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    payloads = {
        FILES[0]: {"state_dict_ghiasi": net.transformer.state_dict()},
        FILES[1]: {"state_dict_stylepredictor": net.predictor.state_dict()},
        FILES[2]: _random_statistics(),
    }
    for name, payload in payloads.items():
        torch.save(payload, folder / name, _use_new_zipfile_serialization=not legacy)
    return {name: folder / name for name in FILES}


@pytest.fixture(scope="module")
def checkpoints(reference: JacksonStyleNet, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return _write_checkpoints(reference, tmp_path_factory.mktemp("zip"), legacy=False)


@pytest.mark.parametrize("legacy", [True, False])
def test_from_checkpoints_reads_both_torch_formats(reference: JacksonStyleNet, tmp_path: Path, legacy: bool) -> None:
    paths = _write_checkpoints(reference, tmp_path, legacy)
    with open(paths[FILES[0]], "rb") as handle:
        assert (handle.read(2) == b"PK") != legacy  # zip files start with "PK"; legacy pickles do not
    net = JacksonStyleNet.from_checkpoints(*(paths[name] for name in FILES))
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(net.state_dict()[key], value, rtol=0, atol=0, msg=key)
    assert not net.training


def test_loaded_network_matches_reference_and_follows_alpha_convention(
    reference: JacksonStyleNet, checkpoints: dict[str, Path]
) -> None:
    net = JacksonStyleNet.from_checkpoints(*(checkpoints[name] for name in FILES))
    x = torch.rand(2, 3, 32, 32)
    styles = net.default_style_bank(count=2).vectors
    with torch.no_grad():
        content = net.prepare(x)
        torch.testing.assert_close(content.embeddings, reference.predictor(x))
        own = net.render(content, styles, torch.ones(2))
        torch.testing.assert_close(own, net.transformer(x, content.embeddings))  # α = 1: the image's own embedding
        full = net.render(content, styles, torch.zeros(2))
        torch.testing.assert_close(full, net.transformer(x, styles))  # α = 0: the sampled style
    sampled = net.sample_embeddings(20000, torch.Generator().manual_seed(1)).double()
    cov = torch.cov(sampled.T)
    torch.testing.assert_close(cov, _random_statistics()["pbn_embedding_covariance"], atol=0.08, rtol=0.1)


class _Payload:
    def __reduce__(self):
        return (print, ("arbitrary code",))


def test_weights_only_is_enforced(reference: JacksonStyleNet, checkpoints: dict[str, Path], tmp_path: Path) -> None:
    evil = tmp_path / "evil.pth"
    torch.save({"state_dict_ghiasi": reference.transformer.state_dict(), "extra": _Payload()}, evil)
    with pytest.raises(pickle.UnpicklingError):
        JacksonStyleNet.from_checkpoints(evil, checkpoints[FILES[1]], checkpoints[FILES[2]])


def test_wrong_keys_and_shapes_raise_clear_errors(reference: JacksonStyleNet, checkpoints: dict[str, Path]) -> None:
    predictor, embeddings = checkpoints[FILES[1]], checkpoints[FILES[2]]
    state = dict(reference.transformer.state_dict())
    with pytest.raises(ValueError, match="transformer lacks the key 'state_dict_ghiasi'"):
        JacksonStyleNet.from_checkpoints({"state_dict": state}, predictor, embeddings)
    missing = {k: v for k, v in state.items() if k != "layers.3.fc_beta1.weight"}
    with pytest.raises(ValueError, match=r"transformer lacks 1 parameter.*layers\.3\.fc_beta1\.weight"):
        JacksonStyleNet.from_checkpoints({"state_dict_ghiasi": missing}, predictor, embeddings)
    wrong = {**state, "layers.0.conv.weight": torch.zeros(32, 3, 3, 3)}
    with pytest.raises(ValueError, match=r"layers\.0\.conv\.weight'\] must have shape \(32, 3, 9, 9\)"):
        JacksonStyleNet.from_checkpoints({"state_dict_ghiasi": wrong}, predictor, embeddings)
    stats = _random_statistics()
    del stats["imagenet_embedding_mean"]
    with pytest.raises(ValueError, match="embeddings lacks the key 'imagenet_embedding_mean'"):
        JacksonStyleNet.from_checkpoints({"state_dict_ghiasi": state}, predictor, stats)
    with pytest.raises(TypeError, match="transformer must be a path"):
        JacksonStyleNet.from_checkpoints(3, predictor, embeddings)


def test_from_pretrained_with_injected_fetch_and_file_url(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    blob_ids = {name: git_blob_sha1(path) for name, path in checkpoints.items()}
    calls: list[str] = []

    def fetch(url: str, destination: Path, progress: bool) -> None:
        calls.append(url)
        shutil.copy(checkpoints[url.rsplit("/", 1)[1]], destination)

    cache = tmp_path / "cache"
    net = JacksonStyleNet.from_pretrained(cache, progress=False, blob_ids=blob_ids, fetch=fetch,
                                          base_url="https://mirror.invalid/ckpt")
    assert sorted(calls) == sorted(f"https://mirror.invalid/ckpt/{name}" for name in FILES)
    assert isinstance(net, JacksonStyleNet)
    JacksonStyleNet.from_pretrained(cache, progress=False, blob_ids=blob_ids, fetch=fetch)
    assert len(calls) == 3  # cached files are verified and reused
    # The default fetcher (torch.hub.download_url_to_file) against a local file:// URL.
    folder_url = checkpoints[FILES[0]].parent.as_uri()
    paths = fetch_checkpoints(tmp_path / "hub", progress=False, base_url=folder_url, blob_ids=blob_ids)
    assert all(git_blob_sha1(paths[name]) == blob_ids[name] for name in FILES)


def test_blob_id_mismatch_deletes_the_file_and_raises(checkpoints: dict[str, Path], tmp_path: Path) -> None:
    folder_url = checkpoints[FILES[0]].parent.as_uri()
    with pytest.raises(RuntimeError, match="checkpoint_transformer.pth has git blob id .* expected 6cbd6a37"):
        JacksonStyleNet.from_pretrained(tmp_path, progress=False, base_url=folder_url)
    assert not (tmp_path / FILES[0]).exists()
    assert CHECKPOINT_BLOB_IDS[FILES[2]] == "ce01fabe62f113d76f49a60e39524cacd1330b06"


def test_as_style_augment_backend_is_differentiable(reference: JacksonStyleNet) -> None:
    aug = StyleAugment(p=1.0, transfer=reference)
    assert len(aug.style_bank) == 64 and aug.style_bank.config["backend"] == "jackson"
    x = torch.rand(2, 3, 32, 32, requires_grad=True)
    out = aug(x)
    out.sum().backward()
    assert out.shape == x.shape and x.grad.abs().sum() > 0
    assert torch.equal(aug.stylize(x.detach(), 0, 1.0), x.detach())


def test_style_augment_draws_a_fresh_embedding_per_image_from_the_pbn_gaussian() -> None:
    """The official StyleAugmentor samples z ~ N(mu, Sigma) for every image: check the sample mean and covariance."""
    g = torch.Generator().manual_seed(0)
    factor = torch.randn(100, 100, generator=g, dtype=torch.float64) * torch.linspace(1.0, 0.05, 100)
    covariance, mean = factor @ factor.T, torch.randn(100, generator=g, dtype=torch.float64)
    net = JacksonStyleNet(use_style_predictor=False)
    net.set_embedding_statistics(mean.float(), covariance.float(), torch.zeros(100))
    aug = StyleAugment(transfer=net, p=1.0)
    torch.manual_seed(1)
    params = aug.forward_parameters(torch.Size((20000, 3, 8, 8)))
    assert "style_vector" in params and "style_index" not in params
    draws = params["style_vector"].double()
    error = torch.linalg.matrix_norm(torch.cov(draws.T) - covariance) / torch.linalg.matrix_norm(covariance)
    assert float(error) < 0.05
    torch.testing.assert_close(draws.mean(0), mean, atol=0.1, rtol=0)
    # Replay: the drawn vectors are the params.
    x = torch.rand(2, 3, 16, 16)
    out = aug(x)
    assert torch.equal(aug(x, params=aug._params), out)
    # A finite bank given explicitly is used as such.
    banked = StyleAugment(transfer=net, styles=net.default_style_bank(count=5), p=1.0)
    assert set(banked.forward_parameters(torch.Size((3, 3, 8, 8)))) >= {"style_index", "style_noise"}
