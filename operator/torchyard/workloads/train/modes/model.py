"""mode model: the model's layers split across ranks as pipeline stages (GPipe).

Two ways to cut the model into one stage per rank:

- parallelism.splitPoints names where: the model is traced on a microbatch
  (torch.distributed.pipelining's `pipeline`, through torch.export) and cut before each
  named submodule, so any traceable model splits (a Hugging Face encoder with its task
  head, a model with branches), and each stage gets exactly the activations the later
  stages use (an attention mask too). A text task pads every text to task.maxLength in
  this mode: a traced stage has fixed shapes.
- without it, the model must be an nn.Sequential: its top-level layers are cut into
  contiguous stages balanced by parameter count.

Each rank keeps only its stage (the rest of the model it loaded is dropped), and
torch.distributed.pipelining runs the stages: the global batch is cut into equal
microbatches, activations flow forward and gradients backward between neighbouring
ranks over send/recv (gloo or NCCL), and the gradients of the microbatches are averaged,
so one step equals one step on the whole batch. The loss is the task's (cross-entropy,
or the mean squared error of regression), computed by the last stage.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from torchyard.api.training import Hyperparameters
from torchyard.workloads.report import PermanentError
from torchyard.workloads.train.distributed import Rank
from torchyard.workloads.train.modes.base import (
    CheckpointState,
    State,
    Strategy,
    make_optimizer,
    optimizer_state_bytes,
    parameter_count,
    to_cpu,
)
from torchyard.workloads.train.objectives import Batch, Objective

# Microbatches per stage: more shrink the pipeline bubble ((S-1)/(M+S-1) of the time),
# fewer cost less per-message overhead; two per stage halves the bubble of one.
MICROBATCHES_PER_STAGE = 2


def split_names(model: nn.Module, points: Sequence[str]) -> list[str]:
    """The submodules of `model` that `points` name: for a text task, names in its
    encoder (encoder.layer.3 is the task model's encoder.encoder.layer.3)."""
    from torchyard.workloads.textmodels import TextTaskModel

    prefix = "encoder." if isinstance(model, TextTaskModel) else ""
    return [prefix + point for point in points]


def check_split_points(model: nn.Module, points: Sequence[str]) -> None:
    from torchyard.workloads.textmodels import TextTaskModel

    # Names as the user writes them: a text task's are its encoder's.
    named = model.encoder if isinstance(model, TextTaskModel) else model
    modules = {name for name, _ in named.named_modules() if name}
    for point in points:
        if point not in modules:
            known = [name for name in modules if name.count(".") <= 2][:20]
            raise PermanentError(
                "ModelNotSplittable",
                f"parallelism.splitPoints: {point!r} names no submodule of the model; "
                f"its submodules include {', '.join(known)}",
            )


def check_splittable(model: nn.Module, stages: int, points: Sequence[str] = ()) -> None:
    if points:
        check_split_points(model, points)
        return
    if not isinstance(model, nn.Sequential):
        raise PermanentError(
            "ModelNotSplittable",
            f"parallelism.mode model splits an nn.Sequential's layers across ranks, or any "
            f"traceable model at parallelism.splitPoints; this model is a "
            f"{type(model).__name__}. Name its split points, use mode data or gradient, or "
            "a factory that returns nn.Sequential",
        )
    if len(model) < stages:
        raise PermanentError(
            "ModelNotSplittable",
            f"parallelism.mode model needs at least one layer per rank: the model has "
            f"{len(model)} top-level layers for {stages} ranks",
        )


def partition(sizes: list[int], parts: int) -> list[tuple[int, int]]:
    """Cut `sizes` into `parts` non-empty contiguous [start, end) ranges so that the
    largest range's sum is as small as possible (ties: the earliest cuts)."""
    count = len(sizes)
    prefix = [0]
    for size in sizes:
        prefix.append(prefix[-1] + size)
    infinity = float("inf")
    # best[k][i]: smallest largest-part for the first i layers in k parts; cut[k][i]: where
    # the k-th part begins in that best split.
    best = [[infinity] * (count + 1) for _ in range(parts + 1)]
    cut = [[0] * (count + 1) for _ in range(parts + 1)]
    best[0][0] = 0
    for k in range(1, parts + 1):
        for i in range(k, count + 1):
            for j in range(k - 1, i):
                largest = max(best[k - 1][j], prefix[i] - prefix[j])
                if largest < best[k][i]:
                    best[k][i], cut[k][i] = largest, j
    ranges = []
    end = count
    for k in range(parts, 0, -1):
        start = cut[k][end]
        ranges.append((start, end))
        end = start
    return ranges[::-1]


def microbatches(global_batch: int, stages: int, accumulation: int = 1) -> int:
    """The largest count up to MICROBATCHES_PER_STAGE * stages * accumulation that
    divides the batch: equal microbatches keep each one's mean loss a fair part of the
    batch mean. A pipeline's microbatches are its gradient accumulation steps."""
    target = min(global_batch, MICROBATCHES_PER_STAGE * stages * accumulation)
    return next(m for m in range(target, 0, -1) if global_batch % m == 0)


class Pipeline(Strategy):
    mode = "model"

    def __init__(
        self,
        model: nn.Module,
        hp: Hyperparameters,
        rank: Rank,
        objective: Objective,
        split_points: Sequence[str] = (),
        example: Batch | None = None,
    ) -> None:
        # Imported here: it pulls in torch._dynamo (3 s), which the other modes skip.
        from torch.distributed.pipelining import PipelineStage, ScheduleGPipe

        super().__init__(rank, hp, objective)
        accumulation, self.pieces = self.pieces, 1
        check_splittable(model, rank.world, split_points)
        count = microbatches(hp.global_batch_size, rank.world, accumulation)
        self.split_points = list(split_points)
        # The whole model's state keys: a traced stage also holds buffers the model does
        # not save (position ids), which the published model must not get.
        self.model_keys = set(model.state_dict())
        self.first = rank.rank == 0
        self.last = rank.rank == rank.world - 1
        self.untraced: State = {}
        if split_points:
            assert example is not None, "tracing needs an example microbatch"
            self.module, self.stage = self._traced(model, example)
        else:
            self.module, self.stage = self._sequential(model, PipelineStage)
        self.schedule = ScheduleGPipe(self.stage, n_microbatches=count, loss_fn=objective.mean_loss)
        params = [p for p in self.module.parameters() if p.requires_grad]
        # A stage of parameter-free layers (an activation) has nothing to optimise.
        self.optimizer = make_optimizer(params, hp) if params else None

    def _sequential(self, model: nn.Module, stage_type: Any) -> tuple[nn.Module, Any]:
        assert isinstance(model, nn.Sequential)
        sizes = [parameter_count(layer) for layer in model]
        self.stages = partition(sizes, self.rank.world)
        start, end = self.stages[self.rank.rank]
        names = list(model._modules)[start:end]
        # Keep the layers' names ("2", "3", ...) so the stage's state_dict keys are the
        # whole model's keys and the stages merge back into the model without renaming.
        module = nn.Sequential(OrderedDict((n, model._modules[n]) for n in names))
        module.to(self.rank.device)
        return module, stage_type(module, self.rank.rank, self.rank.world, self.rank.device)

    def _traced(self, model: nn.Module, example: Batch) -> tuple[nn.Module, Any]:
        from torch.distributed.pipelining import SplitPoint, pipeline

        names = split_names(model, self.split_points)
        args, kwargs = stage_inputs(example)
        try:
            pipe = pipeline(
                model,
                mb_args=args,
                mb_kwargs=kwargs,
                split_spec=dict.fromkeys(names, SplitPoint.BEGINNING),
            )
        except Exception as error:  # the model's own code, traced: not a passing fault
            raise PermanentError(
                "ModelNotSplittable",
                f"the model cannot be traced for parallelism.splitPoints: "
                f"{type(error).__name__}: {str(error)[:500]}",
            ) from None
        if pipe.num_stages != self.rank.world:
            raise PermanentError(
                "ModelNotSplittable",
                f"parallelism.splitPoints {self.split_points} cut the model into "
                f"{pipe.num_stages} stages, not the {self.rank.world} ranks: a split point "
                "the forward pass never reaches, or two that fall together, make fewer",
            )
        self.stages = [[i, i + 1] for i in range(pipe.num_stages)]
        # Weights the forward pass never uses are in no stage: kept aside, unchanged, so
        # that the published model is whole.
        traced = set(pipe.split_gm.state_dict())
        state = model.state_dict()
        self.untraced = {
            key: state[key].detach().cpu().clone() for key in state if key not in traced
        }
        module = pipe.get_stage_module(self.rank.rank)
        module.to(self.rank.device)
        if self.objective.bf16:
            # The stages' receive buffers were sized by an fp32 trace: what a stage sends
            # must be fp32 too, whatever autocast computed it in.
            module.register_forward_hook(_outputs_in_fp32)
        return module, pipe.build_stage(self.rank.rank, self.rank.device)

    def local_samples(self, indices: torch.Tensor) -> torch.Tensor:
        # The first stage reads every sample's features, the last every label.
        return indices

    def train_step(self, pieces: list[Batch]) -> torch.Tensor:
        (batch,) = pieces
        if self.optimizer is not None:
            self.optimizer.zero_grad(set_to_none=True)
        losses: list[torch.Tensor] = []
        with self.objective.autocast():
            if self.first:
                args, kwargs = stage_inputs(batch)
                self.schedule.step(*args, **kwargs)
            elif self.last:
                self.schedule.step(target=batch["labels"], losses=losses)
            else:
                self.schedule.step()
        if self.optimizer is not None:
            self.optimizer.step()
        if not self.last:
            return torch.zeros((), device=self.rank.device)
        # Equal microbatches: the mean of their mean losses is the batch's mean loss.
        return torch.stack(losses).mean().detach()

    def checkpoint_state(self) -> CheckpointState:
        own: State = {"model": self.module.state_dict()}
        if self.optimizer is not None:
            own["optimizer"] = self.optimizer.state_dict()
        return CheckpointState(own=own)

    def restore(self, shared: State | None, own: State | None) -> None:
        assert own is not None, "a pipeline checkpoint has one stage per rank"
        self.module.load_state_dict(own["model"])
        if self.optimizer is not None:
            self.optimizer.load_state_dict(own["optimizer"])

    def full_state_dict(self) -> State | None:
        parts: list[State] | None = [{}] * self.rank.world if self.rank.is_leader else None
        dist.gather_object(to_cpu(self.module.state_dict()), parts, dst=0)
        if parts is None:
            return None
        merged = {key: value for part in parts for key, value in part.items()}
        merged.update(self.untraced)
        return {key: value for key, value in merged.items() if key in self.model_keys}

    def held_parameters(self) -> int:
        return parameter_count(self.module)

    def optimizer_state_bytes(self) -> int:
        return optimizer_state_bytes(self.optimizer)

    def layout(self) -> State:
        stages = [list(stage) for stage in self.stages]
        if self.split_points:
            return {**super().layout(), "splitPoints": self.split_points}
        return {**super().layout(), "stages": stages}


def _outputs_in_fp32(module: nn.Module, args: Any, output: Any) -> Any:
    if isinstance(output, torch.Tensor):
        return output.float() if output.dtype == torch.bfloat16 else output
    return type(output)(_outputs_in_fp32(module, args, item) for item in output)


def microbatch_size(hp: Hyperparameters, world: int) -> int:
    """Samples per microbatch of a pipeline of `world` stages: what tracing takes."""
    count = microbatches(hp.global_batch_size, world, hp.gradient_accumulation_steps)
    return hp.global_batch_size // count


def stage_inputs(batch: Batch) -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    """What the first stage takes: the features, or the tokenizer's ids and mask as one
    tensor [batch, 2, length] (see TextTaskModel.forward)."""
    if "features" in batch:
        return (batch["features"],), {}
    return (torch.stack([batch["input_ids"], batch["attention_mask"]], dim=1),), {}
