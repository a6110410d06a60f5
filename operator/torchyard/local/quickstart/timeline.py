"""What happened during the quickstart, in order: the live log, each object's phases,
the traffic weights of a model's versions and what its clients saw. Pure: the caller
passes the time (seconds since the start) with every observation."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from torchyard.local.quickstart.observe import View, changes

TERMINAL = ("Succeeded", "Failed", "Serving", "Superseded", "RolledBack")


@dataclass(frozen=True)
class Line:
    """One line of the live log."""

    at: float
    ref: str
    text: str


@dataclass(frozen=True)
class Traffic:
    """What the clients saw in one of their report intervals, by answering version."""

    at: float
    counts: dict[str, tuple[int, int]]
    """version -> (answered, failed); 'none' for requests nobody answered."""


@dataclass
class Timeline:
    views: dict[str, View] = field(default_factory=dict)
    lines: list[Line] = field(default_factory=list)
    phases: dict[str, list[tuple[float, str]]] = field(default_factory=dict)
    """Each object's phases with the time it entered them."""
    weights: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    """Each ModelVersion's weight whenever it changed."""
    analyses: list[tuple[float, str, str, str]] = field(default_factory=list)
    """(time, ModelVersion, verdict, figures) of every analysis seen."""
    traffic: list[Traffic] = field(default_factory=list)

    def observe(self, at: float, views: Iterable[View]) -> list[Line]:
        """Record a listing of the objects; return the new lines of the live log."""
        new = []
        for after in views:
            before = self.views.get(after.ref)
            self.views[after.ref] = after
            for text in changes(before, after):
                new.append(Line(at, after.ref, text))
            if before is None or before.phase != after.phase:
                self.phases.setdefault(after.ref, []).append((at, after.phase or "Pending"))
            if after.kind == "ModelVersion" and after.weight is not None:
                series = self.weights.setdefault(after.name, [])
                if not series or series[-1][1] != after.weight:
                    series.append((at, after.weight))
            if after.analysis and (before is None or before.analysis != after.analysis):
                self.analyses.append((at, after.name, after.analysis[1], after.analysis[2]))
        self.lines += new
        return new

    def note(self, at: float, ref: str, text: str) -> Line:
        """A line the quickstart itself says (what it applied, what it waits for)."""
        line = Line(at, ref, text)
        self.lines.append(line)
        return line

    def add_traffic(self, at: float, log_line: str) -> Traffic | None:
        """Record one report line of the traffic client (see workloads.serve.client)."""
        try:
            report = json.loads(log_line)
            counts = {
                str(version): (int(pair[0]), int(pair[1]))
                for version, pair in report["counts"].items()
            }
        except (ValueError, KeyError, TypeError, IndexError):
            return None
        window = Traffic(at, counts)
        self.traffic.append(window)
        return window

    def entered(self, ref: str, phase: str) -> float | None:
        """When the object first entered `phase`, None if it never did."""
        return next((at for at, seen in self.phases.get(ref, []) if seen == phase), None)

    def duration(self, ref: str) -> float | None:
        """From the object's first sight to its first settled phase (terminal or Serving)."""
        seen = self.phases.get(ref) or []
        settled = next((at for at, phase in seen if phase in TERMINAL), None)
        return None if not seen or settled is None else settled - seen[0][0]


def served_share(window: Traffic) -> dict[str, float]:
    """Each version's share of the answered requests in one client interval, in percent."""
    answered = {v: ok for v, (ok, _) in window.counts.items() if v != "none"}
    total = sum(answered.values())
    return {v: 100.0 * ok / total for v, ok in answered.items()} if total else {}


def error_rate(window: Traffic) -> float:
    """Failed (or unanswered) requests of one client interval, in percent of all sent."""
    sent = sum(ok + failed for ok, failed in window.counts.values())
    failed = sum(failed for _, failed in window.counts.values())
    return 100.0 * failed / sent if sent else 0.0
