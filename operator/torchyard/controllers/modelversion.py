"""Handlers for ModelVersion. For now they validate and accept; the workload comes later."""

from __future__ import annotations

from typing import Any

import kopf

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import MODEL_VERSION
from torchyard.controllers.acceptance import accept


@kopf.on.resume(GROUP, VERSION, MODEL_VERSION.plural)
@kopf.on.create(GROUP, VERSION, MODEL_VERSION.plural)
@kopf.on.update(GROUP, VERSION, MODEL_VERSION.plural, field="spec")
def reconcile_model_version(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    accept(MODEL_VERSION, body, patch)
