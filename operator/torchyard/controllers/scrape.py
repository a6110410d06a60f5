"""Read the serving pods' Prometheus /metrics, for rollout analysis.

The pods run a tenant's image: each read is bounded (torchyard.controllers.podhttp:
256 KiB, 2 s, no redirects), and what comes back is checked by
torchyard.plans.rollout.analysis.read_counters before it counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiohttp

from torchyard.controllers import podhttp
from torchyard.controllers.podhttp import Refused
from torchyard.plans.rollout import Scrape, Unreadable, read_counters
from torchyard.resources.serving import PORT

LIMITS = podhttp.Limits(max_bytes=256 * 1024, connect=1.0, total=2.0)
_CONCURRENT = 8
_SHARED_CONNECTIONS = 32


async def scrape(session: aiohttp.ClientSession, pod_ip: str, port: int = PORT) -> str | Refused:
    """The pod's metrics text, or why there is none."""
    url = podhttp.pod_url(pod_ip, port, "/metrics")
    if isinstance(url, Refused):
        return url
    body = await podhttp.get(session, url, LIMITS)
    if isinstance(body, Refused):
        return body
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        return Refused("metrics are not UTF-8 text", 200)


class Scraper:
    """One client session for every scrape the operator makes (all models, all
    reconciles): connections are pooled and bounded together. Made on first use, on the
    operator's event loop; closed at the operator's cleanup."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = podhttp.session(LIMITS, _SHARED_CONNECTIONS)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


async def scrape_pods(
    pods: Sequence[tuple[str, str]],
    port: int = PORT,
    session: aiohttp.ClientSession | None = None,
) -> dict[str, Scrape]:
    """Counters of each (name, IP) pod that answers, read concurrently through `session`
    (a session of their own without one). A pod that does not answer at all is left out
    (not serving yet, or gone); one that answers something unusable (another status
    than 200, a redirect, too big, too slow, garbage) is Unreadable."""
    if not pods:
        return {}
    if session is None:
        async with podhttp.session(LIMITS, _CONCURRENT) as own:
            return await scrape_pods(pods, port, own)
    answers = await asyncio.gather(*(scrape(session, ip, port) for _, ip in pods))
    found: dict[str, Scrape] = {}
    for (name, _), answer in zip(pods, answers, strict=True):
        if isinstance(answer, Refused):
            if answer.answered:
                found[name] = Unreadable(f"/metrics {answer.reason}")
            continue
        found[name] = read_counters(answer)
    return found
