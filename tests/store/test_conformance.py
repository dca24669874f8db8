"""The Store conformance suite: every backend must pass every test here.

Each test gets an empty, migrated store (`store`, parametrised over SQLite and PostgreSQL)
and a `run` that drives a coroutine on the test's own event loop.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Coroutine
from functools import partial
from typing import Any, Protocol, TypeVar

import pytest

from threadline.domain.errors import Conflict, InvalidRequest
from threadline.domain.ids import IdKind, new_id
from threadline.domain.keys import ApiKey, digest, new_key_id
from threadline.domain.records import Obj, PageRequest, RunEvent
from threadline.store.sql_store import SqlStore, SqlTx

T = TypeVar("T")
PROJECT = "proj_a"
OTHER_PROJECT = "proj_b"


class Runner(Protocol):
    """The `run` fixture: drives a coroutine to completion on the test's event loop."""

    def __call__(self, coroutine: Coroutine[Any, Any, T], /) -> T: ...


async def within(store: SqlStore, op: Callable[[SqlTx], Awaitable[T]]) -> T:
    """Run one operation in a transaction of its own."""
    async with store.transaction() as tx:
        return await op(tx)


# -- objects -------------------------------------------------------------------------------


def assistant(name: str = "helper") -> Obj:
    return {"id": new_id(IdKind.ASSISTANT), "name": name, "tools": []}


def thread() -> Obj:
    return {"id": new_id(IdKind.THREAD), "metadata": {}}


def message(thread_id: str, text: str = "hi", run_id: str | None = None) -> Obj:
    return {
        "id": new_id(IdKind.MESSAGE),
        "thread_id": thread_id,
        "run_id": run_id,
        "role": "user",
        "content": [{"type": "text", "text": text, "annotations": []}],
    }


def run_obj(thread_id: str, status: str = "queued", expires_at: int | None = None) -> Obj:
    return {
        "id": new_id(IdKind.RUN),
        "thread_id": thread_id,
        "status": status,
        "expires_at": expires_at,
    }


def step(run: Obj, status: str = "in_progress") -> Obj:
    return {
        "id": new_id(IdKind.STEP),
        "run_id": run["id"],
        "thread_id": run["thread_id"],
        "status": status,
    }


def ids(objects: list[Obj]) -> list[str]:
    return [o["id"] for o in objects]


def new_thread(store: SqlStore, run: Runner, project: str = PROJECT) -> Obj:
    created = thread()
    run(within(store, lambda tx: tx.insert_thread(project, created)))
    return created


def new_runs(store: SqlStore, run: Runner, count: int, **fields: Any) -> list[Obj]:
    """`count` runs, each on a thread of its own, inserted in order (oldest first)."""
    made = [run_obj(new_thread(store, run)["id"], **fields) for _ in range(count)]

    async def insert(tx: SqlTx) -> None:
        for created in made:
            await tx.insert_run(PROJECT, created)

    run(within(store, insert))
    return made


def claim(store: SqlStore, run: Runner, owner: str, lease_until: float) -> Obj | None:
    claimed = run(within(store, lambda tx: tx.claim_next_runs(owner, lease_until, 1)))
    assert len(claimed) <= 1
    return claimed[0] if claimed else None


# -- assistants ----------------------------------------------------------------------------


def test_assistant_insert_get_update_delete(store: SqlStore, run: Runner) -> None:
    created = assistant()
    run(within(store, lambda tx: tx.insert_assistant(PROJECT, created)))
    assert run(within(store, lambda tx: tx.get_assistant(PROJECT, created["id"]))) == created

    changes = {"name": "renamed", "metadata": {"k": "v"}}
    renamed = {**created, **changes}
    updated = run(within(store, lambda tx: tx.update_assistant(PROJECT, created["id"], changes)))
    assert updated == renamed
    assert run(within(store, lambda tx: tx.get_assistant(PROJECT, created["id"]))) == renamed

    assert run(within(store, lambda tx: tx.delete_assistant(PROJECT, created["id"]))) is True
    assert run(within(store, lambda tx: tx.get_assistant(PROJECT, created["id"]))) is None
    assert run(within(store, lambda tx: tx.delete_assistant(PROJECT, created["id"]))) is False


@pytest.mark.parametrize(
    "value",
    [
        {"maximum": 10**30, "minimum": -(10**25), "edge": 2**64 - 1, "low": -(2**63)},
        {"description": 'a text that holds the separator ": and ", too'},
        {"text": "naïve café, 日本語, emoji 🧵", "escaped": 'line\nbreak\ttab "quoted"'},
        {"float": 0.1, "tiny": 5e-324, "negative": -2.5, "nested": [[{}], []]},
    ],
    ids=["integers-beyond-64-bits", "separator-in-a-string", "unicode", "floats-and-nesting"],
)
def test_a_body_reads_back_exactly_as_written(store: SqlStore, run: Runner, value: Obj) -> None:
    created = {**assistant(), "tools": [{"type": "function", "function": {"parameters": value}}]}
    run(within(store, lambda tx: tx.insert_assistant(PROJECT, created)))
    read = run(within(store, lambda tx: tx.get_assistant(PROJECT, created["id"])))
    assert read == created
    # An integer read back as a float may compare equal; written out, it differs.
    assert json.dumps(read, sort_keys=True) == json.dumps(created, sort_keys=True)


