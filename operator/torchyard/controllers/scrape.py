"""Read a serving pod's Prometheus /metrics, for rollout analysis."""

from __future__ import annotations

import aiohttp

from torchyard.resources.serving import PORT

_TIMEOUT = aiohttp.ClientTimeout(total=2)


async def scrape(pod_ip: str) -> str | None:
    """The pod's metrics text, or None if it does not answer."""
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.get(f"http://{pod_ip}:{PORT}/metrics") as reply,
        ):
            return await reply.text() if reply.status == 200 else None
    except (TimeoutError, aiohttp.ClientError):
        return None
