"""Live progress of a training run: rank 0 writes it, the pod's launcher serves it.

Rank 0 replaces a small JSON file (TORCHYARD_PROGRESS_FILE, default
/tmp/torchyard-progress.json, an emptyDir in the pod) atomically at each report:

    {"step": 120, "totalSteps": 500, "epoch": 3, "loss": 0.41,
     "samplesPerSecond": 5321.7, "updateTime": "2026-01-01T12:00:00Z", ...}

and logs the same as one line. How the operator reads it: the launcher process of
replica 0 (the node that holds rank 0) answers `GET /progress` on port
TORCHYARD_PROGRESS_PORT (default 29400; 0 turns it off) with the file's content, 404
before the first report. The operator polls replica 0's pod IP at an interval
(torchyard.controllers.progress); nothing needs exec access to the pod.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from torchyard.storage import write_file_atomic

log = logging.getLogger(__name__)

PROGRESS_FILE_ENV = "TORCHYARD_PROGRESS_FILE"
DEFAULT_PROGRESS_FILE = "/tmp/torchyard-progress.json"
PROGRESS_PORT_ENV = "TORCHYARD_PROGRESS_PORT"
DEFAULT_PROGRESS_PORT = 29400
# Reports per run when steps are many: enough for a smooth curve in status and logs,
# few enough that reporting (one small all-reduce, one file) costs nothing.
REPORTS_PER_RUN = 100


def progress_file() -> Path:
    return Path(os.environ.get(PROGRESS_FILE_ENV, DEFAULT_PROGRESS_FILE))


def progress_port() -> int:
    return int(os.environ.get(PROGRESS_PORT_ENV, str(DEFAULT_PROGRESS_PORT)))


def report_interval(total_steps: int) -> int:
    """Steps between reports."""
    return max(1, -(-total_steps // REPORTS_PER_RUN))


def timestamp(when: float | None = None) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(when))


def write_progress(path: Path, report: dict[str, Any]) -> None:
    write_file_atomic(path, json.dumps({**report, "updateTime": timestamp()}).encode())


class Throughput:
    """Samples per second over the last window and over the whole run."""

    def __init__(self) -> None:
        self.started = self.window_start = time.perf_counter()
        self.samples = self.window_samples = 0

    def add(self, samples: int) -> None:
        self.samples += samples
        self.window_samples += samples

    def window_rate(self) -> float:
        """Rate since the previous call; starts the next window."""
        now = time.perf_counter()
        rate = self.window_samples / max(now - self.window_start, 1e-9)
        self.window_start, self.window_samples = now, 0
        return rate

    def overall_rate(self) -> float:
        return self.samples / max(time.perf_counter() - self.started, 1e-9)


class _Handler(BaseHTTPRequestHandler):
    path_to_serve: Path

    def do_GET(self) -> None:
        if self.path.rstrip("/") not in ("", "/progress"):
            self.send_error(404)
            return
        try:
            body = self.path_to_serve.read_bytes()
        except FileNotFoundError:
            self.send_error(404, "no progress reported yet")
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per poll would drown the training log


def serve_progress(path: Path, port: int) -> ThreadingHTTPServer | None:
    """Serve `path` at GET /progress in a daemon thread; None when off or the port is
    taken (progress is a convenience: training goes on without it)."""
    if port == 0:
        return None
    handler = type("ProgressHandler", (_Handler,), {"path_to_serve": path})
    try:
        server = ThreadingHTTPServer(("", port), handler)
    except OSError as error:
        log.warning("progress is not served on port %d: %s", port, error)
        return None
    threading.Thread(target=server.serve_forever, name="progress", daemon=True).start()
    return server
