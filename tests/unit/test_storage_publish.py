"""Published artifacts are immutable, swapped atomically, durable, and leave no litter.

A job records itself in the artifact (manifest.json producedBy); another writer is
refused with OutputExists unless it asks to overwrite; the same job (a retry) may
replace its own. A reader in another process sees the old or the new artifact at every
instant, never nothing and never a mix.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from torchyard import atomic
from torchyard.storage import (
    DIGEST,
    MANIFEST,
    OutputExists,
    StorageError,
    Writer,
    describe,
    fetch,
    local_path,
    push,
    read_manifest,
    write_directory,
    writer_from_env,
)

FIRST = Writer("CompressionJob", "first", "uid-1")
SECOND = Writer("CompressionJob", "second", "uid-2")


def publish(uri: str, text: str, writer: Writer | None = None, overwrite: bool = False) -> str:
    with write_directory(uri, {"text": text}, writer=writer, overwrite=overwrite) as staging:
        (staging / "weights.bin").write_text(text)
    return describe(uri).digest


def test_a_second_job_is_refused_and_the_first_artifact_stays(tmp_path):
    uri = f"file://{tmp_path}/model"
    digest = publish(uri, "first", FIRST)
    with pytest.raises(OutputExists) as refused:
        publish(uri, "second", SECOND)
    message = str(refused.value)
    assert digest in message and "CompressionJob/first" in message
    assert "spec.output.overwrite: true" in message
    assert describe(uri).digest == digest
    assert read_manifest(tmp_path / "model")["producedBy"] == FIRST.record()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging left


def test_the_same_job_replaces_its_own_artifact(tmp_path):
    # A retry after the job had published (a gang restart, a crash after publishing).
    uri = f"file://{tmp_path}/model"
    first = publish(uri, "attempt 1", FIRST)
    again = publish(uri, "attempt 2", Writer("CompressionJob", "first", "uid-1"))
    assert again != first
    assert (tmp_path / "model" / "weights.bin").read_text() == "attempt 2"


def test_a_recreated_job_of_the_same_name_is_another_job(tmp_path):
    uri = f"file://{tmp_path}/model"
    publish(uri, "old", FIRST)
    with pytest.raises(OutputExists):
        publish(uri, "new", Writer("CompressionJob", "first", "uid-of-the-new-object"))


def test_overwrite_replaces_another_jobs_artifact(tmp_path):
    uri = f"file://{tmp_path}/model"
    first = publish(uri, "first", FIRST)
    second = publish(uri, "second", SECOND, overwrite=True)
    assert second != first
    assert read_manifest(tmp_path / "model")["producedBy"]["name"] == "second"


def test_the_writer_is_refused_before_it_writes_anything(tmp_path):
    uri = f"file://{tmp_path}/model"
    publish(uri, "first", FIRST)
    started = []
    with pytest.raises(OutputExists), write_directory(uri, {}, writer=SECOND):
        started.append(True)
    assert started == []


def test_two_writers_racing_for_a_new_uri_cannot_replace_each_other(tmp_path):
    uri = f"file://{tmp_path}/model"
    with (
        pytest.raises(OutputExists, match="CompressionJob/second"),
        write_directory(uri, {}, writer=FIRST) as slow,  # nothing there yet
    ):
        (slow / "weights.bin").write_text("slow")
        publish(uri, "fast", SECOND)  # wins meanwhile
    assert (tmp_path / "model" / "weights.bin").read_text() == "fast"


def test_an_empty_directory_is_no_artifact(tmp_path):
    (tmp_path / "model").mkdir()
    publish(f"file://{tmp_path}/model", "first", FIRST)
    assert (tmp_path / "model" / DIGEST).is_file()


def test_files_that_no_job_wrote_are_not_replaced(tmp_path):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "notes.txt").write_text("mine")
    with pytest.raises(OutputExists, match="already holds files"):
        publish(f"file://{tmp_path}/model", "first", FIRST)
    assert (tmp_path / "model" / "notes.txt").read_text() == "mine"


def test_push_replaces_only_when_asked(tmp_path):
    source = tmp_path / "source"
    source.mkdir()
    (source / "config.json").write_text("{}")
    uri = f"file://{tmp_path}/pushed"
    digest = push(source, uri).digest
    (source / "config.json").write_text('{"changed": true}')
    with pytest.raises(OutputExists):
        push(source, uri)
    assert describe(uri).digest == digest
    assert push(source, uri, overwrite=True).digest != digest

    data = tmp_path / "data.pt"
    data.write_bytes(b"one")
    push(data, f"file://{tmp_path}/set.pt")
    data.write_bytes(b"two")
    with pytest.raises(OutputExists):
        push(data, f"file://{tmp_path}/set.pt")
    assert (tmp_path / "set.pt").read_bytes() == b"one"
    push(data, f"file://{tmp_path}/set.pt", overwrite=True)
    assert (tmp_path / "set.pt").read_bytes() == b"two"


def test_the_job_comes_from_the_pod_environment():
    env = {"TORCHYARD_JOB": "TrainingJob/digits-train", "TORCHYARD_JOB_UID": "0c6f"}
    assert writer_from_env(env) == Writer("TrainingJob", "digits-train", "0c6f")
    assert writer_from_env({"TORCHYARD_JOB": "TrainingJob/digits-train"}) is None
    assert writer_from_env({}) is None


def test_a_pvc_path_never_climbs_out_of_its_claim(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCHYARD_PVC_ROOT", str(tmp_path))
    with pytest.raises(StorageError, match="leave the claim"):
        local_path("pvc://models/../../etc")


def test_abandoned_staging_is_removed_by_the_next_writer_but_never_a_live_one(tmp_path):
    long_ago = time.time() - 2 * atomic.ABANDONED_AFTER
    killed = tmp_path / atomic.staging_name("model", "a" * 32)
    killed.mkdir()
    (killed / "weights.bin").write_text("half")
    killed_file = tmp_path / atomic.staging_name("checkpoint.pt", "b" * 32)
    killed_file.write_text("half")
    live = tmp_path / atomic.staging_name("other", "c" * 32)
    live.mkdir()
    fresh = tmp_path / atomic.staging_name("third", "d" * 32)
    fresh.mkdir()
    legacy = tmp_path / f".model.{'e' * 32}.old"  # the earlier swap's leftover
    legacy.mkdir()
    mine = tmp_path / ".not-ours.partial"
    mine.mkdir()
    for path in (killed, killed_file, live, legacy, mine):
        os.utime(path, (long_ago, long_ago))
    with atomic.held(live):  # a writer that is still at work, for hours
        publish(f"file://{tmp_path}/model", "new", FIRST)
        left = sorted(p.name for p in tmp_path.iterdir())
    assert left == sorted(["model", live.name, fresh.name, mine.name])


def test_files_and_directories_are_flushed_before_the_swap(tmp_path, monkeypatch):
    flushed: list[str] = []
    swapped_after: list[int] = []
    real_fsync, real_rename2 = os.fsync, atomic.rename2

    def fsync(fd: int) -> None:
        flushed.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    def rename2(source: Path, target: Path, flags: int) -> bool:
        swapped_after.append(len(flushed))
        return real_rename2(source, target, flags)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(atomic, "rename2", rename2)
    uri = f"file://{tmp_path}/model"
    with write_directory(uri, {"m": 1}, writer=FIRST) as staging:
        (staging / "sub").mkdir()
        (staging / "sub" / "weights.bin").write_text("w")
        staged = staging
    before_swap = {Path(p).relative_to(staged).as_posix() for p in flushed[: swapped_after[0]]}
    assert before_swap >= {"sub/weights.bin", MANIFEST, DIGEST, "sub", "."}
    assert str(tmp_path) in flushed[swapped_after[0] :]  # the parent, after the rename


WRITER = """
import json, sys
from torchyard.storage import describe, write_directory
uri, rounds = sys.argv[1], int(sys.argv[2])
for n in range(rounds):
    with write_directory(uri, {"round": n}, overwrite=True) as staging:
        for part in range(4):
            (staging / f"part-{part}.bin").write_bytes(bytes([n % 251]) * 65536)
    print(describe(uri).digest, flush=True)
"""


def test_a_reader_sees_the_old_or_the_new_artifact_never_nothing(tmp_path):
    uri = f"file://{tmp_path}/model"
    published = {publish(uri, "initial", overwrite=True)}
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, uri, "150"], stdout=subprocess.PIPE, text=True
    )
    reads, missing, mixed = 0, [], []
    seen = []
    while writer.poll() is None:
        try:
            digest = describe(uri).digest
            if not read_manifest(fetch(uri)):
                missing.append("an artifact without its manifest")
        except (StorageError, OSError) as error:  # not found, or gone half way
            missing.append(str(error))
            continue
        seen.append(digest)
        reads += 1
    out, _ = writer.communicate()
    assert writer.returncode == 0
    published |= set(out.split())
    mixed = [digest for digest in seen if digest not in published]
    assert missing == [], f"{len(missing)} of {reads} reads found nothing: {missing[:3]}"
    assert mixed == [], f"{len(mixed)} of {reads} reads saw a mix of two artifacts"
    assert reads >= 20 and len(set(seen)) >= 3, (reads, len(set(seen)))
    assert json.loads((tmp_path / "model" / MANIFEST).read_text())["round"] == 149
