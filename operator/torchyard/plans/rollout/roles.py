"""Which of a model's versions serves, which rolls out, which are retired. Pure.

All ModelVersions with the same spec.model form the model's history. At any time:

- the *stable* version serves the traffic the candidate does not get: the newest
  `Serving` one, or, when none serves (it was rolled back or deleted from Git), the
  newest `Superseded` one, which is restored — deleting the newest version rolls back,
  and so does `spec.rollback` on the serving version (it becomes RolledBack). A model
  is never left without a version to serve: with nothing to restore, the serving
  version keeps serving whatever its spec says. When no version has served yet and
  several are on their way, the oldest (the model's first, still deploying) is stable,
  so that a newer one registered moments later rolls out against it;
- the *candidate* is the newest version newer than the stable one that is still on its
  way (no phase yet, Pending, Progressing or Paused); rollout.decide drives it;
- the *previous* version is the stable one's rollback target: the newest Superseded
  version older than it;
- every other live version is *retired*: it runs no pods. An older candidate replaced
  by a newer one mid-rollout is RolledBack (it never served, so it is never restored);
  a version that served becomes Superseded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from torchyard.api.modelversion import ModelVersionPhase, version_key

ON_ITS_WAY = (None, "Pending", "Progressing", "Paused")


@dataclass(frozen=True)
class VersionView:
    """What roles need to know of one ModelVersion."""

    name: str
    """metadata.name of the object."""
    version: str
    phase: ModelVersionPhase | None
    deleting: bool = False
    """metadata.deletionTimestamp is set: the version is leaving (deleted from Git)."""
    rollback: bool = False
    """spec.rollback is set: never serve this version again."""


@dataclass(frozen=True)
class Retirement:
    """A version that runs no pods, and the phase it should show."""

    view: VersionView
    phase: ModelVersionPhase
    reason: str
    """CamelCase reason for the phase (unchanged phases keep their own)."""


@dataclass(frozen=True)
class Roles:
    stable: VersionView | None
    candidate: VersionView | None
    previous: VersionView | None
    retired: tuple[Retirement, ...]


def assign_roles(versions: Sequence[VersionView]) -> Roles:
    """The role of each live version of one model."""
    live = sorted((v for v in versions if not v.deleting), key=lambda v: version_key(v.version))
    serving = [v for v in live if v.phase == "Serving" and not v.rollback]
    superseded = [v for v in live if v.phase == "Superseded"]
    restorable = [v for v in superseded if not v.rollback]
    flagged = [v for v in live if v.phase == "Serving" and v.rollback]
    stable = (serving or restorable or flagged or [None])[-1]
    deploying = [v for v in live if v.phase in ON_ITS_WAY and not v.rollback]
    if stable is None and len(deploying) >= 2:
        # The model's first version, still deploying, is stable as soon as a newer one
        # arrives (Argo Rollouts promotes a first revision at once): the newer one rolls
        # out against it rather than replacing it, however the two were timed.
        stable = deploying[0]
    newer = [
        v
        for v in live
        if v.phase in ON_ITS_WAY
        and (stable is None or version_key(v.version) > version_key(stable.version))
    ]
    candidate = newer[-1] if newer else None
    previous = None
    if stable is not None:
        older = [v for v in restorable if version_key(v.version) < version_key(stable.version)]
        previous = older[-1] if older else None
    retired = tuple(
        _retire(v, stable, candidate) for v in live if v is not stable and v is not candidate
    )
    return Roles(stable=stable, candidate=candidate, previous=previous, retired=retired)


def _retire(
    view: VersionView, stable: VersionView | None, candidate: VersionView | None
) -> Retirement:
    if view.phase in ("Superseded", "RolledBack", "Failed"):
        return Retirement(view, view.phase, view.phase)
    if view.phase == "Serving" and view.rollback:
        return Retirement(view, "RolledBack", "ManualRollback")
    if view.phase == "Serving":
        return Retirement(view, "Superseded", "Superseded")
    # A version still on its way that is not the candidate: a newer one replaced it
    # mid-rollout (it never served), or it is older than the one serving.
    if candidate is not None and version_key(view.version) < version_key(candidate.version):
        return Retirement(view, "RolledBack", "Replaced")
    return Retirement(view, "Superseded", "OlderThanServing")


def retirement_message(
    retired: Retirement, stable: VersionView | None, candidate: VersionView | None
) -> str:
    """Why a version runs no pods, for its Progressing condition and Event."""
    version = retired.view.version
    serving = f"version {stable.version} serves" if stable else "no version serves"
    if retired.reason == "ManualRollback":
        return f"version {version} rolled back by spec.rollback: {serving} again"
    if retired.reason == "Replaced" and candidate is not None:
        return f"version {version} was replaced mid-rollout by version {candidate.version}"
    if retired.reason == "OlderThanServing":
        return f"version {version} is older than the serving one: {serving}, it runs no pods"
    return f"version {version} is {retired.phase.lower()}: {serving}, it runs no pods"
