"""The progress poller's rate cap."""

from __future__ import annotations

from torchyard.controllers.progress import poll_period


def test_progress_polls_stretch_past_the_rate_cap():
    assert poll_period(running=10, interval=5.0, max_rate=20.0) == 5.0
    assert poll_period(running=100, interval=5.0, max_rate=20.0) == 5.0
    assert poll_period(running=1000, interval=5.0, max_rate=20.0) == 50.0
