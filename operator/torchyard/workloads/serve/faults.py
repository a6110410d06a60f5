"""Fault injection, a test hook: TORCHYARD_FAULT_RATE=F answers the fraction F of
inference requests with 500, so that end-to-end tests can watch an unhealthy version be
rolled back; TORCHYARD_FAULT_AFTER_SECONDS=S starts the faults S seconds after the
server started, so that a version can pass its rollout and then regress. Never set them
in production."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

FAULT_RATE_ENV = "TORCHYARD_FAULT_RATE"
FAULT_AFTER_ENV = "TORCHYARD_FAULT_AFTER_SECONDS"


class FaultInjector:
    def __init__(
        self, rate: float, after_s: float = 0.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if not 0.0 <= rate <= 1.0:
            raise ValueError(f"{FAULT_RATE_ENV} must be between 0 and 1, not {rate}")
        self.rate = rate
        self._count = 0
        self._clock = clock
        self._from = clock() + after_s

    def next_fails(self) -> bool:
        """Whether the next request fails. Deterministic, spread evenly: with 0.25 every
        fourth request fails, so a test sees exactly the rate it set."""
        if self.rate == 0.0 or self._clock() < self._from:
            return False
        self._count += 1
        return math.floor(self._count * self.rate) > math.floor((self._count - 1) * self.rate)
