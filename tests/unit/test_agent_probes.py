"""Probe specs, thresholds, and the HTTP/TCP checks against a real local server."""

from __future__ import annotations

import asyncio
import http.server
import threading

import pytest

from torchyard.local.agent.probes import (
    Probe,
    ProbeTracker,
    check_http,
    check_tcp,
    exec_argv,
    parse_probe,
)

CONTAINER = {"ports": [{"name": "http", "containerPort": 8080}]}


def test_parse_applies_api_defaults_and_named_ports():
    probe = parse_probe({"httpGet": {"path": "/ready", "port": "http"}}, CONTAINER)
    assert probe == Probe(kind="http", port=8080, path="/ready")
    assert (probe.period, probe.timeout, probe.failure_threshold, probe.success_threshold) == (
        10,
        1,
        3,
        1,
    )
    tcp = parse_probe(
        {"tcpSocket": {"port": 9000}, "periodSeconds": 2, "initialDelaySeconds": 5}, CONTAINER
    )
    assert (tcp.kind, tcp.port, tcp.period, tcp.initial_delay) == ("tcp", 9000, 2, 5)
    assert parse_probe({"exec": {"command": ["true"]}}, CONTAINER).command == ("true",)
    assert parse_probe(None, CONTAINER) is None


def test_readiness_flips_after_success_threshold_and_back_after_failure_threshold():
    tracker = ProbeTracker(
        Probe(kind="tcp", success_threshold=2, failure_threshold=3), initial=False
    )
    assert not tracker.record(True)
    assert tracker.record(True) and tracker.result
    assert not tracker.record(False) and not tracker.record(False)
    assert tracker.record(False) and not tracker.result


def test_liveness_starts_alive_and_a_success_resets_the_failure_count():
    tracker = ProbeTracker(Probe(kind="tcp", failure_threshold=2), initial=True)
    tracker.record(False)
    tracker.record(True)
    assert not tracker.record(False)
    assert tracker.record(False) and not tracker.result


def test_exec_probes_enter_the_container_as_its_user():
    argv = exec_argv(1234, 65532, 65532, "/work", ["cat", "/tmp/healthy"])
    assert argv[:2] == ["nsenter", "--target=1234"]
    assert "--setuid=65532" in argv and "--wdns=/work" in argv
    # into the pod's own PID and IPC namespaces too (nsenter forks for --pid)
    assert "--pid" in argv and "--ipc" in argv
    assert argv[-3:] == ["--", "cat", "/tmp/healthy"]


@pytest.fixture
def server():
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/ok" else 503)
            self.end_headers()

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd.server_address[1]
    httpd.shutdown()


def test_http_and_tcp_checks(server):
    ok = asyncio.run(check_http(Probe(kind="http", port=server, path="/ok"), "127.0.0.1"))
    bad = asyncio.run(check_http(Probe(kind="http", port=server, path="/no"), "127.0.0.1"))
    assert ok.ok and not bad.ok and "503" in bad.detail
    assert asyncio.run(check_tcp(Probe(kind="tcp", port=server), "127.0.0.1")).ok
    refused = asyncio.run(check_tcp(Probe(kind="tcp", port=1), "127.0.0.1"))
    assert not refused.ok and "refused" in refused.detail
