"""The training loop of one rank: resume, steps, reports, checkpoints, the artifact."""

from __future__ import annotations

import logging
import math
import os
import signal
import time
from typing import Any

import torch
import torch.distributed as dist

from torchyard.api.training import TrainingJobSpec
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train import distributed
from torchyard.workloads.train.checkpoint import CheckpointStore
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.evaluation import EvaluationLog
from torchyard.workloads.train.inputs import Inputs, load_initial_model
from torchyard.workloads.train.modes import Strategy
from torchyard.workloads.train.modes.base import restore_rng, rng_state
from torchyard.workloads.train.objectives import Batch
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
# checkpoint). With TORCHYARD_FAULT_SCOPE=pod it stops its pod's launcher first (SIGTERM,
# which leaves the rendezvous open, as a pod deleted or killed does), so that the pod
# fails even where the launcher would restart a failed worker in place.
FAULT_ENV = "TORCHYARD_FAULT_AT_STEP"
FAULT_RANK_ENV = "TORCHYARD_FAULT_RANK"
FAULT_SCOPE_ENV = "TORCHYARD_FAULT_SCOPE"
FAULT_EXIT_CODE = 137


def _die(rank: int, step: int) -> None:
    """The chaos hook's fault: this rank, or with FAULT_SCOPE_ENV=pod its whole pod."""
    pod = os.environ.get(FAULT_SCOPE_ENV) == "pod"
    scope = ", stopping its pod" if pod else ""
    log.error("%s: rank %d exits abruptly before step %d%s", FAULT_ENV, rank, step, scope)
    if pod:
        os.kill(os.getppid(), signal.SIGTERM)
        time.sleep(60)  # the launcher stops this worker as it goes
    os._exit(FAULT_EXIT_CODE)


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
        objective = strategy.objective
        self.evaluations = (
            EvaluationLog(objective.metric, objective.higher_is_better)
            if spec.evaluation is not None
            else None
        )
        self.stopped_early = False

    def run(self) -> dict[str, Any] | None:
        """Train to the last step (or an early stop); the result (artifact, figures) on
        rank 0, else None."""
        start = self._resume()
        if self.rank.is_leader:
            # Visible at once (0/total, or where a resumed job stands), not at the first report.
            write_progress(progress_file(), self._position(start))
        fault = self._fault_step(start)
        # A job resumed from the checkpoint of its early stop goes straight to the end.
        self.stopped_early = start < self.total and self._stop_due()
        done = start
        steps = self.inputs.steps(start, self.strategy.local_samples, self.strategy.pieces)
        self.meter = Throughput()  # from here: loading and resuming are not training
        for step in range(start, self.total if not self.stopped_early else start):
            if step == fault:
                _die(self.rank.rank, step)
            self._step(next(steps))
            done = step + 1
            evaluated = self._evaluation_due(done)
            if evaluated:
                self._evaluate(done)
                self.stopped_early = done < self.total and self._stop_due()
            # The last step is checkpointed too: a job that fails after it (while writing
            # the artifact) resumes there instead of training again; so is an early stop.
            checkpoint_due = self.interval is not None and (
                done % self.interval == 0 or done == self.total or self.stopped_early
            )
            recorded = done % self.every == 0 or done == self.total
            if recorded or checkpoint_due or evaluated:
                self._report(done, record=recorded)
            if checkpoint_due:
                self._checkpoint(done)
            if self.stopped_early:
                log.info("early stop after step %d: %s", done, self._stop_reason())
                break
        rate = self.meter.overall_rate()
        return self._finish(start, done, rate)

    def _fault_step(self, start: int) -> int:
        """The step before which this rank is to die (the chaos hook), else -1."""
        if start != 0 or not os.environ.get(FAULT_ENV):
            return -1
        victim = int(os.environ.get(FAULT_RANK_ENV) or self.rank.world - 1)
        return int(os.environ[FAULT_ENV]) if victim == self.rank.rank else -1

    # -- steps ----------------------------------------------------------------------------

    def _step(self, pieces: list[Batch]) -> None:
        self.pending.append(self.strategy.train_step([self._on_device(b) for b in pieces]))
        self.meter.add(self.schedule.global_batch)

    def _on_device(self, batch: Batch) -> Batch:
        return {key: value.to(self.rank.device, non_blocking=True) for key, value in batch.items()}

    # -- evaluation -----------------------------------------------------------------------

    def _evaluation_due(self, done: int) -> bool:
        """After every epoch, and after the last step (a run cut short by maxSteps)."""
        return self.evaluations is not None and (
            done % self.schedule.steps_per_epoch == 0 or done == self.total
        )

    def _evaluate(self, done: int) -> None:
        """Every rank evaluates its batches of the evaluation set; the sums are added up
        over the ranks, so every rank reaches the same figures and the same decision."""
        assert self.evaluations is not None
        objective, module = self.strategy.objective, self.strategy.module
        training = module.training
        module.eval()
        sums = dict.fromkeys(objective.sums, 0.0)
        with torch.no_grad():
            for batch in self.inputs.evaluation(self.rank.rank, self.rank.world):
                for key, value in objective.evaluation_sums(module, self._on_device(batch)).items():
                    sums[key] += value
        module.train(training)
        totals = torch.tensor([sums[key] for key in objective.sums], dtype=torch.float64)
        if self.rank.world > 1:
            totals = totals.to(self.rank.device)
            dist.all_reduce(totals)
        figures = objective.metrics(dict(zip(objective.sums, totals.tolist(), strict=True)))
        metrics = {key: round(value, 6) for key, value in figures.items() if math.isfinite(value)}
        epoch = self.schedule.epochs_reached(done)
        self.evaluations.add(epoch, done, metrics)
        if self.rank.is_leader:
            shown = " ".join(f"{key} {value:.4f}" for key, value in metrics.items())
            log.info("evaluation after epoch %d (step %d): %s", epoch, done, shown)

    def _stop_due(self) -> bool:
        rule = self.spec.evaluation.early_stopping if self.spec.evaluation else None
        return self.evaluations is not None and self.evaluations.should_stop(rule)

    def _stop_reason(self) -> str:
        assert self.spec.evaluation is not None and self.evaluations is not None
        rule = self.spec.evaluation.early_stopping
        assert rule is not None
        return (
            f"{self.evaluations.metric} has not improved by more than {rule.min_delta} for "
            f"{rule.patience} epochs (best: epoch {self.evaluations.best_epoch()})"
        )

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
        position = {
            "step": done,
            "totalSteps": self.total,
            "epoch": self.schedule.epochs_reached(done),
            "loss": self.loss,
            "mode": self.strategy.mode,
            "worldSize": self.rank.world,
        }
        if self.evaluations is not None:
            position["evaluation"] = self.evaluations.report()
        return position

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
        if self.evaluations is not None:
            meta["evaluations"] = self.evaluations.history
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
        if self.evaluations is not None:
            self.evaluations.history = list(manifest.get("evaluations") or [])
        if self.rank.is_leader:
            log.info("resumed from the checkpoint of step %d", manifest["step"])
        return int(manifest["step"])

    # -- the end --------------------------------------------------------------------------

    def _finish(self, start: int, done: int, rate: float) -> dict[str, Any] | None:
        weights = self.strategy.full_state_dict()
        # That was the last collective: every rank leaves the process group together now,
        # before replica 0 writes the artifact (an upload may outlast any collective's
        # timeout), so no rank tears its connections down while another still uses them.
        distributed.barrier()
        distributed.stop()
        if not self.rank.is_leader:
            return None
        assert weights is not None
        # The trained model's structure (a text task's head too), with its weights.
        model = self.inputs.prepare(self.spec, load_initial_model(self.spec), self.rank.world)
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
            "precision": "bf16" if self.strategy.objective.bf16 else "fp32",
            "steps": done,
            "epochs": self.schedule.epochs_reached(done),
            "globalBatchSize": hp.global_batch_size,
            "gradientAccumulationSteps": hp.gradient_accumulation_steps,
            "finalLoss": self.loss,
            "dataset": self.spec.dataset.uri,
            "lossHistory": self.history,
        }
        evaluation = None
        if self.evaluations is not None:
            evaluation = self.evaluations.report(stopped_early=self.stopped_early)
            figures["evaluation"] = evaluation
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
            "steps": done,
            "totalSteps": self.total,
            "finalLoss": self.loss,
            "precision": figures["precision"],
            **({"evaluation": evaluation} if evaluation is not None else {}),
            "samplesPerSecond": round(rate, 1),
            "resumedFromStep": start,
        }
