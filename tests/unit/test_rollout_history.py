"""The model's rollout history (rollout.history): entries made at outcomes, merged from
every version's copy, each once, newest first, bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from torchyard.plans.rollout.history import HISTORY_LIMIT, entry, merged

T0 = datetime(2026, 12, 4, 9, 0, tzinfo=UTC)


def _entry(version: str, outcome: str, reason: str, at: datetime) -> dict[str, str]:
    return {
        "version": version,
        "outcome": outcome,
        "reason": reason,
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def test_an_outcome_makes_an_entry_from_its_progressing_condition():
    progressing = {"type": "Progressing", "reason": "QualityRegression", "message": "x" * 600}
    made = entry("3", {"phase": "RolledBack", "conditions": [progressing]}, T0)
    assert made is not None
    assert (made["version"], made["outcome"], made["reason"]) == (
        "3",
        "RolledBack",
        "QualityRegression",
    )
    assert made["time"] == "2026-12-04T09:00:00Z"
    assert len(made["message"]) == 512 and made["message"].endswith("...")
    assert entry("3", {"phase": "Progressing"}, T0) is None
    assert entry("3", {"phase": "Superseded"}, T0) is None


def test_copies_of_one_entry_count_once_and_the_newest_come_first():
    promoted = _entry("2", "Serving", "Promoted", T0)
    again = _entry("2", "Serving", "Promoted", T0 + timedelta(seconds=2))  # a replan's
    first = _entry("1", "Serving", "Serving", T0 - timedelta(hours=1))
    history = merged([[promoted, first], [first], []], [again])
    assert history == [again, first]
    # The same outcome and reason much later is another rollout (a version restored twice).
    later = _entry("2", "Serving", "Promoted", T0 + timedelta(hours=2))
    assert merged([[promoted]], [later]) == [later, promoted]


def test_the_history_is_bounded_and_garbage_in_a_status_is_dropped():
    many = [
        _entry(str(i), "RolledBack", "AnalysisFailed", T0 + timedelta(minutes=i)) for i in range(15)
    ]
    history = merged([many], [])
    assert len(history) == HISTORY_LIMIT
    assert [e["version"] for e in history] == [str(i) for i in range(14, 4, -1)]
    garbage = [
        "not an entry",
        {"version": "9", "outcome": "Exploded", "reason": "x", "time": "2026-12-04T09:00:00Z"},
        {"version": "9", "outcome": "Serving", "reason": "x", "time": "yesterday"},
        {"version": 9, "outcome": "Serving", "reason": "x", "time": "2026-12-04T09:00:00Z"},
        {"version": "9", "outcome": "Serving", "reason": "x" * 129, "time": "2026-12-04T09:00:00Z"},
    ]
    assert merged([garbage], []) == []
