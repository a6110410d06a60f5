"""How a workload reports back: JSON in the container's termination message.

Exit codes tell the operator whether to retry: 0 succeeded, PERMANENT (3) failed for a
reason retrying cannot fix (bad input, quality gate), anything else is transient.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

TERMINATION_LOG_ENV = "TORCHYARD_TERMINATION_LOG"
DEFAULT_TERMINATION_LOG = "/dev/termination-log"
SPEC_ENV = "TORCHYARD_SPEC"
MAX_MESSAGE_BYTES = 4096
PERMANENT = 3


class PermanentError(RuntimeError):
    """A failure retrying cannot fix; `reason` is the CamelCase condition reason."""

    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details or {}


def termination_log() -> Path:
    return Path(os.environ.get(TERMINATION_LOG_ENV, DEFAULT_TERMINATION_LOG))


# What the operator acts on (registerAs, lineage, the failure's reason): dropped last.
ESSENTIAL = ("artifact", "input", "reason", "message")


def encode(result: dict[str, Any]) -> str:
    """Compact JSON under the kubelet's 4 KiB limit; drops the bulkiest keys if needed,
    informational ones before those the operator acts on."""
    text = json.dumps(result, separators=(",", ":"), sort_keys=True)
    trimmed = dict(result)
    while len(text.encode()) > MAX_MESSAGE_BYTES and trimmed:
        bulkiest = max(
            trimmed,
            key=lambda key: (key not in ESSENTIAL, len(json.dumps(trimmed[key]))),
        )
        trimmed.pop(bulkiest)
        trimmed["truncated"] = True
        text = json.dumps(trimmed, separators=(",", ":"), sort_keys=True)
    return text


def write_result(result: dict[str, Any]) -> None:
    path = termination_log()
    try:
        path.write_text(encode(result))
    except OSError:
        # Outside a pod (a developer's shell) there may be no termination log.
        print(encode(result))


def read_spec() -> dict[str, Any]:
    raw = os.environ.get(SPEC_ENV)
    if not raw:
        raise PermanentError("InvalidSpec", f"{SPEC_ENV} is not set: the operator passes the spec")
    spec: dict[str, Any] = json.loads(raw)
    return spec
