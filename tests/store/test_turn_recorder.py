"""What a worker writes while a run's reply streams, on the real store.

The delta interval: the first piece of text goes out once the event loop is free; later
text waits for the interval and goes out as one delta; what waits when the model's stream
ends goes with the turn's last transaction (a reply that arrived whole, all of it); and a
turn that ends otherwise (failed, cancelled) writes nothing more.

The lease: a worker that stalled past its lease (an overloaded event loop, a long pause)
while another worker took the run over writes nothing more to it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol, TypeVar

import pytest

from tests.store.started_runs import claim_and_start, queue_a_run
from threadline.domain.records import Obj, RunEvent
from threadline.domain.run_states import RunStatus
from threadline.engine.recorder import TurnRecorder
from threadline.engine.superseded import Superseded
from threadline.service.objects import text_part
from threadline.service.run_status import change_status, emit
from threadline.store.sql_store import SqlStore

OWNER = "worker-a"
T = TypeVar("T")


class Runner(Protocol):
    """The `run` fixture: drives a coroutine to completion on the test's event loop."""

    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


async def _started_run(store: SqlStore) -> Obj:
    await queue_a_run(store)
    return await _claim(store, OWNER)


async def _claim(store: SqlStore, owner: str) -> Obj:
    """Claim and start the queued run, leased until epoch second 100 (long lapsed)."""
    return await claim_and_start(store, owner, 100.0)


async def _taken_over(store: SqlStore, by: str) -> Obj:
    """The sweeper finds the lease lapsed and hands the run back; `by` claims it."""
    async with store.transaction() as tx:
        (lapsed,) = await tx.runs_with_lapsed_lease(1_000.0, 10)
        await change_status(tx, lapsed, RunStatus.QUEUED)
    return await _claim(store, by)


async def _deltas(store: SqlStore, run_id: str) -> list[str]:
    async with store.transaction() as tx:
        events = await tx.events_after(run_id, 0, 100)
    return [e.data["content"][0]["text"] for e in events if e.event == "thread.message.delta"]


async def _written(store: SqlStore, run_id: str, count: int) -> list[str]:
    """The run's deltas once there are `count` of them, however late a loaded machine makes
    the recorder's write."""
    for _ in range(1000):
        written = await _deltas(store, run_id)
        if len(written) >= count:
            return written
        await asyncio.sleep(0.01)
    return written


def test_text_within_the_interval_goes_out_as_one_delta_when_it_has_passed(
    store: SqlStore, run: Runner
) -> None:
    async def scenario() -> list[str]:
        started = await _started_run(store)
        recorder = TurnRecorder(store, started, OWNER, delta_interval=0.05)
        await recorder.add_text("one")
        await _written(store, started["id"], 1)
        await recorder.add_text(" two")
        await recorder.add_text(" three")
        return await _written(store, started["id"], 2)

    assert run(scenario()) == ["one", " two three"]


def test_text_that_arrives_before_the_loop_is_free_goes_out_with_the_first(
    store: SqlStore, run: Runner
) -> None:
    async def scenario() -> list[str]:
        started = await _started_run(store)
        recorder = TurnRecorder(store, started, OWNER, delta_interval=60.0)
        await recorder.add_text("one")
        await recorder.add_text(" two")
        return await _written(store, started["id"], 1)

    assert run(scenario()) == ["one two"]


def test_a_reply_that_arrives_whole_is_written_by_the_last_transaction_alone(
    store: SqlStore, run: Runner
) -> None:
    """The model's stream ends before the loop is free: no write of its own for the first
    text, which goes with the turn's last transaction, message and all. The announcement
    shows the message as it was announced, empty and in progress, though it is appended
    after the message completed: a client adds the deltas to it."""

    async def scenario() -> tuple[bool, list[RunEvent], Obj | None]:
        started = await _started_run(store)
        recorder = TurnRecorder(store, started, OWNER, delta_interval=0.05)
        await recorder.add_text("one")
        await recorder.add_text(" two")
        await recorder.settle()
        nothing_yet = recorder.message is None and await _deltas(store, started["id"]) == []
        async with store.transaction() as tx:
            closing = recorder.closing_events()
            await recorder.complete_message(
                tx,
                {"status": "completed", "content": [text_part(recorder.text)]},
                {"status": "completed"},
            )
            await emit(tx, started, *closing)
        await asyncio.sleep(0.2)  # past the interval: a timer left running would write now
        async with store.transaction() as tx:
            stored = await tx.get_message(started["thread_id"], recorder.message["id"])
            events = await tx.events_after(started["id"], 0, 100)
        return nothing_yet, events, stored

    nothing_yet, events, stored = run(scenario())

    written = [(e.event, e.data.get("status"), e.data.get("content")) for e in events]
    assert nothing_yet
    assert written[-5:] == [
        ("thread.run.step.created", "in_progress", None),
        ("thread.run.step.in_progress", "in_progress", None),
        ("thread.message.created", "in_progress", []),
        ("thread.message.in_progress", "in_progress", []),
        ("thread.message.delta", None, [{"index": 0, "type": "text", "text": "one two"}]),
    ]
    assert events[-1].data["content"][0]["text"] == "one two"
    assert stored is not None and stored["status"] == "completed"


def test_text_waiting_when_the_stream_ends_goes_with_the_last_transaction(
    store: SqlStore, run: Runner
) -> None:
    async def scenario() -> tuple[list[str], list[str]]:
        started = await _started_run(store)
        recorder = TurnRecorder(store, started, OWNER, delta_interval=60.0)
        await recorder.add_text("one")
        await _written(store, started["id"], 1)
        await recorder.add_text(" two")
        waiting = await _deltas(store, started["id"])
        await recorder.settle()
        async with store.transaction() as tx:
            closing = recorder.closing_events()
            await recorder.complete_message(tx, {"status": "completed"}, {"status": "completed"})
            await emit(tx, started, *closing)
        return waiting, await _deltas(store, started["id"])

    waiting, written = run(scenario())

    assert waiting == ["one"]
    assert written == ["one", " two"]


def test_a_discarded_turn_writes_the_waiting_text_never(store: SqlStore, run: Runner) -> None:
    async def scenario() -> list[str]:
        started = await _started_run(store)
        recorder = TurnRecorder(store, started, OWNER, delta_interval=0.05)
        await recorder.add_text("one")
        await _written(store, started["id"], 1)
        await recorder.add_text(" two")
        recorder.discard()
        await asyncio.sleep(0.3)  # past the interval: a timer left running would write now
        return await _deltas(store, started["id"])

    assert run(scenario()) == ["one"]


def test_a_worker_that_lost_its_lease_writes_nothing_more(store: SqlStore, run: Runner) -> None:
    ours = run(_started_run(store))
    stale = TurnRecorder(store, ours, OWNER)
    run(stale.add_text("Hel"))
    theirs = run(_taken_over(store, by="worker-b"))

    with pytest.raises(Superseded):
        run(stale.add_text("lo"))

    async def settle_as(owner: str) -> Obj | None:
        async with store.transaction() as tx:
            return await change_status(tx, theirs, RunStatus.COMPLETED, lease_owner=owner)

    assert run(settle_as(OWNER)) is None
    assert run(settle_as("worker-b")) is not None
    assert run(_deltas(store, ours["id"])) == ["Hel"]
