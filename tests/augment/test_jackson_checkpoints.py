"""Checkpoint download and verification of Jackson et al.'s files: git blob ids against git itself, cache, mismatch."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from captum_wsam.augment.jackson_checkpoints import fetch_checkpoints, git_blob_sha1


@pytest.mark.skipif(shutil.which("git") is None, reason="needs the git executable as the reference")
@pytest.mark.parametrize("content", [b"", b"hello\n", bytes(range(256)) * 4099])
def test_git_blob_sha1_equals_git_hash_object(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "file.bin"
    path.write_bytes(content)
    expected = subprocess.run(["git", "hash-object", str(path)], capture_output=True, text=True, check=True)
    assert git_blob_sha1(path) == expected.stdout.strip()


def test_fetch_verifies_reuses_the_cache_and_deletes_a_mismatch(tmp_path: Path) -> None:
    source = tmp_path / "mirror"
    source.mkdir()
    for name, content in (("a.pth", b"first"), ("b.pth", b"second")):
        (source / name).write_bytes(content)
    blob_ids = {name: git_blob_sha1(source / name) for name in ("a.pth", "b.pth")}
    calls: list[str] = []

    def fetch(url: str, destination: Path, progress: bool) -> None:
        calls.append(url)
        shutil.copy(source / url.rsplit("/", 1)[1], destination)

    cache = tmp_path / "cache"
    paths = fetch_checkpoints(cache, progress=False, base_url="https://mirror.invalid/x/", blob_ids=blob_ids,
                              fetch=fetch)
    assert calls == ["https://mirror.invalid/x/a.pth", "https://mirror.invalid/x/b.pth"]
    assert {name: path.read_bytes() for name, path in paths.items()} == {"a.pth": b"first", "b.pth": b"second"}
    fetch_checkpoints(cache, progress=False, blob_ids=blob_ids, fetch=fetch)
    assert len(calls) == 2  # verified cached files are reused
    (cache / "b.pth").write_bytes(b"tampered")
    with pytest.raises(RuntimeError, match="b.pth has git blob id .* expected .*the file was deleted"):
        fetch_checkpoints(cache, progress=False, blob_ids=blob_ids, fetch=fetch)
    assert not (cache / "b.pth").exists() and (cache / "a.pth").exists()
    with pytest.raises(RuntimeError, match="produced no file"):
        fetch_checkpoints(tmp_path / "empty", progress=False, blob_ids=blob_ids, fetch=lambda *args: None)


def test_offline_download_says_what_to_fetch_and_where(tmp_path: Path) -> None:
    """No network: a clear RuntimeError naming the files, the folder and the offline alternative, not a URLError."""
    import urllib.error

    def offline(url: str, destination: Path, progress: bool) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    cache = tmp_path / "weights"
    with pytest.raises(RuntimeError) as raised:
        fetch_checkpoints(cache, progress=False, fetch=offline)
    message = str(raised.value)
    for expected in ("checkpoint_transformer.pth", "checkpoint_stylepredictor.pth", "checkpoint_embeddings.pth",
                     str(cache), "JacksonStyleNet.from_checkpoints", "cache_dir="):
        assert expected in message
    assert isinstance(raised.value.__cause__, urllib.error.URLError)
    assert not any(cache.iterdir())  # nothing half-written left behind
