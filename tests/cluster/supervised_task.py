"""`torchyard operator` with one more supervised background task, for the liveness tests.

    python -m tests.cluster.supervised_task doomed|flaky operator ARGS...

None of the operator's own tasks can be made to die from outside (that is the point of
the supervisor and of the bounded reads), so the test adds one that does, under the
same supervisor, probe and liveness endpoint: `doomed` raises at every start; `flaky`
raises once, then runs. Short backoffs keep the test fast.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import kopf

from torchyard.cli import main
from torchyard.controllers.health import supervisor
from torchyard.controllers.supervisor import Heartbeat, Policy

POLICY = Policy(base_delay=0.5, max_delay=1.0, max_failures=3, stable_after=5.0)
_starts = 0


async def doomed(beat: Heartbeat) -> None:
    raise RuntimeError("the test's doomed task cannot run")


async def flaky(beat: Heartbeat) -> None:
    global _starts
    _starts += 1
    if _starts == 1:
        raise ConnectionError("the test's flaky task failed once")
    await asyncio.Event().wait()


TASKS = {"doomed": doomed, "flaky": flaky}
KIND = sys.argv[1] if __name__ == "__main__" else "flaky"


@kopf.on.startup()
async def start_test_task(**_: Any) -> None:
    supervisor.start(f"test-{KIND}", TASKS[KIND], POLICY)


if __name__ == "__main__":
    sys.exit(main(sys.argv[2:]))
