"""The progress poller's cadence and rate cap.

The poller's loop runs on virtual loop time (looptime): its real 5 s interval costs no
real time, and the tests assert the exact moments at which each job was polled. Replica
0's answers are faked (each takes 0.3 s and is "nothing listens yet", which the poller
passes over in silence)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from itertools import pairwise

import pytest

from torchyard.controllers import progress
from torchyard.controllers.podhttp import Refused
from torchyard.controllers.progress import ProgressPoller, poll_period

from ..builders import training_job


def test_progress_polls_stretch_past_the_rate_cap():
    assert poll_period(running=10, interval=5.0, max_rate=20.0) == 5.0
    assert poll_period(running=100, interval=5.0, max_rate=20.0) == 5.0
    assert poll_period(running=1000, interval=5.0, max_rate=20.0) == 50.0


def _fake_replicas(monkeypatch) -> dict[str, list[float]]:
    """Replica 0 of every job takes 0.3 s to not answer; returns each pod IP's poll moments."""
    polled: dict[str, list[float]] = defaultdict(list)

    async def fetch_progress(session, pod_ip):
        polled[pod_ip].append(asyncio.get_running_loop().time())
        await asyncio.sleep(0.3)
        return Refused("connection refused", answered=False)

    monkeypatch.setattr(progress, "fetch_progress", fetch_progress)
    return polled


async def _run_for(poller: ProgressPoller, seconds: float, beat=lambda: None) -> None:
    task = asyncio.create_task(poller.run(beat))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


def _track(poller: ProgressPoller, jobs: int) -> None:
    for n in range(jobs):
        job = training_job(f"job-{n}", "team-a").obj()
        poller.track(("team-a", f"job-{n}"), f"10.0.{n // 250}.{n % 250}", {}, job)


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_each_running_job_is_polled_every_interval_however_long_a_round_takes(
    monkeypatch,
):
    polled = _fake_replicas(monkeypatch)
    poller = ProgressPoller(interval=5.0)
    _track(poller, 2)
    beats: list[float] = []

    await _run_for(poller, 12, beat=lambda: beats.append(asyncio.get_running_loop().time()))

    assert polled == {"10.0.0.0": [0, 5, 10], "10.0.0.1": [0, 5, 10]}
    assert beats == [0.3, 5.3, 10.3]  # the supervisor hears of every round when it ends


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_thousand_running_jobs_are_polled_less_often_within_the_rate_cap(monkeypatch):
    polled = _fake_replicas(monkeypatch)
    poller = ProgressPoller(interval=5.0)
    _track(poller, 1000)

    await _run_for(poller, 120)

    assert len(polled) == 1000 and all(len(moments) == 3 for moments in polled.values())
    # 20 polls a second at most: each job every 50 s instead of every 5 s
    gaps = {round(b - a, 6) for moments in polled.values() for a, b in pairwise(moments)}
    assert gaps == {50}
    # 32 requests at a time: a round of 0.3 s answers takes 32 x 0.3 s
    firsts = sorted(moments[0] for moments in polled.values())
    assert (firsts.count(0), firsts[-1]) == (32, pytest.approx(31 * 0.3))


@pytest.mark.asyncio
@pytest.mark.looptime
async def test_a_job_that_stops_running_is_polled_no_more(monkeypatch):
    polled = _fake_replicas(monkeypatch)
    poller = ProgressPoller(interval=5.0)
    _track(poller, 2)

    task = asyncio.create_task(poller.run())
    await asyncio.sleep(7)
    poller.untrack(("team-a", "job-1"))
    await asyncio.sleep(10)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task

    assert polled == {"10.0.0.0": [0, 5, 10, 15], "10.0.0.1": [0, 5]}
