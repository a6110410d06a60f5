"""Container logs on the node: where they are, and `torchyard local logs`.

There is no kubelet API for `kubectl logs` to call, so logs are files:
<state>/pods/<namespace>_<pod>_<uid>/containers/<container>/<restart>.log, stdout and
stderr together, one file per run of the container (restart count).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path


class LogsError(Exception):
    pass


def pod_dir(pods_dir: Path, namespace: str, name: str) -> Path:
    """The newest directory of a pod with this name (a re-created pod has a new uid)."""
    found = sorted(
        pods_dir.glob(f"{namespace}_{name}_*"), key=lambda p: p.stat().st_mtime, reverse=True
    )
    found = [p for p in found if p.name.count("_") >= 2 and p.name.split("_")[1] == name]
    if not found:
        raise LogsError(f'pod "{name}" not found in namespace "{namespace}" on this node')
    return found[0]


def containers(pod: Path) -> list[str]:
    base = pod / "containers"
    return sorted(p.name for p in base.iterdir()) if base.is_dir() else []


def instances(pod: Path, container: str) -> list[Path]:
    """Log files of a container, oldest run first."""
    files = (pod / "containers" / container).glob("*.log")
    return sorted(files, key=lambda p: int(p.stem) if p.stem.isdigit() else -1)


def log_file(
    pods_dir: Path, namespace: str, name: str, container: str | None, previous: bool
) -> Path:
    pod = pod_dir(pods_dir, namespace, name)
    names = containers(pod)
    if container is None:
        if len(names) != 1:
            choices = " ".join(names) or "(none has started)"
            raise LogsError(
                f"a container name must be specified for pod {name}, choose one of: [{choices}]"
            )
        container = names[0]
    if container not in names:
        raise LogsError(f"container {container} is not valid for pod {name}")
    runs = instances(pod, container)
    wanted = runs[-2:-1] if previous else runs[-1:]
    if not wanted:
        what = "previous terminated" if previous else "any"
        raise LogsError(f'{what} container "{container}" in pod "{name}" not found')
    return wanted[0]


def show(path: Path, follow: bool = False, out: object = None) -> None:
    sink = out or sys.stdout.buffer
    with path.open("rb") as f:
        while True:
            chunk = f.read(65536)
            if chunk:
                sink.write(chunk)  # type: ignore[attr-defined]
                continue
            if not follow:
                return
            sink.flush()  # type: ignore[attr-defined]
            time.sleep(0.2)
