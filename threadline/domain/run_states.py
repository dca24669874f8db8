"""The run state machine: the one place that knows which status may follow which.

Every status change in the store goes through `transition`, which also says which
timestamp field the change stamps, so that `started_at`, `completed_at`, ... can never
disagree with `status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from threadline.domain.errors import Conflict


class RunStatus(StrEnum):
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    COMPLETED = "completed"
    INCOMPLETE = "incomplete"
    EXPIRED = "expired"


ACTIVE_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.QUEUED, RunStatus.IN_PROGRESS, RunStatus.REQUIRES_ACTION, RunStatus.CANCELLING}
)
TERMINAL_STATUSES: frozenset[RunStatus] = frozenset(
    {
        RunStatus.CANCELLED,
        RunStatus.FAILED,
        RunStatus.COMPLETED,
        RunStatus.INCOMPLETE,
        RunStatus.EXPIRED,
    }
)

_ALLOWED: dict[RunStatus, frozenset[RunStatus]] = {
    RunStatus.QUEUED: frozenset(
        {RunStatus.IN_PROGRESS, RunStatus.CANCELLED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.IN_PROGRESS: frozenset(
        {
            RunStatus.QUEUED,  # handed back by a worker that stopped or lost its lease
            RunStatus.REQUIRES_ACTION,
            RunStatus.CANCELLING,
            RunStatus.COMPLETED,
            RunStatus.FAILED,
            RunStatus.INCOMPLETE,
            RunStatus.EXPIRED,
        }
    ),
    RunStatus.REQUIRES_ACTION: frozenset(
        {RunStatus.QUEUED, RunStatus.CANCELLED, RunStatus.EXPIRED, RunStatus.FAILED}
    ),
    RunStatus.CANCELLING: frozenset({RunStatus.CANCELLED, RunStatus.EXPIRED}),
}

_STAMPS: dict[RunStatus, str] = {
    RunStatus.IN_PROGRESS: "started_at",
    RunStatus.COMPLETED: "completed_at",
    RunStatus.FAILED: "failed_at",
    RunStatus.CANCELLED: "cancelled_at",
    RunStatus.INCOMPLETE: "completed_at",
}


@dataclass(frozen=True)
class Transition:
    source: RunStatus
    target: RunStatus

    @property
    def stamp(self) -> str | None:
        """The run field set to the time of this change, if any (`started_at` only once)."""
        if self.target is RunStatus.IN_PROGRESS and self.source is not RunStatus.QUEUED:
            return None
        return _STAMPS.get(self.target)

    @property
    def event(self) -> str:
        return f"thread.run.{self.target.value}"


def can_transition(source: RunStatus, target: RunStatus) -> bool:
    return target in _ALLOWED.get(source, frozenset())


def transition(source: RunStatus, target: RunStatus) -> Transition:
    if not can_transition(source, target):
        raise Conflict(
            f"Cannot move a run from status '{source.value}' to '{target.value}'.",
            param="status",
        )
    return Transition(source, target)


def is_active(status: RunStatus) -> bool:
    return status in ACTIVE_STATUSES


def cancel_target(status: RunStatus) -> RunStatus:
    """Where `cancel` takes a run: straight to `cancelled` when no worker holds it."""
    if status in (RunStatus.QUEUED, RunStatus.REQUIRES_ACTION):
        return RunStatus.CANCELLED
    if status is RunStatus.IN_PROGRESS:
        return RunStatus.CANCELLING
    raise Conflict(f"Cannot cancel run with status '{status.value}'.", param="run_id")
