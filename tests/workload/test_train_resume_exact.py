"""Bit-exact resume: a TrainingJob that loses a rank and is restarted publishes the very
artifact (same sha256 digest) that it would have published had it never stopped.

Each mode runs the same job twice on 2 "pods" (torchyard.workloads.train.local), digits,
the MLP 64-64-64-10: once without interruption, once with a randomly chosen rank dying
(TORCHYARD_FAULT_RANK, TORCHYARD_FAULT_AT_STEP) at a random step after the first
checkpoint, then the gang restart the operator would do (the same pods again, in the
same place, resuming from the latest checkpoint). The kill's rank and step come from a
random.Random whose seed every assertion message names; TORCHYARD_RESUME_SEED=<seed>
replays a failure.

Both runs are the same job (TORCHYARD_JOB, TORCHYARD_JOB_UID): an artifact records the
job that published it (torchyard.storage's producedBy, in manifest.json, which the
digest covers), so only the same job can publish the same digest. Everything else in
the artifact must not depend on how the run went.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
import torch

from tests.workload.training import Run, launch, training_spec
from torchyard.storage import compute_digest
from torchyard.workloads.train.modes.base import restore_rng, rng_state

STEPS = 24
CHECKPOINT_EVERY = 5
REPLICAS = 2
SEED_ENV = "TORCHYARD_RESUME_SEED"


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("resume-exact")


def chaos_seed() -> int:
    return int(os.environ.get(SEED_ENV) or random.SystemRandom().randrange(2**32))


def run_job(
    uris: tuple[str, str], root: Path, mode: str, job: dict[str, str], fault: dict[str, str]
) -> Run:
    # Two epochs of digits (22 steps each), cut at STEPS: every step the chaos may pick
    # exists (one epoch alone ends before step 22).
    spec = training_spec(*uris, root, mode, REPLICAS, 1, maxSteps=STEPS, epochs=2)
    spec["checkpoint"]["intervalSteps"] = CHECKPOINT_EVERY
    return launch(spec, root, env={**job, **fault})


@pytest.mark.parametrize("mode", ["data", "model", "gradient"])
def test_a_killed_and_resumed_job_publishes_the_uninterrupted_artifact(
    workdir: Path, uris: tuple[str, str], mode: str
):
    seed = chaos_seed()
    chaos = random.Random(seed)
    # After the first checkpoint: a rank dying before it makes the restart start over.
    step = chaos.randrange(CHECKPOINT_EVERY, STEPS)
    victim = chaos.randrange(REPLICAS)
    case = f"{SEED_ENV}={seed}: mode {mode}, rank {victim} killed before step {step}"
    job = {"TORCHYARD_JOB": f"TrainingJob/exact-{mode}", "TORCHYARD_JOB_UID": f"uid-{mode}"}

    reference = run_job(uris, workdir / f"{mode}-uninterrupted", mode, job, {})
    assert reference.returncodes == [0] * REPLICAS, case + "\n" + "\n".join(reference.logs)

    root = workdir / f"{mode}-killed"
    fault = {"TORCHYARD_FAULT_AT_STEP": str(step), "TORCHYARD_FAULT_RANK": str(victim)}
    crashed = run_job(uris, root, mode, job, fault)
    assert crashed.returncodes[victim] != 0, case + "\n" + "\n".join(crashed.logs)
    failure = crashed.termination(victim)
    assert failure["reason"] == "WorkerFailed" and failure["rank"] == victim, (case, failure)
    assert not crashed.output().exists(), case

    # The gang restart: the same pods, same place; the fault fires only in a fresh start.
    resumed = run_job(uris, root, mode, job, fault)
    assert resumed.returncodes == [0] * REPLICAS, case + "\n" + "\n".join(resumed.logs)
    latest = step // CHECKPOINT_EVERY * CHECKPOINT_EVERY
    result = resumed.termination()
    assert result["resumedFromStep"] == latest, (case, result)
    assert f"resumed from the checkpoint of step {latest}" in resumed.logs[0], case

    expected = reference.termination()["artifact"]["digest"]
    assert result["artifact"]["digest"] == expected, (
        f"{case}: the resumed job published {result['artifact']['digest']}, the "
        f"uninterrupted one {expected}"
    )
    assert compute_digest(resumed.output()) == compute_digest(reference.output()) == expected
    # The attempt's own figures are in the result (for status), not in the artifact.
    assert "resumedFromStep" not in resumed.manifest()["training"], case


def test_generators_restore_from_a_checkpoint_written_as_a_rank_writes_it(tmp_path: Path):
    """The generators' states travel in a rank's checkpoint file; restored, the next
    draws (dropout masks) are those the uninterrupted run would have drawn."""
    torch.manual_seed(7)
    torch.save({"rng": rng_state()}, tmp_path / "rank.pt")
    expected = torch.rand(5)
    torch.manual_seed(8)
    restore_rng(torch.load(tmp_path / "rank.pt", weights_only=True)["rng"])
    assert torch.equal(torch.rand(5), expected)
