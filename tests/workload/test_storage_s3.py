"""s3:// artifacts against a real S3-compatible server (moto_server on loopback): what a
reader may trust while a writer publishes, replaces or fails.

An artifact is complete when its DIGEST exists and its files add up to it; a reader
never gets a mix of two artifacts, a failed publish never damages the published one.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.s3server import S3Server
from torchyard import s3
from torchyard.api.common import DatasetSource
from torchyard.storage import (
    DIGEST,
    MANIFEST,
    OutputExists,
    StorageError,
    Writer,
    compute_digest,
    describe,
    fetch,
    push,
    read_manifest,
    write_directory,
)
from torchyard.workloads.datasets import TensorData, load_dataset


def publish(uri: str, files: dict[str, bytes], version: int) -> str:
    """Publish an artifact of `files` through the code under test; return its digest."""
    with write_directory(uri, {"version": version}, overwrite=True) as staging:
        for name, data in files.items():
            (staging / name).parent.mkdir(parents=True, exist_ok=True)
            (staging / name).write_bytes(data)
    return describe(uri).digest


def keys(server: S3Server, key: str) -> list[str]:
    prefix = f"{server.bucket}/{key}"
    return sorted(s3.objects(server.filesystem(), prefix))


def staging_leftovers(server: S3Server) -> list[str]:
    return [key for key in server.filesystem().find(server.bucket) if ".staging" in key]


def contents(path: Path) -> dict[str, bytes]:
    return {
        p.relative_to(path).as_posix(): p.read_bytes()
        for p in sorted(path.rglob("*"))
        if p.is_file() and p.name != DIGEST
    }


def test_publish_and_fetch_round_trip(s3_env: S3Server, tmp_path: Path):
    uri = s3_env.uri("models/round-trip")
    files = {"weights.bin": b"\x01" * 3000, "base/config.json": b'{"layers": 2}'}

    digest = publish(uri, files, 1)

    published = keys(s3_env, "models/round-trip")
    assert published == [DIGEST, "base/config.json", MANIFEST, "weights.bin"]
    stored = s3_env.filesystem().cat_file(f"{s3_env.bucket}/models/round-trip/{DIGEST}")
    assert stored.decode().strip() == digest
    local = fetch(uri, cache=tmp_path)
    assert compute_digest(local) == digest
    assert contents(local) == {**files, MANIFEST: (local / MANIFEST).read_bytes()}
    assert read_manifest(local) == {"version": 1}
    assert staging_leftovers(s3_env) == []


def test_replacing_leaves_no_stale_keys_and_the_cache_follows_the_digest(
    s3_env: S3Server, tmp_path: Path
):
    uri = s3_env.uri("models/replaced")
    first = publish(uri, {"a.bin": b"one", "old-only.bin": b"stale"}, 1)
    assert contents(fetch(uri, cache=tmp_path))["a.bin"] == b"one"

    second = publish(uri, {"a.bin": b"two"}, 2)

    assert second != first
    assert keys(s3_env, "models/replaced") == [DIGEST, "a.bin", MANIFEST]
    # Same URI, same cache: the replaced artifact is fetched anew, never served stale.
    fetched = fetch(uri, cache=tmp_path)
    assert compute_digest(fetched) == second
    assert contents(fetched) == {"a.bin": b"two", MANIFEST: (fetched / MANIFEST).read_bytes()}


def test_a_failed_upload_leaves_the_published_artifact_readable(s3_env: S3Server, tmp_path: Path):
    uri = s3_env.uri("models/kept")
    digest = publish(uri, {"w.bin": b"good"}, 1)
    staging = tmp_path / "new"
    staging.mkdir()
    (staging / "w.bin").write_bytes(b"new weights")
    # The second file disappears before it is uploaded (a full disk, a killed writer).
    files = [staging / "w.bin", staging / "vanished.bin"]

    with pytest.raises(s3.S3Error, match=r"uploading failed.*unchanged"):
        s3.publish(staging, files, uri, DIGEST, "sha256:" + "0" * 64)

    assert compute_digest(fetch(uri, cache=tmp_path / "cache")) == digest
    assert keys(s3_env, "models/kept") == [DIGEST, MANIFEST, "w.bin"]
    assert staging_leftovers(s3_env) == []


def test_an_artifact_without_digest_is_refused_as_incomplete(s3_env: S3Server, tmp_path: Path):
    """A writer that stopped between removing DIGEST and writing it again."""
    uri = s3_env.uri("models/half")
    publish(uri, {"w.bin": b"weights"}, 1)
    s3_env.filesystem().rm_file(f"{s3_env.bucket}/models/half/{DIGEST}")

    with pytest.raises(StorageError, match=r"incomplete or being replaced.*no DIGEST"):
        fetch(uri, cache=tmp_path)


def test_content_that_does_not_add_up_to_digest_is_refused(s3_env: S3Server, tmp_path: Path):
    """A file replaced under a DIGEST that names other content: refused, not cached."""
    uri = s3_env.uri("models/mixed")
    publish(uri, {"w.bin": b"weights"}, 1)
    s3_env.filesystem().pipe_file(f"{s3_env.bucket}/models/mixed/w.bin", b"other weights")

    with pytest.raises(StorageError, match=r"incomplete or being replaced.*add up to"):
        fetch(uri, cache=tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]


def test_readers_during_replacements_get_a_whole_artifact_or_an_error(
    s3_env: S3Server, tmp_path: Path
):
    uri = s3_env.uri("models/contended")
    versions = {
        1: {f"part-{i}.bin": bytes([1]) * 2000 for i in range(6)},
        2: {f"part-{i}.bin": bytes([2]) * 2000 for i in range(4)},
    }
    digests = {n: publish(uri, files, n) for n, files in versions.items()}
    stop = threading.Event()

    def writer() -> None:
        rounds = 0
        while not stop.is_set() or rounds < 3:
            for n, files in versions.items():
                publish(uri, files, n)
            rounds += 1

    thread = threading.Thread(target=writer)
    thread.start()
    seen, refused = set(), 0
    try:
        for attempt in range(40):
            try:
                # A fresh cache each time: every read is a real download.
                local = fetch(uri, cache=tmp_path / str(attempt))
            except StorageError as error:
                assert "incomplete or being replaced" in str(error)
                refused += 1
                continue
            version = read_manifest(local)["version"]
            assert contents(local) == {
                **versions[version],
                MANIFEST: json.dumps({"version": version}, indent=2, sort_keys=True).encode(),
            }
            assert compute_digest(local) == digests[version]
            seen.add(version)
    finally:
        stop.set()
        thread.join()
    assert seen, f"every one of 40 reads was refused ({refused})"


def test_a_reader_that_listed_keys_a_replacement_then_removed_is_told_it_is_being_replaced(
    s3_env: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """The interleaving that the test above meets only by chance, forced: the reader
    has read DIGEST and listed the first artifact's keys when a publish removes the ones
    the second artifact lacks, before the reader downloads them."""
    uri = s3_env.uri("models/shrunk")
    publish(uri, {"kept.bin": b"one", "dropped.bin": b"one"}, 1)
    download = s3.download

    def replaced_before_download(fs: Any, prefix: str, names: list[str], into: Path) -> None:
        monkeypatch.setattr(s3, "download", download)
        assert "dropped.bin" in names
        publish(uri, {"kept.bin": b"two"}, 2)
        download(fs, prefix, names, into)

    monkeypatch.setattr(s3, "download", replaced_before_download)
    with pytest.raises(StorageError, match="incomplete or being replaced"):
        fetch(uri, cache=tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".")]
    assert read_manifest(fetch(uri, cache=tmp_path)) == {"version": 2}


def test_a_second_job_is_refused_and_the_first_artifact_stays(s3_env: S3Server, tmp_path: Path):
    uri = s3_env.uri("models/immutable")
    first, second = Writer("TrainingJob", "a", "uid-a"), Writer("TrainingJob", "b", "uid-b")
    with write_directory(uri, {"v": 1}, writer=first) as staging:
        (staging / "w.bin").write_bytes(b"first")
    digest = describe(uri).digest
    with (
        pytest.raises(OutputExists, match="TrainingJob/a"),
        write_directory(uri, {"v": 2}, writer=second) as staging,
    ):
        (staging / "w.bin").write_bytes(b"second")
    assert describe(uri).digest == digest
    assert staging_leftovers(s3_env) == []
    with write_directory(uri, {"v": 3}, writer=second, overwrite=True) as staging:
        (staging / "w.bin").write_bytes(b"third")
    assert read_manifest(fetch(uri, cache=tmp_path))["producedBy"]["uid"] == "uid-b"


def test_a_retry_recognises_its_own_half_published_artifact(s3_env: S3Server):
    """The manifest (which names the job) is copied into place before the other files:
    a writer killed after it left a target without DIGEST that only the same job may
    take over."""
    uri = s3_env.uri("models/half-published")
    job = Writer("CompressionJob", "c", "uid-c")
    with write_directory(uri, {"v": 1}, writer=job) as staging:
        (staging / "w.bin").write_bytes(b"weights")
    fs = s3_env.filesystem()
    fs.rm([f"{s3_env.bucket}/models/half-published/{name}" for name in (DIGEST, "w.bin")])
    other = Writer("CompressionJob", "d", "uid-d")
    with (
        pytest.raises(OutputExists, match="already holds files, written by CompressionJob/c"),
        write_directory(uri, {}, writer=other),
    ):
        pass
    with write_directory(uri, {"v": 2}, writer=job) as staging:
        (staging / "w.bin").write_bytes(b"weights again")
    assert keys(s3_env, "models/half-published") == [DIGEST, MANIFEST, "w.bin"]


def test_abandoned_staging_prefixes_are_removed_after_a_day(s3_env: S3Server):
    fs = s3_env.filesystem()
    target = f"{s3_env.bucket}/models/litter"
    stage = f"{s3_env.bucket}/models/.litter.{'a' * 32}.staging"
    fs.pipe_file(f"{stage}/w.bin", b"half")
    s3.clean_abandoned_stages(fs, target)  # an hour old at most: could be a live upload
    assert staging_leftovers(s3_env) == [f"{stage}/w.bin"]
    s3.clean_abandoned_stages(fs, target, now=time.time() + s3.ABANDONED_STAGE_AFTER + 60)
    assert staging_leftovers(s3_env) == []


def test_pushed_directory_and_single_file(s3_env: S3Server, tmp_path: Path):
    """`torchyard artifact push`: a directory made elsewhere gets its DIGEST; a single
    file (a dataset) is one object, whole by itself, cached by its ETag."""
    model = tmp_path / "hf"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text("{}")
    (model / "sub" / "vocab.txt").write_text("a b c")
    pushed = push(model, s3_env.uri("models/hf"))
    assert pushed.digest == compute_digest(model)
    assert compute_digest(fetch(pushed.uri, cache=tmp_path / "cache")) == pushed.digest

    data = TensorData(*_digits_like(rows=12))
    data.save(tmp_path / "set.safetensors")
    dataset_uri = s3_env.uri("data/set.safetensors")
    push(tmp_path / "set.safetensors", dataset_uri)
    loaded = load_dataset(DatasetSource(uri=dataset_uri))
    assert isinstance(loaded, TensorData) and len(loaded) == 12

    # Replaced in place (a new upload of the same key): read anew, not from the cache.
    TensorData(*_digits_like(rows=5)).save(tmp_path / "set.safetensors")
    push(tmp_path / "set.safetensors", dataset_uri, overwrite=True)
    assert len(load_dataset(DatasetSource(uri=dataset_uri))) == 5


def test_missing_artifact_names_the_uri(s3_env: S3Server, tmp_path: Path):
    with pytest.raises(StorageError, match=r"s3://.*/models/nothing: not found"):
        fetch(s3_env.uri("models/nothing"), cache=tmp_path)


def _digits_like(rows: int) -> tuple:
    import torch

    return torch.randn(rows, 64), torch.randint(0, 10, (rows,)), 10


def test_an_unreachable_endpoint_is_named(s3_env: S3Server, monkeypatch, tmp_path: Path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv(s3.ENDPOINT_ENV, closed)
    with pytest.raises(StorageError) as refused:
        fetch(s3_env.uri("models/anything"), cache=tmp_path)
    message = str(refused.value)
    assert s3_env.uri("models/anything") in message and f"(endpoint: {closed})" in message
    assert "Could not connect" in message
