"""Hostile HTTP endpoints: what a tenant's pod can answer the operator's progress poller
and metrics scrape. Each `HostileServer` runs one behaviour on a real socket (its own
thread and event loop, so synchronous tests and the benchmark use it alike) and counts
the requests it got. Raw asyncio streams, not an HTTP framework: several behaviours are
not valid HTTP on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import threading
from collections.abc import Awaitable, Callable
from functools import cache

GIB = 1024**3
_CHUNK = b" " * (1024 * 1024)
Writer = asyncio.StreamWriter
Behaviour = Callable[["HostileServer", str, Writer], Awaitable[None]]


def _head(status: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


async def _send(writer: Writer, body: bytes, content_type: str = "application/json") -> None:
    writer.write(
        _head(
            "200 OK",
            {"Content-Type": content_type, "Content-Length": str(len(body)), "Connection": "close"},
        )
        + body
    )
    await writer.drain()


def _metrics(requests: float | str, errors: float | str = 0, extra: str = "") -> bytes:
    labels = 'model="m",version="2"'
    return (
        f"# TYPE torchyard_inference_requests_total counter\n"
        f"torchyard_inference_requests_total{{{labels}}} {requests}\n"
        f'torchyard_inference_errors_total{{{labels},code="500"}} {errors}\n'
        f'torchyard_inference_request_duration_seconds_bucket{{{labels},le="0.01"}} {requests}\n'
        f'torchyard_inference_request_duration_seconds_bucket{{{labels},le="+Inf"}} {requests}\n'
        f"{extra}"
    ).encode()


async def normal(server: HostileServer, path: str, writer: Writer) -> None:
    """What a healthy pod answers: progress that advances, metrics that count."""
    if path.startswith("/metrics"):
        await _send(writer, _metrics(100.0 * server.hits), "text/plain; version=0.0.4")
        return
    report = {"step": server.hits, "totalSteps": 1000, "epoch": 1, "loss": 0.5}
    await _send(writer, json.dumps(report).encode())


async def huge_body(server: HostileServer, path: str, writer: Writer) -> None:
    """1 GiB declared, and sent for as long as the client reads."""
    writer.write(_head("200 OK", {"Content-Length": str(GIB), "Connection": "close"}))
    await _stream(writer, GIB)


async def endless_chunked(server: HostileServer, path: str, writer: Writer) -> None:
    """No length at all: chunks of 1 MiB for as long as the client reads."""
    writer.write(_head("200 OK", {"Transfer-Encoding": "chunked", "Connection": "close"}))
    chunk = f"{len(_CHUNK):x}\r\n".encode() + _CHUNK + b"\r\n"
    with contextlib.suppress(ConnectionError):
        for _ in range(1024):
            writer.write(chunk)
            await writer.drain()


async def slow_body(server: HostileServer, path: str, writer: Writer) -> None:
    """A valid start, then a byte every 50 ms, forever (chunked: no length to refuse)."""
    writer.write(_head("200 OK", {"Transfer-Encoding": "chunked", "Connection": "close"}))
    writer.write(b'5\r\n{"a":\r\n')
    with contextlib.suppress(ConnectionError):
        for _ in range(1_000_000):
            writer.write(b"1\r\n \r\n")
            await writer.drain()
            await asyncio.sleep(0.05)


async def slow_headers(server: HostileServer, path: str, writer: Writer) -> None:
    """The status line, then a header byte every 100 ms, forever."""
    writer.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
    with contextlib.suppress(ConnectionError):
        for _ in range(1_000_000):
            writer.write(b"a")
            await writer.drain()
            await asyncio.sleep(0.1)


async def endless_headers(server: HostileServer, path: str, writer: Writer) -> None:
    """Headers without end, as fast as the client reads them."""
    writer.write(b"HTTP/1.1 200 OK\r\n")
    line = b"X-Filler: " + b"b" * 4000 + b"\r\n"
    with contextlib.suppress(ConnectionError):
        for _ in range(256 * 1024):
            writer.write(line)
            await writer.drain()


async def deep_json(server: HostileServer, path: str, writer: Writer) -> None:
    """100,000 nested arrays (200 kB)."""
    await _send(writer, b"[" * 100_000 + b"]" * 100_000)


async def deep_json_small(server: HostileServer, path: str, writer: Writer) -> None:
    """30,000 nested arrays: under the size limit, far over the recursion limit."""
    await _send(writer, b'{"step": ' + b"[" * 30_000 + b"]" * 30_000 + b"}")


async def redirect_self(server: HostileServer, path: str, writer: Writer) -> None:
    """A redirect to the same URL, for ever."""
    host, port = server.address
    location = f"http://{host}:{port}{path}"
    writer.write(_head("302 Found", {"Location": location, "Content-Length": "0"}))
    await writer.drain()


@cache
def _bomb() -> bytes:
    return gzip.compress(b"\0" * (48 * 1024 * 1024), compresslevel=9, mtime=0)


async def gzip_bomb(server: HostileServer, path: str, writer: Writer) -> None:
    """47 kB of gzip that expands to 48 MiB."""
    body = _bomb()
    headers = {
        "Content-Encoding": "gzip",
        "Content-Length": str(len(body)),
        "Connection": "close",
    }
    writer.write(_head("200 OK", headers) + body)
    await writer.drain()


async def garbage(server: HostileServer, path: str, writer: Writer) -> None:
    """Not HTTP at all."""
    writer.write(bytes(range(256)) * 64)
    await writer.drain()


async def not_json(server: HostileServer, path: str, writer: Writer) -> None:
    """A 200 whose body is text, or bytes that are no UTF-8."""
    await _send(writer, b"\xff\xfe<html>" + b"\xc3" * 100, "text/html")


async def bad_values(server: HostileServer, path: str, writer: Writer) -> None:
    """Valid JSON or metrics whose every value is unusable: NaN, infinite, negative,
    beyond 2^53, the wrong type, a time before year 1 in UTC."""
    if path.startswith("/metrics"):
        await _send(writer, _metrics("NaN", "+Inf"), "text/plain")
        return
    await _send(
        writer,
        b'{"step": NaN, "totalSteps": 1e999, "epoch": -5, "loss": Infinity,'
        b' "samplesPerSecond": "fast", "updateTime": "0001-01-01T00:00:00+14:00"}',
    )


async def huge_numbers(server: HostileServer, path: str, writer: Writer) -> None:
    """Numbers too large to mean anything (and one too long to parse)."""
    if path.startswith("/metrics"):
        await _send(writer, _metrics("1e300", "1e300"), "text/plain")
        return
    await _send(writer, b'{"step": 1' + b"0" * 5000 + b', "totalSteps": 1e300}')


async def partly_good(server: HostileServer, path: str, writer: Writer) -> None:
    """A diverged run: step and totals fine, loss NaN."""
    report = b'{"step": 7, "totalSteps": 10, "loss": NaN, "samplesPerSecond": -1}'
    await _send(writer, report)


async def long_line(server: HostileServer, path: str, writer: Writer) -> None:
    """A 200 kB metrics line whose labels never close (a regex that backtracks would
    spend hours on it)."""
    line = 'torchyard_inference_requests_total{a="' + "x" * 200_000 + "\n"
    await _send(writer, line.encode() + _metrics(10), "text/plain")


async def contradictory(server: HostileServer, path: str, writer: Writer) -> None:
    """Counters that cannot both be true: more server errors than requests, and latency
    buckets that are not cumulative."""
    extra = (
        'torchyard_inference_request_duration_seconds_bucket{model="m",version="2",le="0.1"} 1\n'
    )
    await _send(writer, _metrics(100.0 * server.hits, 1e6 * server.hits, extra), "text/plain")


BEHAVIOURS: dict[str, Behaviour] = {
    "normal": normal,
    "huge-body": huge_body,
    "endless-chunked": endless_chunked,
    "slow-body": slow_body,
    "slow-headers": slow_headers,
    "endless-headers": endless_headers,
    "deep-json": deep_json,
    "deep-json-small": deep_json_small,
    "redirect-self": redirect_self,
    "gzip-bomb": gzip_bomb,
    "garbage": garbage,
    "not-json": not_json,
    "bad-values": bad_values,
    "huge-numbers": huge_numbers,
    "partly-good": partly_good,
    "long-line": long_line,
    "contradictory": contradictory,
}


async def _stream(writer: Writer, total: int) -> None:
    sent = 0
    with contextlib.suppress(ConnectionError):
        while sent < total:
            writer.write(_CHUNK)
            sent += len(_CHUNK)
            await writer.drain()


class HostileServer:
    """One behaviour on host:port (port 0: any free one), in a thread of its own."""

    def __init__(self, behaviour: str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.behaviour = BEHAVIOURS[behaviour]
        self.name = behaviour
        self.address = (host, port)
        self.hits = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"hostile {behaviour}", daemon=True)

    def __enter__(self) -> HostileServer:
        if self.behaviour is gzip_bomb:
            _bomb()  # compress once, before the clock of any test starts
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"hostile server {self.name} did not start")
        return self

    def __exit__(self, *_: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, *self.address)
        self.address = server.sockets[0].getsockname()[:2]
        self._ready.set()
        async with server:
            await self._stop.wait()
            server.close()
        # Connections still streaming end with the loop (asyncio.run cancels them).

    async def _connection(self, reader: asyncio.StreamReader, writer: Writer) -> None:
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
            path = head.split(b" ", 2)[1].decode("ascii", "replace")
            self.hits += 1
            await self.behaviour(self, path, writer)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        except (TimeoutError, asyncio.CancelledError):
            pass  # a client that never sent its request; or the server stops
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