def test_assistants_are_scoped_to_their_project(store: SqlStore, run: Runner) -> None:
    created = assistant()
    run(within(store, lambda tx: tx.insert_assistant(PROJECT, created)))

    assert run(within(store, lambda tx: tx.get_assistant(OTHER_PROJECT, created["id"]))) is None
    hijack = {"name": "hijacked"}
    assert (
        run(within(store, lambda tx: tx.update_assistant(OTHER_PROJECT, created["id"], hijack)))
        is None
    )
    assert run(within(store, lambda tx: tx.delete_assistant(OTHER_PROJECT, created["id"]))) is False
    page = run(within(store, lambda tx: tx.page_assistants(OTHER_PROJECT, PageRequest())))
    assert page.data == [] and page.has_more is False

    assert run(within(store, lambda tx: tx.get_assistant(PROJECT, created["id"]))) == created


def test_page_assistants_newest_first_by_default(store: SqlStore, run: Runner) -> None:
    made = [assistant(f"a{i}") for i in range(3)]

    async def insert(tx: SqlTx) -> None:
        for a in made:
            await tx.insert_assistant(PROJECT, a)

    run(within(store, insert))
    run(within(store, lambda tx: tx.insert_assistant(OTHER_PROJECT, assistant("elsewhere"))))

    page = run(within(store, lambda tx: tx.page_assistants(PROJECT, PageRequest(limit=2))))
    assert ids(page.data) == ids(made[::-1][:2]) and page.has_more is True
    rest = PageRequest(limit=2, after=made[1]["id"])
    page = run(within(store, lambda tx: tx.page_assistants(PROJECT, rest)))
    assert ids(page.data) == [made[0]["id"]] and page.has_more is False


# -- threads -------------------------------------------------------------------------------


def test_page_threads_within_a_project(store: SqlStore, run: Runner) -> None:
    made = [thread() for _ in range(3)]

    async def insert(tx: SqlTx) -> None:
        for t in made:
            await tx.insert_thread(PROJECT, t)
        await tx.insert_thread(OTHER_PROJECT, thread())

    run(within(store, insert))

    page = run(within(store, lambda tx: tx.page_threads(PROJECT, PageRequest(limit=2))))
    assert ids(page.data) == ids(made[::-1][:2]) and page.has_more is True
    rest = PageRequest(limit=2, order="asc", after=made[0]["id"])
    page = run(within(store, lambda tx: tx.page_threads(PROJECT, rest)))
    assert ids(page.data) == ids(made[1:]) and page.has_more is False
    with pytest.raises(InvalidRequest):
        elsewhere = PageRequest(after=made[0]["id"])
        run(within(store, lambda tx: tx.page_threads(OTHER_PROJECT, elsewhere)))


def test_thread_insert_get_lock_update_delete(store: SqlStore, run: Runner) -> None:
    created = new_thread(store, run)
    tid = created["id"]
    assert run(within(store, lambda tx: tx.get_thread(PROJECT, tid))) == created
    assert run(within(store, lambda tx: tx.lock_thread(PROJECT, tid))) == created

    changed = {**created, "metadata": {"topic": "tests"}}
    written = run(
        within(store, lambda tx: tx.update_thread(PROJECT, tid, {"metadata": {"topic": "tests"}}))
    )
    assert written == changed
    assert run(within(store, lambda tx: tx.get_thread(PROJECT, tid))) == changed

    assert run(within(store, lambda tx: tx.delete_thread(PROJECT, tid))) is True
    assert run(within(store, lambda tx: tx.get_thread(PROJECT, tid))) is None
    assert run(within(store, lambda tx: tx.delete_thread(PROJECT, tid))) is False


def test_threads_are_scoped_to_their_project(store: SqlStore, run: Runner) -> None:
    created = new_thread(store, run)
    tid = created["id"]
    assert run(within(store, lambda tx: tx.get_thread(OTHER_PROJECT, tid))) is None
    assert run(within(store, lambda tx: tx.lock_thread(OTHER_PROJECT, tid))) is None
    hijack = {"metadata": {"owner": "someone else"}}
    assert run(within(store, lambda tx: tx.update_thread(OTHER_PROJECT, tid, hijack))) is None
    assert run(within(store, lambda tx: tx.delete_thread(OTHER_PROJECT, tid))) is False
    assert run(within(store, lambda tx: tx.get_thread(PROJECT, tid))) == created


def _fill_thread(store: SqlStore, run: Runner) -> tuple[Obj, Obj, list[Obj], Obj, int]:
    """A thread with two messages, a completed run with a step, and two events."""
    t = new_thread(store, run)
    r = run_obj(t["id"], status="completed")
    msgs = [message(t["id"]), message(t["id"], run_id=r["id"])]
    s = step(r, status="completed")

    async def fill(tx: SqlTx) -> int:
        await tx.insert_messages(t["id"], msgs)
        await tx.insert_run(PROJECT, r)
        await tx.insert_step(s)
        events = [RunEvent("thread.run.created", r), RunEvent("thread.run.completed", r)]
        return await tx.append_events(r["id"], t["id"], events)

    last_seq = run(within(store, fill))
    return t, r, msgs, s, last_seq


