"""Start and stop times of the local control plane.

Compares, in the same run, an envtest-style plane (etcd + kube-apiserver only) with the
full plane torchyard's tests use (+ kube-controller-manager and kube-scheduler, ready
when the `default` ServiceAccount exists). With --cold it also times a build of the
binaries from the Go module proxy into empty caches (about 10 minutes on 2 cores).

    .venv/bin/python benchmarks/control_plane.py [--runs 3] [--cold]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from torchyard.local.build import ensure_binaries
from torchyard.local.controlplane import ControlPlane


def time_start_stop(controllers: bool, runs: int) -> tuple[list[float], list[float]]:
    binaries = ensure_binaries()
    starts, stops = [], []
    for _ in range(runs):
        cp = ControlPlane(controllers=controllers, binaries=binaries)
        began = time.monotonic()
        cp.start()
        starts.append(time.monotonic() - began)
        began = time.monotonic()
        cp.stop()
        stops.append(time.monotonic() - began)
    return starts, stops


def cold_build() -> float:
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            **os.environ,
            "XDG_CACHE_HOME": f"{scratch}/cache",
            "GOCACHE": f"{scratch}/gocache",
            "GOMODCACHE": f"{scratch}/gomod",
        }
        began = time.monotonic()
        code = "from torchyard.local.build import ensure_binaries; ensure_binaries()"
        subprocess.run([sys.executable, "-c", code], env=env, check=True)
        elapsed = time.monotonic() - began
        # Go writes its module cache read-only; make it removable.
        subprocess.run(["chmod", "-R", "u+w", scratch], check=False)
        return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cold", action="store_true", help="also time a cold build")
    args = parser.parse_args()

    print(f"{'plane':<34}{'start p50 (s)':>14}{'start max':>11}{'stop p50 (s)':>14}")
    for label, controllers in (
        ("baseline: etcd + apiserver", False),
        ("torchyard: + controllers, scheduler", True),
    ):
        starts, stops = time_start_stop(controllers, args.runs)
        print(
            f"{label:<34}{statistics.median(starts):>14.2f}{max(starts):>11.2f}"
            f"{statistics.median(stops):>14.2f}"
        )
    if args.cold:
        print(f"cold build (empty Go caches, modules from the proxy): {cold_build():.0f} s")


if __name__ == "__main__":
    main()
