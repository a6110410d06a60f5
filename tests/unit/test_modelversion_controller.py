"""The ModelVersion controller: the status it writes as a version's pods come and go, and
how promptly a deleted version is let go."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import kopf
import pytest

from torchyard.api.modelversion import ModelVersionSpec
from torchyard.controllers import modelversion, settings
from torchyard.controllers.modelversion import PERMANENT_EXIT, _finish

SPEC = {
    "model": "digits",
    "version": "2",
    "artifact": {"uri": "file:///models/digits-2", "digest": "sha256:" + "a" * 64},
    "serving": {"replicas": 1},
}
REFUSED = {"reason": "FactoryNotAllowed", "message": "factory 'os:system' is not allowed"}


def _failed_pod() -> dict[str, Any]:
    ended = {"exitCode": PERMANENT_EXIT, "message": json.dumps(REFUSED)}
    return {
        "metadata": {"name": "digits-v2-0"},
        "status": {"phase": "Running", "containerStatuses": [{"state": {"terminated": ended}}]},
    }


def test_a_failed_version_stays_unhealthy_once_its_pods_are_gone(
    monkeypatch: pytest.MonkeyPatch,
):
    """A Failed version runs no pods: the verdict its pods gave outlasts them."""
    written: list[dict[str, Any]] = []

    async def patch_status(kind: Any, namespace: str, name: str, changed: dict[str, Any]) -> None:
        written.append(changed)

    monkeypatch.setattr(modelversion.client, "patch_status", patch_status)
    monkeypatch.setattr(kopf, "event", lambda *args, **kwargs: None)
    body: dict[str, Any] = {
        "metadata": {"name": "digits-v2", "namespace": "ns", "generation": 1, "uid": "u2"},
        "spec": SPEC,
        "status": {},
    }
    spec = ModelVersionSpec.model_validate(SPEC)

    def finish(pods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Reconcile the Failed version with `pods`; its conditions as written, by type."""
        written.clear()
        asyncio.run(_finish(body, spec, pods, 0, {"phase": "Failed"}, []))
        body["status"] = {**body["status"], **(written[-1] if written else {})}
        return {c["type"]: c for c in body["status"]["conditions"]}

    failed = finish([_failed_pod()])
    assert (failed["Healthy"]["status"], failed["Healthy"]["reason"]) == (
        "False",
        "FactoryNotAllowed",
    )
    assert finish([]) == failed


def test_a_deleted_version_whose_timer_is_busy_is_let_go_within_seconds():
    """kopf keeps the finalizer of a deleted version until its timer (every 2 s) has
    finished the reconcile under way, and only looks again after cancellation_polling:
    its default minute made deleting a namespace take over a minute on a busy node."""
    operator = kopf.OperatorSettings()
    settings.configure(operator)
    assert operator.background.cancellation_polling <= 2.0
