"""Live training progress, read from replica 0 over HTTP (the workload serves it).

The API has no channel from a running container to the operator but the termination
message, which only comes at the end; so replica 0 serves its latest progress on
PROGRESS_PORT and the operator polls it at an interval.
"""

from __future__ import annotations

from typing import Any

import aiohttp

from torchyard.resources.training import PROGRESS_PORT

_TIMEOUT = aiohttp.ClientTimeout(total=2)
FIELDS = ("step", "totalSteps", "epoch", "loss", "samplesPerSecond", "updateTime")


async def fetch_progress(pod_ip: str) -> dict[str, Any] | None:
    """Replica 0's progress, or None if it does not answer (yet)."""
    url = f"http://{pod_ip}:{PROGRESS_PORT}/progress"
    try:
        async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.get(url) as reply:
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
