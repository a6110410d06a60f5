"""When a container restarts, and how long it waits first. Pure.

The kubelet's rules: `restartPolicy` decides whether (init containers restart only on
failure, and never under `Never`); the first restart is immediate, later ones back off
10s, 20s, 40s... up to 5 minutes; a container that ran for 10 minutes starts over.
"""

from __future__ import annotations

from dataclasses import dataclass


def should_restart(restart_policy: str, exit_code: int, init: bool = False) -> bool:
    if restart_policy == "Never":
        return False
    if init or restart_policy == "OnFailure":
        return exit_code != 0
    return True


@dataclass(frozen=True)
class BackOff:
    initial: float = 10.0
    cap: float = 300.0
    reset_after: float = 600.0

    def next(self, current: float, ran_for: float) -> tuple[float, float]:
        """(seconds to wait before this restart, back-off after it) for a container that
        exited after running `ran_for` seconds, `current` being its back-off so far
        (0 before its first restart)."""
        if ran_for >= self.reset_after:
            current = 0.0
        if current == 0.0:
            return 0.0, self.initial
        return current, min(current * 2, self.cap)


def crash_loop_message(delay: float, container: str, pod: str, namespace: str, uid: str) -> str:
    return (
        f"back-off {_duration(delay)} restarting failed container={container} "
        f"pod={pod}_{namespace}({uid})"
    )


def _duration(seconds: float) -> str:
    """Go's time.Duration spelling, as in the kubelet's messages (10s, 1m20s, 5m0s)."""
    whole = round(seconds)
    if whole < 60:
        return f"{seconds:g}s" if seconds != whole else f"{whole}s"
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s"
