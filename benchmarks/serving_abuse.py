"""Serving under abuse: a normal client's latency while oversized, slow, malformed and
flooding clients hit the same server, against the same client without them, in one run;
and the server's memory (RSS) throughout.

The server is a real `torchyard workload serve` process on 127.0.0.1 serving the digits
MLP a TrainingJob writes, at its default limits (docs/serving.md#limits). The normal
client (aiohttp, in this process) sends one valid request at a time, paced at --rate;
each kind of abuser runs in a process of its own:

- oversized: 9 MiB bodies (over the 8 MiB limit), one after another;
- slow headers: a few hundred connections that send one header byte now and then and
  never finish (a slowloris), reopened as the server closes them;
- slow body: connections that declare a 1 MiB body and drip it at 100 bytes/s;
- malformed: random bytes, mutated requests, deep JSON, NaN, booleans as FP32, wrong
  shapes, at concurrency 8;
- flood: 400 concurrent clients (more than the queue's 256) sending valid requests as
  fast as they are answered.

Three phases, each --seconds long: no abuse (the baseline), every abuser but the flood,
and every abuser with the flood. Everything shares the machine's cores, so the figures
include the abusers' own cost.

    .venv/bin/python benchmarks/serving_abuse.py [--seconds 40] [--rate 50]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PATH = "/v2/models/bench/infer"
FEATURES = 64
ABUSERS = ("oversized", "slow_headers", "slow_body", "malformed")


def valid_body() -> bytes:
    row = [random.gauss(0.0, 1.0) for _ in range(FEATURES)]
    tensor = {"name": "input", "shape": [1, FEATURES], "datatype": "FP32", "data": row}
    return json.dumps({"inputs": [tensor]}).encode()


# -- the server ---------------------------------------------------------------------------


class Server:
    """`torchyard workload serve` in its own process; its RSS sampled all along."""

    def __init__(self, scratch: Path) -> None:
        from torchyard.workloads.artifacts import save_artifact
        from torchyard.workloads.models import mlp

        base = {"factory": "torchyard.workloads.models:mlp", "kwargs": {}}
        artifact = save_artifact(f"file://{scratch}/digits", mlp(), base=base)
        spec = {
            "model": "bench",
            "version": "1",
            "artifact": {"uri": artifact.uri, "digest": artifact.digest},
        }
        self.port = free_port()
        env = {
            **os.environ,
            "TORCHYARD_SPEC": json.dumps(spec),
            "TORCHYARD_PORT": str(self.port),
            "TORCHYARD_GRPC_PORT": "0",
            "TORCHYARD_HOST": "127.0.0.1",
            "TORCHYARD_TERMINATION_LOG": str(scratch / "termination-log"),
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "torchyard.cli", "workload", "serve"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self.rss: list[float] = []
        self._sampling = True
        self._wait_ready()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}")
            try:
                url = f"http://127.0.0.1:{self.port}/v2/health/ready"
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.2)
        raise TimeoutError("server not ready")

    def _sample(self) -> None:
        while self._sampling and self.process.poll() is None:
            self.rss.append(rss_mib(self.process.pid))
            time.sleep(0.1)

    def counters(self) -> Any:
        from torchyard.plans.rollout.analysis import Counters

        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=30) as response:
            return Counters.parse(response.read().decode())

    def window(self) -> int:
        return len(self.rss)

    def peak_since(self, start: int) -> float:
        return max(self.rss[start:], default=0.0)

    def stop(self) -> int:
        self._sampling = False
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process (/proc/PID/stat, in clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the normal client --------------------------------------------------------------------


@dataclass
class Normal:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int | str] = field(default_factory=Counter)


async def normal_client(port: int, seconds: float, rate: float) -> Normal:
    import aiohttp

    result = Normal()
    body = valid_body()
    url = f"http://127.0.0.1:{port}{PATH}"
    headers = {"Content-Type": "application/json"}
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        end = time.monotonic() + seconds
        tick = time.monotonic()
        while time.monotonic() < end:
            began = time.perf_counter()
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    result.statuses[response.status] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                result.statuses[type(error).__name__] += 1
            result.latencies.append(time.perf_counter() - began)
            tick += 1.0 / rate
            await asyncio.sleep(max(0.0, tick - time.monotonic()))
    return result


# -- the abusers (each in a process of its own) -------------------------------------------


async def _status_of(reader: asyncio.StreamReader) -> str:
    line = await reader.readline()
    parts = line.split()
    return parts[1].decode() if len(parts) > 1 else "closed"


def _head(length: int | None, extra: str = "") -> bytes:
    size = f"Content-Length: {length}\r\n" if length is not None else ""
    return (
        f"POST {PATH} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        f"{size}{extra}\r\n"
    ).encode()


async def oversized(port: int, stop: float, seen: Counter[str]) -> None:
    chunk = b"0" * (1 << 20)
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(_head(9 << 20))
            for _ in range(9):
                writer.write(chunk)
                await writer.drain()
            seen[await asyncio.wait_for(_status_of(reader), 30)] += 1
            writer.close()
        except (OSError, TimeoutError) as error:
            seen[type(error).__name__] += 1


async def slow_headers(port: int, stop: float, seen: Counter[str], connections: int = 300) -> None:
    async def one() -> None:
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(f"POST {PATH} HTTP/1.1\r\nHost: bench\r\n".encode())
                opened = time.monotonic()
                while time.monotonic() < stop and not reader.at_eof():
                    writer.write(b"X")
                    await writer.drain()
                    try:
                        await asyncio.wait_for(reader.read(1), 0.5)
                    except TimeoutError:
                        continue
                lasted = round(time.monotonic() - opened)
                seen[f"closed by the server after {lasted} s" if reader.at_eof() else "open"] += 1
                writer.close()
            except OSError as error:
                seen[type(error).__name__] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(one() for _ in range(connections)))


async def slow_body(port: int, stop: float, seen: Counter[str], connections: int = 50) -> None:
    async def one() -> None:
        while time.monotonic() < stop:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(_head(1 << 20) + b"[")
                status = asyncio.ensure_future(_status_of(reader))
                while time.monotonic() < stop and not status.done():
                    writer.write(b"0," * 50)  # 100 bytes a second
                    await writer.drain()
                    await asyncio.wait([status], timeout=1.0)
                seen[status.result() if status.done() else "unfinished"] += 1
                status.cancel()
                writer.close()
            except OSError as error:
                seen[type(error).__name__] += 1
                await asyncio.sleep(0.1)

    await asyncio.gather(*(one() for _ in range(connections)))


def _malformed_bodies(rng: random.Random) -> list[bytes]:
    valid = valid_body()
    mutated = bytearray(valid)
    for _ in range(rng.randrange(1, 16)):
        mutated[rng.randrange(len(mutated))] = rng.randrange(256)
    tensor = json.loads(valid)
    booleans = json.dumps({"inputs": [{**tensor["inputs"][0], "data": [True] * FEATURES}]})
    shape = json.dumps({"inputs": [{**tensor["inputs"][0], "shape": [1, 5]}]})
    return [
        bytes(mutated),
        rng.randbytes(rng.randrange(1, 4096)),
        b"[" * 100_000,
        b'{"parameters": ' + b'{"a": ' * 50_000,
        valid.replace(b"[", b"[NaN, ", 1),
        booleans.encode(),
        shape.encode(),
        valid[: len(valid) // 2],
    ]


async def malformed(port: int, stop: float, seen: Counter[str]) -> None:
    import aiohttp

    rng = random.Random(5)
    url = f"http://127.0.0.1:{port}{PATH}"

    async def one(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            for body in _malformed_bodies(rng):
                try:
                    async with session.post(url, data=body) as response:
                        await response.read()
                        seen[str(response.status)] += 1
                except (aiohttp.ClientError, TimeoutError) as error:
                    seen[type(error).__name__] += 1
            # Not HTTP at all.
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(rng.randbytes(512))
                await writer.drain()
                writer.close()
                seen["garbage connection"] += 1
            except OSError as error:
                seen[type(error).__name__] += 1

    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        await asyncio.gather(*(one(session) for _ in range(8)))


async def flood(port: int, stop: float, seen: Counter[str], clients: int = 400) -> None:
    import aiohttp

    body = valid_body()
    url = f"http://127.0.0.1:{port}{PATH}"
    headers = {"Content-Type": "application/json"}

    async def one(session: aiohttp.ClientSession) -> None:
        while time.monotonic() < stop:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    seen[str(response.status)] += 1
            except (aiohttp.ClientError, TimeoutError) as error:
                seen[type(error).__name__] += 1

    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        await asyncio.gather(*(one(session) for _ in range(clients)))


KINDS: dict[str, Callable[[int, float, Counter[str]], Awaitable[None]]] = {
    "oversized": oversized,
    "slow_headers": slow_headers,
    "slow_body": slow_body,
    "malformed": malformed,
    "flood": flood,
}


def _abuser(kind: str, port: int, seconds: float, results: Any) -> None:
    seen: Counter[str] = Counter()
    asyncio.run(KINDS[kind](port, time.monotonic() + seconds, seen))
    results.put((kind, dict(seen)))


# -- a phase, and the report --------------------------------------------------------------


@dataclass
class Phase:
    name: str
    normal: Normal
    peak_rss_mib: float
    abuse: dict[str, dict[str, int]]
    analysed: Any
    """What the rollout analysis reads of the phase (torchyard.plans.rollout.analysis.Counters):
    requests less the client's mistakes, 5xx, and the server's latency histogram."""
    server_cpu: float
    """The server's CPU seconds per second of the phase: well under 1 while its clients
    wait means the machine, not the server's work, set their latency."""

    def cells(self) -> list[str]:
        ordered = sorted(self.normal.latencies)
        p99 = ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))] * 1000
        others = {k: v for k, v in self.normal.statuses.items() if k != 200}
        return [
            self.name,
            str(len(ordered)),
            f"{statistics.median(ordered) * 1000:.1f}",
            f"{p99:.1f}",
            f"{max(ordered) * 1000:.0f}",
            ", ".join(f"{k}: {v}" for k, v in sorted(others.items(), key=str)) or "none",
            f"{self.peak_rss_mib:.0f}",
            f"{self.server_cpu:.2f}",
            *self._analysis(),
        ]

    def _analysis(self) -> list[str]:
        from torchyard.plans.rollout.analysis import quantile

        p99 = quantile(0.99, self.analysed.latency_buckets)
        return [
            f"{self.analysed.requests:.0f}",
            f"{self.analysed.server_errors:.0f}",
            "-" if p99 is None else f"{p99 * 1000:.1f}",
        ]


