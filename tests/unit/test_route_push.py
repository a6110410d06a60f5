"""Pushing routing tables to a real router (torchyard.router, in this process) the way
the controller does (torchyard.controllers.routes): each pod is sent a table once, a
restarted container again, a wrong token or a pod not listening is tried again."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web

from torchyard.controllers import podhttp, routes
from torchyard.controllers.scrape import LIMITS
from torchyard.router.proxy import Router
from torchyard.router.table import RouteTable, VersionRoute

TOKEN = "t0ken"


def _table(generation: int, weight: int) -> RouteTable:
    return RouteTable(
        generation,
        (
            VersionRoute("2", weight, ("10.0.0.2:8080",)),
            VersionRoute("1", 100 - weight, ("10.0.0.1:8080",)),
        ),
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pod(uid: str, restarts: int = 0) -> dict:
    return {"metadata": {"uid": uid}, "status": {"containerStatuses": [{"restartCount": restarts}]}}


def test_a_restarted_container_is_a_new_pod_to_push_to():
    assert routes.pod_key(_pod("u")) == "u/0"
    assert routes.pod_key(_pod("u", 2)) == "u/2"
    assert routes.pod_key({"metadata": {"uid": "u"}, "status": {}}) == "u/0"


@pytest.mark.asyncio
async def test_each_router_pod_takes_a_table_once_and_a_new_one_when_it_changes():
    router = Router("digits", TOKEN)
    runner = web.AppRunner(router.application())
    await runner.setup()
    port = _free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    pushed = routes.Pushed()
    model = ("ns", "digits")
    try:
        async with podhttp.session(LIMITS, 4) as session:
            pods = [("u/0", "127.0.0.1")]
            held = await pushed.sync(session, model, pods, _table(1, 25), TOKEN, port)
            assert held == ({"u/0"}, {"u/0"})
            assert router.table == _table(1, 25)
            # The same routes (a newer generation only): not sent again.
            router.table = None
            held = await pushed.sync(session, model, pods, _table(2, 25), TOKEN, port)
            assert held == ({"u/0"}, {"u/0"})
            assert router.table is None
            # Its container restarted (a new key): sent again.
            restarted = [("u/1", "127.0.0.1")]
            held = await pushed.sync(session, model, restarted, _table(3, 25), TOKEN, port)
            assert held == ({"u/1"}, {"u/1"}) and router.table == _table(3, 25)
            # A refused push (a wrong token here): the pod keeps the older table it took.
            held = await pushed.sync(session, model, restarted, _table(4, 50), "wrong", port)
            assert held == (set(), {"u/1"}) and router.table == _table(3, 25)
            # ... and is sent the new one on the next try.
            held = await pushed.sync(session, model, restarted, _table(4, 50), TOKEN, port)
            assert held == ({"u/1"}, {"u/1"}) and router.table == _table(4, 50)
            # Nothing listening: not held, tried again next time.
            gone = [("v/0", "127.0.0.1")]
            free = _free_port()
            assert await pushed.sync(session, model, gone, _table(5, 50), TOKEN, free) == (
                set(),
                set(),
            )
    finally:
        await runner.cleanup()
