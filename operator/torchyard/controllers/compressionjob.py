"""Handlers for CompressionJob. For now they validate and accept; the workload comes later."""

from __future__ import annotations

from typing import Any

import kopf

from torchyard.api.base import GROUP, VERSION
from torchyard.api.kinds import COMPRESSION_JOB
from torchyard.controllers.acceptance import accept


@kopf.on.resume(GROUP, VERSION, COMPRESSION_JOB.plural)
@kopf.on.create(GROUP, VERSION, COMPRESSION_JOB.plural)
@kopf.on.update(GROUP, VERSION, COMPRESSION_JOB.plural, field="spec")
def reconcile_compression_job(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    accept(COMPRESSION_JOB, body, patch)