def test_delete_thread_removes_its_messages_runs_steps_and_events(
    store: SqlStore, run: Runner
) -> None:
    doomed, doomed_run, doomed_msgs, doomed_step, _ = _fill_thread(store, run)
    kept, kept_run, kept_msgs, kept_step, kept_seq = _fill_thread(store, run)

    assert run(within(store, lambda tx: tx.delete_thread(PROJECT, doomed["id"]))) is True

    async def check_doomed(tx: SqlTx) -> None:
        tid, rid = doomed["id"], doomed_run["id"]
        for m in doomed_msgs:
            assert await tx.get_message(tid, m["id"]) is None
        assert (await tx.page_messages(tid, PageRequest())).data == []
        assert await tx.newest_messages(tid, 10) == []
        assert await tx.count_messages(tid) == 0
        assert await tx.get_run_by_id(rid) is None
        assert (await tx.page_runs(tid, PageRequest())).data == []
        assert await tx.get_step(rid, doomed_step["id"]) is None
        assert await tx.steps_of_run(rid) == []
        assert await tx.events_after(rid, 0, 100) == []

    async def check_kept(tx: SqlTx) -> None:
        tid, rid = kept["id"], kept_run["id"]
        assert ids((await tx.page_messages(tid, PageRequest(order="asc"))).data) == ids(kept_msgs)
        assert await tx.count_messages(tid) == 2
        assert await tx.get_run(tid, rid) == kept_run
        assert await tx.steps_of_run(rid) == [kept_step]
        events = await tx.events_after(rid, 0, 100)
        assert [e.event for e in events] == ["thread.run.created", "thread.run.completed"]
        assert events[-1].seq == kept_seq

    run(within(store, check_doomed))
    run(within(store, check_kept))


# -- messages ------------------------------------------------------------------------------


def _thread_with_messages(store: SqlStore, run: Runner, count: int) -> tuple[str, list[Obj]]:
    tid = new_thread(store, run)["id"]
    msgs = [message(tid, f"m{i}") for i in range(count)]
    run(within(store, lambda tx: tx.insert_messages(tid, msgs)))
    return tid, msgs


def test_message_insert_get_update(store: SqlStore, run: Runner) -> None:
    tid, (first, second) = _thread_with_messages(store, run, 2)
    assert run(within(store, lambda tx: tx.get_message(tid, first["id"]))) == first
    other_tid = new_thread(store, run)["id"]
    assert run(within(store, lambda tx: tx.get_message(other_tid, first["id"]))) is None

    edited = {**first, "metadata": {"edited": "yes"}}
    change = {"metadata": {"edited": "yes"}}
    assert run(within(store, lambda tx: tx.update_message(other_tid, first["id"], change))) is None
    assert run(within(store, lambda tx: tx.update_message(tid, first["id"], change))) == edited
    assert run(within(store, lambda tx: tx.get_message(tid, first["id"]))) == edited
    assert run(within(store, lambda tx: tx.get_message(tid, second["id"]))) == second


@pytest.mark.parametrize(
    ("request_", "expected", "has_more"),
    [
        (PageRequest(limit=2, order="asc"), [0, 1], True),
        (PageRequest(limit=2, order="asc", after="m1"), [2, 3], True),
        (PageRequest(limit=2, order="asc", after="m3"), [4], False),
        (PageRequest(limit=2, order="asc", after="m4"), [], False),
        (PageRequest(limit=2, order="asc", before="m3"), [1, 2], True),
        (PageRequest(limit=2, order="asc", before="m2"), [0, 1], False),
        (PageRequest(limit=5, order="asc"), [0, 1, 2, 3, 4], False),
        (PageRequest(limit=2, order="desc"), [4, 3], True),
        (PageRequest(limit=2, order="desc", after="m3"), [2, 1], True),
        (PageRequest(limit=2, order="desc", after="m1"), [0], False),
        (PageRequest(limit=2, order="desc", before="m1"), [3, 2], True),
        (PageRequest(limit=2, order="desc", before="m2"), [4, 3], False),
        (PageRequest(limit=10, order="asc", after="m0", before="m4"), [1, 2, 3], False),
        (PageRequest(limit=2, order="asc", after="m0", before="m4"), [1, 2], True),
        (PageRequest(limit=10, order="desc", after="m4", before="m0"), [3, 2, 1], False),
    ],
)
def test_page_messages_cursors_are_exact(
    store: SqlStore, run: Runner, request_: PageRequest, expected: list[int], has_more: bool
) -> None:
    tid, msgs = _thread_with_messages(store, run, 5)
    new_thread_id, _ = _thread_with_messages(store, run, 3)  # never appears in tid's pages
    assert new_thread_id != tid
    by_name = {f"m{i}": m["id"] for i, m in enumerate(msgs)}
    page_request = PageRequest(
        limit=request_.limit,
        order=request_.order,
        after=by_name[request_.after] if request_.after else None,
        before=by_name[request_.before] if request_.before else None,
    )
    page = run(within(store, lambda tx: tx.page_messages(tid, page_request)))
    assert ids(page.data) == [msgs[i]["id"] for i in expected]
    assert page.data == [msgs[i] for i in expected]
    assert page.has_more is has_more


def test_page_messages_rejects_a_cursor_from_elsewhere(store: SqlStore, run: Runner) -> None:
    tid, _ = _thread_with_messages(store, run, 2)
    _, foreign = _thread_with_messages(store, run, 1)
    for page_request in (
        PageRequest(after=foreign[0]["id"]),
        PageRequest(before=foreign[0]["id"]),
        PageRequest(after="msg_missing"),
    ):
        with pytest.raises(InvalidRequest):
            run(within(store, partial(SqlTx.page_messages, thread_id=tid, page=page_request)))


