"""What one serving process accepts, and how it refuses the rest.

Every limit bounds something a client controls: the bytes it sends and how slowly
(memory, connections), the size of the tensors it asks for (compute), the nesting of its
JSON (the parser's recursion), and how many requests wait for a forward pass (latency
and memory). Refusals are the client's mistake (4xx: not the version's fault, so the
rollout analysis does not count them) except overload, which is the server's capacity
(503 with Retry-After: counted, see docs/serving.md).

Pure: protocol checks the tensors against them, body reads the bytes under them.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class Limits:
    """The limits of one server; each field has an environment variable (ENV)."""

    max_body_bytes: int = 8 << 20
    """Largest request body (413)."""
    max_rows: int = 1024
    """Most rows (dimension 0) in one request (413)."""
    max_elements: int = 4 << 20
    """Most tensor values in one request, all inputs together (413)."""
    max_json_depth: int = 32
    """Deepest nesting of JSON arrays and objects in a body (400)."""
    max_queue: int = 256
    """Most requests waiting for a forward pass (503 with Retry-After beyond)."""
    max_buffered_bytes: int = 64 << 20
    """Most request bytes held at once, from the first byte read until the answer, all
    requests together (503 with Retry-After beyond): bounds the memory of big bodies."""
    header_timeout_s: float = 10.0
    """Longest a connection may take to send a request's headers, from when it opened or
    its last answer went out (the keep-alive idle time too); then it is closed."""
    body_timeout_s: float = 30.0
    """Longest a client may take to send a request's body (408, and the connection is
    closed)."""
    retry_after_s: int = 1
    """Seconds in the Retry-After header of an overload answer."""


ENV: dict[str, str] = {
    "max_body_bytes": "TORCHYARD_MAX_BODY_BYTES",
    "max_rows": "TORCHYARD_MAX_ROWS",
    "max_elements": "TORCHYARD_MAX_ELEMENTS",
    "max_json_depth": "TORCHYARD_MAX_JSON_DEPTH",
    "max_queue": "TORCHYARD_MAX_QUEUE",
    "max_buffered_bytes": "TORCHYARD_MAX_BUFFERED_BYTES",
    "header_timeout_s": "TORCHYARD_HEADER_TIMEOUT_SECONDS",
    "body_timeout_s": "TORCHYARD_BODY_TIMEOUT_SECONDS",
    "retry_after_s": "TORCHYARD_RETRY_AFTER_SECONDS",
}
# Above these a "limit" is no limit at all (and 2**63 bytes would overflow counters).
_CEILINGS: dict[str, float] = {
    "max_body_bytes": 1 << 40,
    "max_rows": 1 << 31,
    "max_elements": 1 << 40,
    "max_json_depth": 512,  # the JSON parser's own recursion limit is near 1000
    "max_queue": 1 << 20,
    "max_buffered_bytes": 1 << 44,
    "header_timeout_s": 3600,
    "body_timeout_s": 3600,
    "retry_after_s": 3600,
}


def limits_from_env(environ: Mapping[str, str] | None = None) -> Limits:
    """The limits set in the environment (spec.serving.env), defaults for the rest;
    raises ValueError naming the variable and what it accepts."""
    environ = os.environ if environ is None else environ
    values: dict[str, float] = {}
    for field in fields(Limits):
        raw = environ.get(ENV[field.name], "").strip()
        if not raw:
            continue
        integer = field.type == "int"
        low, high = 1, _CEILINGS[field.name]
        try:
            value = float(int(raw)) if integer else float(raw)
        except ValueError:
            value = math.nan
        if not low <= value <= high:  # NaN fails too
            kind = "an integer" if integer else "a number of seconds"
            raise ValueError(f"{ENV[field.name]}={raw!r}: expected {kind} in [{low}, {high:g}]")
        values[field.name] = int(value) if integer else value
    limits = Limits(**values)  # type: ignore[arg-type]
    if limits.max_buffered_bytes < limits.max_body_bytes:
        # Else a request of allowed size would always be refused as overload.
        raise ValueError(
            f"{ENV['max_buffered_bytes']}={limits.max_buffered_bytes} is below "
            f"{ENV['max_body_bytes']}={limits.max_body_bytes}: the server could never hold "
            "one request of the largest size"
        )
    return limits


# A JSON string (escapes included), unrolled so that matching is linear.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OBJECTS_AS_ARRAYS = bytes.maketrans(b"{}", b"[]")


def too_deep(raw: bytes | bytearray, limit: int) -> bool:
    """Whether JSON `raw` nests arrays and objects deeper than `limit`, decided before
    parsing (the parser recurses, and a deep body would cost it a RecursionError).

    Strings go first (they may hold brackets), then everything but brackets; each round
    then strips the innermost pairs, all in C (a Python loop over 8 MiB would stall the
    event loop for seconds)."""
    # Depth does not care whether a level is an array or an object.
    brackets = _without_strings(raw).translate(_OBJECTS_AS_ARRAYS, _NOT_BRACKETS)
    for rounds in range(limit + 1):
        inner = _strip_innermost(brackets)
        if inner == brackets:
            # Balanced: `rounds` is the depth. Unbalanced: the parser would refuse it,
            # but only after descending through the openings that are left.
            return rounds + brackets.count(b"[") > limit
        brackets = inner
    return True


def _without_strings(raw: bytes | bytearray) -> bytes:
    if b"\\" not in raw:
        # No escapes: every other quote opens a string. Five times faster than the
        # regular expression on a body of many strings.
        return b"".join(raw.split(b'"')[::2])
    return bytes(_STRING.sub(b"", raw))


def _strip_innermost(brackets: bytes) -> bytes:
    # One pass over the original: "[[]]" loses only its inner pair.
    return brackets.replace(b"[]", b"")
