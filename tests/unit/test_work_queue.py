"""The reconcile work queue: coalescing, one at a time per object, requeue and retry."""

from __future__ import annotations

import asyncio
import contextlib
import itertools

from torchyard.controllers.queue import (
    MAX_TIMER_SECONDS,
    Gone,
    NewGenerations,
    Stale,
    WorkQueue,
    timer_delay,
)


def _run(coroutine):
    return asyncio.run(coroutine)


def test_a_burst_of_triggers_costs_one_reconcile_after_the_running_one():
    async def scenario():
        queue = WorkQueue("Test")
        calls = 0
        release = asyncio.Event()

        async def reconcile():
            nonlocal calls
            calls += 1
            if calls == 1:
                await release.wait()
            return None

        first = asyncio.create_task(queue.run(("ns", "a"), reconcile))
        await asyncio.sleep(0)
        burst = [asyncio.create_task(queue.run(("ns", "a"), reconcile)) for _ in range(20)]
        await asyncio.sleep(0.01)
        release.set()
        await asyncio.gather(first, *burst)
        return calls, len(queue)

    calls, left = _run(scenario())
    assert calls == 2  # the one running, then one for everything that came meanwhile
    assert left == 0  # nothing kept for an object with no timer


def test_one_reconcile_at_a_time_per_object_but_objects_in_parallel():
    async def scenario():
        queue = WorkQueue("Test")
        active: dict[str, int] = {"a": 0, "b": 0}
        most = {"a": 0, "b": 0, "both": 0}

        def reconcile_of(name):
            async def reconcile():
                active[name] += 1
                most[name] = max(most[name], active[name])
                most["both"] = max(most["both"], active["a"] + active["b"])
                await asyncio.sleep(0.01)
                active[name] -= 1
                return None

            return reconcile

        tasks = []
        for _ in range(3):
            for name in ("a", "b"):
                tasks.append(asyncio.create_task(queue.run(("ns", name), reconcile_of(name))))
                await asyncio.sleep(0.002)
        await asyncio.gather(*tasks)
        return most

    most = _run(scenario())
    assert most["a"] == 1 and most["b"] == 1
    assert most["both"] == 2


class _Counting:
    """A reconcile that asks for one more run `delay` seconds after its first."""

    def __init__(self, delay: float) -> None:
        self.delay = delay
        self.calls = 0

    async def __call__(self):
        self.calls += 1
        return self.delay if self.calls == 1 else None


def test_a_requested_delay_runs_the_reconcile_again_without_a_trigger():
    async def scenario():
        queue = WorkQueue("Test")
        reconcile = _Counting(0.05)
        await queue.run(("ns", "a"), reconcile)
        after_first = reconcile.calls
        await asyncio.sleep(0.3)
        return after_first, reconcile.calls, len(queue)

    after_first, calls, left = _run(scenario())
    assert (after_first, calls, left) == (1, 2, 0)


def test_a_new_reconcile_replaces_the_pending_timer():
    async def scenario():
        queue = WorkQueue("Test")
        reconcile = _Counting(0.2)
        await queue.run(("ns", "a"), reconcile)  # asks for another run in 0.2 s
        await queue.run(("ns", "a"), reconcile)  # a trigger first: it decides no more
        await asyncio.sleep(0.4)
        return reconcile.calls

    assert _run(scenario()) == 2


def test_a_failing_reconcile_is_retried_with_growing_delays():
    async def scenario():
        queue = WorkQueue("Test", base_delay=0.02, max_delay=0.05)
        moments: list[float] = []
        loop = asyncio.get_running_loop()

        async def reconcile():
            moments.append(loop.time())
            if len(moments) < 4:
                raise RuntimeError("API server unavailable")
            return None

        await queue.run(("ns", "a"), reconcile)
        await asyncio.sleep(0.5)
        return moments, len(queue)

    moments, left = _run(scenario())
    assert len(moments) == 4
    gaps = [later - earlier for earlier, later in itertools.pairwise(moments)]
    # 0.02, 0.04, then capped at 0.05 (asyncio may fire a timer up to its clock resolution early)
    assert gaps[0] >= 0.018 and gaps[1] >= 0.038 and gaps[2] >= 0.048
    assert left == 0


