"""Live training progress, read from replica 0 over HTTP (the workload serves it).

The API has no channel from a running container to the operator but the termination
message, which only comes at the end; so replica 0 serves its latest progress on
PROGRESS_PORT and the operator polls it. One poller for all running jobs, through one
connection pool: a timer and a client session per job cost more than the polls. Its
rate is capped, so that a thousand running jobs do not cost the operator a thousand
requests every interval: past MAX_POLLS_PER_SECOND x interval jobs, each is polled less
often.

Replica 0 runs the tenant's image, so its answer is bounded (torchyard.controllers.
podhttp: 64 KiB, 2 s, no redirects, 4 levels of JSON) and checked field by field: a
value that is not a finite number in range is left out, an answer that cannot be used
at all is a Warning Event (`ProgressUnreadable`) on the job, once per reason, never an
error of the poller. The poller runs under the operator's supervisor
(torchyard.controllers.supervisor), which restarts it if it dies anyway.
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

import aiohttp
import httpx2
from lightkube.core.exceptions import ApiError

from torchyard.api.base import now, parse_time, rfc3339
from torchyard.api.kinds import TRAINING_JOB
from torchyard.api.training import TrainingJobStatus
from torchyard.controllers import client, objects, podhttp
from torchyard.controllers.podhttp import Refused
from torchyard.resources.training import PROGRESS_PORT
from torchyard.validation import stored_form

PROGRESS_INTERVAL_SECONDS = 5.0
MAX_POLLS_PER_SECOND = 20.0
LIMITS = podhttp.Limits(max_bytes=64 * 1024, connect=1.0, total=2.0)
MAX_COUNT = 2**53
"""Largest step, epoch or figure accepted: beyond it a float is no longer exact, and
the API server's int64 would overflow soon after."""
_CONCURRENT_POLLS = 32
_STATUS_FIELDS = ("progress", "progressSummary", "evaluation")
FIELDS = ("step", "totalSteps", "epoch", "loss", "samplesPerSecond", "updateTime")
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|[+-]\d\d:\d\d)")
Key = tuple[str, str]
log = logging.getLogger(__name__)


async def fetch_progress(
    session: aiohttp.ClientSession, pod_ip: str, port: int = PROGRESS_PORT
) -> dict[str, Any] | Refused:
    """Replica 0's progress as status fields, or why there is none."""
    url = podhttp.pod_url(pod_ip, port, "/progress")
    if isinstance(url, Refused):
        return url
    body = await podhttp.get(session, url, LIMITS)
    if isinstance(body, Refused):
        return body
    data = podhttp.loads(body)
    if isinstance(data, Refused):
        return Refused(data.reason, 200)
    if not isinstance(data, dict):
        return Refused(f"a JSON {type(data).__name__}, not an object", 200)
    update = progress_status(data)
    if not update["progress"]:
        return Refused(f"none of {', '.join(FIELDS)} has a usable value", 200)
    return update


def progress_status(data: Mapping[str, Any]) -> dict[str, Any]:
    """The status fields for a progress report: progress and its one-line summary.
    A field whose value is not usable (wrong type, NaN, infinite, negative, huge, not a
    timestamp) is left out: a diverged run's NaN loss must not hide its step count."""
    progress = {}
    for key in FIELDS:
        value = _field(key, data.get(key))
        if value is not None:
            progress[key] = value
    summary = None
    if "step" in progress:
        total = progress.get("totalSteps")
        summary = f"{progress['step']}/{total}" if total else str(progress["step"])
    update = {"progress": progress, "progressSummary": summary}
    # The evaluation set's metrics, epoch by epoch, as the status schema takes them
    # (anything that would not fit is left out, like a field of progress).
    evaluation = stored_form(TrainingJobStatus, "evaluation", data.get("evaluation"))
    if evaluation is not None:
        update["evaluation"] = evaluation
    return update


