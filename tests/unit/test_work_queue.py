"""The reconcile work queue: coalescing, one at a time per object, requeue and retry.

The async tests run on virtual loop time (looptime): sleeps and timers cost no real
time, so they use the operator's own delays (a 1 s backoff, a 60 s fallback) and
assert the exact moments at which each reconcile ran."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from torchyard.controllers.queue import (
    MAX_TIMER_SECONDS,
    Gone,
    NewGenerations,
    Stale,
    WorkQueue,
    timer_delay,
)

KEY = ("ns", "a")


class _Scripted:
    """A reconcile that answers its runs in turn from a script (seconds until the next
    run, None, or an exception to raise; None once the script is done), and notes the
    loop time of each run."""

    def __init__(self, *answers: float | BaseException | None) -> None:
        self.answers = list(answers)
        self.moments: list[float] = []

    async def __call__(self) -> float | None:
        self.moments.append(asyncio.get_running_loop().time())
        answer = self.answers.pop(0) if self.answers else None
        if isinstance(answer, BaseException):
            raise answer
        return answer


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_burst_of_triggers_costs_one_reconcile_after_the_running_one():
    queue = WorkQueue("Test")
    calls = 0
    release = asyncio.Event()

    async def reconcile():
        nonlocal calls
        calls += 1
        if calls == 1:
            await release.wait()
        return None

    first = asyncio.create_task(queue.run(KEY, reconcile))
    await asyncio.sleep(0)
    burst = [asyncio.create_task(queue.run(KEY, reconcile)) for _ in range(20)]
    await asyncio.sleep(1)
    release.set()
    await asyncio.gather(first, *burst)

    assert calls == 2  # the one running, then one for everything that came meanwhile
    assert len(queue) == 0  # nothing kept for an object with no timer


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_one_reconcile_at_a_time_per_object_but_objects_in_parallel(looptime):
    queue = WorkQueue("Test")
    started: dict[str, list[float]] = {"a": [], "b": []}

    def reconcile_of(name):
        async def reconcile():
            started[name].append(asyncio.get_running_loop().time())
            await asyncio.sleep(1)  # a reconcile that takes a second
            return None

        return reconcile

    tasks = []
    for _ in range(3):  # three triggers each, a tenth of a second apart
        for name in ("a", "b"):
            tasks.append(asyncio.create_task(queue.run(("ns", name), reconcile_of(name))))
        await asyncio.sleep(0.1)
    await asyncio.gather(*tasks)

    # b does not wait for a; the second run of each waits for its first, and takes in
    # both triggers that came meanwhile.
    assert started == {"a": [0, 1], "b": [0, 1]}
    assert looptime == 2


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_requested_delay_runs_the_reconcile_again_without_a_trigger():
    queue = WorkQueue("Test")
    reconcile = _Scripted(30.0)  # a deadline 30 s away

    await queue.run(KEY, reconcile)
    assert len(queue) == 1  # the object's timer
    await asyncio.sleep(100)

    assert reconcile.moments == [0, 30]
    assert len(queue) == 0


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_new_reconcile_replaces_the_pending_timer():
    queue = WorkQueue("Test")
    reconcile = _Scripted(30.0, 50.0)

    await queue.run(KEY, reconcile)  # asks for another run at 30 s
    await asyncio.sleep(10)
    await queue.run(KEY, reconcile)  # a trigger at 10 s decides: at 60 s instead
    await asyncio.sleep(100)

    assert reconcile.moments == [0, 10, 60]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_failing_reconcile_is_retried_with_growing_delays():
    queue = WorkQueue("Test", base_delay=1.0, max_delay=5.0)
    down = RuntimeError("API server unavailable")
    reconcile = _Scripted(down, down, down, down)

    await queue.run(KEY, reconcile)
    await asyncio.sleep(100)

    # after 1 s, 2 s, 4 s, then capped at 5 s; the fifth run succeeds and asks for no more
    assert reconcile.moments == [0, 1, 3, 7, 12]
    assert len(queue) == 0


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_stale_read_is_decided_again_at_once():
    queue = WorkQueue("Test")
    reconcile = _Scripted(Stale("changed since read"))

    await queue.run(KEY, reconcile)

    assert reconcile.moments == [0, 0]
    assert len(queue) == 0


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_three_stale_reads_in_a_row_wait_for_the_base_delay():
    """Someone else keeps writing the object: back off instead of spinning."""
    queue = WorkQueue("Test", base_delay=1.0)
    stale = Stale("changed since read")
    reconcile = _Scripted(stale, stale, stale)

    await queue.run(KEY, reconcile)
    await asyncio.sleep(10)

    assert reconcile.moments == [0, 0, 0, 1]


def test_only_new_objects_new_generations_and_deletions_trigger():
    filter = NewGenerations()
    key = ("ns", "job")
    assert filter.wants(None, key, 1)  # listed at startup
    assert not filter.wants("MODIFIED", key, 1)  # its status written back
    assert filter.wants("MODIFIED", key, 2)  # spec edited
    assert not filter.wants("MODIFIED", key, 2)
    assert filter.wants("DELETED", key, 2)
    assert filter.wants("ADDED", key, 1)  # created again under the same name


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_an_object_that_is_gone_is_not_retried():
    queue = WorkQueue("Test", base_delay=1.0)
    reconcile = _Scripted(Gone("namespace team-a is being deleted"))

    await queue.run(KEY, reconcile)
    await asyncio.sleep(100)

    assert reconcile.moments == [0]
    assert len(queue) == 0


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_cancelled_error_nobody_asked_for_is_retried_like_a_failure():
    """A library's timeout that leaks out as CancelledError must not end the object's
    timers for good."""
    queue = WorkQueue("Test", base_delay=1.0)
    reconcile = _Scripted(asyncio.CancelledError())

    await queue.run(KEY, reconcile)
    await asyncio.sleep(100)

    assert reconcile.moments == [0, 1]
    assert len(queue) == 0


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_real_cancellation_still_stops_the_reconcile():
    queue = WorkQueue("Test", base_delay=1.0)
    started = asyncio.Event()
    calls = 0

    async def reconcile():
        nonlocal calls
        calls += 1
        started.set()
        await asyncio.sleep(10)

    task = asyncio.create_task(queue.run(KEY, reconcile))
    await started.wait()
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await asyncio.sleep(100)

    assert (calls, task.cancelled(), len(queue)) == (1, True, 0)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_timer_whose_reconcile_escapes_the_queue_is_armed_again():
    """Whatever ends a requeued run (here something not even an Exception), the object
    is looked at again later instead of never: after the queue's longest delay."""

    class Escapes(BaseException):
        pass

    queue = WorkQueue("Test", base_delay=1.0, max_delay=60.0)
    reconcile = _Scripted(1.0, Escapes())

    await queue.run(KEY, reconcile)  # asks for a run in 1 s, which escapes
    await asyncio.sleep(100)

    assert reconcile.moments == [0, 1, 61]
    assert len(queue) == 0


def test_requeue_delays_fit_every_event_loop():
    assert timer_delay(float("nan"), 1.0) == 1.0  # uvloop refuses NaN
    assert timer_delay(-5.0, 1.0) == 0.0
    assert timer_delay(1e20, 1.0) == MAX_TIMER_SECONDS
    assert timer_delay(float("inf"), 1.0) == MAX_TIMER_SECONDS
    assert timer_delay(30.0, 1.0) == 30.0
