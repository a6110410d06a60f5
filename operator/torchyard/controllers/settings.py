"""Operator-wide kopf settings."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from lightkube.generic_resource import create_global_resource

from torchyard.api.base import GROUP
from torchyard.api.kinds import MODEL_VERSION
from torchyard.controllers import client

# kopf's peering object, so that the client can create it (manifests/components/peering
# ships its CRD; an object in the same kustomization would fail before the CRD serves).
ClusterKopfPeering = create_global_resource(
    "kopf.dev", "v1", "ClusterKopfPeering", "clusterkopfpeerings"
)


class ChangeHandledDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base, built only for the kinds with change handlers (ModelVersion).

    kopf builds it from a deep copy of every body it receives, pods included, to tell
    which changes its on.create/on.update handlers must see. Only ModelVersion has
    such handlers; for every other kind the copy was the operator's largest single cost
    at scale, and an empty essence changes nothing (no handler reads it)."""

    def build(self, *, body: kopf.Body, extra_fields: Any = None) -> kopf.BodyEssence:
        if body.get("kind") != MODEL_VERSION.kind:
            return kopf.BodyEssence()
        return super().build(body=body, extra_fields=extra_fields)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Without explicit timeouts a watch can hang silently and handlers stop (kopf #585).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # Keep kopf's bookkeeping under our own prefix; the operator never writes spec.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = ChangeHandledDiffBase(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    # A ModelVersion's timer that is in the middle of a reconcile when the version is
    # deleted keeps the finalizer until kopf looks again, and nothing else wakes it: by
    # default a minute later, which made deleting a namespace take over a minute on a
    # busy node, where reconciles are slow and often under way. A look costs one patch.
    settings.background.cancellation_polling = 1.0
    # kopf would post an Event for every handler's "succeeded" log line: an API write per
    # handler run at scale, and noise in `kubectl describe` beside torchyard's own Events.
    settings.posting.level = logging.WARNING
    settings.posting.reporting_component = "torchyard-operator"
    # Peering (HA) is chosen on the command line (torchyard.cli: --peering, --priority,
    # --peering-lifetime), which kopf applies before this handler runs.


@kopf.on.startup()
async def join_peering(settings: kopf.OperatorSettings, logger: kopf.Logger, **_: Any) -> None:
    """Replicas (--peering) elect through a ClusterKopfPeering; create it if missing."""
    if settings.peering.standalone:
        return
    created = await client.create(
        {
            "apiVersion": "kopf.dev/v1",
            "kind": "ClusterKopfPeering",
            "metadata": {"name": settings.peering.name},
        }
    )
    if created:
        logger.info("created ClusterKopfPeering %s", settings.peering.name)
