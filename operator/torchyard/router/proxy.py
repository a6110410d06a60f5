"""The router's HTTP face: the routing table's own routes, and every other request passed
to the version the table picks, body and answer as bytes (never parsed).

- `PUT /_torchyard/routes` (bearer token): a new table; one whose generation is older
  than the current one is refused with 409, so a slow push never undoes a newer one.
- `GET /_torchyard/routes` (bearer token): the current table.
- `GET /_torchyard/ready`: 200 once a table has a version with a weight and a ready
  endpoint (the router pod's readiness), 503 before.
- `GET /metrics`: the router's own metrics (the versions' pods are scraped directly).

Only inference requests (POST .../infer) are weighed and counted: health and metadata
calls go to the heaviest version, so that a client's readiness checks neither move the
round nor count as traffic served. A connection that fails before the request was sent
(refused, or not made in time) is retried on the version's next endpoint (a pod that
just went away), then on another version; the router never sends a request again once a
backend may have seen it (aiohttp itself may resend an idempotent GET on a connection
the backend closed). The answering version is in the X-Model-Version header, as the
serving pods write it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Iterable

import aiohttp
from aiohttp import web
from aiohttp.http import HttpProcessingError
from aiohttp.web_protocol import RequestPayloadError

from torchyard.oip import VERSION_HEADER
from torchyard.router.metrics import RouterMetrics
from torchyard.router.table import Picker, RouteTable, TableError, VersionRoute

log = logging.getLogger("torchyard.router")

ROUTES_PATH = "/_torchyard/routes"
READY_PATH = "/_torchyard/ready"
# Headers of one connection, not of the request (RFC 9110 7.6.1), and those aiohttp
# writes itself from the body it sends.
HOP_BY_HOP = frozenset(
    name.lower()
    for name in (
        "Connection",
        "Keep-Alive",
        "Proxy-Authenticate",
        "Proxy-Authorization",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Host",
        "Content-Length",
    )
)
BACKEND_IDLE_SECONDS = 5.0
"""How long an idle connection to a serving pod is kept for reuse: less than the pods
keep one (they close it 10 s after their last answer, TORCHYARD_HEADER_TIMEOUT_SECONDS),
so that the router never sends a request on a connection the pod is closing at that
moment, which would fail it as a 502 the router cannot safely send again."""
UNAVAILABLE = 503
BAD_GATEWAY = 502
REQUEST_TIMEOUT = 408
# Nothing was sent: safe to try another endpoint.
NOT_CONNECTED = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
# A client gone mid-body, or a body aiohttp cannot take apart.
UNREADABLE = (ConnectionError, aiohttp.ClientPayloadError, RequestPayloadError, HttpProcessingError)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Router:
    """One model's router: the current table and a pooled client to its backends."""

    def __init__(
        self,
        model: str,
        token: str | None = None,
        *,
        token_sha256: str | None = None,
        max_body_bytes: int = 8 * 1024 * 1024,
        body_timeout_s: float = 60.0,
        upstream_timeout_s: float = 60.0,
    ) -> None:
        # Only the token's digest is kept (or given): see token_digest.
        if token:
            digest = token_digest(token)
        elif token_sha256 and re.fullmatch(r"[0-9a-f]{64}", token_sha256):
            digest = token_sha256
        else:
            raise ValueError("the router needs its routes API token, or its SHA-256 in hex")
        self.model = model
        self.metrics = RouterMetrics(model)
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.draining = False
        """After SIGTERM: not ready, still forwarding (see app.route)."""
        self.table: RouteTable | None = None
        self.picker: Picker | None = None
        self._digest = digest
        self._timeout = aiohttp.ClientTimeout(total=upstream_timeout_s, sock_connect=2.0)
        self._client: aiohttp.ClientSession | None = None

    def application(self) -> web.Application:
        app = web.Application(client_max_size=self.max_body_bytes, middlewares=[_errors_as_json])
        app.router.add_put(ROUTES_PATH, self.put_routes)
        app.router.add_get(ROUTES_PATH, self.get_routes)
        app.router.add_get(READY_PATH, self.ready)
        app.router.add_get("/metrics", self.prometheus)
        app.router.add_route("*", "/{tail:.*}", self.forward)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        # Keep-alive connections to the backends: a new TCP connection per request
        # would cost more than the router itself. auto_decompress off: bytes pass as
        # they came, with their Content-Encoding.
        connector = aiohttp.TCPConnector(
            limit=0, limit_per_host=256, keepalive_timeout=BACKEND_IDLE_SECONDS
        )
        self._client = aiohttp.ClientSession(
            connector=connector, timeout=self._timeout, auto_decompress=False
        )

    async def _close(self, app: web.Application) -> None:
        if self._client is not None:
            await self._client.close()

    # -- the table -----------------------------------------------------------------------

    def _authorized(self, request: web.Request) -> bool:
        scheme, _, given = request.headers.get("Authorization", "").partition(" ")
        # Header values are latin-1 on the wire; aiohttp hands odd bytes back escaped.
        raw = given.strip().encode("utf-8", "surrogateescape")
        return scheme.lower() == "bearer" and hmac.compare_digest(token_digest(raw), self._digest)

    async def put_routes(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error("the routes API needs the router's bearer token", 401)
        try:
            table = RouteTable.from_json(json.loads(await request.read()))
        except (ValueError, TableError) as error:
            return _error(f"routing table refused: {error}", 400)
        if self.table is not None and table.generation < self.table.generation:
            return _error(
                f"generation {table.generation} is older than the current {self.table.generation}",
                409,
            )
        if table != self.table:
            self.table, self.picker = table, Picker(table, after=self.picker)
            weights = {route.version: route.weight for route in table.versions}
            log.info("routes generation %d: weights %s", table.generation, weights)
        return web.json_response(table.to_json())

    async def get_routes(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return _error("the routes API needs the router's bearer token", 401)
        return web.json_response(None if self.table is None else self.table.to_json())

    async def ready(self, request: web.Request) -> web.Response:
        ready = self.picker is not None and not self.picker.empty and not self.draining
        return web.json_response({"ready": ready}, status=200 if ready else UNAVAILABLE)

    async def prometheus(self, request: web.Request) -> web.Response:
        response = web.Response(body=self.metrics.render())
        response.headers["Content-Type"] = self.metrics.content_type
        return response

    # -- forwarding ----------------------------------------------------------------------

    async def forward(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.body_timeout_s):
                body = await request.read()
        except TimeoutError:
            return _error(
                f"the request body took longer than {self.body_timeout_s:g} s to arrive",
                REQUEST_TIMEOUT,
                {"Connection": "close"},
            )
        # Picked once the body is here: a slow client does not hold a turn of the round.
        picker = self.picker
        if picker is None or picker.empty:
            self.metrics.unroutable()
            return _error(
                f"no version of model '{self.model}' has a weight and a ready pod",
                UNAVAILABLE,
                {"Retry-After": "1"},
            )
        weighed = request.method == "POST" and request.path.endswith("/infer")
        if weighed:
            sticky = picker.table.sticky_header
            route = picker.pick(request.headers.get(sticky) if sticky else None)
        else:
            route = picker.steadiest()
        headers = _forwarded(request.headers.items())
        for candidate in fallbacks(picker, route):
            for endpoint in picker.endpoints(candidate):
                try:
                    response = await self._send(request, endpoint, headers, body)
                except NOT_CONNECTED as error:
                    log.warning("%s (version %s) refused: %s", endpoint, candidate.version, error)
                    self.metrics.retried(candidate.version)
                    continue
                except (aiohttp.ClientError, TimeoutError) as error:
                    # The backend may have seen the request: not sent again.
                    said = f"{type(error).__name__}: {error}"
                    log.warning("%s (version %s) failed: %s", endpoint, candidate.version, said)
                    response = _error(f"version {candidate.version}: {said}", BAD_GATEWAY)
                if weighed:
                    answered = response.headers.get(VERSION_HEADER)
                    # A label from the table, never a value a backend made up.
                    known = answered in {v.version for v in picker.table.versions}
                    self.metrics.routed(
                        answered if known and answered else candidate.version,
                        response.status,
                        time.perf_counter() - started,
                    )
                return response
        self.metrics.unroutable()
        message = f"no pod of model '{self.model}' accepted a connection"
        return _error(message, UNAVAILABLE, {"Retry-After": "1"})

    async def _send(
        self, request: web.Request, endpoint: str, headers: list[tuple[str, str]], body: bytes
    ) -> web.Response:
        assert self._client is not None
        url = f"http://{endpoint}{request.rel_url}"
        async with self._client.request(
            request.method, url, headers=headers, data=body, allow_redirects=False
        ) as upstream:
            payload = await upstream.read()
            answer = _forwarded(upstream.headers.items())
            return web.Response(status=upstream.status, body=payload, headers=answer)


def token_digest(token: str | bytes) -> str:
    """The SHA-256 of a routes API token, hex: what the router is configured with, so that
    whoever reads its Deployment learns nothing that lets them push routes."""
    raw = token.encode("utf-8", "surrogateescape") if isinstance(token, str) else token
    return hashlib.sha256(raw).hexdigest()


def _forwarded(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The end-to-end headers, repeated ones kept: without the hop-by-hop ones and
    those the Connection header names."""
    pairs = list(headers)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
    }
    dropped = HOP_BY_HOP | named
    return [(name, value) for name, value in pairs if name.lower() not in dropped]


@web.middleware
async def _errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """aiohttp's own refusals (a body over the limit, a client gone mid-body) as the
    protocol's error object, never a traceback."""
    try:
        return await handler(request)
    except web.HTTPException as error:
        if error.status < 400:
            raise
        return _error(f"{error.reason}: {error.text or request.path}", error.status)
    except UNREADABLE as error:
        return _error(f"the request could not be read: {error}", 400)


def fallbacks(picker: Picker, first: VersionRoute) -> list[VersionRoute]:
    """The picked version, then the others that take requests, heaviest first."""
    others = sorted(
        (route for route in picker.table.routable if route.version != first.version),
        key=lambda route: -route.weight,
    )
    return [first, *others]


def _error(message: str, status: int, headers: dict[str, str] | None = None) -> web.Response:
    # The protocol's error object, as the serving pods answer.
    return web.Response(
        body=json.dumps({"error": message}).encode(),
        status=status,
        headers=headers,
        content_type="application/json",
    )
