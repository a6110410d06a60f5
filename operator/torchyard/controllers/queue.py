"""A work queue for reconciles: one at a time per object, triggers coalesced, requeues on
a timer, failures retried with backoff.

What controller-runtime's queue gives a Go controller. A burst of triggers for one
object (its pods change phase one after another, its own status write echoes back)
costs one reconcile, not one per event: a trigger that arrives while a reconcile of the
object waits to start is dropped, since that reconcile reads the latest state anyway.
A reconcile that needs to run again at a moment (a deadline, a TTL) returns the delay
and gets a timer instead of a poll; one that fails runs again after a backoff, also
when its trigger was an event that kopf would not retry.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Key = tuple[str, str]
Reconcile = Callable[[], Awaitable[float | None]]
"""Reconciles one object; returns seconds until it must run again, or None."""

log = logging.getLogger(__name__)


class Stale(Exception):
    """The reconcile decided from an out-of-date copy of its object; run it again now."""


class Gone(Exception):
    """The object cannot be acted on any more (its namespace is being deleted): do not
    retry; the watch reports what happens next."""


@dataclass
class _Entry:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    users: int = 0
    waiting: bool = False
    failures: int = 0
    timer: asyncio.TimerHandle | None = None
    reconcile: Reconcile | None = None


class WorkQueue:
    def __init__(
        self,
        kind: str,
        base_delay: float = 1.0,
        max_delay: float = 300.0,
        max_concurrent: int = 100,
    ) -> None:
        self.kind = kind
        self.base_delay = base_delay
        self.max_delay = max_delay
        # As many as the API client has connections (controllers/transport.py): more would
        # only queue for one, each holding a decision while the state it read ages.
        # 32 cost a quarter of the throughput at N=500 (docs/performance.md).
        self._slots = asyncio.Semaphore(max_concurrent)
        self._entries: dict[Key, _Entry] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def __len__(self) -> int:
        return len(self._entries)

    async def run(self, key: Key, reconcile: Reconcile) -> None:
        """Reconcile the object now, or rely on the reconcile already waiting for it."""
        entry = self._entries.setdefault(key, _Entry())
        entry.reconcile = reconcile
        if entry.waiting:
            return
        entry.waiting = True
        entry.users += 1
        try:
            async with entry.lock, self._slots:
                entry.waiting = False  # from here on, a new trigger needs a new run
                await self._once(key, entry, reconcile)
        finally:
            entry.users -= 1
            if not entry.users and entry.timer is None:
                del self._entries[key]

    async def _once(self, key: Key, entry: _Entry, reconcile: Reconcile) -> None:
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        for _ in range(3):
            try:
                delay = await reconcile()
            except Stale:
                continue
            except Gone as reason:
                log.info("%s %s/%s not reconciled: %s", self.kind, *key, reason)
                delay = None
            except (Exception, asyncio.CancelledError) as error:
                if isinstance(error, asyncio.CancelledError) and _being_cancelled():
                    raise  # the operator stops: no retry
                # A CancelledError nobody asked for (a library's timeout leaking out)
                # would otherwise end this object's timers for good, like a crash.
                entry.failures += 1
                delay = min(self.base_delay * 2 ** (entry.failures - 1), self.max_delay)
                log.exception(
                    "reconcile of %s %s/%s failed; retrying in %.0f s", self.kind, *key, delay
                )
            else:
                entry.failures = 0
            break
        else:
            delay = self.base_delay  # stale three times in a row: someone else is writing
        if delay is not None:
            entry.timer = asyncio.get_running_loop().call_later(
                timer_delay(delay, self.base_delay), self._requeue, key
            )

    def _requeue(self, key: Key) -> None:
        entry = self._entries.get(key)
        if entry is None or entry.reconcile is None:
            return
        entry.timer = None
        task = asyncio.get_running_loop().create_task(self.run(key, entry.reconcile))
        self._tasks.add(task)
        task.add_done_callback(functools.partial(self._requeued, key, entry.reconcile))

    def _requeued(self, key: Key, reconcile: Reconcile, task: asyncio.Task[None]) -> None:
        """A timer's reconcile ended. It cannot fail by design (run catches what the
        reconcile raises); if it did anyway, the object's timers must not end with it."""
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        log.error(
            "requeued reconcile of %s %s/%s failed; retrying in %.0f s",
            self.kind,
            *key,
            self.max_delay,
            exc_info=task.exception(),
        )
        entry = self._entries.setdefault(key, _Entry())
        entry.reconcile = entry.reconcile or reconcile
        if entry.timer is None:
            entry.timer = asyncio.get_running_loop().call_later(self.max_delay, self._requeue, key)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


MAX_TIMER_SECONDS = 24 * 3600.0
"""Longest timer: a later moment (a TTL of years) is looked at again daily, which costs
nothing and keeps every delay within what each event loop's timers accept."""


def timer_delay(delay: float, fallback: float) -> float:
    """A reconcile's requeue delay as a timer accepts it: NaN (uvloop refuses it) becomes
    `fallback`, and the rest is clamped to [0, MAX_TIMER_SECONDS]."""
    if math.isnan(delay):
        return fallback
    return min(max(delay, 0.0), MAX_TIMER_SECONDS)


class NewGenerations:
    """Which watch events of a reconciled kind need a reconcile, as controller-runtime's
    GenerationChangedPredicate decides: an object seen for the first time in this
    process (created, or listed at startup), a new generation (its spec changed), and
    its deletion. Not status-only changes: those are the operator's own writes coming
    back, already decided."""

    def __init__(self) -> None:
        self._seen: dict[Key, int] = {}

    def wants(self, event_type: str | None, key: Key, generation: int) -> bool:
        if event_type == "DELETED":
            self._seen.pop(key, None)
            return True
        if self._seen.get(key) == generation:
            return False
        self._seen[key] = generation
        return True


def next_look(finished: bool, planned: float | None, resync: float) -> float | None:
    """When to reconcile again: the plan's moment (a deadline, a TTL) and, while the
    object is unfinished, at least every `resync` seconds (a safety net for lost events)."""
    if finished:
        return planned
    return resync if planned is None else min(planned, resync)


def soonest(*delays: float | None) -> float | None:
    """The nearest of several moments to look again (None: no moment)."""
    known = [delay for delay in delays if delay is not None]
    return min(known) if known else None
