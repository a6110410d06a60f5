"""The operator client's HTTP transport: aiohttp under lightkube's httpx client.

lightkube (URLs, auth, kubeconfig, errors) stays; only the connection layer changes.
With a hundred requests in flight, httpx's own pool and its TLS on anyio cost about
40 % of the operator's CPU (a py-spy profile during 500 TrainingJobs,
docs/performance.md); aiohttp's pool and the event loop's TLS (uvloop's, in C) cost a
fraction of that. kopf already watches and posts Events through aiohttp.
"""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import httpx2
from yarl import URL

# aiohttp's exceptions, as the httpx ones callers of an httpx client expect.
_ERRORS: list[tuple[type[Exception], type[httpx2.TransportError]]] = [
    (aiohttp.ServerTimeoutError, httpx2.ReadTimeout),
    (aiohttp.ClientConnectorError, httpx2.ConnectError),
    (aiohttp.ServerDisconnectedError, httpx2.RemoteProtocolError),
    (aiohttp.ClientPayloadError, httpx2.ReadError),
    (aiohttp.ClientError, httpx2.NetworkError),
    (asyncio.TimeoutError, httpx2.TimeoutException),
]


def client_timeout(timeout: dict[str, float | None] | None) -> aiohttp.ClientTimeout:
    """httpx's per-request timeout (connect, read, write, pool) as aiohttp's."""
    timeout = timeout or {}
    return aiohttp.ClientTimeout(
        total=None,
        connect=timeout.get("pool"),
        sock_connect=timeout.get("connect"),
        sock_read=timeout.get("read"),
    )


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx requests through one aiohttp session (created in the running loop)."""

    def __init__(self, ssl_context: ssl.SSLContext | None, max_connections: int = 100) -> None:
        self._ssl = ssl_context
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                ssl=self._ssl if self._ssl is not None else True,  # verify by default
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw]
        try:
            async with self._open().request(
                request.method,
                URL(str(request.url), encoded=True),
                headers=headers,
                data=body or None,
                timeout=client_timeout(request.extensions.get("timeout")),
                allow_redirects=False,
            ) as response:
                content = await response.read()
                # aiohttp decoded the body: the httpx response must not decode it again.
                response_headers = [
                    (k, v)
                    for k, v in response.headers.items()
                    if k.lower() not in ("content-encoding", "transfer-encoding")
                ]
                return httpx2.Response(
                    response.status,
                    headers=response_headers,
                    content=content,
                    request=request,
                )
        except Exception as error:
            raise _as_httpx(error, request) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _as_httpx(error: Exception, request: httpx2.Request) -> Exception:
    for source, target in _ERRORS:
        if isinstance(error, source):
            return target(str(error) or type(error).__name__, request=request)
    return error