def test_page_messages_filters_by_run(store: SqlStore, run: Runner) -> None:
    tid = new_thread(store, run)["id"]
    run_a, run_b = new_id(IdKind.RUN), new_id(IdKind.RUN)
    msgs = [
        message(tid, "user"),
        message(tid, "a1", run_id=run_a),
        message(tid, "b1", run_id=run_b),
        message(tid, "a2", run_id=run_a),
    ]
    run(within(store, lambda tx: tx.insert_messages(tid, msgs)))

    asc = PageRequest(order="asc")
    page = run(within(store, lambda tx: tx.page_messages(tid, asc, run_id=run_a)))
    assert ids(page.data) == [msgs[1]["id"], msgs[3]["id"]] and page.has_more is False
    after = PageRequest(order="asc", after=msgs[1]["id"])
    page = run(within(store, lambda tx: tx.page_messages(tid, after, run_id=run_a)))
    assert ids(page.data) == [msgs[3]["id"]]
    page = run(within(store, lambda tx: tx.page_messages(tid, asc, run_id=run_b)))
    assert ids(page.data) == [msgs[2]["id"]]
    page = run(within(store, lambda tx: tx.page_messages(tid, asc)))
    assert ids(page.data) == ids(msgs)


def test_newest_messages_walks_back_in_windows(store: SqlStore, run: Runner) -> None:
    tid, msgs = _thread_with_messages(store, run, 5)
    _thread_with_messages(store, run, 2)

    window = run(within(store, lambda tx: tx.newest_messages(tid, 2)))
    assert [body for _, body in window] == [msgs[4], msgs[3]]
    assert window[0][0] > window[1][0]

    oldest_seq = window[-1][0]
    window = run(within(store, lambda tx: tx.newest_messages(tid, 2, before_seq=oldest_seq)))
    assert [body for _, body in window] == [msgs[2], msgs[1]]
    assert window[-1][0] < oldest_seq

    oldest_seq = window[-1][0]
    window = run(within(store, lambda tx: tx.newest_messages(tid, 2, before_seq=oldest_seq)))
    assert [body for _, body in window] == [msgs[0]]
    window = run(within(store, lambda tx: tx.newest_messages(tid, 2, before_seq=window[0][0])))
    assert window == []

    everything = run(within(store, lambda tx: tx.newest_messages(tid, 100)))
    seqs = [seq for seq, _ in everything]
    assert seqs == sorted(seqs, reverse=True) and len(set(seqs)) == 5


def test_count_messages_follows_inserts_and_deletes(store: SqlStore, run: Runner) -> None:
    tid, msgs = _thread_with_messages(store, run, 5)
    other_tid, _ = _thread_with_messages(store, run, 3)

    def count(thread_id: str = tid) -> int:
        return run(within(store, lambda tx: tx.count_messages(thread_id)))

    assert count() == 5
    assert run(within(store, lambda tx: tx.delete_message(tid, msgs[2]["id"]))) is True
    assert count() == 4
    assert run(within(store, lambda tx: tx.delete_message(tid, msgs[2]["id"]))) is False
    assert run(within(store, lambda tx: tx.delete_message(other_tid, msgs[3]["id"]))) is False
    assert run(within(store, lambda tx: tx.insert_messages(tid, []))) is None
    assert count() == 4
    run(within(store, lambda tx: tx.insert_messages(tid, [message(tid), message(tid)])))
    assert count() == 6
    assert count(other_tid) == 3
    assert run(within(store, lambda tx: tx.get_message(tid, msgs[2]["id"]))) is None
    page = run(within(store, lambda tx: tx.page_messages(tid, PageRequest(limit=100))))
    assert len(page.data) == 6 and msgs[2]["id"] not in ids(page.data)


def test_a_thread_inserted_with_its_first_messages_counts_them(
    store: SqlStore, run: Runner
) -> None:
    created = thread()
    first = [message(created["id"], f"m{i}") for i in range(3)]
    run(within(store, lambda tx: tx.insert_thread(PROJECT, created, first)))
    run(within(store, lambda tx: tx.insert_messages(created["id"], [message(created["id"])])))

    async def check(tx: SqlTx) -> None:
        assert await tx.count_messages(created["id"]) == 4
        page = await tx.page_messages(created["id"], PageRequest(limit=3, order="asc"))
        assert page.data == first

    run(within(store, check))


# -- runs ----------------------------------------------------------------------------------


def test_run_insert_and_get(store: SqlStore, run: Runner) -> None:
    t = new_thread(store, run)
    r = run_obj(t["id"], expires_at=1_000)
    run(within(store, lambda tx: tx.insert_run(PROJECT, r)))

    other = new_thread(store, run)["id"]

    async def check(tx: SqlTx) -> None:
        assert await tx.get_run(t["id"], r["id"]) == r
        assert await tx.get_run(other, r["id"]) is None
        assert await tx.get_run_by_id(r["id"]) == r
        assert await tx.get_run_by_id("run_missing") is None
        assert await tx.active_run(t["id"]) == r
        assert await tx.active_run(other) is None

    run(within(store, check))


def test_second_active_run_conflicts_and_changes_nothing(store: SqlStore, run: Runner) -> None:
    tid = new_thread(store, run)["id"]
    first = run_obj(tid)
    run(within(store, lambda tx: tx.insert_run(PROJECT, first)))

    second = run_obj(tid, status="queued")
    note = message(tid, "written in the same transaction as the refused run")

    async def refused(tx: SqlTx) -> None:
        await tx.insert_messages(tid, [note])
        await tx.insert_run(PROJECT, second)

    with pytest.raises(Conflict):
        run(within(store, refused))

    async def check(tx: SqlTx) -> None:
        assert await tx.get_run_by_id(second["id"]) is None
        assert await tx.active_run(tid) == first
        assert ids((await tx.page_runs(tid, PageRequest())).data) == [first["id"]]
        assert await tx.get_message(tid, note["id"]) is None
        assert await tx.count_messages(tid) == 0

    run(within(store, check))


