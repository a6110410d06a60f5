"""Artifacts are written atomically, named by a stable digest, and refused when changed."""

from __future__ import annotations

import pytest

from torchyard.storage import (
    DIGEST,
    MANIFEST,
    DigestMismatch,
    StorageError,
    compute_digest,
    describe,
    local_path,
    read_manifest,
    verify,
    write_directory,
)


def test_pvc_uri_maps_under_the_pvc_root(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHYARD_PVC_ROOT", str(tmp_path))
    assert local_path("pvc://models/minilm/int8") == tmp_path / "models" / "minilm" / "int8"
    assert str(local_path("file:///data/model")) == "/data/model"
    with pytest.raises(StorageError, match="scheme"):
        local_path("s3://bucket/key")


def test_write_directory_publishes_manifest_and_digest(tmp_path):
    uri = f"file://{tmp_path}/out/model"
    with write_directory(uri, {"format": "torchyard", "method": "prune"}) as staging:
        (staging / "weights.bin").write_bytes(b"\x00" * 1000)
        assert not (tmp_path / "out" / "model").exists()  # nothing visible before the end
    published = tmp_path / "out" / "model"
    assert read_manifest(published)["method"] == "prune"
    artifact = describe(uri)
    assert artifact.digest == (published / DIGEST).read_text().strip()
    assert artifact.bytes == 1000 + (published / MANIFEST).stat().st_size
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["model"]  # no staging left


def test_failed_write_publishes_nothing_and_keeps_the_previous_artifact(tmp_path):
    uri = f"file://{tmp_path}/model"
    with write_directory(uri, {"v": 1}) as staging:
        (staging / "w").write_text("one")
    with (
        pytest.raises(RuntimeError, match="half way"),
        write_directory(uri, {"v": 2}, overwrite=True) as staging,
    ):
        (staging / "w").write_text("two")
        raise RuntimeError("crashed half way")
    assert read_manifest(tmp_path / "model") == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_digest_depends_on_content_not_on_place_or_order(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    for root, order in ((first, ("x", "y")), (second, ("y", "x"))):
        root.mkdir()
        for name in order:
            (root / name).write_text(name * 10)
    assert compute_digest(first) == compute_digest(second)
    (second / "y").write_text("changed")
    assert compute_digest(first) != compute_digest(second)


def test_verify_refuses_a_changed_artifact(tmp_path):
    uri = f"file://{tmp_path}/model"
    with write_directory(uri, {}) as staging:
        (staging / "w").write_text("weights")
    digest = describe(uri).digest
    verify(tmp_path / "model", digest)
    (tmp_path / "model" / "w").write_text("tampered")
    with pytest.raises(DigestMismatch, match="refused"):
        verify(tmp_path / "model", digest)
