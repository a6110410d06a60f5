"""The operator's liveness, as `torchyard operator --liveness` serves it.

kopf's liveness endpoint runs the probe handlers on each request (cached for 10 s) and
answers 500 when one fails, which makes the kubelet restart the operator. kopf's own
tasks need no probe (when one fails, kopf stops the operator); this probe covers the
tasks the operator starts itself, under `supervisor` (torchyard.controllers.supervisor).
"""

from __future__ import annotations

from typing import Any

import kopf

from torchyard.controllers.supervisor import Supervisor
from torchyard.metrics import BACKGROUND_RESTARTS

supervisor = Supervisor(on_restart=lambda name: BACKGROUND_RESTARTS.labels(name).inc())


@kopf.on.probe(id="backgroundTasks")
async def background_tasks(**_: Any) -> dict[str, str]:
    problems = supervisor.problems()
    if problems:
        # Permanent: a temporary error would be retried inside the liveness request.
        raise kopf.PermanentError("; ".join(problems))
    return supervisor.report()


@kopf.on.cleanup()
async def stop_background_tasks(**_: Any) -> None:
    await supervisor.stop()
