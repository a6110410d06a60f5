"""The serving pods' fault hook (workloads.serve.faults): exactly the rate asked for,
and from the moment asked for, so end-to-end tests can make a version fail on cue."""

from __future__ import annotations

from torchyard.workloads.serve.faults import FaultInjector


def test_the_rate_is_exact_and_spread_evenly():
    faults = FaultInjector(0.25)
    assert [faults.next_fails() for _ in range(8)] == [False, False, False, True] * 2


def test_faults_start_after_the_delay_and_count_from_there():
    now = [100.0]
    faults = FaultInjector(0.5, after_s=30, clock=lambda: now[0])
    assert not any(faults.next_fails() for _ in range(10))
    now[0] = 130.0
    assert [faults.next_fails() for _ in range(4)] == [False, True, False, True]
