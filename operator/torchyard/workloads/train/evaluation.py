"""The evaluation set's metrics, epoch by epoch, and the early stop they decide. Pure."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torchyard.api.training import EarlyStopping

# status.evaluation.history keeps the last epochs only (the API caps the list).
HISTORY_KEPT = 100


@dataclass
class EvaluationLog:
    """Every epoch's metrics; `metric` (higher or lower is better) decides."""

    metric: str
    higher_is_better: bool
    history: list[dict[str, Any]] = field(default_factory=list)

    def add(self, epoch: int, step: int, metrics: dict[str, float]) -> None:
        self.history.append({"epoch": epoch, "step": step, "metrics": metrics})

    def _better(self, value: float, best: float | None, min_delta: float) -> bool:
        if best is None:
            return True
        if self.higher_is_better:
            return value > best + min_delta
        return value < best - min_delta

    def _walk(self, min_delta: float) -> tuple[int | None, int]:
        """(best epoch, epochs since an improvement larger than min_delta)."""
        best: float | None = None
        best_epoch: int | None = None
        since = 0
        for entry in self.history:
            value = entry["metrics"].get(self.metric)
            if value is not None and self._better(value, best, min_delta):
                best, best_epoch, since = value, entry["epoch"], 0
            else:
                since += 1
        return best_epoch, since

    def best_epoch(self) -> int | None:
        return self._walk(0.0)[0]

    def should_stop(self, rule: EarlyStopping | None) -> bool:
        """Whether `rule` stops training after the last recorded epoch."""
        if rule is None or not self.history:
            return False
        return self._walk(rule.min_delta)[1] >= rule.patience

    def report(self, stopped_early: bool | None = None) -> dict[str, Any]:
        """status.evaluation."""
        report: dict[str, Any] = {"metric": self.metric, "history": self.history[-HISTORY_KEPT:]}
        best = self.best_epoch()
        if best is not None:
            report["bestEpoch"] = best
        if stopped_early is not None:
            report["stoppedEarly"] = stopped_early
        return report
