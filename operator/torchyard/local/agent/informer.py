"""List, then watch, one kind of object; relist now and then and after any error.

A watch that breaks can miss deletions (lightkube restarts an expired watch from
"now"), so every `resync` seconds the informer lists again and reports as DELETED
what is no longer there, as client-go's reflector does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from typing import Any

from torchyard.local.agent.kube import ALL, Api

log = logging.getLogger(__name__)

# (event type, old object or None, new object or None)
Listener = Callable[[str, dict[str, Any] | None, dict[str, Any] | None], None]


class Informer:
    def __init__(
        self,
        api: Api,
        kind: str,
        listener: Listener,
        namespace: str | None = ALL,
        fields: Mapping[str, str] | None = None,
        resync: float = 300.0,
    ) -> None:
        self.api = api
        self.kind = kind
        self.listener = listener
        self.namespace = namespace
        self.fields = dict(fields or {})
        self.resync = resync
        self.objects: dict[str, dict[str, Any]] = {}
        self.synced = asyncio.Event()

    async def run(self) -> None:
        delay = 0.2
        while True:
            try:
                items, version = await self.api.list(self.kind, self.namespace, self.fields)
                self._replace(items)
                self.synced.set()
                delay = 0.2
                async with asyncio.timeout(self.resync):
                    async for event, obj in self.api.watch(
                        self.kind, version, self.namespace, self.fields
                    ):
                        self._apply(event, obj)
            except TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as error:  # the API restarts, a connection drops: list again
                log.info("%s informer: %s; listing again in %.1fs", self.kind, error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    def _replace(self, items: list[dict[str, Any]]) -> None:
        fresh = {obj["metadata"]["uid"]: obj for obj in items}
        for uid in list(self.objects):
            if uid not in fresh:
                self._apply("DELETED", self.objects[uid])
        for obj in fresh.values():
            self._apply("MODIFIED" if obj["metadata"]["uid"] in self.objects else "ADDED", obj)

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        uid = obj["metadata"]["uid"]
        old = self.objects.get(uid)
        if event == "DELETED":
            if old is None:
                return
            del self.objects[uid]
            self._notify(event, old, None)
            return
        if event not in ("ADDED", "MODIFIED"):
            return
        if old is not None and old["metadata"].get("resourceVersion") == obj["metadata"].get(
            "resourceVersion"
        ):
            return
        self.objects[uid] = obj
        self._notify(event, old, obj)

    def _notify(self, event: str, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        try:
            self.listener(event, old, new)
        except Exception:
            name = (new or old or {}).get("metadata", {}).get("name")
            log.exception("%s listener failed on %s", self.kind, name)