def test_a_thread_created_with_its_run_admits_no_second(store: SqlStore, run: Runner) -> None:
    created = thread()
    first = run_obj(created["id"])

    async def thread_and_run(tx: SqlTx) -> None:
        await tx.insert_thread(PROJECT, created)
        await tx.insert_run(PROJECT, first)

    run(within(store, thread_and_run))
    with pytest.raises(Conflict):
        run(within(store, lambda tx: tx.insert_run(PROJECT, run_obj(created["id"]))))

    refused = thread()

    async def two_runs(tx: SqlTx) -> None:
        await tx.insert_thread(PROJECT, refused)
        await tx.insert_run(PROJECT, run_obj(refused["id"]))
        await tx.insert_run(PROJECT, run_obj(refused["id"]))

    with pytest.raises(Conflict):
        run(within(store, two_runs))

    async def check(tx: SqlTx) -> None:
        assert await tx.active_run(created["id"]) == first
        assert await tx.get_thread(PROJECT, refused["id"]) is None

    run(within(store, check))


@pytest.mark.parametrize("active", ["queued", "in_progress", "requires_action", "cancelling"])
def test_every_active_status_blocks_a_second_run(store: SqlStore, run: Runner, active: str) -> None:
    tid = new_thread(store, run)["id"]
    run(within(store, lambda tx: tx.insert_run(PROJECT, run_obj(tid, status=active))))
    with pytest.raises(Conflict):
        run(within(store, lambda tx: tx.insert_run(PROJECT, run_obj(tid))))


def test_a_finished_run_makes_room_for_the_next(store: SqlStore, run: Runner) -> None:
    tid = new_thread(store, run)["id"]
    first = run_obj(tid)
    run(within(store, lambda tx: tx.insert_run(PROJECT, first)))
    done = {**first, "status": "completed", "completed_at": 123}
    change = {"status": "completed", "completed_at": 123}
    assert run(within(store, lambda tx: tx.update_run(first["id"], change))) == done
    assert run(within(store, lambda tx: tx.active_run(tid))) is None

    second = run_obj(tid)
    run(within(store, lambda tx: tx.insert_run(PROJECT, second)))
    assert run(within(store, lambda tx: tx.active_run(tid))) == second
    page = run(within(store, lambda tx: tx.page_runs(tid, PageRequest(order="asc"))))
    assert page.data == [done, second]


def test_concurrent_run_inserts_on_one_thread_admit_exactly_one(
    store: SqlStore, run: Runner
) -> None:
    tid = new_thread(store, run)["id"]
    candidates = [run_obj(tid) for _ in range(4)]

    async def attempt(candidate: Obj) -> bool:
        try:
            await within(store, lambda tx: tx.insert_run(PROJECT, candidate))
        except Conflict:
            return False
        return True

    async def race() -> list[bool]:
        return await asyncio.gather(*(attempt(c) for c in candidates))

    outcomes = run(race())
    assert outcomes.count(True) == 1
    winner = candidates[outcomes.index(True)]
    assert run(within(store, lambda tx: tx.active_run(tid))) == winner
    assert ids(run(within(store, lambda tx: tx.page_runs(tid, PageRequest()))).data) == [
        winner["id"]
    ]


def test_update_run_with_expected_status_writes_only_on_match(store: SqlStore, run: Runner) -> None:
    tid = new_thread(store, run)["id"]
    queued = run_obj(tid)
    rid = queued["id"]
    run(within(store, lambda tx: tx.insert_run(PROJECT, queued)))

    start = {"status": "in_progress", "started_at": 10}
    started = {**queued, **start}
    stale = run(within(store, lambda tx: tx.update_run(rid, start, expected_status="in_progress")))
    assert stale is None
    assert run(within(store, lambda tx: tx.get_run_by_id(rid))) == queued

    ok = run(within(store, lambda tx: tx.update_run(rid, start, expected_status="queued")))
    assert ok == started
    assert run(within(store, lambda tx: tx.get_run_by_id(rid))) == started
    cancel = {"status": "cancelling"}
    lost = run(within(store, lambda tx: tx.update_run(rid, cancel, expected_status="queued")))
    assert lost is None
    assert run(within(store, lambda tx: tx.get_run_by_id(rid))) == started
    assert run(within(store, lambda tx: tx.update_run("run_none", {"metadata": {}}))) is None


def test_update_run_writes_only_its_fields(store: SqlStore, run: Runner) -> None:
    """A worker finishing a run from the copy it claimed keeps the metadata its user set
    meanwhile, and null is a value like any other."""
    (queued,) = new_runs(store, run, 1)
    rid = queued["id"]
    claimed = claim(store, run, "worker-a", 100.0)
    assert claimed == queued
    tagged = run(within(store, lambda tx: tx.update_run(rid, {"metadata": {"ticket": "42"}})))
    assert tagged == {**queued, "metadata": {"ticket": "42"}}

    finish = {"status": "completed", "completed_at": 7, "pending_tool_calls": None, "usage": None}
    done = run(
        within(
            store,
            lambda tx: tx.update_run(rid, finish, expected_status="queued", lease_owner="worker-a"),
        )
    )

    assert done == {**queued, **finish, "metadata": {"ticket": "42"}}
    assert "pending_tool_calls" in done and done["pending_tool_calls"] is None
    assert run(within(store, lambda tx: tx.get_run_by_id(rid))) == done


