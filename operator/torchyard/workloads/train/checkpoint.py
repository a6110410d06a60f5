"""Periodic checkpoints, written by every rank, committed atomically by rank 0.

Layout under spec.checkpoint.uri (file:// or pvc://; every replica must mount the same
storage, e.g. a ReadWriteMany claim):

    step-000000100/
        shared.pt           state every rank holds alike (replicated weights and
                            optimizer), written once by rank 0
        rank-00000.pt ...   what each rank alone holds (its pipeline stage, its optimizer
                            shard) and its random generators, written by that rank
        checkpoint.json     written last, by rank 0: step, layout, each file's sha256

A checkpoint exists once its checkpoint.json does. Each file is written under a
temporary name and renamed; rank 0 writes checkpoint.json only after every rank has
reported its file complete. A crash at any moment therefore leaves the previous
checkpoint as the latest one, and the half-written directory is ignored and later
replaced. The two newest checkpoints are kept (the newest might be on a disk that
filled up while it was written; the one before is then still whole).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from torchyard.storage import atomic_file, is_remote, local_path, sha256_file, write_file_atomic
from torchyard.workloads.report import PermanentError
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
        if is_remote(uri):
            raise PermanentError(
                "UnsupportedCheckpointUri",
                f"checkpoint.uri {uri}: checkpoints go to file:// or pvc:// storage that "
                "every replica mounts; s3:// is not supported for checkpoints yet",
            )
        self.root = local_path(uri)
        self.rank = rank

    # -- finding ------------------------------------------------------------------------

    def committed(self) -> list[dict[str, Any]]:
        """Manifests of the complete checkpoints, newest first (reads storage)."""
        manifests = []
        for directory in sorted(self.root.glob("step-*"), reverse=True):
            try:
                manifests.append(json.loads((directory / MANIFEST).read_text()))
            except (OSError, ValueError):
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

    def save(self, step: int, state: CheckpointState, meta: dict[str, Any]) -> Path:
        """Write and commit the checkpoint of step `step`. Collective."""
        directory = self.root / step_dir_name(step)
        if self.rank.is_leader:
            # Left over from an attempt that crashed before committing this step.
            shutil.rmtree(directory, ignore_errors=True)
            directory.mkdir(parents=True)
        _barrier()
        files: dict[str, str] = {}
        if self.rank.is_leader and state.shared is not None:
            files[SHARED] = _save(directory / SHARED, state.shared)
        own = rank_file_name(self.rank.rank)
        files[own] = _save(directory / own, state.own)
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
            write_file_atomic(directory / MANIFEST, json.dumps(manifest, indent=2).encode())
            self._prune(step)
        # No rank runs on (and so no rank can fail) before the commit: a failure right
        # after a checkpoint must find it.
        _barrier()
        return directory

    def _prune(self, newest: int) -> None:
        keep = {step_dir_name(m["step"]) for m in self.committed()[:KEEP]}
        for directory in self.root.glob("step-*"):
            if directory.name not in keep and directory.name < step_dir_name(newest):
                shutil.rmtree(directory, ignore_errors=True)

    # -- reading ------------------------------------------------------------------------

    def load(self, manifest: dict[str, Any]) -> tuple[State | None, State | None]:
        """This rank's shared and own state of a committed checkpoint, digests checked."""
        directory = self.root / step_dir_name(manifest["step"])
        files: dict[str, str] = manifest["files"]
        own = rank_file_name(self.rank.rank)
        return (
            self._load(directory, SHARED, files) if SHARED in files else None,
            # A data-parallel checkpoint restores onto more ranks than wrote it; the
            # new ranks have no own state (their generators start from the seed).
            self._load(directory, own, files) if own in files else None,
        )

    def _load(self, directory: Path, name: str, files: dict[str, str]) -> State:
        path = directory / name
        if not path.is_file() or f"sha256:{sha256_file(path)}" != files[name]:
            raise PermanentError(
                "CheckpointCorrupt",
                f"{path} is missing or does not match the digest in {MANIFEST}; "
                "delete that checkpoint directory to resume from the one before",
            )
        state: State = torch.load(path, map_location=self.rank.device, weights_only=True)
        return state


def _save(path: Path, state: State) -> str:
    with atomic_file(path) as partial:
        torch.save(state, partial)
    return f"sha256:{sha256_file(path)}"


def _barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()
