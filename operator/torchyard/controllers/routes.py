"""Pushing a model's routing table to its router pods (torchyard.router), bounded as
every call to a pod is (torchyard.controllers.podhttp): the router pod runs the worker
image, and its answer is read no further than a status line and 64 KiB.

Each model's router pods are remembered with the table they took, by uid and container
restarts (a restarted router has no table), so an unchanged table is not pushed again; a
pod that did not take it (starting, gone, refused) is tried again within seconds (the
controller requeues the model while one lacks it).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from torchyard.controllers import podhttp
from torchyard.controllers.podhttp import Refused
from torchyard.plans.rollout.routes import same_routes
from torchyard.resources.serving import PORT
from torchyard.router.proxy import ROUTES_PATH
from torchyard.router.table import RouteTable

LIMITS = podhttp.Limits(max_bytes=64 * 1024, connect=2.0, total=5.0)
"""A table is small, but a loaded node may be slow to answer: until it does, the
controller holds back scale-downs (see modelversion._route)."""
log = logging.getLogger(__name__)


def pod_key(pod: Mapping[str, Any]) -> str:
    """A router pod's identity for what it holds: its uid and its container's restarts."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or [{}]
    return f"{pod['metadata']['uid']}/{statuses[0].get('restartCount', 0)}"


async def push(
    session: aiohttp.ClientSession, ip: str, table: RouteTable, token: str, port: int = PORT
) -> Refused | None:
    """PUT the table to the router pod at `ip`; None once it holds it, else why not."""
    url = podhttp.pod_url(ip, port, ROUTES_PATH)
    if isinstance(url, Refused):
        return url
    body = json.dumps(table.to_json()).encode()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    try:
        async with session.put(url, data=body, headers=headers, allow_redirects=False) as reply:
            if reply.status == 200:
                return None
            said = await reply.content.read(LIMITS.max_bytes)
            reason = podhttp.printable(said.decode("utf-8", "replace"))[:200]
            return Refused(f"answered HTTP {reply.status}: {reason}", reply.status)
    except TimeoutError:
        return Refused(f"no answer within {LIMITS.total:g} s", answered=False)
    except Exception as error:  # any failure of the connection: not pushed, tried again
        return Refused(f"{type(error).__name__}: {podhttp.printable(str(error))}", answered=False)


class Pushed:
    """Per model, the router pods (by uid and container restarts) and the table each took."""

    def __init__(self) -> None:
        self._held: dict[tuple[str, str], dict[str, RouteTable]] = {}

    def forget(self, model: tuple[str, str]) -> None:
        self._held.pop(model, None)

    async def sync(
        self,
        session: aiohttp.ClientSession,
        model: tuple[str, str],
        pods: Sequence[tuple[str, str]],
        table: RouteTable,
        token: str,
        port: int = PORT,
    ) -> tuple[set[str], set[str]]:
        """Push `table` to each (key, IP) router pod that does not hold it yet; the keys of
        the pods that hold it now, and of those that hold a table of this process's (it,
        or an older one a failed push left them with). Pods not listed are forgotten."""
        held = {uid: self._held.get(model, {}).get(uid) for uid, _ in pods}
        due = [(uid, ip) for uid, ip in pods if not same_routes(held[uid], table)]
        answers = await asyncio.gather(*(push(session, ip, table, token, port) for _, ip in due))
        for (uid, ip), refused in zip(due, answers, strict=True):
            if refused is None:
                held[uid] = table
            else:
                if refused.answered:
                    log.warning("router pod %s of %s/%s: %s", ip, *model, refused.reason)
        self._held[model] = {uid: t for uid, t in held.items() if t is not None}
        current = {uid for uid, t in self._held[model].items() if same_routes(t, table)}
        return current, set(self._held[model])
