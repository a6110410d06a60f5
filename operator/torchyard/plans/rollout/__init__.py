"""Progressive rollout of ModelVersions: pure decisions the controller applies.

- analysis: serving pods' metrics -> a window's figures -> Pass, Fail or Inconclusive;
- quality: two versions' answers to a reference request -> a score against minScore;
- replicas: traffic weights approximated by replica ratios;
- steps: the next move of one version (steps, pauses, promotion, rollback);
- roles: which of a model's versions serves, rolls out, or is retired;
- model: all of the above for a model's versions at once (plan_model), what the
  ModelVersion controller applies.

No I/O anywhere: the controller passes in what it read and the time, and applies the
result.
"""

from torchyard.plans.rollout.analysis import (
    VERDICTS,
    Analysis,
    Counters,
    Measurement,
    Scrape,
    Unreadable,
    analyse,
    measure,
    read_counters,
)
from torchyard.plans.rollout.model import (
    ROLLBACK_REASONS,
    ModelObserved,
    ModelPlan,
    VersionObserved,
    VersionPlan,
    Window,
    analysed_of,
    baseline_of,
    candidate_of,
    plan_model,
)
from torchyard.plans.rollout.quality import (
    Compared,
    NotCompared,
    Quality,
    compare,
    output_rows,
    reference_request,
)
from torchyard.plans.rollout.replicas import (
    ReplicaPlan,
    effective_weight,
    replica_plan,
    replicas_for,
)
from torchyard.plans.rollout.roles import (
    Retirement,
    Roles,
    VersionView,
    assign_roles,
    retirement_message,
)
from torchyard.plans.rollout.steps import (
    FINAL_PHASES,
    Observed,
    PodFailure,
    RolloutDecision,
    RolloutState,
    decide,
    step_weight,
)

__all__ = [
    "FINAL_PHASES",
    "ROLLBACK_REASONS",
    "VERDICTS",
    "Analysis",
    "Compared",
    "Counters",
    "Measurement",
    "ModelObserved",
    "ModelPlan",
    "NotCompared",
    "Observed",
    "PodFailure",
    "Quality",
    "ReplicaPlan",
    "Retirement",
    "Roles",
    "RolloutDecision",
    "RolloutState",
    "Scrape",
    "Unreadable",
    "VersionObserved",
    "VersionPlan",
    "VersionView",
    "Window",
    "analyse",
    "analysed_of",
    "assign_roles",
    "baseline_of",
    "candidate_of",
    "compare",
    "decide",
    "effective_weight",
    "measure",
    "output_rows",
    "plan_model",
    "read_counters",
    "reference_request",
    "replica_plan",
    "replicas_for",
    "retirement_message",
    "step_weight",
]
