"""Children created but not yet seen by the watch (expectations)."""

from __future__ import annotations

from torchyard.controllers.children import CreatedChildren


def test_created_children_count_until_the_watch_shows_them():
    created = CreatedChildren(patience=60)
    owner = ("ns", "job")
    pod = {"metadata": {"name": "job-worker-1", "labels": {"torchyard.io/replica": "1"}}}
    watched = [{"metadata": {"name": "job-worker-0", "labels": {}}, "status": {}}]
    created.record(owner, [pod], at=100.0)
    names = [c["metadata"]["name"] for c in created.with_created(owner, watched, at=101.0)]
    assert names == ["job-worker-0", "job-worker-1"]
    seen = [*watched, {"metadata": {"name": "job-worker-1", "labels": {}}, "status": {}}]
    assert created.with_created(owner, seen, at=102.0) == seen  # no double count
    created.record(owner, [pod], at=100.0)
    assert created.with_created(owner, watched, at=161.0) == watched  # never seen: given up
