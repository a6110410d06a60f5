"""What the quickstart shows of each object as it changes. Pure.

The quickstart lists the demo's torchyard objects about once a second; each copy is
reduced to a View (what a person follows: phase, message, progress, weight, analysis),
and the difference between two Views of an object is a line of the live log.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class View:
    """One object as a person follows it."""

    kind: str
    name: str
    phase: str | None = None
    message: str | None = None
    progress: str | None = None
    """Training progress, e.g. 120/460 steps, loss 0.21."""
    weight: int | None = None
    """A ModelVersion's share of its model's traffic, in percent."""
    ready: str | None = None
    """A ModelVersion's ready/desired serving pods, e.g. 1/2."""
    analysis: tuple[str, str, str] | None = None
    """A ModelVersion's latest analysis: (time, verdict, figures)."""

    @property
    def ref(self) -> str:
        return f"{self.kind}/{self.name}"


def view(body: Mapping[str, Any]) -> View:
    """The View of a torchyard object as the API returns it."""
    status = body.get("status") or {}
    progress = None
    if body["kind"] == "TrainingJob" and status.get("progress"):
        step = status["progress"]
        progress = f"step {step.get('step')}/{step.get('totalSteps')}"
        if step.get("loss") is not None:
            progress += f", loss {step['loss']:.3f}"
    analysis = None
    result = status.get("analysis") or {}
    if result.get("time") and result.get("verdict"):
        analysis = (result["time"], result["verdict"], analysis_figures(result))
    ready = None
    if body["kind"] == "ModelVersion" and status.get("desiredReplicas") is not None:
        ready = f"{status.get('readyReplicas', 0)}/{status['desiredReplicas']}"
    return View(
        kind=body["kind"],
        name=body["metadata"]["name"],
        phase=status.get("phase"),
        message=_version_message(status)
        if body["kind"] == "ModelVersion"
        else status.get("message"),
        progress=progress,
        weight=status.get("weight"),
        ready=ready,
        analysis=analysis,
    )


def analysis_figures(result: Mapping[str, Any]) -> str:
    """'103 requests, 0.0 % errors, p99 12 ms' from status.analysis."""
    parts = []
    if result.get("requests") is not None:
        parts.append(f"{result['requests']} requests")
    if result.get("errorRate") is not None:
        parts.append(f"{100 * result['errorRate']:.1f} % errors")
    if result.get("p99LatencyMs") is not None:
        parts.append(f"p99 {result['p99LatencyMs']:.0f} ms")
    return ", ".join(parts) or "no figures"


def _version_message(status: Mapping[str, Any]) -> str | None:
    """A ModelVersion in words: its rollout while one is under way, else its readiness."""
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    on_its_way = status.get("phase") in (None, "Pending", "Progressing", "Paused")
    chosen = conditions.get("Progressing" if on_its_way else "Ready") or {}
    return chosen.get("message") or None


def changes(before: View | None, after: View) -> list[str]:
    """Lines for what changed between two Views of one object (the first one: all)."""
    lines = []
    if before is None or before.phase != after.phase:
        said = f": {after.message}" if after.message else ""
        lines.append(f"{after.phase or 'created'}{said}")
    elif after.kind != "ModelVersion" and _news(before.message, after.message):
        lines.append(str(after.message))
    if after.kind == "ModelVersion" and before is not None:
        if after.weight is not None and after.weight != (before.weight or 0):
            lines.append(f"weight {before.weight or 0}% -> {after.weight}%")
        if after.analysis and after.analysis != before.analysis:
            lines.append(f"analysis {after.analysis[1]}: {after.analysis[2]}")
        elif after.phase == before.phase and _news(before.message, after.message):
            lines.append(str(after.message))
    return lines


def _news(before: str | None, after: str | None) -> bool:
    """A message that says something new, not only other numbers (a countdown, a pod
    count): 'holding 50% for 12 s more' after 'holding 50% for 13 s more' is not news."""
    if not after:
        return False
    return re.sub(r"\d+", "#", before or "") != re.sub(r"\d+", "#", after)