def test_update_run_with_lease_owner_writes_only_for_the_lease_holder(
    store: SqlStore, run: Runner
) -> None:
    (queued,) = new_runs(store, run, 1)
    assert claim(store, run, "worker-a", 100.0) == queued
    start = {"status": "in_progress"}
    started = {**queued, **start}
    rid = queued["id"]

    assert run(within(store, lambda tx: tx.holds_lease(rid, "worker-a"))) is True
    assert run(within(store, lambda tx: tx.holds_lease(rid, "worker-b"))) is False
    other = run(within(store, lambda tx: tx.update_run(rid, start, lease_owner="worker-b")))
    assert other is None
    assert run(within(store, lambda tx: tx.get_run_by_id(queued["id"]))) == queued

    holder = run(within(store, lambda tx: tx.update_run(rid, start, lease_owner="worker-a")))
    assert holder == started
    assert run(within(store, lambda tx: tx.get_run_by_id(queued["id"]))) == started


def test_claim_next_runs_takes_queued_runs_oldest_first(store: SqlStore, run: Runner) -> None:
    waiting = new_runs(store, run, 3)
    new_runs(store, run, 1, status="requires_action")
    new_runs(store, run, 1, status="in_progress")

    claimed = [claim(store, run, f"worker-{i}", 100.0) for i in range(3)]
    assert claimed == waiting
    assert claim(store, run, "worker-9", 100.0) is None


def test_claim_next_runs_takes_up_to_the_limit_oldest_first_and_leases_each(
    store: SqlStore, run: Runner
) -> None:
    waiting = new_runs(store, run, 3)

    claimed = run(within(store, lambda tx: tx.claim_next_runs("worker-a", 100.0, 2)))

    assert claimed == waiting[:2]
    assert claim(store, run, "worker-b", 100.0) == waiting[2]
    lapsed = run(within(store, lambda tx: tx.runs_with_lapsed_lease(150.0, 10)))
    assert lapsed == waiting


def test_claim_next_runs_skips_a_leased_run_even_when_its_lease_lapsed(
    store: SqlStore, run: Runner
) -> None:
    (only,) = new_runs(store, run, 1)
    assert claim(store, run, "worker-a", 50.0) == only
    assert claim(store, run, "worker-b", 100.0) is None
    # A lapsed lease is the sweeper's to clear; until then nobody else takes the run.
    lapsed = run(within(store, lambda tx: tx.runs_with_lapsed_lease(75.0, 10)))
    assert lapsed == [only]
    assert claim(store, run, "worker-b", 100.0) == only


def test_renew_leases_only_for_the_owner(store: SqlStore, run: Runner) -> None:
    first, second = new_runs(store, run, 2)
    assert claim(store, run, "worker-a", 100.0) == first
    assert claim(store, run, "worker-b", 100.0) == second

    ours = [first["id"], second["id"]]
    run(within(store, lambda tx: tx.renew_leases("worker-a", ours, 200.0)))
    run(within(store, lambda tx: tx.renew_leases("worker-a", [], 999.0)))

    lapsed = run(within(store, lambda tx: tx.runs_with_lapsed_lease(150.0, 10)))
    assert lapsed == [second]  # worker-b's lease was not renewed by worker-a
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(250.0, 10))) == [first]


def test_release_run_only_by_the_owner(store: SqlStore, run: Runner) -> None:
    (only,) = new_runs(store, run, 1)
    assert claim(store, run, "worker-a", 100.0) == only

    run(within(store, lambda tx: tx.release_run(only["id"], "worker-b")))
    assert claim(store, run, "worker-b", 100.0) is None

    run(within(store, lambda tx: tx.release_run(only["id"], "worker-a")))
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(1_000.0, 10))) == []
    assert claim(store, run, "worker-b", 100.0) == only


def test_runs_with_lapsed_lease_clears_the_lease(store: SqlStore, run: Runner) -> None:
    early, late, later = new_runs(store, run, 3)
    new_runs(store, run, 1)  # never claimed: no lease to lapse
    assert claim(store, run, "w", 100.0) == early
    assert claim(store, run, "w", 300.0) == late
    assert claim(store, run, "w", 110.0) == later

    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(100.0, 10))) == []
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(200.0, 1))) == [early]
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(200.0, 10))) == [later]
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(200.0, 10))) == []
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(400.0, 10))) == [late]
    # Their leases are gone, so they are claimable again, oldest first.
    assert claim(store, run, "w2", 500.0) == early


def test_update_run_out_of_the_worker_clears_the_lease(store: SqlStore, run: Runner) -> None:
    waiting, finished = new_runs(store, run, 2)
    assert claim(store, run, "w", 100.0) == waiting
    assert claim(store, run, "w", 100.0) == finished

    run(within(store, lambda tx: tx.update_run(waiting["id"], {"status": "requires_action"})))
    run(within(store, lambda tx: tx.update_run(finished["id"], {"status": "completed"})))
    assert run(within(store, lambda tx: tx.runs_with_lapsed_lease(1_000.0, 10))) == []


def test_runs_past_expiry(store: SqlStore, run: Runner) -> None:
    soon = new_runs(store, run, 1, expires_at=100)[0]
    never = new_runs(store, run, 1)[0]
    later = new_runs(store, run, 1, status="requires_action", expires_at=200)[0]
    new_runs(store, run, 1, status="completed", expires_at=50)  # finished: never expires

    assert never["expires_at"] is None
    assert run(within(store, lambda tx: tx.runs_past_expiry(99, 10))) == []
    assert run(within(store, lambda tx: tx.runs_past_expiry(150, 10))) == [soon]
    assert run(within(store, lambda tx: tx.runs_past_expiry(200, 10))) == [soon, later]
    assert run(within(store, lambda tx: tx.runs_past_expiry(10_000, 1))) == [soon]


