"""Periodic checkpoints, written by every rank, committed atomically by rank 0.

Layout under spec.checkpoint.uri: file:// or pvc:// storage that every replica mounts
(a ReadWriteMany claim), or an s3:// prefix that every replica reaches
(checkpoint_storage):

    step-000000100/
        shared.pt           state every rank holds alike (replicated weights and
                            optimizer), written once by rank 0
        rank-00000.pt ...   what each rank alone holds (its pipeline stage, its optimizer
                            shard) and its random generators, written by that rank
        checkpoint.json     written last, by rank 0: step, layout, each file's sha256

A checkpoint exists once its checkpoint.json does. Each file is written whole or not at
all (a local file under a temporary name, then renamed; an S3 object in one upload);
rank 0 writes checkpoint.json only after every rank has reported its file complete. A
crash at any moment therefore leaves the previous checkpoint as the latest one, and the
half-written directory is ignored and later replaced. The two newest checkpoints are
kept (the newest might be on a disk that filled up while it was written; the one
before is then still whole).
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

import torch
import torch.distributed as dist

from torchyard.storage import sha256_file
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train.checkpoint_storage import open_storage
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes import CheckpointState, State

log = logging.getLogger(__name__)

MANIFEST = "checkpoint.json"
SHARED = "shared.pt"
KEEP = 2


def step_dir_name(step: int) -> str:
    return f"step-{step:09d}"


def rank_file_name(rank: int) -> str:
    return f"rank-{rank:05d}.pt"


class CheckpointStore:
    def __init__(self, uri: str, rank: Rank) -> None:
        self.uri = uri
        self.storage = open_storage(uri)
        self.rank = rank

    # -- finding ------------------------------------------------------------------------

    def committed(self) -> list[dict[str, Any]]:
        """Manifests of the complete checkpoints, newest first (reads storage)."""
        manifests = []
        for step in sorted(self.storage.steps(), reverse=True):
            try:
                manifests.append(json.loads(self.storage.read(step, MANIFEST) or b""))
            except ValueError:
                continue  # not committed: a crash while it was written
        return manifests

    def latest(self) -> dict[str, Any] | None:
        """The newest complete checkpoint, the same on every rank. Collective: rank 0
        looks and tells the others, so all ranks resume from one step even if their
        views of a shared filesystem differ for a moment."""
        found: list[dict[str, Any] | None] = [None]
        if self.rank.is_leader:
            found = (self.committed() or [None])[:1]
        if dist.is_initialized() and self.rank.world > 1:
            dist.broadcast_object_list(found, src=0)
        return found[0]

    # -- writing ------------------------------------------------------------------------

    def save(self, step: int, state: CheckpointState, meta: dict[str, Any]) -> str:
        """Write and commit the checkpoint of step `step`; returns where it is.
        Collective."""
        directory = step_dir_name(step)
        if self.rank.is_leader:
            # Left over from an attempt that crashed before committing this step.
            self.storage.clear(directory)
        _barrier()
        files: dict[str, str] = {}
        if self.rank.is_leader and state.shared is not None:
            files[SHARED] = self.storage.save(directory, SHARED, state.shared)
        own = rank_file_name(self.rank.rank)
        files[own] = self.storage.save(directory, own, state.own)
        every: list[dict[str, str] | None] = [None] * self.rank.world
        if dist.is_initialized() and self.rank.world > 1:
            dist.all_gather_object(every, files)
        else:
            every = [files]
        if self.rank.is_leader:
            manifest = {
                **meta,
                "step": step,
                "worldSize": self.rank.world,
                "files": {name: digest for part in every for name, digest in (part or {}).items()},
                "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            self.storage.write(directory, MANIFEST, json.dumps(manifest, indent=2).encode())
            self._prune(step)
        # No rank runs on (and so no rank can fail) before the commit: a failure right
        # after a checkpoint must find it.
        _barrier()
        return f"{self.uri.rstrip('/')}/{directory}"

    def _prune(self, newest: int) -> None:
        keep = {step_dir_name(m["step"]) for m in self.committed()[:KEEP]}
        for directory in self.storage.steps():
            if directory not in keep and directory < step_dir_name(newest):
                self.storage.remove(directory)

    # -- reading ------------------------------------------------------------------------

    def load(self, manifest: dict[str, Any]) -> tuple[State | None, State | None]:
        """This rank's shared and own state of a committed checkpoint, digests checked."""
        directory = step_dir_name(manifest["step"])
        files: dict[str, str] = manifest["files"]
        own = rank_file_name(self.rank.rank)
        return (
            self._load(directory, SHARED, files) if SHARED in files else None,
            # A data-parallel checkpoint restores onto more ranks than wrote it; the
            # new ranks have no own state (their generators start from the seed).
            self._load(directory, own, files) if own in files else None,
        )

    def _load(self, directory: str, name: str, files: dict[str, str]) -> State:
        path = self.storage.local_copy(directory, name)
        try:
            if path is None or f"sha256:{sha256_file(path)}" != files[name]:
                raise PermanentError(
                    "CheckpointCorrupt",
                    f"{self.uri.rstrip('/')}/{directory}/{name} is missing or does not match "
                    f"the digest in {MANIFEST}; delete that checkpoint directory to resume "
                    "from the one before",
                )
            state: State = torch.load(path, map_location=self.rank.device, weights_only=True)
        finally:
            if path is not None:
                self.storage.done_with(path)
        return state


def _barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
