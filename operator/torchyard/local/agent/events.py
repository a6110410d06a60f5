"""Kubernetes Events about pods, as the kubelet records them (best effort)."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from torchyard.local.agent.status import rfc3339

# The same event for the same pod is recorded at most once in this many seconds (the
# kubelet aggregates repeats; a failing probe every second would flood otherwise).
REPEAT_SECONDS = 30.0


def event_manifest(
    pod: Mapping[str, Any], node: str, kind: str, reason: str, message: str, now: float
) -> dict[str, Any]:
    meta = pod["metadata"]
    stamp = rfc3339(now)
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": f"{meta['name']}.{secrets.token_hex(8)}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": "v1",
            "kind": "Pod",
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": kind,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": "kubelet", "host": node},
        "reportingComponent": "torchyard-agent",
        "reportingInstance": node,
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


class Recorder:
    def __init__(self, node: str, post: Callable[[dict[str, Any]], Awaitable[None]]) -> None:
        self.node = node
        self._post = post
        self._recent: dict[tuple[str, str, str], float] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def emit(self, pod: Mapping[str, Any], kind: str, reason: str, message: str) -> None:
        now = time.time()
        key = (pod["metadata"].get("uid", ""), reason, message)
        if now - self._recent.get(key, 0.0) < REPEAT_SECONDS:
            return
        self._recent[key] = now
        if len(self._recent) > 4096:
            cutoff = now - REPEAT_SECONDS
            self._recent = {k: t for k, t in self._recent.items() if t > cutoff}
        task = asyncio.get_running_loop().create_task(
            self._post(event_manifest(pod, self.node, kind, reason, message, now))
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def drain(self, timeout: float = 2.0) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=timeout)