def test_a_stale_read_is_decided_again_at_once():
    async def scenario():
        queue = WorkQueue("Test")
        calls = 0

        async def reconcile():
            nonlocal calls
            calls += 1
            if calls == 1:
                raise Stale("changed since read")
            return None

        await queue.run(("ns", "a"), reconcile)
        return calls

    assert _run(scenario()) == 2


def test_only_new_objects_new_generations_and_deletions_trigger():
    filter = NewGenerations()
    key = ("ns", "job")
    assert filter.wants(None, key, 1)  # listed at startup
    assert not filter.wants("MODIFIED", key, 1)  # its status written back
    assert filter.wants("MODIFIED", key, 2)  # spec edited
    assert not filter.wants("MODIFIED", key, 2)
    assert filter.wants("DELETED", key, 2)
    assert filter.wants("ADDED", key, 1)  # created again under the same name


def test_an_object_that_is_gone_is_not_retried():
    async def scenario():
        queue = WorkQueue("Test", base_delay=0.01)
        calls = 0

        async def reconcile():
            nonlocal calls
            calls += 1
            raise Gone("namespace team-a is being deleted")

        await queue.run(("ns", "a"), reconcile)
        await asyncio.sleep(0.1)
        return calls, len(queue)

    assert _run(scenario()) == (1, 0)


def test_a_cancelled_error_nobody_asked_for_is_retried_like_a_failure():
    """A library's timeout that leaks out as CancelledError must not end the object's
    timers for good."""

    async def scenario():
        queue = WorkQueue("Test", base_delay=0.01)
        calls = 0

        async def reconcile():
            nonlocal calls
            calls += 1
            if calls == 1:
                raise asyncio.CancelledError()
            return None

        await queue.run(("ns", "a"), reconcile)
        await asyncio.sleep(0.2)
        return calls, len(queue)

    assert _run(scenario()) == (2, 0)


def test_a_real_cancellation_still_stops_the_reconcile():
    async def scenario():
        queue = WorkQueue("Test", base_delay=0.01)
        started = asyncio.Event()
        calls = 0

        async def reconcile():
            nonlocal calls
            calls += 1
            started.set()
            await asyncio.sleep(10)

        task = asyncio.create_task(queue.run(("ns", "a"), reconcile))
        await started.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.1)
        return calls, task.cancelled(), len(queue)

    assert _run(scenario()) == (1, True, 0)


def test_a_timer_whose_reconcile_escapes_the_queue_is_armed_again():
    """Whatever ends a requeued run (here something not even an Exception), the object
    is looked at again later instead of never."""

    class Escapes(BaseException):
        pass

    async def scenario():
        queue = WorkQueue("Test", base_delay=0.01, max_delay=0.05)
        calls = 0

        async def reconcile():
            nonlocal calls
            calls += 1
            if calls == 2:
                raise Escapes()
            return 0.01 if calls < 3 else None

        await queue.run(("ns", "a"), reconcile)  # asks for a run in 0.01 s, which escapes
        await asyncio.sleep(0.3)
        return calls, len(queue)

    assert _run(scenario()) == (3, 0)


def test_requeue_delays_fit_every_event_loop():
    assert timer_delay(float("nan"), 1.0) == 1.0  # uvloop refuses NaN
    assert timer_delay(-5.0, 1.0) == 0.0
    assert timer_delay(1e20, 1.0) == MAX_TIMER_SECONDS
    assert timer_delay(float("inf"), 1.0) == MAX_TIMER_SECONDS
    assert timer_delay(30.0, 1.0) == 30.0