def test_runs_in_status(store: SqlStore, run: Runner) -> None:
    queued = new_runs(store, run, 2)
    progressing = new_runs(store, run, 1, status="in_progress")
    every = ids(queued + progressing)

    found = run(within(store, lambda tx: tx.runs_in_status(every, "queued")))
    assert sorted(found) == sorted(ids(queued))
    found = run(within(store, lambda tx: tx.runs_in_status([*every, "run_none"], "in_progress")))
    assert found == ids(progressing)
    assert run(within(store, lambda tx: tx.runs_in_status(every, "cancelled"))) == []
    assert run(within(store, lambda tx: tx.runs_in_status([], "queued"))) == []


@pytest.mark.parametrize("batch", [1, 3])
def test_concurrent_claimers_never_share_a_run(store: SqlStore, run: Runner, batch: int) -> None:
    waiting = new_runs(store, run, 8)

    async def claimer(owner: str) -> list[str]:
        mine: list[str] = []
        while True:
            got = await within(store, lambda tx: tx.claim_next_runs(owner, 100.0, batch))
            if not got:
                return mine
            mine += [claimed["id"] for claimed in got]

    async def race() -> list[list[str]]:
        return await asyncio.gather(*(claimer(f"worker-{i}") for i in range(4)))

    claimed = [run_id for mine in run(race()) for run_id in mine]
    assert sorted(claimed) == sorted(ids(waiting))  # each run exactly once


def test_a_run_locked_by_an_open_claim_is_skipped(store: SqlStore, run: Runner) -> None:
    """Two claims in overlapping transactions: the second skips the row the first holds."""
    if not store.supports_many_workers:
        pytest.skip("SQLite serialises transactions on one connection: one claimer at a time")
    first, second = new_runs(store, run, 2)
    a_claimed = asyncio.Event()
    b_claimed = asyncio.Event()

    async def claim_a() -> Obj | None:
        async with store.transaction() as tx:
            (got,) = await tx.claim_next_runs("worker-a", 100.0, 1)
            a_claimed.set()
            await b_claimed.wait()  # hold the row lock until B has claimed too
            return got

    async def claim_b() -> Obj | None:
        await a_claimed.wait()
        try:
            async with store.transaction() as tx:
                # Waiting on A's row lock would hang (A waits for B): fail fast instead.
                await tx.db.execute_sql("SET LOCAL lock_timeout = '5s'")
                return next(iter(await tx.claim_next_runs("worker-b", 100.0, 1)), None)
        finally:
            b_claimed.set()

    async def race() -> tuple[Obj | None, Obj | None]:
        got_a, got_b = await asyncio.gather(claim_a(), claim_b())
        return got_a, got_b

    assert run(race()) == (first, second)
    assert claim(store, run, "worker-c", 100.0) is None


# -- run steps -----------------------------------------------------------------------------


def test_steps_insert_get_update_and_order(store: SqlStore, run: Runner) -> None:
    r, other = new_runs(store, run, 2)
    made = [step(r) for _ in range(3)]
    foreign = step(other)

    async def fill(tx: SqlTx) -> None:
        await tx.insert_step(made[0])
        await tx.insert_step(foreign)
        await tx.insert_step(made[1])
        await tx.insert_step(made[2])

    run(within(store, fill))
    assert run(within(store, lambda tx: tx.steps_of_run(r["id"]))) == made
    assert run(within(store, lambda tx: tx.steps_of_run(other["id"]))) == [foreign]
    assert run(within(store, lambda tx: tx.get_step(r["id"], made[1]["id"]))) == made[1]
    assert run(within(store, lambda tx: tx.get_step(other["id"], made[1]["id"]))) is None

    finish = {"status": "completed", "completed_at": 5}
    finished = {**made[1], **finish}
    assert run(within(store, lambda tx: tx.update_step(other["id"], made[1]["id"], finish))) is None
    assert run(within(store, lambda tx: tx.update_step(r["id"], made[1]["id"], finish))) == finished
    assert run(within(store, lambda tx: tx.get_step(r["id"], made[1]["id"]))) == finished
    assert run(within(store, lambda tx: tx.steps_of_run(r["id"]))) == [made[0], finished, made[2]]


def test_page_steps(store: SqlStore, run: Runner) -> None:
    (r,) = new_runs(store, run, 1)
    made = [step(r) for _ in range(4)]

    async def insert(tx: SqlTx) -> None:
        for s in made:
            await tx.insert_step(s)

    run(within(store, insert))

    def page(request: PageRequest) -> tuple[list[str], bool]:
        got = run(within(store, lambda tx: tx.page_steps(r["id"], request)))
        return ids(got.data), got.has_more

    assert page(PageRequest(limit=3)) == (ids(made[::-1][:3]), True)
    assert page(PageRequest(limit=3, after=made[1]["id"])) == ([made[0]["id"]], False)
    assert page(PageRequest(limit=2, order="asc")) == (ids(made[:2]), True)
    assert page(PageRequest(limit=2, order="asc", after=made[1]["id"])) == (ids(made[2:]), False)
    assert page(PageRequest(limit=1, order="asc", before=made[2]["id"])) == ([made[1]["id"]], True)


# -- the event log -------------------------------------------------------------------------


