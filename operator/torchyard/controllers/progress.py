"""Live training progress, read from replica 0 over HTTP (the workload serves it).

The API has no channel from a running container to the operator but the termination
message, which only comes at the end; so replica 0 serves its latest progress on
PROGRESS_PORT and the operator polls it. One poller for all running jobs, through one
connection pool: a timer and a client session per job cost more than the polls. Its
rate is capped, so that a thousand running jobs do not cost the operator a thousand
requests every interval: past MAX_POLLS_PER_SECOND x interval jobs, each is polled less
often.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from lightkube.core.exceptions import ApiError

from torchyard.api.kinds import TRAINING_JOB
from torchyard.controllers import client, objects
from torchyard.resources.training import PROGRESS_PORT

PROGRESS_INTERVAL_SECONDS = 5.0
MAX_POLLS_PER_SECOND = 20.0
_TIMEOUT = aiohttp.ClientTimeout(total=2)
_CONCURRENT_POLLS = 32
_STATUS_FIELDS = ("progress", "progressSummary")
FIELDS = ("step", "totalSteps", "epoch", "loss", "samplesPerSecond", "updateTime")
Key = tuple[str, str]
log = logging.getLogger(__name__)


async def fetch_progress(session: aiohttp.ClientSession, pod_ip: str) -> dict[str, Any] | None:
    """Replica 0's progress, or None if it does not answer (yet)."""
    url = f"http://{pod_ip}:{PROGRESS_PORT}/progress"
    try:
        async with session.get(url) as reply:
            if reply.status != 200:
                return None
            data = await reply.json(content_type=None)
    except (TimeoutError, aiohttp.ClientError, ValueError):
        return None
    return progress_status(data) if isinstance(data, dict) else None


def progress_status(data: dict[str, Any]) -> dict[str, Any]:
    """The status fields for a progress report: progress and its one-line summary."""
    progress = {key: data[key] for key in FIELDS if data.get(key) is not None}
    summary = None
    if "step" in progress:
        total = progress.get("totalSteps")
        summary = f"{progress['step']}/{total}" if total else str(progress["step"])
    return {"progress": progress, "progressSummary": summary}


def poll_period(running: int, interval: float, max_rate: float) -> float:
    """Seconds between two polls of one job: the interval, stretched so that all
    `running` jobs together are polled at most `max_rate` times a second."""
    return max(interval, running / max_rate)


class ProgressPoller:
    """Polls replica 0 of every running TrainingJob each interval and writes what changed
    to its status. Reconciles say which jobs run (track) and which stopped (untrack)."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._targets: dict[Key, str] = {}
        self._reported: dict[Key, dict[str, Any]] = {}

    def track(self, key: Key, pod_ip: str, status: dict[str, Any]) -> None:
        self._targets[key] = pod_ip
        self._reported.setdefault(key, {field: status.get(field) for field in _STATUS_FIELDS})

    def untrack(self, key: Key) -> None:
        self._targets.pop(key, None)
        self._reported.pop(key, None)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session:
            while True:
                started = loop.time()
                await self.poll(session)
                period = poll_period(len(self._targets), self.interval, MAX_POLLS_PER_SECOND)
                await asyncio.sleep(max(0.0, period - (loop.time() - started)))

    async def poll(self, session: aiohttp.ClientSession) -> None:
        gate = asyncio.Semaphore(_CONCURRENT_POLLS)

        async def one(key: Key, pod_ip: str) -> None:
            async with gate:
                update = await fetch_progress(session, pod_ip)
            if not update or self._reported.get(key) == update or key not in self._targets:
                return
            try:
                written = await client.patch_status(TRAINING_JOB, *key, update)
            except ApiError as error:
                log.warning("progress of TrainingJob %s/%s not written: %s", *key, error)
                return
            self._reported[key] = update
            if written is not None:
                objects.remember(TRAINING_JOB.kind, written)

        await asyncio.gather(*(one(key, ip) for key, ip in list(self._targets.items())))