def _field(key: str, value: Any) -> Any:
    if key == "updateTime":
        return _timestamp(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if not math.isfinite(value) or abs(value) > MAX_COUNT:
        return None
    if key == "loss":
        return value
    if value < 0:
        return None
    if key == "samplesPerSecond":
        return value
    return value if isinstance(value, int) else None


def _timestamp(value: Any) -> str | None:
    """An RFC 3339 time as the API stores it (UTC, whole seconds), or None."""
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        return None
    try:
        return rfc3339(parse_time(value))
    except (ValueError, OverflowError):
        return None


def poll_period(running: int, interval: float, max_rate: float) -> float:
    """Seconds between two polls of one job: the interval, stretched so that all
    `running` jobs together are polled at most `max_rate` times a second."""
    return max(interval, running / max_rate)


def _nothing() -> None:
    pass


class ProgressPoller:
    """Polls replica 0 of every running TrainingJob each interval and writes what changed
    to its status. Reconciles say which jobs run (track) and which stopped (untrack)."""

    def __init__(self, interval: float = PROGRESS_INTERVAL_SECONDS) -> None:
        self.interval = interval
        self._targets: dict[Key, str] = {}
        self._reported: dict[Key, dict[str, Any]] = {}
        self._owners: dict[Key, dict[str, Any]] = {}
        self._refusals: dict[Key, str] = {}
        """The reason each job's last answer was refused, so that it is told once."""

    def track(
        self, key: Key, pod_ip: str, status: Mapping[str, Any], owner: Mapping[str, Any]
    ) -> None:
        self._targets[key] = pod_ip
        self._reported.setdefault(key, {field: status.get(field) for field in _STATUS_FIELDS})
        if key not in self._owners:
            metadata = owner.get("metadata") or {}
            self._owners[key] = {
                "apiVersion": owner.get("apiVersion"),
                "kind": owner.get("kind"),
                "metadata": {k: metadata.get(k) for k in ("name", "namespace", "uid")},
            }

    def untrack(self, key: Key) -> None:
        self._targets.pop(key, None)
        self._reported.pop(key, None)
        self._owners.pop(key, None)
        self._refusals.pop(key, None)

    async def run(self, beat: Callable[[], None] = _nothing) -> None:
        """Poll forever; `beat` after every round tells the supervisor it goes on."""
        loop = asyncio.get_running_loop()
        async with podhttp.session(LIMITS, _CONCURRENT_POLLS) as session:
            while True:
                started = loop.time()
                await self.poll(session)
                beat()
                period = poll_period(len(self._targets), self.interval, MAX_POLLS_PER_SECOND)
                await asyncio.sleep(max(0.0, period - (loop.time() - started)))

    async def poll(self, session: aiohttp.ClientSession) -> None:
        gate = asyncio.Semaphore(_CONCURRENT_POLLS)

        async def one(key: Key, pod_ip: str) -> None:
            async with gate:
                update = await fetch_progress(session, pod_ip)
            if key not in self._targets:
                return
            if isinstance(update, Refused):
                await self._refused(key, update)
                return
            self._refusals.pop(key, None)
            if self._reported.get(key) == update:
                return
            try:
                written = await client.patch_status(TRAINING_JOB, *key, update)
            except (ApiError, httpx2.HTTPError) as error:
                log.warning("progress of TrainingJob %s/%s not written: %s", *key, error)
                return
            self._reported[key] = update
            if written is not None:
                objects.remember(TRAINING_JOB.kind, written)

        await asyncio.gather(*(one(key, ip) for key, ip in list(self._targets.items())))

    async def _refused(self, key: Key, refused: Refused) -> None:
        """Say once per reason why a job's progress is not shown. Silence while replica
        0 does not answer or has nothing yet (404): that is how a run starts."""
        if not refused.answered or refused.status == 404:
            return
        if self._refusals.get(key) == refused.reason:
            return
        self._refusals[key] = refused.reason
        message = (
            f"progress from replica 0 ignored: {refused.reason}; the job runs on, "
            "without live progress in status until replica 0 answers GET /progress "
            f"on port {PROGRESS_PORT} with a small JSON object"
        )
        log.warning("TrainingJob %s/%s: %s", *key, message)
        owner = self._owners.get(key)
        if owner is None:
            return
        # kopf.event needs the context of a kopf handler, which this task is not.
        try:
            await client.create(warning_event(owner, "ProgressUnreadable", message, now()))
        except (ApiError, httpx2.HTTPError, client.NamespaceGone) as error:
            log.warning("Event for TrainingJob %s/%s not posted: %s", *key, error)


def warning_event(
    owner: Mapping[str, Any], reason: str, message: str, when: datetime
) -> dict[str, Any]:
    """A core/v1 Warning Event about `owner`, as `kubectl describe` shows it."""
    metadata = owner["metadata"]
    stamp = rfc3339(when)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{metadata['name']}.", "namespace": metadata["namespace"]},
        "involvedObject": {
            "apiVersion": owner["apiVersion"],
            "kind": owner["kind"],
            "name": metadata["name"],
            "namespace": metadata["namespace"],
            "uid": metadata["uid"],
        },
        "type": "Warning",
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "torchyard-operator"},
        "reportingComponent": "torchyard-operator",
        "reportingInstance": "torchyard-operator",
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }
