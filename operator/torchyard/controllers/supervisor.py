"""Supervision of the operator's own background tasks (the progress poller, and any
task the operator starts that should run as long as it does).

kopf supervises its own tasks (watches, timers, the liveness endpoint): when one fails,
the operator stops. A task the operator starts itself has nobody: an exception ends it
silently while liveness still says healthy. The supervisor gives each such task what a
process supervisor gives a process:

- a task that ends (an exception, or a return: these tasks run forever) is logged with
  its traceback and started again after a backoff (1 s, doubling, at most 60 s);
- a task that takes a heartbeat and does not beat for `stall_after` seconds is
  cancelled, and that counts as a failure too;
- `max_failures` failures in a row, none after a run of `stable_after` seconds, make
  `problems()` non-empty: the liveness probe (torchyard.controllers.health) then answers
  500 and the kubelet restarts the operator. The supervisor keeps trying meanwhile, so
  a run without liveness probes still recovers when the cause goes away.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Heartbeat = Callable[[], None]
"""Called by a supervised task whenever it has done a round of its work."""
Factory = Callable[[Heartbeat], Awaitable[None]]
"""Starts one run of a supervised task (given its heartbeat)."""

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Policy:
    base_delay: float = 1.0
    """Seconds before the first restart; doubled for each failure in a row."""
    max_delay: float = 60.0
    """Longest wait between two restarts."""
    max_failures: int = 5
    """Failures in a row after which liveness reports the operator unhealthy."""
    stable_after: float = 60.0
    """A run this long ends a series of failures: the next one counts from one again."""
    stall_after: float | None = None
    """Seconds without a heartbeat after which a run is taken for stuck and cancelled;
    None for a task that does not beat."""


def backoff(failures: int, policy: Policy) -> float:
    """Seconds to wait before the next start after `failures` failures in a row."""
    exponent = min(max(failures - 1, 0), 62)
    return min(policy.base_delay * 2.0**exponent, policy.max_delay)


@dataclass
class _Supervised:
    name: str
    factory: Factory
    policy: Policy
    failures: int = 0
    restarts: int = 0
    last_error: str = ""
    running_since: float | None = None
    beat_at: float = 0.0
    keeper: asyncio.Task[None] | None = field(default=None, repr=False)


class Supervisor:
    def __init__(self, on_restart: Callable[[str], None] | None = None) -> None:
        self._tasks: dict[str, _Supervised] = {}
        self._on_restart = on_restart

    def start(self, name: str, factory: Factory, policy: Policy | None = None) -> None:
        """Run `factory` as the background task `name`, restarted whenever it ends.
        Starting a name that already runs does nothing."""
        running = self._tasks.get(name)
        if running is not None and running.keeper is not None and not running.keeper.done():
            return
        task = _Supervised(name, factory, policy or Policy())
        task.keeper = asyncio.get_running_loop().create_task(
            self._keep(task), name=f"supervised {name}"
        )
        self._tasks[name] = task

    async def stop(self) -> None:
        """Cancel every supervised task and wait for them (the operator's cleanup)."""
        keepers = [t.keeper for t in self._tasks.values() if t.keeper is not None]
        self._tasks.clear()
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)

    def problems(self) -> list[str]:
        """Why the operator is not healthy: a task that fails over and over, or whose
        supervision ended (which only a bug or a foreign cancel can do). Empty if healthy."""
        now = asyncio.get_running_loop().time()
        found = []
        for task in self._tasks.values():
            if task.keeper is None or task.keeper.done():
                found.append(f"background task {task.name} is not supervised any more")
                continue
            recovered = (
                task.running_since is not None
                and now - task.running_since >= task.policy.stable_after
            )
            if task.failures >= task.policy.max_failures and not recovered:
                found.append(
                    f"background task {task.name} failed {task.failures} times in a row "
                    f"(last: {task.last_error})"
                )
        return found

    def report(self) -> dict[str, str]:
        """Each task's state in a few words, for the liveness endpoint's answer."""
        return {
            name: "running"
            if task.running_since is not None
            else f"restarting after {task.failures} failures (last: {task.last_error})"
            for name, task in self._tasks.items()
        }

    async def _keep(self, task: _Supervised) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            task.running_since = task.beat_at = started
            why = await self._run_once(task)
            task.running_since = None
            if loop.time() - started >= task.policy.stable_after:
                task.failures = 0
            task.failures += 1
            task.restarts += 1
            task.last_error = why
            delay = backoff(task.failures, task.policy)
            log.error(
                "background task %s stopped (%s); restarting in %.0f s (failure %d in a row)",
                task.name,
                why,
                delay,
                task.failures,
            )
            if self._on_restart is not None:
                self._on_restart(task.name)
            await asyncio.sleep(delay)

    async def _run_once(self, task: _Supervised) -> str:
        """Run the task once; return why it ended."""
        loop = asyncio.get_running_loop()

        def beat() -> None:
            task.beat_at = loop.time()

        run = loop.create_task(task.factory(beat), name=task.name)
        stall = task.policy.stall_after
        check = None if stall is None or not math.isfinite(stall) else max(stall / 4, 0.01)
        try:
            while not (await asyncio.wait({run}, timeout=check))[0]:
                assert stall is not None
                if loop.time() - task.beat_at > stall:
                    run.cancel()
                    await asyncio.wait({run}, timeout=10.0)
                    return f"no heartbeat for {stall:g} s: taken for stuck and cancelled"
        except asyncio.CancelledError:
            run.cancel()
            await asyncio.wait({run}, timeout=10.0)
            raise
        if run.cancelled():
            return "cancelled by something other than its supervisor"
        error = run.exception()
        if error is None:
            return "returned, though it should run as long as the operator"
        log.error("background task %s failed", task.name, exc_info=error)
        return f"{type(error).__name__}: {error}"[:500]
