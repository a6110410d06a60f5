"""The training loop of one rank: resume, steps, reports, checkpoints, the artifact."""

from __future__ import annotations

import logging
import os
from typing import Any

import torch
import torch.distributed as dist

from torchyard.api.training import TrainingJobSpec
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train import distributed
from torchyard.workloads.train.checkpoint import CheckpointStore
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.inputs import Inputs, load_initial_model
from torchyard.workloads.train.modes import Strategy
from torchyard.workloads.train.modes.base import restore_rng, rng_state
from torchyard.workloads.train.output import input_ref, save_trained
from torchyard.workloads.train.progress import (
    Throughput,
    progress_file,
    report_interval,
    write_progress,
)

log = logging.getLogger(__name__)

# Chaos hook for tests: one rank (TORCHYARD_FAULT_RANK, default the last) exits abruptly
# before step TORCHYARD_FAULT_AT_STEP, as if its pod had been killed; only in an attempt
# that did not resume, so the restarted job gets past it (set it beyond the first
# checkpoint).
FAULT_ENV = "TORCHYARD_FAULT_AT_STEP"
FAULT_RANK_ENV = "TORCHYARD_FAULT_RANK"
FAULT_EXIT_CODE = 137


class Runner:
    def __init__(
        self,
        spec: TrainingJobSpec,
        rank: Rank,
        inputs: Inputs,
        strategy: Strategy,
        store: CheckpointStore | None,
    ) -> None:
        self.spec = spec
        self.rank = rank
        self.inputs = inputs
        self.schedule = inputs.schedule
        self.strategy = strategy
        self.store = store
        self.interval = spec.checkpoint.interval_steps if spec.checkpoint else None
        self.total = self.schedule.total_steps
        self.every = report_interval(self.total)
        self.pending: list[torch.Tensor] = []  # loss shares since the last report
        self.history: list[list[float]] = []  # [step, loss] at each report interval
        self.loss: float | None = None
        self.meter = Throughput()

    def run(self) -> dict[str, Any] | None:
        """Train to the last step; the result (artifact, figures) on rank 0, else None."""
        start = self._resume()
        if self.rank.is_leader:
            # Visible at once (0/total, or where a resumed job stands), not at the first report.
            write_progress(progress_file(), self._position(start))
        fault = self._fault_step(start)
        self.meter = Throughput()  # from here: loading and resuming are not training
        for step in range(start, self.total):
            if step == fault:
                log.error(
                    "%s: rank %d exits abruptly before step %d", FAULT_ENV, self.rank.rank, step
                )
                os._exit(FAULT_EXIT_CODE)
            self._step(step)
            done = step + 1
            # The last step is checkpointed too: a job that fails after it (while writing
            # the artifact) resumes there instead of training again.
            checkpoint_due = self.interval is not None and (
                done % self.interval == 0 or done == self.total
            )
            if done % self.every == 0 or done == self.total or checkpoint_due:
                self._report(done, record=done % self.every == 0 or done == self.total)
            if checkpoint_due:
                self._checkpoint(done)
        rate = self.meter.overall_rate()
        return self._finish(start, rate)

    def _fault_step(self, start: int) -> int:
        """The step before which this rank is to die (the chaos hook), else -1."""
        if start != 0 or not os.environ.get(FAULT_ENV):
            return -1
        victim = int(os.environ.get(FAULT_RANK_ENV) or self.rank.world - 1)
        return int(os.environ[FAULT_ENV]) if victim == self.rank.rank else -1

    # -- steps ----------------------------------------------------------------------------

    def _step(self, step: int) -> None:
        local = self.strategy.local_samples(self.schedule.batch(step))
        features = self.inputs.features[local].to(self.rank.device, non_blocking=True)
        labels = self.inputs.labels[local].to(self.rank.device, non_blocking=True)
        self.pending.append(self.strategy.train_step(features, labels))
        self.meter.add(self.schedule.global_batch)

    def _report(self, done: int, record: bool) -> None:
        # One all-reduce per report, not per step: the shares of every step since the
        # last report travel together, and their sum over ranks is each step's loss.
        losses = torch.stack(self.pending)
        self.pending.clear()
        if self.rank.world > 1:
            dist.all_reduce(losses)
        self.loss = float(losses[-1])
        if record:
            self.history.append([done, self.loss])
        if not self.rank.is_leader:
            return
        report = {**self._position(done), "samplesPerSecond": round(self.meter.window_rate(), 1)}
        write_progress(progress_file(), report)
        log.info(
            "step %d/%d epoch %d loss %.6f samples/s %.1f",
            done,
            self.total,
            report["epoch"],
            self.loss,
            report["samplesPerSecond"],
        )

    def _position(self, done: int) -> dict[str, Any]:
        return {
            "step": done,
            "totalSteps": self.total,
            "epoch": self.schedule.epochs_reached(done),
            "loss": self.loss,
            "mode": self.strategy.mode,
            "worldSize": self.rank.world,
        }

    # -- checkpoints ----------------------------------------------------------------------

    def _checkpoint(self, done: int) -> None:
        assert self.store is not None
        state = self.strategy.checkpoint_state()
        state.own["rng"] = rng_state()
        meta = {
            "epoch": self.schedule.epochs_reached(done),
            "layout": self.strategy.layout(),
            "lossHistory": self.history,
            "loss": self.loss,
            "holdings": self._holdings(),
        }
        path = self.store.save(done, state, meta)
        if self.rank.is_leader:
            log.info("checkpoint of step %d written to %s", done, path)

    def _holdings(self) -> list[dict[str, int]]:
        """What each rank holds in memory, recorded with each checkpoint so that anyone
        can see how a mode spreads the model and optimizer over the ranks."""
        mine = {
            "rank": self.rank.rank,
            "parameters": self.strategy.held_parameters(),
            "optimizerStateBytes": self.strategy.optimizer_state_bytes(),
        }
        every: list[Any] = [None] * self.rank.world
        if self.rank.world > 1:
            dist.all_gather_object(every, mine)
        else:
            every = [mine]
        return every

    def _resume(self) -> int:
        """The step to start from: that of the latest checkpoint, restored, else 0."""
        if self.store is None:
            return 0
        manifest = self.store.latest()
        if manifest is None:
            return 0
        if manifest.get("layout") != self.strategy.layout():
            raise PermanentError(
                "CheckpointIncompatible",
                f"the checkpoint of step {manifest['step']} under {self.store.uri} was written "
                f"with {manifest.get('layout')}, this job runs "
                f"{self.strategy.layout()}; restore the parallelism settings or use a new "
                "checkpoint.uri",
            )
        shared, own = self.store.load(manifest)
        own = dict(own or {})
        restore_rng(own.pop("rng", None))
        self.strategy.restore(shared, own)
        self.history = [list(entry) for entry in manifest.get("lossHistory", [])]
        self.loss = manifest.get("loss")
        if self.rank.is_leader:
            log.info("resumed from the checkpoint of step %d", manifest["step"])
        return int(manifest["step"])

    # -- the end --------------------------------------------------------------------------

    def _finish(self, start: int, rate: float) -> dict[str, Any] | None:
        weights = self.strategy.full_state_dict()
        # That was the last collective: every rank leaves the process group together now,
        # before replica 0 writes the artifact (an upload may outlast any collective's
        # timeout), so no rank tears its connections down while another still uses them.
        distributed.barrier()
        distributed.stop()
        if not self.rank.is_leader:
            return None
        assert weights is not None
        model = load_initial_model(self.spec)
        model.load_state_dict(weights)
        hp = self.spec.hyperparameters
        # The artifact holds only what the spec, seed, data and initial model determine,
        # so that a job resumed after a crash publishes the same bytes (and digest) as
        # the job that never stopped. How this attempt went (samples/s, the step it
        # resumed from) is the job's result, for its status, not the model's.
        figures = {
            "mode": self.strategy.mode,
            "worldSize": self.rank.world,
            "backend": self.rank.backend,
            "steps": self.total,
            "epochs": self.schedule.epochs_reached(self.total),
            "globalBatchSize": hp.global_batch_size,
            "finalLoss": self.loss,
            "dataset": self.spec.dataset.uri,
            "lossHistory": self.history,
        }
        artifact = save_trained(self.spec.output, model, self.spec.model, figures)
        log.info("model written to %s (%s)", artifact.uri, artifact.digest)
        return {
            "artifact": {
                "uri": artifact.uri,
                "digest": artifact.digest,
                "bytes": artifact.bytes,
                "format": "torchyard",
            },
            "input": input_ref(self.spec.model),
            "steps": self.total,
            "finalLoss": self.loss,
            "samplesPerSecond": round(rate, 1),
            "resumedFromStep": start,
        }