def test_append_events_returns_increasing_seqs(store: SqlStore, run: Runner) -> None:
    r, other = new_runs(store, run, 2)

    def append(target: Obj, *names: str) -> int:
        events = [RunEvent(name, {"n": name}) for name in names]
        return run(
            within(store, lambda tx: tx.append_events(target["id"], target["thread_id"], events))
        )

    first = append(r, "a", "b", "c")
    between = append(other, "x")
    second = append(r, "d")
    assert first < between < second
    assert append(r) == 0  # nothing appended

    log = run(within(store, lambda tx: tx.events_after(r["id"], 0, 100)))
    assert [e.event for e in log] == ["a", "b", "c", "d"]
    assert [e.data for e in log] == [{"n": n} for n in "abcd"]
    seqs = [e.seq for e in log]
    assert seqs == sorted(seqs) and len(set(seqs)) == 4
    assert seqs[2] == first and seqs[3] == second


def test_events_after_is_exact_and_limited(store: SqlStore, run: Runner) -> None:
    r, other = new_runs(store, run, 2)

    async def fill(tx: SqlTx) -> None:
        for i in range(6):
            await tx.append_events(r["id"], r["thread_id"], [RunEvent(f"e{i}", {"i": i})])
            await tx.append_events(other["id"], other["thread_id"], [RunEvent("noise", {})])

    run(within(store, fill))
    log = run(within(store, lambda tx: tx.events_after(r["id"], 0, 100)))
    assert [e.event for e in log] == [f"e{i}" for i in range(6)]

    cut = log[2].seq
    rest = run(within(store, lambda tx: tx.events_after(r["id"], cut, 100)))
    assert rest == log[3:]
    limited = run(within(store, lambda tx: tx.events_after(r["id"], cut, 2)))
    assert limited == log[3:5]
    assert run(within(store, lambda tx: tx.events_after(r["id"], log[-1].seq, 100))) == []
    assert run(within(store, lambda tx: tx.events_after("run_none", 0, 100))) == []


# -- API keys ------------------------------------------------------------------------------


def _key(projects: tuple[str, ...] | None, secret: str) -> ApiKey:
    return ApiKey(
        id=new_key_id(),
        name=None,
        projects=projects,
        digest=digest(secret),
        hint=secret[:8],
        created_at=1_700_000_000,
    )


def test_api_keys_are_kept_with_their_projects_and_revoked_once(
    store: SqlStore, run: Runner
) -> None:
    scoped, admin = _key(("alpha", "beta"), "tl-one"), _key(None, "tl-two")
    for key in (scoped, admin):
        run(within(store, lambda tx, key=key: tx.insert_api_key(key)))

    assert run(within(store, lambda tx: tx.api_keys())) == [scoped, admin]
    assert run(within(store, lambda tx: tx.revoke_api_key(scoped.id, 1_700_000_100)))
    assert not run(within(store, lambda tx: tx.revoke_api_key(scoped.id, 1_700_000_200)))
    assert not run(within(store, lambda tx: tx.revoke_api_key("key_missing", 1)))

    assert run(within(store, lambda tx: tx.api_keys())) == [admin]
    every = run(within(store, lambda tx: tx.api_keys(include_revoked=True)))
    assert [k.revoked_at for k in every] == [1_700_000_100, None]
    assert every[0].grant.allows("beta") and not every[0].grant.allows("gamma")
    assert every[1].grant.allows("anything")


def test_two_keys_never_share_a_digest(store: SqlStore, run: Runner) -> None:
    run(within(store, lambda tx: tx.insert_api_key(_key(None, "tl-same"))))

    with pytest.raises(Exception):  # noqa: B017 - each driver names it its own way
        run(within(store, lambda tx: tx.insert_api_key(_key(("a",), "tl-same"))))
    assert len(run(within(store, lambda tx: tx.api_keys()))) == 1


def test_a_run_still_in_progress_keeps_its_lease_to_lapse(store: SqlStore, run: Runner) -> None:
    """A worker that could not settle a run must not leave it in progress with no holder:
    nothing would ever take it over."""
    (only,) = new_runs(store, run, 1)
    claim(store, run, "worker-a", 100.0)
    run(within(store, lambda tx: tx.update_run(only["id"], {"status": "in_progress"})))

    run(within(store, lambda tx: tx.release_run(only["id"], "worker-a")))

    assert run(within(store, lambda tx: tx.holds_lease(only["id"], "worker-a"))) is True
    lapsed = run(within(store, lambda tx: tx.runs_with_lapsed_lease(1_000.0, 10)))
    assert [r["id"] for r in lapsed] == [only["id"]]


def test_an_update_keeps_every_number_of_the_fields_it_leaves(store: SqlStore, run: Runner) -> None:
    """Integers beyond 64 bits stay integers after another field of the body changed."""
    schema = {"maximum": 10**30, "minimum": -(2**70), "edge": 2**64 - 1}
    created = {**assistant(), "tools": [{"type": "function", "function": {"parameters": schema}}]}
    run(within(store, lambda tx: tx.insert_assistant(PROJECT, created)))

    changed = {"metadata": {"k": "v"}}
    updated = run(within(store, lambda tx: tx.update_assistant(PROJECT, created["id"], changed)))
    read = run(within(store, lambda tx: tx.get_assistant(PROJECT, created["id"])))

    expected = json.dumps({**created, **changed}, sort_keys=True)
    assert json.dumps(updated, sort_keys=True) == expected
    assert json.dumps(read, sort_keys=True) == expected
