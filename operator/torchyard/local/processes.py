"""Start and stop the control plane's child processes without leaking any.

Each child runs in its own session (`start_new_session=True`): a Ctrl-C in the terminal
then reaches only Python, which stops the children in order, and a detached control
plane survives the shell that started it. Stopping signals the whole process group, so
anything a component forked goes with it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

_TAIL_LINES = 20


@dataclass
class Child:
    """One running component. `popen` is None when another process started it (detached)."""

    name: str
    pid: int
    exe: str
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def returncode(self) -> int | None:
        """The exit status if the child has exited, else None."""
        if self.popen is not None:
            return self.popen.poll()
        return None if self.is_ours() else -1

    def is_ours(self) -> bool:
        """Whether `pid` still names the process we started and not a recycled pid."""
        if self.popen is not None:
            return self.popen.poll() is None
        try:
            argv0 = Path(f"/proc/{self.pid}/cmdline").read_bytes().split(b"\0", 1)[0]
        except FileNotFoundError:
            return False
        except OSError:  # no /proc (macOS): fall back on the pid alone
            return _pid_alive(self.pid)
        return os.fsdecode(argv0) == self.exe


def spawn(name: str, argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> Child:
    with log.open("ab") as sink:
        # The child keeps its own copy of the log descriptor; ours closes here.
        popen = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    return Child(name=name, pid=popen.pid, exe=str(argv[0]), log=log, popen=popen)


def log_tail(path: Path, lines: int = _TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return f"({path} does not exist)"
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _pid_alive(pid: int) -> bool:
    # Reap it if it is our child: a zombie would otherwise count as alive.
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie whose parent (init in a container) does not reap it is dead to us.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _signal(child: Child, sig: signal.Signals) -> None:
    if not child.is_ours():
        return
    with contextlib.suppress(ProcessLookupError, PermissionError):
        # Our children lead their own process group (start_new_session).
        if os.getpgid(child.pid) == child.pid:
            os.killpg(child.pid, sig)
        else:
            os.kill(child.pid, sig)


def _wait(children: Sequence[Child], deadline: float) -> list[Child]:
    """Wait until the deadline for the children to exit; return those still running."""
    running = list(children)
    while running:
        running = [c for c in running if c.returncode() is None]
        if not running or time.monotonic() >= deadline:
            break
        time.sleep(0.05)
    return running


def stop(children: Sequence[Child], grace: float) -> None:
    """SIGTERM the children together, SIGKILL whoever outlives `grace`, reap them all."""
    # A recorded pid that now names another program is none of our business.
    children = [c for c in children if c.is_ours()]
    for child in children:
        _signal(child, signal.SIGTERM)
    survivors = _wait(children, time.monotonic() + grace)
    for child in survivors:
        _signal(child, signal.SIGKILL)
    _wait(survivors, time.monotonic() + 10)
    for child in children:
        if child.popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.popen.wait(timeout=1)
