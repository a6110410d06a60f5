"""A steady client of a model's Open Inference Protocol endpoint, counting answers by the
version that gave them (the X-Model-Version header); for smoke traffic during a rollout.

    torchyard workload client http://digits-model.ml.svc/v2/models/digits \
        [--stop-file FILE] [--seconds N] [--requests N] [--interval 0.02] [--report-every 5]
        [--times] [--output FILE]

Sends one small request after another until the stop file exists, --seconds pass,
--requests inference requests were sent, or it is terminated, then writes
{version: [answered, failed]} as JSON; a request nobody answered (refused, reset, timed
out) counts under "none". With --report-every it also prints, every so many seconds, one
JSON line of what happened in that interval: {"time": unix seconds, "counts": {version:
[answered, failed]}} (a load generator's log that shows traffic shifting between
versions). With --times the JSON is {"counts": ..., "seen": {version: [first, last]}}: when
each version first and last answered, in unix seconds (how long a rolled-back version
kept answering), and "unanswered": the time and error of the first 10 requests no
version answered. Standard library only.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from torchyard.oip import VERSION_HEADER

NOBODY = "none"
MAX_UNANSWERED = 10


def call(
    url: str, body: Any = None, timeout: float = 10.0, headers: dict[str, str] | None = None
) -> tuple[int, str | None, bytes]:
    """(status, answering version, body) of one request; OSError if nobody answered."""
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="GET" if body is None else "POST",
        headers={"Content-Type": "application/json", **(headers or {})},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.headers.get(VERSION_HEADER), response.read()
    except urllib.error.HTTPError as error:
        try:
            said = error.read(4096)  # the error's body: the router's or server's reason
        except OSError:
            said = b""
        return error.code, error.headers.get(VERSION_HEADER), said


def request_body(metadata: dict[str, Any]) -> dict[str, Any]:
    """One row of the model's first input, from its metadata."""
    first = metadata["inputs"][0]
    features = list(first["shape"][1:])
    count = math.prod(features)
    return {
        "inputs": [
            {
                "name": first["name"],
                "datatype": first["datatype"],
                "shape": [1, *features],
                "data": [0.5] * count,
            }
        ]
    }


def run(
    model_url: str,
    stop_file: str | None,
    seconds: float | None,
    interval: float,
    report_every: float | None = None,
    requests: int | None = None,
    seen: dict[str, list[float]] | None = None,
    unanswered: list[dict[str, Any]] | None = None,
) -> dict[str, list[int]]:
    """The answers counted by version; `seen`, when given, gets each version's first and
    last answer time (unix seconds), and `unanswered` what went wrong with the first
    requests no version answered (time and error)."""
    deadline = None if seconds is None else time.monotonic() + seconds
    terminated = False

    def on_term(signum: int, frame: Any) -> None:
        nonlocal terminated
        terminated = True

    if report_every is not None:  # the long-running form: a pod's main process
        signal.signal(signal.SIGTERM, on_term)

    counts: dict[str, list[int]] = {}

    def stopped() -> bool:
        return (
            terminated
            or bool(stop_file and os.path.exists(stop_file))
            or (deadline is not None and time.monotonic() >= deadline)
            or (requests is not None and sum(map(sum, counts.values())) >= requests)
        )

    metadata = None
    while metadata is None and not stopped():
        try:
            status, _, raw = call(model_url)
            metadata = json.loads(raw) if status == 200 else None
        except OSError:
            pass
        if metadata is None:
            time.sleep(0.5)
    if metadata is None:
        return counts
    body = request_body(metadata)
    window: dict[str, list[int]] = {}
    reported = time.monotonic()
    while not stopped():
        try:
            status, version, answer = call(f"{model_url}/infer", body)
            said = f"HTTP {status}: " + answer[:120].decode(errors="replace")
        except OSError as failure:
            status, version, said = 0, None, f"{type(failure).__name__}: {failure}"
        if version is None and unanswered is not None and len(unanswered) < MAX_UNANSWERED:
            unanswered.append({"time": round(time.time(), 3), "error": said[:160]})
        counts.setdefault(version or NOBODY, [0, 0])[status != 200] += 1
        if seen is not None:
            answered = time.time()
            seen.setdefault(version or NOBODY, [answered, answered])[1] = answered
        window.setdefault(version or NOBODY, [0, 0])[status != 200] += 1
        if report_every is not None and time.monotonic() - reported >= report_every:
            print(json.dumps({"time": round(time.time(), 3), "counts": window}), flush=True)
            window, reported = {}, time.monotonic()
        time.sleep(interval)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model_url", help="http://<service>/v2/models/<model>")
    parser.add_argument("--stop-file", help="stop once this file exists")
    parser.add_argument("--seconds", type=float, help="stop after this long")
    parser.add_argument("--requests", type=int, help="stop after this many inference requests")
    parser.add_argument("--interval", type=float, default=0.02, help="pause between requests")
    parser.add_argument(
        "--report-every",
        type=float,
        help="print a JSON line of each interval's counts this often (seconds); "
        "without --stop-file or --seconds the client then runs until terminated",
    )
    parser.add_argument(
        "--times", action="store_true", help="also each version's first and last answer time"
    )
    parser.add_argument("--output", default="-", help="where the counts go (- for stdout)")
    args = parser.parse_args(argv)
    ends = (args.stop_file, args.seconds, args.requests, args.report_every)
    if all(end is None for end in ends):
        parser.error("give --stop-file, --seconds, --requests or --report-every")
    if args.requests is not None and args.requests < 1:
        parser.error("--requests must be at least 1")
    print(f"sending requests to {args.model_url}", file=sys.stderr, flush=True)
    seen: dict[str, list[float]] | None = {} if args.times else None
    unanswered: list[dict[str, Any]] = []
    counted = run(
        args.model_url,
        args.stop_file,
        args.seconds,
        args.interval,
        args.report_every,
        args.requests,
        seen,
        unanswered,
    )
    timed = {"counts": counted, "seen": seen, "unanswered": unanswered}
    counts = json.dumps(counted if seen is None else timed)
    if args.output == "-":
        print(counts)
    else:
        with open(args.output, "w") as out:
            out.write(counts)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
