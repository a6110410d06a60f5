"""The supervisor of the operator's own background tasks, and the liveness probe it feeds:
a transient failure is survived (restarted with backoff, still healthy); a task that
dies for good, or stops beating, makes the probe fail so the kubelet restarts the
operator.

Real asyncio tasks on virtual loop time (looptime): the operator's own delays (a 1 s
backoff doubling to 60 s, a 60 s stable run) cost no real time, and the tests assert
the exact moments at which each task ran."""

from __future__ import annotations

import asyncio

import kopf
import pytest

from torchyard.controllers import health
from torchyard.controllers.supervisor import Policy, Supervisor, backoff


def _now() -> float:
    return asyncio.get_running_loop().time()


def test_backoff_doubles_up_to_the_maximum():
    policy = Policy(base_delay=1.0, max_delay=60.0)
    assert [backoff(n, policy) for n in (1, 2, 3, 7, 8, 1000)] == [1, 2, 4, 60, 60, 60]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_transient_failure_is_restarted_and_the_operator_stays_healthy(caplog):
    runs: list[float] = []

    async def flaky(beat):
        runs.append(_now())
        if len(runs) == 1:
            raise ConnectionError("the API server went away for a moment")
        await asyncio.Event().wait()  # runs from now on

    supervisor = Supervisor()
    supervisor.start("flaky", flaky)
    await asyncio.sleep(10)
    problems, report = supervisor.problems(), supervisor.report()
    await supervisor.stop()

    assert runs == [0, 1]  # restarted after the first backoff, 1 s
    assert problems == [] and report == {"flaky": "running"}
    assert "background task flaky failed" in caplog.text
    assert "ConnectionError: the API server went away" in caplog.text
    assert any(record.exc_info for record in caplog.records)  # with its traceback


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_task_that_dies_for_good_makes_liveness_unhealthy_and_is_still_retried():
    runs: list[float] = []

    async def doomed(beat):
        runs.append(_now())
        raise RuntimeError("cannot run")

    supervisor = Supervisor()
    supervisor.start("doomed", doomed)  # unhealthy after 5 failures in a row
    await asyncio.sleep(14.5)
    before_the_fifth = supervisor.problems()
    await asyncio.sleep(1)
    after_the_fifth = supervisor.problems()
    await asyncio.sleep(200)
    await supervisor.stop()

    assert before_the_fifth == []
    assert len(after_the_fifth) == 1
    assert "doomed failed 5 times in a row" in after_the_fifth[0]
    assert "RuntimeError: cannot run" in after_the_fifth[0]
    # 1, 2, 4, 8, 16, 32 s apart, then every 60 s: retried all the same
    assert runs == [0, 1, 3, 7, 15, 31, 63, 123, 183]


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_the_liveness_probe_fails_while_a_supervised_task_cannot_run(monkeypatch):
    async def doomed(beat):
        raise RuntimeError("cannot run")

    async def returns(beat):
        return None  # a background task that ends is as dead as one that raises

    supervisor = Supervisor()
    monkeypatch.setattr(health, "supervisor", supervisor)
    assert await health.background_tasks() == {}
    policy = Policy(max_failures=3)
    supervisor.start("doomed", doomed, policy)
    supervisor.start("returns", returns, policy)
    await asyncio.sleep(2.5)  # two failures each, at 0 s and 1 s: still healthy
    assert (await health.background_tasks())["doomed"].startswith("restarting after 2 failures")
    await asyncio.sleep(1)  # the third, at 3 s
    with pytest.raises(kopf.PermanentError) as unhealthy:
        await health.background_tasks()
    await supervisor.stop()

    assert "doomed failed 3 times in a row" in str(unhealthy.value)
    assert "returns failed 3 times in a row (last: returned" in str(unhealthy.value)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_task_that_recovers_is_healthy_again_after_a_stable_run():
    runs: list[float] = []

    async def recovers(beat):
        runs.append(_now())
        if len(runs) <= 3:
            raise RuntimeError("not yet")
        await asyncio.Event().wait()

    supervisor = Supervisor()
    supervisor.start("recovers", recovers, Policy(max_failures=3, stable_after=60.0))
    await asyncio.sleep(5)
    while_failing = supervisor.problems()
    await asyncio.sleep(61)  # running since 7 s: 59 s of a stable run so far
    not_yet_stable = supervisor.problems()
    await asyncio.sleep(2)
    stable = supervisor.problems()
    report = supervisor.report()
    await supervisor.stop()

    assert runs == [0, 1, 3, 7]
    assert while_failing and not_yet_stable
    assert stable == [] and report == {"recovers": "running"}


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_task_that_stops_beating_is_cancelled_and_restarted(caplog):
    runs: list[float] = []
    cancelled: list[float] = []

    async def hangs(beat):
        runs.append(_now())
        beat()
        try:
            await asyncio.Event().wait()  # stuck, never beats again
        except asyncio.CancelledError:
            cancelled.append(_now())
            raise

    supervisor = Supervisor()
    supervisor.start("hangs", hangs, Policy(stall_after=10.0))
    await asyncio.sleep(15)
    await supervisor.stop()

    # more than 10 s without a beat, seen at the next check (every quarter of that)
    assert cancelled[0] == 12.5
    assert runs == [0, 13.5]  # restarted after the first backoff, 1 s
    assert "no heartbeat for 10 s: taken for stuck and cancelled" in caplog.text


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_task_that_beats_is_left_alone():
    runs: list[float] = []

    async def beats(beat):
        runs.append(_now())
        while True:
            beat()
            await asyncio.sleep(5)

    supervisor = Supervisor()
    supervisor.start("beats", beats, Policy(stall_after=10.0))
    await asyncio.sleep(100)
    report = supervisor.report()
    await supervisor.stop()

    assert runs == [0]  # never restarted
    assert report == {"beats": "running"}


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_stop_cancels_every_task_and_forgets_them():
    stopped = []

    async def runs(beat):
        try:
            await asyncio.Event().wait()
        finally:
            stopped.append(1)

    supervisor = Supervisor()
    supervisor.start("a", runs)
    supervisor.start("b", runs)
    supervisor.start("a", runs)  # already running: nothing more
    await asyncio.sleep(1)
    await supervisor.stop()

    assert supervisor.report() == {}
    assert len(stopped) == 2
