"""One training process (a rank), as torch's elastic launcher starts it.

Run as `python -m torchyard.workloads.train.worker` by the launcher (never by hand: it
reads RANK, WORLD_SIZE and LOCAL_RANK, which the launcher sets). Exit codes: 0 done,
PERMANENT (3) for a failure retrying cannot fix, anything else transient. A permanent
failure is written to the launcher's error file for this rank (TORCHELASTIC_ERROR_FILE),
from which the launcher builds the pod's termination message; rank 0 writes the
termination message of a success itself.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from torchyard.api.training import TrainingJobSpec
from torchyard.workloads.artifacts import output_is_free
from torchyard.workloads.datasets import DatasetError
from torchyard.workloads.report import PERMANENT, PermanentError, write_result
from torchyard.workloads.train import distributed, modes
from torchyard.workloads.train.checkpoint import CheckpointStore
from torchyard.workloads.train.inputs import Inputs, load_data, load_initial_model
from torchyard.workloads.train.modes.model import microbatch_size
from torchyard.workloads.train.objectives import Batch, use_bf16
from torchyard.workloads.train.runner import Runner
from torchyard.workloads.train.spec import read_training_spec

log = logging.getLogger("torchyard.train")

ERROR_FILE_ENV = "TORCHELASTIC_ERROR_FILE"


def train() -> dict[str, Any] | None:
    spec = read_training_spec()
    rank = distributed.from_environment(spec.parallelism.backend)
    _configure_logging(rank.rank)
    # Everything that can be wrong with the inputs is found before joining the group.
    output_is_free(spec.output)
    inputs = load_data(spec)
    model = inputs.prepare(spec, load_initial_model(spec), rank.world)
    store = CheckpointStore(spec.checkpoint.uri, rank) if spec.checkpoint else None
    if rank.is_leader:
        log.info(
            "mode %s on %d ranks (%s), %d steps of %d samples",
            spec.parallelism.mode,
            rank.world,
            rank.backend,
            inputs.schedule.total_steps,
            inputs.schedule.global_batch,
        )
    distributed.start(rank)
    try:
        bf16 = distributed.all_agree(rank, use_bf16(spec.hyperparameters, rank.device))
        objective = inputs.objective(rank.device.type, bf16)
        example = _tracing_example(spec, inputs, rank.world)
        strategy = modes.create(
            spec.parallelism, model, spec.hyperparameters, rank, objective, example
        )
        del model  # mode model keeps only its stage of it
        return Runner(spec, rank, inputs, strategy, store).run()
    finally:
        distributed.stop()  # already left on success (Runner._finish); this is for errors


def _tracing_example(spec: TrainingJobSpec, inputs: Inputs, world: int) -> Batch | None:
    """One microbatch, which mode model traces the model on at its split points."""
    if not spec.parallelism.split_points:
        return None
    try:
        return inputs.example(microbatch_size(spec.hyperparameters, world))
    except DatasetError as error:
        raise PermanentError("DatasetUnavailable", str(error)) from None


def record_permanent(error: PermanentError) -> None:
    """Hand a permanent failure to the launcher (or, run alone, report it directly)."""
    failure = {"reason": error.reason, "message": str(error), **error.details}
    path = os.environ.get(ERROR_FILE_ENV)
    if not path:
        write_result(failure)
        return
    # The launcher's format (torch.distributed.elastic ProcessFailure), with the
    # termination message under extraInfo.
    data = {
        "message": {
            "message": f"{error.reason}: {error}",
            "extraInfo": {"timestamp": str(int(time.time())), "torchyard": failure},
        }
    }
    with open(path, "w") as handle:
        json.dump(data, handle)


def _configure_logging(rank: int) -> None:
    logging.basicConfig(
        level=logging.INFO,
        format=f"%(asctime)s rank {rank} %(levelname)s %(message)s",
        stream=sys.stdout,
        force=True,
    )


@record  # any other exception: its traceback reaches the launcher's failure message
def main() -> int:
    try:
        result = train()
    except PermanentError as error:
        log.error("%s: %s", error.reason, error)
        record_permanent(error)
        return PERMANENT
    if result is not None:
        write_result(result)
    return 0


def leave(code: int) -> None:
    """Exit with `code` without the interpreter's teardown on success: the process group
    is gone and the result written, and finalising objects that still hold torch's C++
    worker threads has aborted a finished rank (SIGABRT, "terminate called without an
    active exception") now and then."""
    if code != 0:
        sys.exit(code)
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    leave(main())
