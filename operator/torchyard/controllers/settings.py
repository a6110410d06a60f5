"""Operator-wide kopf settings."""

from __future__ import annotations

import logging
from typing import Any

import kopf

from torchyard.api.base import GROUP


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    # Without explicit timeouts a watch can hang silently and handlers stop (kopf #585).
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 10
    # Keep kopf's bookkeeping under our own prefix; the operator never writes spec.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = "torchyard-operator"
    # One replica for now: no peering objects needed (HA comes with kopf peering).
    settings.peering.standalone = True