def run_phase(name: str, server: Server, kinds: tuple[str, ...], args: argparse.Namespace) -> Phase:
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    # The abusers start first and stop last: the normal client never runs alone.
    lead = 3.0 if kinds else 0.0
    abusers = [
        context.Process(target=_abuser, args=(kind, server.port, args.seconds + 2 * lead, results))
        for kind in kinds
    ]
    for process in abusers:
        process.start()
    time.sleep(lead)
    start = server.window()
    before = server.counters()
    cpu, began = cpu_seconds(server.process.pid), time.monotonic()
    normal = asyncio.run(normal_client(server.port, args.seconds, args.rate))
    cpu = (cpu_seconds(server.process.pid) - cpu) / (time.monotonic() - began)
    analysed = server.counters().since(before)
    peak = server.peak_since(start)
    abuse = dict(results.get(timeout=120) for _ in abusers)
    for process in abusers:
        process.join(timeout=60)
    return Phase(name, normal, peak, abuse, analysed, cpu)


def print_table(phases: list[Phase]) -> None:
    header = [
        "phase",
        "requests",
        "p50 ms",
        "p99 ms",
        "max ms",
        "not 200",
        "server RSS MiB",
        "server CPU",
        "analysis: requests",
        "5xx",
        "server p99 ms",
    ]
    cells = [header] + [phase.cells() for phase in phases]
    widths = [max(len(line[i]) for line in cells) for i in range(len(header))]
    for index, line in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    # Longer than the 30 s body timeout: the slow bodies are cut off within a phase.
    parser.add_argument("--seconds", type=float, default=40.0, help="length of each phase")
    parser.add_argument("--rate", type=float, default=50.0, help="normal requests a second")
    args = parser.parse_args()
    import torch

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as directory:
        server = Server(Path(directory))
        idle = server.rss[-1] if server.rss else rss_mib(server.process.pid)
        try:
            phases = [
                run_phase("no abuse", server, (), args),
                run_phase("abuse (no flood)", server, ABUSERS, args),
                run_phase("abuse + flood", server, (*ABUSERS, "flood"), args),
            ]
            alive = server.process.poll() is None
        finally:
            code = server.stop()
    print(
        f"torch {torch.__version__}, {os.cpu_count()} cores; load average {load_before:.1f} "
        f"before, {os.getloadavg()[0]:.1f} after; normal client at {args.rate:g} req/s, "
        f"{args.seconds:g} s a phase; server RSS {idle:.0f} MiB when idle"
    )
    print_table(phases)
    print(
        "(the first columns are the normal client's; 'analysis' is what the rollout analysis "
        "reads from the server's metrics over the same window: requests less the client's "
        "4xx, 5xx, and the server's own p99 from its histogram; server CPU is its CPU "
        "seconds per second)"
    )
    for phase in phases[1:]:
        print(f"\n{phase.name}: what the abusers got")
        for kind, seen in phase.abuse.items():
            counts = ", ".join(f"{k}: {v}" for k, v in sorted(seen.items()))
            print(f"  {kind:13} {counts}")
    print(f"\nserver alive after the abuse: {alive}; exit code after SIGTERM: {code}")


if __name__ == "__main__":
    main()
