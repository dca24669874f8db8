"""The run state machine (`threadline.domain.run_states`): pure rules, no I/O.

The expected table is written out here on purpose, so that a change to the machine is a
deliberate change to this file too.
"""

from __future__ import annotations

import itertools

import pytest

from threadline.domain.errors import Conflict
from threadline.domain.run_states import (
    ACTIVE_STATUSES,
    TERMINAL_STATUSES,
    RunStatus,
    Transition,
    can_transition,
    cancel_target,
    is_active,
    transition,
)
from threadline.store.schema import ACTIVE_RUN_STATUSES

S = RunStatus

ALLOWED: dict[RunStatus, set[RunStatus]] = {
    S.QUEUED: {S.IN_PROGRESS, S.CANCELLED, S.EXPIRED, S.FAILED},
    S.IN_PROGRESS: {
        S.QUEUED,
        S.REQUIRES_ACTION,
        S.CANCELLING,
        S.COMPLETED,
        S.FAILED,
        S.INCOMPLETE,
        S.EXPIRED,
    },
    S.REQUIRES_ACTION: {S.QUEUED, S.CANCELLED, S.EXPIRED, S.FAILED},
    S.CANCELLING: {S.CANCELLED, S.EXPIRED},
    S.CANCELLED: set(),
    S.FAILED: set(),
    S.COMPLETED: set(),
    S.INCOMPLETE: set(),
    S.EXPIRED: set(),
}

# In a fixed order: every process of a parallel run must collect the same tests.
ALLOWED_PAIRS = [
    (source, target) for source, targets in ALLOWED.items() for target in sorted(targets)
]
FORBIDDEN_PAIRS = [
    (source, target)
    for source, target in itertools.product(RunStatus, RunStatus)
    if target not in ALLOWED[source]
]

STAMP_OF_TARGET: dict[RunStatus, str | None] = {
    S.QUEUED: None,
    S.IN_PROGRESS: "started_at",
    S.REQUIRES_ACTION: None,
    S.CANCELLING: None,
    S.CANCELLED: "cancelled_at",
    S.FAILED: "failed_at",
    S.COMPLETED: "completed_at",
    S.INCOMPLETE: "completed_at",
    S.EXPIRED: None,
}


def test_the_table_covers_every_status() -> None:
    assert set(ALLOWED) == set(RunStatus)
    assert len(ALLOWED_PAIRS) + len(FORBIDDEN_PAIRS) == len(RunStatus) ** 2


def test_statuses_are_the_wire_values() -> None:
    assert [s.value for s in RunStatus] == [
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "incomplete",
        "expired",
    ]


def test_active_and_terminal_split_the_statuses() -> None:
    assert {S.QUEUED, S.IN_PROGRESS, S.REQUIRES_ACTION, S.CANCELLING} == ACTIVE_STATUSES
    assert ACTIVE_STATUSES.isdisjoint(TERMINAL_STATUSES)
    assert set(RunStatus) == ACTIVE_STATUSES | TERMINAL_STATUSES


def test_the_store_index_uses_the_same_active_statuses() -> None:
    """The one-active-run index in the schema must agree with the state machine."""
    assert set(ACTIVE_RUN_STATUSES) == {s.value for s in ACTIVE_STATUSES}


@pytest.mark.parametrize("status", list(RunStatus))
def test_is_active(status: RunStatus) -> None:
    assert is_active(status) is (status in ACTIVE_STATUSES)


@pytest.mark.parametrize("status", sorted(TERMINAL_STATUSES))
def test_terminal_statuses_have_no_way_out(status: RunStatus) -> None:
    assert not any(can_transition(status, target) for target in RunStatus)


@pytest.mark.parametrize(("source", "target"), ALLOWED_PAIRS)
def test_allowed_transition(source: RunStatus, target: RunStatus) -> None:
    assert can_transition(source, target) is True
    move = transition(source, target)
    assert move == Transition(source, target)
    assert move.source is source and move.target is target
    assert move.event == f"thread.run.{target.value}"


@pytest.mark.parametrize(("source", "target"), FORBIDDEN_PAIRS)
def test_forbidden_transition_raises_conflict(source: RunStatus, target: RunStatus) -> None:
    assert can_transition(source, target) is False
    with pytest.raises(Conflict) as raised:
        transition(source, target)
    assert raised.value.param == "status"
    assert raised.value.status_code == 400
    assert f"'{source.value}'" in raised.value.message
    assert f"'{target.value}'" in raised.value.message


@pytest.mark.parametrize("status", list(RunStatus))
def test_no_status_moves_to_itself(status: RunStatus) -> None:
    with pytest.raises(Conflict):
        transition(status, status)


@pytest.mark.parametrize(("source", "target"), ALLOWED_PAIRS)
def test_stamp_of_every_allowed_transition(source: RunStatus, target: RunStatus) -> None:
    assert transition(source, target).stamp == STAMP_OF_TARGET[target]


def test_started_at_is_stamped_only_when_leaving_queued() -> None:
    assert transition(S.QUEUED, S.IN_PROGRESS).stamp == "started_at"
    for source in RunStatus:
        if source is not S.QUEUED:
            assert Transition(source, S.IN_PROGRESS).stamp is None


def test_completed_and_incomplete_both_stamp_completed_at() -> None:
    assert transition(S.IN_PROGRESS, S.COMPLETED).stamp == "completed_at"
    assert transition(S.IN_PROGRESS, S.INCOMPLETE).stamp == "completed_at"


@pytest.mark.parametrize("source", [S.QUEUED, S.IN_PROGRESS, S.REQUIRES_ACTION])
def test_failed_stamps_failed_at(source: RunStatus) -> None:
    assert transition(source, S.FAILED).stamp == "failed_at"


@pytest.mark.parametrize("source", [S.QUEUED, S.REQUIRES_ACTION, S.CANCELLING])
def test_cancelled_stamps_cancelled_at(source: RunStatus) -> None:
    assert transition(source, S.CANCELLED).stamp == "cancelled_at"


@pytest.mark.parametrize("source", [S.QUEUED, S.IN_PROGRESS, S.REQUIRES_ACTION, S.CANCELLING])
def test_expired_stamps_nothing(source: RunStatus) -> None:
    """The run keeps the `expires_at` it was given; there is no `expired_at` on a run."""
    assert transition(source, S.EXPIRED).stamp is None


@pytest.mark.parametrize(
    ("status", "target"),
    [
        (S.QUEUED, S.CANCELLED),
        (S.REQUIRES_ACTION, S.CANCELLED),
        (S.IN_PROGRESS, S.CANCELLING),
    ],
)
def test_cancel_target(status: RunStatus, target: RunStatus) -> None:
    assert cancel_target(status) is target
    assert can_transition(status, target)  # cancelling is itself an allowed move


@pytest.mark.parametrize("status", [S.CANCELLING, *sorted(TERMINAL_STATUSES)])
def test_cancel_target_refuses_runs_that_cannot_be_cancelled(status: RunStatus) -> None:
    with pytest.raises(Conflict) as raised:
        cancel_target(status)
    assert raised.value.param == "run_id"
    assert f"'{status.value}'" in raised.value.message


def test_cancel_target_covers_every_status() -> None:
    cancellable = set()
    for status in RunStatus:
        try:
            cancel_target(status)
        except Conflict:
            continue
        cancellable.add(status)
    assert cancellable == {S.QUEUED, S.REQUIRES_ACTION, S.IN_PROGRESS}
