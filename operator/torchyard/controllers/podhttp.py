"""Requests to the pods the operator runs (training progress, serving metrics, quality
analysis's reference request), bounded.

A pod runs a tenant's image, so its answer is input, never trusted: it may be huge,
endless, slow, compressed, redirected, nested a hundred thousand levels deep, or not
HTTP at all. Each read here costs the operator at most `max_bytes` of body, the parser's
header limits, and `Limits.total` seconds; it follows no redirect, decompresses nothing,
and never raises (a `Refused` says why instead), so no pod can stall, bloat or crash the
task that reads it. Pure helpers (`loads`, `json_depth`, `printable`) are separate so
that the unit tests cover them without a server.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

MAX_JSON_DEPTH = 4
"""Nesting a pod's JSON may have; deeper is refused before parsing (the C parser
recurses, and 100,000 levels raise RecursionError)."""
_MAX_REASON = 200
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+"')  # possessive: linear, even when unterminated
_PAIR = re.compile(rb"\[\]|\{\}")
_NOT_BRACKET = bytes(set(range(256)) - set(b"[]{}"))


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    """Largest body read; a longer one is refused without reading the rest."""
    connect: float = 1.0
    """Seconds to open the connection."""
    total: float = 2.0
    """Seconds for the whole exchange, body included (a slow body is cut off)."""


@dataclass(frozen=True)
class Refused:
    """Why a pod's answer was not used: for a log line, an Event, an analysis message."""

    reason: str
    status: int | None = None
    """The HTTP status the pod answered with; None if it did not answer with one."""
    answered: bool = True
    """Whether the pod sent anything back (a status, or bytes that are not HTTP); False
    when nothing listens, the connection fails, or nothing came in time: how a pod
    looks while it starts or stops."""


def session(limits: Limits, connections: int) -> aiohttp.ClientSession:
    """One client session for reads from pods: no cookies, no decompression (a small
    compressed body can expand without limit), small header limits."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=connections, ttl_dns_cache=None),
        timeout=aiohttp.ClientTimeout(
            total=limits.total, sock_connect=limits.connect, sock_read=limits.total
        ),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        headers={"Accept-Encoding": "identity"},
        max_line_size=4096,
        max_field_size=4096,
        max_headers=32,
        trust_env=False,
    )


def pod_url(ip: str, port: int, path: str) -> URL | Refused:
    try:
        return URL.build(scheme="http", host=ip, port=port, path=path)
    except (ValueError, TypeError) as error:
        reason = f"pod IP {printable(ip)!r} is not an address: {printable(str(error))}"
        return Refused(reason, answered=False)


async def get(client: aiohttp.ClientSession, url: URL, limits: Limits) -> bytes | Refused:
    """The body of a 200 answer to GET `url`, at most `limits.max_bytes` long."""
    return await _exchange(client, "GET", url, limits, None)


async def post_json(
    client: aiohttp.ClientSession, url: URL, body: Any, limits: Limits
) -> bytes | Refused:
    """The body of a 200 answer to POST `url` with `body` as JSON, bounded like `get`."""
    return await _exchange(client, "POST", url, limits, body)


async def _exchange(
    client: aiohttp.ClientSession, method: str, url: URL, limits: Limits, body: Any
) -> bytes | Refused:
    status: int | None = None
    try:
        # The limits of this call, whatever the session's are.
        timeout = aiohttp.ClientTimeout(
            total=limits.total, sock_connect=limits.connect, sock_read=limits.total
        )
        async with client.request(
            method, url, json=body, allow_redirects=False, timeout=timeout
        ) as reply:
            status = reply.status
            if status != 200:
                reply.close()  # do not drain (or keep) whatever body it sends
                kind = "a redirect, not followed" if 300 <= status < 400 else "not 200"
                return Refused(f"answered HTTP {status} ({kind})", status)
            declared = reply.content_length
            if declared is not None and declared > limits.max_bytes:
                reply.close()
                return Refused(_too_big(limits.max_bytes, f"{declared} bytes declared"), status)
            read = bytearray()
            async for chunk in reply.content.iter_chunked(64 * 1024):
                read += chunk
                if len(read) > limits.max_bytes:
                    reply.close()
                    return Refused(_too_big(limits.max_bytes, "more sent"), status)
            return bytes(read)
    except TimeoutError:
        reason = f"no complete answer within {limits.total:g} s"
        return Refused(reason, status, answered=status is not None)
    except aiohttp.ClientResponseError as error:
        # What came back is not HTTP (a bad status line, endless headers): an answer.
        return Refused(f"not HTTP: {printable(error.message)}", status, answered=True)
    # Anything else the connection can raise (aiohttp's errors, OSError, a bad URL)
    # means only that this pod gave no usable answer.
    except Exception as error:
        reason = f"{type(error).__name__}: {printable(str(error))}"
        return Refused(reason, status, answered=status is not None)


def loads(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> Any | Refused:
    """A small JSON document, or why not: the depth is checked before the (recursive)
    parser runs; NaN and Infinity parse (Python's json does) and callers drop them."""
    # Binary (a compressed body, say) is named for what it is before its bytes are
    # counted as brackets, which would call it deep.
    text = body.lstrip(b" \t\r\n")
    if not text:
        return Refused("not JSON: an empty body")
    if text[:1] not in _JSON_STARTS:
        return Refused(f"not JSON: it starts with {printable(repr(text[:8]))}")
    depth = json_depth(body, max_depth)
    if depth > max_depth:
        return Refused(f"JSON nested deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except (ValueError, RecursionError) as error:  # a huge integer is a ValueError too
        return Refused(f"not JSON: {printable(str(error))}")


_JSON_STARTS = frozenset(bytes([c]) for c in b'{["-0123456789tfnNI')
"""The bytes a JSON value can start with (NaN and Infinity included)."""


def json_depth(body: bytes, stop_at: int) -> int:
    """How deeply arrays and objects nest in `body` (JSON text), strings skipped, or
    `stop_at + 1` when deeper (or unbalanced). No recursion and no loop over characters:
    each pass removes the innermost pairs, at C speed, so 64 KiB cost a millisecond."""
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    for depth in range(stop_at + 1):
        if not brackets:
            return depth
        brackets = _PAIR.sub(b"", brackets)
    return stop_at + 1


def printable(text: str) -> str:
    """A pod's words made safe for a log line or an Event: one line, short."""
    flat = "".join(c if c.isprintable() else " " for c in text[: _MAX_REASON * 2])
    return flat if len(flat) <= _MAX_REASON else flat[: _MAX_REASON - 3] + "..."


def _too_big(limit: int, how: str) -> str:
    return f"body over the {limit // 1024} KiB limit ({how})"
