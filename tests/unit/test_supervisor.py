"""The supervisor of the operator's own background tasks, and the liveness probe it feeds:
a transient failure is survived (restarted with backoff, still healthy); a task that
dies for good, or stops beating, makes the probe fail so the kubelet restarts the
operator. Real asyncio tasks; short delays instead of the operator's seconds."""

from __future__ import annotations

import asyncio

import kopf
import pytest

from torchyard.controllers import health
from torchyard.controllers.supervisor import Policy, Supervisor, backoff

FAST = Policy(base_delay=0.01, max_delay=0.05, max_failures=3, stable_after=0.5)


async def _until(what: str, check, timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def test_backoff_doubles_up_to_the_maximum():
    policy = Policy(base_delay=1.0, max_delay=60.0)
    assert [backoff(n, policy) for n in (1, 2, 3, 7, 8, 1000)] == [1, 2, 4, 60, 60, 60]


def test_a_transient_failure_is_restarted_and_the_operator_stays_healthy(caplog):
    runs = []

    async def flaky(beat):
        runs.append(1)
        if len(runs) == 1:
            raise ConnectionError("the API server went away for a moment")
        await asyncio.Event().wait()  # runs from now on

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("flaky", flaky, FAST)
        await _until("a second run", lambda: len(runs) == 2)
        problems, report = supervisor.problems(), supervisor.report()
        await supervisor.stop()
        return problems, report

    problems, report = asyncio.run(scenario())
    assert problems == [] and report == {"flaky": "running"}
    assert "background task flaky failed" in caplog.text
    assert "ConnectionError: the API server went away" in caplog.text
    assert "Traceback" in caplog.text or any(r.exc_info for r in caplog.records)


def test_a_task_that_dies_for_good_makes_liveness_unhealthy_and_is_still_retried():
    runs = []

    async def doomed(beat):
        runs.append(1)
        raise RuntimeError("cannot run")

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("doomed", doomed, FAST)
        await _until("three failures", lambda: len(runs) >= FAST.max_failures)
        await _until("unhealthy", lambda: supervisor.problems())
        problems = supervisor.problems()
        await _until("another try", lambda: len(runs) >= FAST.max_failures + 2)
        await supervisor.stop()
        return problems

    problems = asyncio.run(scenario())
    assert len(problems) == 1
    assert "doomed failed" in problems[0] and "RuntimeError: cannot run" in problems[0]


def test_the_liveness_probe_fails_while_a_supervised_task_cannot_run(monkeypatch):
    async def doomed(beat):
        raise RuntimeError("cannot run")

    async def returns(beat):
        return None  # a background task that ends is as dead as one that raises

    async def scenario():
        supervisor = Supervisor()
        monkeypatch.setattr(health, "supervisor", supervisor)
        healthy = await health.background_tasks()
        supervisor.start("doomed", doomed, FAST)
        supervisor.start("returns", returns, FAST)
        await _until("unhealthy", lambda: len(supervisor.problems()) == 2)
        with pytest.raises(kopf.PermanentError) as unhealthy:
            await health.background_tasks()
        await supervisor.stop()
        return healthy, str(unhealthy.value)

    healthy, unhealthy = asyncio.run(scenario())
    assert healthy == {}
    assert "doomed failed 3 times in a row" in unhealthy
    assert "returns failed 3 times in a row (last: returned" in unhealthy


def test_a_task_that_recovers_is_healthy_again_after_a_stable_run():
    runs = []

    async def recovers(beat):
        runs.append(1)
        if len(runs) <= FAST.max_failures:
            raise RuntimeError("not yet")
        await asyncio.Event().wait()

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("recovers", recovers, FAST)
        await _until("unhealthy", lambda: supervisor.problems())
        await _until("healthy again", lambda: not supervisor.problems(), timeout=5.0)
        report = supervisor.report()
        await supervisor.stop()
        return report

    assert asyncio.run(scenario()) == {"recovers": "running"}


def test_a_task_that_stops_beating_is_cancelled_and_restarted():
    runs = []
    cancelled = []

    async def hangs(beat):
        runs.append(1)
        beat()
        try:
            await asyncio.Event().wait()  # stuck, never beats again
        except asyncio.CancelledError:
            cancelled.append(1)
            raise

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("hangs", hangs, Policy(base_delay=0.01, stall_after=0.1))
        await _until("a restart after the stall", lambda: len(runs) >= 2)
        last = supervisor._tasks["hangs"].last_error
        await supervisor.stop()
        return last

    last = asyncio.run(scenario())
    assert cancelled and "no heartbeat for 0.1 s" in last


def test_a_task_that_beats_is_left_alone():
    async def beats(beat):
        while True:
            beat()
            await asyncio.sleep(0.01)

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("beats", beats, Policy(stall_after=0.1))
        await asyncio.sleep(0.5)
        restarts = supervisor._tasks["beats"].restarts
        await supervisor.stop()
        return restarts

    assert asyncio.run(scenario()) == 0


def test_stop_cancels_every_task_and_forgets_them():
    stopped = []

    async def runs(beat):
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(1)

    async def scenario():
        supervisor = Supervisor()
        supervisor.start("a", runs)
        supervisor.start("b", runs)
        supervisor.start("a", runs)  # already running: nothing more
        await asyncio.sleep(0.01)
        await supervisor.stop()
        return supervisor.report()

    assert asyncio.run(scenario()) == {}
    assert len(stopped) == 2
