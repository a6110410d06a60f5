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
RENDEZVOUS_FAILED = "RendezvousFailed"
"""The training launcher's reason when the replicas' rendezvous failed (closed, timed out)."""


class PermanentError(RuntimeError):
    """A failure retrying cannot fix; `reason` is the CamelCase condition reason."""

    def __init__(self, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.details = details or {}


def termination_log() -> Path:
    return Path(os.environ.get(TERMINATION_LOG_ENV, DEFAULT_TERMINATION_LOG))


# What the operator acts on (registerAs, lineage, the failure's reason): dropped last,
# in this order.
ESSENTIAL = ("message", "input", "artifact", "reason")


def encode(result: dict[str, Any]) -> str:
    """Compact JSON under the kubelet's 4 KiB limit. If needed, the bulkiest
    informational keys go first; then the message is shortened; then the essential keys
    go in ESSENTIAL's order."""
    trimmed = dict(result)
    text = _json(trimmed)
    while len(text.encode()) > MAX_MESSAGE_BYTES:
        optional = [key for key in trimmed if key not in ESSENTIAL and key != "truncated"]
        message = trimmed.get("message")
        if optional:
            trimmed.pop(max(optional, key=lambda key: len(_json(trimmed[key]))))
        elif isinstance(message, str) and len(message) > 200:
            trimmed["message"] = message[: len(message) // 2] + " …"
        else:
            essential = [key for key in ESSENTIAL if key in trimmed]
            if not essential:
                trimmed = {}
            else:
                trimmed.pop(essential[0])
        trimmed["truncated"] = True
        text = _json(trimmed)
    return text


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


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
