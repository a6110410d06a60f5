"""Dynamic batching: requests that arrive close together share one forward pass.

A request waits at most `max_queue_delay` for others; up to `max_batch_size` requests are
concatenated along dimension 0, run once, and the outputs are split back by each
request's row count. While a forward pass runs, new requests queue up and form the next
batch, so under load batches fill even with a delay of 0. Forward passes run one at a
time on a worker thread, so the event loop keeps answering health checks and metrics.
At most `max_queue` requests wait for a pass: the server refuses more (overload) rather
than let latency and memory grow without bound.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from torchyard.workloads.serve.protocol import Column

Forward = Callable[[Mapping[str, Column]], dict[str, Column]]


class InferenceError(RuntimeError):
    """The model failed on a batch; every request in it gets the error."""


@dataclass
class _Pending:
    inputs: Mapping[str, Column]
    rows: int
    future: asyncio.Future[dict[str, Column]]

    def shape_key(self) -> Hashable:
        """Requests with equal keys can be concatenated along dimension 0."""
        return tuple(
            (name, "BYTES")
            if isinstance(value, list)
            else (name, value.dtype, tuple(value.shape[1:]))
            for name, value in sorted(self.inputs.items())
        )


class Batcher:
    def __init__(
        self,
        forward: Forward,
        executor: Executor,
        *,
        max_batch_size: int,
        max_queue_delay_s: float,
        max_queue: int = 0,
        on_batch: Callable[[int], None] = lambda size: None,
    ) -> None:
        self._forward = forward
        self._executor = executor
        self._max_batch_size = max_batch_size
        self._max_queue_delay_s = max_queue_delay_s
        self._on_batch = on_batch
        # 0: unbounded (asyncio's convention).
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue(maxsize=max_queue)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="batcher")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        while not self._queue.empty():
            self._queue.get_nowait().future.cancel()

    @property
    def full(self) -> bool:
        """Whether the queue has no room for another request now."""
        return self._queue.full()

    async def infer(self, inputs: Mapping[str, Column], rows: int) -> dict[str, Column]:
        """The outputs for one request's rows, computed in some batch; raises
        asyncio.QueueFull at once when `full`."""
        future: asyncio.Future[dict[str, Column]] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Pending(inputs, rows, future))
        return await future

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self._max_queue_delay_s
            while len(batch) < self._max_batch_size:
                if not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                    continue
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            groups: dict[Hashable, list[_Pending]] = {}
            for pending in batch:
                if not pending.future.done():  # its client may have gone
                    groups.setdefault(pending.shape_key(), []).append(pending)
            for group in groups.values():
                await self._run(group)

    async def _run(self, group: list[_Pending]) -> None:
        self._on_batch(len(group))
        try:
            merged = {name: _concat([p.inputs[name] for p in group]) for name in group[0].inputs}
            outputs = await asyncio.get_running_loop().run_in_executor(
                self._executor, self._forward, merged
            )
            parts = _split(outputs, [p.rows for p in group])
        except Exception as error:  # the model's failure, reported to each request
            for pending in group:
                if not pending.future.done():
                    pending.future.set_exception(InferenceError(f"{type(error).__name__}: {error}"))
            return
        for pending, part in zip(group, parts, strict=True):
            if not pending.future.done():
                pending.future.set_result(part)


def _concat(values: list[Column]) -> Column:
    if len(values) == 1:
        return values[0]
    strings = [value for value in values if isinstance(value, list)]
    if strings:
        return [item for value in strings for item in value]
    return torch.cat([value for value in values if isinstance(value, torch.Tensor)])


def _split(outputs: dict[str, Column], rows: list[int]) -> list[dict[str, Column]]:
    if len(rows) == 1:
        return [outputs]
    total = sum(rows)
    parts: list[dict[str, Column]] = [{} for _ in rows]
    for name, value in outputs.items():
        if len(value) != total:
            raise InferenceError(
                f"output '{name}' has {len(value)} rows for a batch of {total}: the model "
                "does not keep the batch dimension, so set serving.batching.maxBatchSize to 1"
            )
        start = 0
        for part, count in zip(parts, rows, strict=True):
            part[name] = value[start : start + count]
            start += count
    return parts
