"""Operator-wide kopf settings."""

from __future__ import annotations

import logging
from typing import Any

import kopf
from lightkube.generic_resource import create_global_resource

from torchyard.api.base import GROUP
from torchyard.controllers import client

# kopf's peering object, so that the client can create it (manifests/components/peering
# ships its CRD; an object in the same kustomization would fail before the CRD serves).
ClusterKopfPeering = create_global_resource(
    "kopf.dev", "v1", "ClusterKopfPeering", "clusterkopfpeerings"
)


class NoDiffBase(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff base, never built: no kind has kopf change handlers (every controller
    runs on torchyard's work queue), and kopf builds it from a deep copy of every body
    it receives, pods included; at scale that copy was the operator's largest cost."""

    def build(self, *, body: kopf.Body, **_: Any) -> kopf.BodyEssence:
        return kopf.BodyEssence()


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Without explicit timeouts a watch can hang silently and handlers stop (kopf #585).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # Keep kopf's bookkeeping under our own prefix; the operator never writes spec.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = NoDiffBase(
        prefix=GROUP, key="last-handled-configuration"
    )
    # kopf puts no finalizer on anything now; objects from older releases carry this one,
    # which kopf removes from the jobs and the ModelVersion controller replaces.
    settings.persistence.finalizer = f"{GROUP}/finalizer"
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
