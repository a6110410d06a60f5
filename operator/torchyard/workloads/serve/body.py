"""Reading a request body under the limits: size, time, the server's byte budget, JSON
depth and numbers that are not numbers; and splitting off the binary tensor data that
may follow the JSON.

aiohttp reads headers before a handler runs (and closes a connection that takes longer
than the keep-alive timeout to send them: Limits.header_timeout_s); the body is the
handler's to read, chunk by chunk, so that a big or slow body costs only what has
arrived, and only for a bounded time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiohttp import ClientPayloadError, web
from aiohttp.http import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from torchyard.oip.binary import HEADER_LENGTH, BinaryError, split_body
from torchyard.workloads.serve.limits import ENV, Limits, too_deep
from torchyard.workloads.serve.protocol import ProtocolError

TOO_LARGE = 413
REQUEST_TIMEOUT = 408
OVERLOADED = 503


class Overloaded(ProtocolError):
    """The server cannot take the request now: 503 with Retry-After."""

    def __init__(self, message: str, retry_after_s: int) -> None:
        super().__init__(f"{message}; retry after {retry_after_s} s", OVERLOADED)
        self.headers = {"Retry-After": str(retry_after_s)}


class TimedOut(ProtocolError):
    """The client sent its body too slowly: 408, and the connection is closed."""

    def __init__(self, message: str) -> None:
        super().__init__(message, REQUEST_TIMEOUT)
        self.headers = {"Connection": "close"}


class ByteBudget:
    """Request bytes the whole server holds; each request holds what it has read until
    it is answered. Used from the event loop only, so no lock."""

    def __init__(self, limit: int, retry_after_s: int) -> None:
        self.limit = limit
        self.retry_after_s = retry_after_s
        self.held = 0

    @contextmanager
    def hold(self) -> Iterator[Holding]:
        holding = Holding(self)
        try:
            yield holding
        finally:
            self.held -= holding.bytes

    def _take(self, holding: Holding, count: int) -> None:
        if self.held + count > self.limit:
            raise Overloaded(
                f"the server holds {self.held} bytes of requests and its limit is "
                f"{self.limit} ({ENV['max_buffered_bytes']})",
                self.retry_after_s,
            )
        self.held += count
        holding.bytes += count


class Holding:
    """What one request holds of the budget."""

    def __init__(self, budget: ByteBudget) -> None:
        self.budget = budget
        self.bytes = 0

    def take(self, count: int) -> None:
        self.budget._take(self, count)


async def read_request(
    request: web.Request, limits: Limits, holding: Holding
) -> tuple[Any, memoryview]:
    """The request's JSON, parsed strictly (no NaN or Infinity), within the limits, and
    the binary tensor data that follow it (empty unless the request says how long its
    JSON part is: the protocol's binary data extension). The Content-Type is not read:
    tritonclient sends none."""
    body = await read_body(request, limits, holding)
    length = request.headers.get(HEADER_LENGTH)
    if length is None:
        return parse_json(body, limits), memoryview(b"")
    try:
        header, binary = split_body(body, length)
    except BinaryError as error:
        raise ProtocolError(str(error)) from None
    return parse_json(bytes(header), limits), binary


def parse_json(raw: bytes | bytearray, limits: Limits) -> Any:
    """JSON within the depth limit, with no NaN or Infinity."""
    if too_deep(raw, limits.max_json_depth):
        raise ProtocolError(
            f"the request body nests arrays or objects deeper than {limits.max_json_depth} "
            f"levels ({ENV['max_json_depth']})"
        )
    try:
        return json.loads(raw, parse_constant=_not_a_number)
    except RecursionError:  # unreachable past too_deep, but never a 500
        raise ProtocolError("the request body nests too deeply") from None
    except ValueError as error:
        raise ProtocolError(f"the request body is not JSON: {error}") from None


def _not_a_number(constant: str) -> Any:
    # Python's json reads NaN, Infinity and -Infinity; JSON has no such numbers.
    raise ValueError(f"{constant} is not a JSON number (non-finite numbers are refused)")


async def read_body(request: web.Request, limits: Limits, holding: Holding) -> bytearray:
    declared = request.content_length
    if declared is not None and declared > limits.max_body_bytes:
        raise body_too_large(declared, limits)
    body = bytearray()
    try:
        async with asyncio.timeout(limits.body_timeout_s):
            async for chunk in request.content.iter_any():
                if len(body) + len(chunk) > limits.max_body_bytes:
                    raise body_too_large(len(body) + len(chunk), limits)
                holding.take(len(chunk))
                body += chunk
    except (ConnectionError, ClientPayloadError) as error:
        # Nobody will read the answer; but a client's hang-up is its business, not a
        # server error with a traceback.
        raise ProtocolError(f"the client went away before its body arrived: {error}") from None
    except (RequestPayloadError, HttpProcessingError) as error:
        # A Content-Encoding aiohttp cannot undo, or a body that is not what it says.
        raise ProtocolError(f"the request body cannot be read: {error}") from None
    except TimeoutError:
        raise TimedOut(
            f"the request body took longer than {limits.body_timeout_s:g} s to arrive "
            f"({ENV['body_timeout_s']}); {len(body)} bytes came"
        ) from None
    return body


def body_too_large(size: int, limits: Limits) -> ProtocolError:
    return ProtocolError(
        f"the request body is larger than {limits.max_body_bytes} bytes "
        f"({ENV['max_body_bytes']}): {size} bytes or more",
        TOO_LARGE,
    )
