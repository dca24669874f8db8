"""Every query the store runs, in one file, for SQLite and PostgreSQL alike.

Each is written once in SQLAlchemy Core with named parameters and rendered per dialect the
first time it runs (`compiled.py`); what differs by dialect is what SQLAlchemy renders per
dialect (`FOR UPDATE SKIP LOCKED` is a no-op on SQLite, where a single connection serialises
every transaction). No statement is built per call: building one and deriving its cache key
cost more than SQLite takes to run it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

import sqlalchemy as sa

from threadline.domain import clock
from threadline.domain.errors import Conflict
from threadline.domain.keys import ApiKey
from threadline.domain.records import (
    Assistant,
    Message,
    Obj,
    Page,
    PageRequest,
    Run,
    RunEvent,
    RunStep,
    Thread,
    item_kind,
)
from threadline.store.compiled import OneOf, Query, constants, param
from threadline.store.drivers import Driver, DuplicateKey
from threadline.store.schema import (
    ACTIVE_RUN_STATUSES,
    api_keys,
    assistants,
    messages,
    run_events,
    run_steps,
    runs,
    threads,
)
from threadline.store.signal import RUN_QUEUED
from threadline.store.sql_agents import AgentQueries
from threadline.store.sql_common import (
    _ID,
    _LIMIT,
    _p,
    _Paging,
)
from threadline.store.sql_files import FileQueries

_RUN_ID = _p("p_run_id", runs.c.id)
_THREAD_ID = _p("p_thread_id", runs.c.thread_id)
_PROJECT = _p("p_project", runs.c.project)
_BODY = _p("p_body", runs.c.body)
_OWNER = _p("p_owner", runs.c.lease_owner)
_LEASE_UNTIL = _p("p_lease_until", runs.c.lease_until)
_NOW = _p("p_now", runs.c.lease_until)
_SEQ = param("p_seq", sa.BigInteger())
_IS_ACTIVE = runs.c.status.in_(constants(ACTIVE_RUN_STATUSES))

_GET_ASSISTANT = Query(
    sa.select(assistants.c.body).where(assistants.c.id == _ID, assistants.c.project == _PROJECT)
)
_DELETE_ASSISTANT = Query(
    assistants.delete().where(assistants.c.id == _ID, assistants.c.project == _PROJECT)
)
_THREAD = sa.select(threads.c.body).where(threads.c.id == _ID, threads.c.project == _PROJECT)
_GET_THREAD = Query(_THREAD)
_LOCK_THREAD = Query(_THREAD.with_for_update())
_DELETE_THREAD = Query(threads.delete().where(threads.c.id == _ID, threads.c.project == _PROJECT))
_THREAD_RUN_IDS = sa.select(runs.c.id).where(runs.c.thread_id == _THREAD_ID).scalar_subquery()
# A run's steps and events are found through the thread's runs (their run_id indexes), so
# they go before the runs: an index on their own thread_id would serve this delete alone,
# and every step and event written would pay for keeping it.
_DELETE_THREAD_CONTENTS = [
    Query(messages.delete().where(messages.c.thread_id == _THREAD_ID)),
    *(
        Query(table.delete().where(table.c.run_id.in_(_THREAD_RUN_IDS)))
        for table in (run_steps, run_events)
    ),
    Query(runs.delete().where(runs.c.thread_id == _THREAD_ID)),
]
_COUNT_MESSAGES = Query(
    threads.update()
    .where(threads.c.id == _THREAD_ID)
    .values(message_count=threads.c.message_count + param("p_change", sa.Integer()))
)
_MESSAGE_COUNT = Query(sa.select(threads.c.message_count).where(threads.c.id == _THREAD_ID))
_GET_MESSAGE = Query(
    sa.select(messages.c.body).where(messages.c.id == _ID, messages.c.thread_id == _THREAD_ID)
)
_DELETE_MESSAGE = Query(
    messages.delete().where(messages.c.id == _ID, messages.c.thread_id == _THREAD_ID)
)
_NEWEST = (
    sa.select(messages.c.seq, messages.c.body)
    .where(messages.c.thread_id == _THREAD_ID)
    .order_by(messages.c.seq.desc())
    .limit(_LIMIT)
)
_NEWEST_MESSAGES = Query(_NEWEST)
_NEWEST_MESSAGES_BEFORE = Query(_NEWEST.where(messages.c.seq < _SEQ))
_GET_RUN = Query(sa.select(runs.c.body).where(runs.c.id == _ID, runs.c.thread_id == _THREAD_ID))
_GET_RUN_BY_ID = Query(sa.select(runs.c.body).where(runs.c.id == _ID))
_RUN_PROJECT = Query(sa.select(runs.c.project).where(runs.c.id == _ID))
_LAST_EVENT_SEQ = Query(
    sa.select(sa.func.coalesce(sa.func.max(run_events.c.seq), 0)).where(
        run_events.c.run_id == _RUN_ID
    )
)
_ACTIVE_RUN = Query(sa.select(runs.c.body).where(runs.c.thread_id == _THREAD_ID, _IS_ACTIVE))


def _oldest_runs(*conditions: sa.ColumnElement[bool]) -> Query:
    """Up to `p_limit` runs meeting `conditions`, oldest first, skipping those another
    transaction holds (a claim or a sweep under way in another worker)."""
    return Query(
        sa.select(runs.c.body)
        .where(*conditions)
        .order_by(runs.c.seq)
        .limit(_LIMIT)
        .with_for_update(skip_locked=True)
    )


_NEXT_QUEUED_RUNS = _oldest_runs(runs.c.status == "queued", runs.c.lease_owner.is_(None))
_SET_LEASES = Query(
    runs.update()
    .where(OneOf(runs.c.id, "p_ids", sa.String()))
    .values(lease_owner=_OWNER, lease_until=_LEASE_UNTIL)
)
_RENEW_LEASES = Query(
    runs.update()
    .where(OneOf(runs.c.id, "p_ids", sa.String()), runs.c.lease_owner == _OWNER)
    .values(lease_until=_LEASE_UNTIL)
)
# A run still being carried keeps its lease, to lapse: released, nothing would ever take it
# over (the sweeper looks for lapsed leases), and it would sit until it expired.
_RELEASE_RUN = Query(
    runs.update()
    .where(
        runs.c.id == _ID,
        runs.c.lease_owner == _OWNER,
        runs.c.status.not_in(constants(("in_progress", "cancelling"))),
    )
    .values(lease_owner=None, lease_until=None)
)
_LAPSED_LEASES = _oldest_runs(runs.c.lease_owner.is_not(None), runs.c.lease_until < _NOW)
_PAST_EXPIRY = _oldest_runs(_IS_ACTIVE, runs.c.expires_at <= _p("p_now", runs.c.expires_at))
_RUNS_IN_STATUS = Query(
    sa.select(runs.c.id).where(
        OneOf(runs.c.id, "p_ids", sa.String()), runs.c.status == _p("p_status", runs.c.status)
    )
)
_GET_STEP = Query(
    sa.select(run_steps.c.body).where(run_steps.c.id == _ID, run_steps.c.run_id == _RUN_ID)
)
_DELETE_STEP = Query(run_steps.delete().where(run_steps.c.id == _ID))
# A run alone, its steps and events with it (its messages stay in the thread).
_DELETE_RUN = [
    Query(run_steps.delete().where(run_steps.c.run_id == _RUN_ID)),
    Query(run_events.delete().where(run_events.c.run_id == _RUN_ID)),
    Query(runs.delete().where(runs.c.id == _RUN_ID)),
]
_STEPS_OF_RUN = Query(
    sa.select(run_steps.c.body).where(run_steps.c.run_id == _RUN_ID).order_by(run_steps.c.seq)
)
_HOLD_RUN = Query(sa.select(runs.c.id).where(runs.c.id == _RUN_ID).with_for_update())
_WITHDRAW_EVENTS = Query(
    run_events.delete().where(
        run_events.c.run_id == _RUN_ID, OneOf(run_events.c.object_id, "p_ids", sa.String())
    )
)
_OLD_EVENTS = Query(
    sa.select(run_events.c.seq)
    .join(runs, runs.c.id == run_events.c.run_id)
    .where(run_events.c.created_at < _NOW, sa.not_(_IS_ACTIVE))
    .order_by(run_events.c.created_at)
    .limit(_LIMIT)
)
_DROP_EVENTS = Query(run_events.delete().where(OneOf(run_events.c.seq, "p_ids", sa.BigInteger())))
_EVENTS_AFTER = Query(
    sa.select(run_events.c.seq, run_events.c.event, run_events.c.data)
    .where(run_events.c.run_id == _RUN_ID, run_events.c.seq > _SEQ)
    .order_by(run_events.c.seq)
    .limit(_LIMIT)
)


_KEY_COLUMNS = (
    api_keys.c.id,
    api_keys.c.name,
    api_keys.c.projects,
    api_keys.c.digest,
    api_keys.c.hint,
    api_keys.c.created_at,
    api_keys.c.revoked_at,
)
_ALL_KEYS = Query(sa.select(*_KEY_COLUMNS).order_by(api_keys.c.seq))
_LIVE_KEYS = Query(
    sa.select(*_KEY_COLUMNS).where(api_keys.c.revoked_at.is_(None)).order_by(api_keys.c.seq)
)
_REVOKE_KEY = Query(
    api_keys.update()
    .where(api_keys.c.id == _ID, api_keys.c.revoked_at.is_(None))
    .values(revoked_at=_p("p_at", api_keys.c.revoked_at))
)


_LEASE_OWNER = Query(sa.select(runs.c.lease_owner).where(runs.c.id == _ID).with_for_update())


_ASSISTANT_PAGES = _Paging(assistants, "project")
_THREAD_PAGES = _Paging(threads, "project")
_MESSAGE_PAGES = _Paging(messages, "thread_id", only=messages.c.kind.is_(None))
_ITEM_PAGES = _Paging(messages, "thread_id")
_RUN_MESSAGE_PAGES = _Paging(messages, "thread_id", "run_id", only=messages.c.kind.is_(None))
_RUN_PAGES = _Paging(runs, "thread_id")
_STEP_PAGES = _Paging(run_steps, "run_id")


class SqlTx(FileQueries, AgentQueries):
    def __init__(self, db: Driver, wakes: set[str] | None = None):
        super().__init__(db, wakes)
        # Threads this transaction created: no other can see them yet, so none has a run.
        self._new_threads: set[str] = set()

    # -- assistants ------------------------------------------------------------------------

    async def insert_assistant(self, project: str, assistant: Assistant) -> None:
        await self._insert_rows(
            assistants, [{"id": assistant["id"], "project": project, "body": assistant}]
        )

    async def get_assistant(self, project: str, assistant_id: str) -> Assistant | None:
        return cast(
            "Assistant | None",
            await self._one_body(_GET_ASSISTANT, p_id=assistant_id, p_project=project),
        )

    async def update_assistant(
        self, project: str, assistant_id: str, changes: Obj
    ) -> Assistant | None:
        return cast(
            "Assistant | None",
            await self._update_body(assistants, changes, {"id": assistant_id, "project": project}),
        )

    async def delete_assistant(self, project: str, assistant_id: str) -> bool:
        deleted = await self.db.execute(
            _DELETE_ASSISTANT, {"p_id": assistant_id, "p_project": project}
        )
        return bool(deleted)

    async def page_assistants(self, project: str, page: PageRequest) -> Page[Assistant]:
        return cast("Page[Assistant]", await self._page(_ASSISTANT_PAGES, page, project=project))

    # -- threads ---------------------------------------------------------------------------

    async def insert_thread(
        self, project: str, thread: Thread, first_messages: Sequence[Message] = ()
    ) -> None:
        row = {
            "id": thread["id"],
            "project": project,
            "message_count": len(first_messages),
            "body": thread,
        }
        await self._insert_rows(threads, [row])
        self._new_threads.add(thread["id"])
        await self._insert_message_rows(thread["id"], first_messages)

    async def page_threads(self, project: str, page: PageRequest) -> Page[Thread]:
        return cast("Page[Thread]", await self._page(_THREAD_PAGES, page, project=project))

    async def get_thread(self, project: str, thread_id: str) -> Thread | None:
        return cast(
            "Thread | None", await self._one_body(_GET_THREAD, p_id=thread_id, p_project=project)
        )

    async def lock_thread(self, project: str, thread_id: str) -> Thread | None:
        return cast(
            "Thread | None", await self._one_body(_LOCK_THREAD, p_id=thread_id, p_project=project)
        )

    async def update_thread(self, project: str, thread_id: str, changes: Obj) -> Thread | None:
        return cast(
            "Thread | None",
            await self._update_body(threads, changes, {"id": thread_id, "project": project}),
        )

    async def delete_thread(self, project: str, thread_id: str) -> bool:
        if not await self.db.execute(_DELETE_THREAD, {"p_id": thread_id, "p_project": project}):
            return False
        for query in _DELETE_THREAD_CONTENTS:
            await self.db.execute(query, {"p_thread_id": thread_id})
        return True

    # -- messages --------------------------------------------------------------------------

    async def insert_messages(self, thread_id: str, new_messages: list[Message]) -> None:
        if not new_messages:
            return
        await self._insert_message_rows(thread_id, new_messages)
        await self._count_messages(thread_id, len(new_messages))

    async def _insert_message_rows(self, thread_id: str, new_messages: Sequence[Message]) -> None:
        if not new_messages:
            return
        await self._insert_rows(
            messages,
            [
                {
                    "id": m["id"],
                    "thread_id": thread_id,
                    "run_id": m.get("run_id"),
                    "kind": item_kind(m),
                    "body": m,
                }
                for m in new_messages
            ],
        )

    async def _count_messages(self, thread_id: str, change: int) -> None:
        await self.db.execute(_COUNT_MESSAGES, {"p_thread_id": thread_id, "p_change": change})

    async def get_message(self, thread_id: str, message_id: str) -> Message | None:
        return cast(
            "Message | None",
            await self._one_body(_GET_MESSAGE, p_id=message_id, p_thread_id=thread_id),
        )

    async def update_message(self, thread_id: str, message_id: str, changes: Obj) -> Message | None:
        return cast(
            "Message | None",
            await self._update_body(messages, changes, {"id": message_id, "thread_id": thread_id}),
        )

    async def delete_message(self, thread_id: str, message_id: str) -> bool:
        deleted = await self.db.execute(
            _DELETE_MESSAGE, {"p_id": message_id, "p_thread_id": thread_id}
        )
        if deleted:
            await self._count_messages(thread_id, -1)
        return bool(deleted)

    async def page_messages(
        self, thread_id: str, page: PageRequest, run_id: str | None = None, items: bool = False
    ) -> Page[Message]:
        if run_id is None:
            paging = _ITEM_PAGES if items else _MESSAGE_PAGES
            return cast("Page[Message]", await self._page(paging, page, thread_id=thread_id))
        return cast(
            "Page[Message]",
            await self._page(_RUN_MESSAGE_PAGES, page, thread_id=thread_id, run_id=run_id),
        )

    async def newest_messages(
        self, thread_id: str, limit: int, before_seq: int | None = None
    ) -> list[tuple[int, Message]]:
        params: dict[str, Any] = {"p_thread_id": thread_id, "p_limit": limit}
        query = _NEWEST_MESSAGES
        if before_seq is not None:
            query, params["p_seq"] = _NEWEST_MESSAGES_BEFORE, before_seq
        return [(seq, body) for seq, body in await self.db.fetch(query, params)]

    async def count_messages(self, thread_id: str) -> int:
        rows = await self.db.fetch(_MESSAGE_COUNT, {"p_thread_id": thread_id})
        return int(rows[0][0]) if rows else 0

    # -- runs ------------------------------------------------------------------------------

    async def insert_run(self, project: str, run: Run) -> None:
        if run["thread_id"] not in self._new_threads:
            active = await self.active_run(run["thread_id"])
            if active is not None:
                raise _active_run_conflict(run["thread_id"], active["id"])
        row = {
            "id": run["id"],
            "thread_id": run["thread_id"],
            "project": project,
            "status": run["status"],
            "expires_at": run.get("expires_at"),
            "body": run,
        }
        try:
            await self._insert_rows(runs, [row])
        except DuplicateKey as exc:
            raise _active_run_conflict(run["thread_id"], None) from exc
        self.wakes.add(RUN_QUEUED)

    async def get_run(self, thread_id: str, run_id: str) -> Run | None:
        return cast(
            "Run | None", await self._one_body(_GET_RUN, p_id=run_id, p_thread_id=thread_id)
        )

    async def get_run_by_id(self, run_id: str) -> Run | None:
        return cast("Run | None", await self._one_body(_GET_RUN_BY_ID, p_id=run_id))

    async def project_of_run(self, run_id: str) -> str | None:
        rows = await self.db.fetch(_RUN_PROJECT, {"p_id": run_id})
        return str(rows[0][0]) if rows else None

    async def active_run(self, thread_id: str) -> Run | None:
        return cast("Run | None", await self._one_body(_ACTIVE_RUN, p_thread_id=thread_id))

    async def update_run(
        self,
        run_id: str,
        changes: Obj,
        *,
        expected_status: str | None = None,
        lease_owner: str | None = None,
    ) -> Run | None:
        where: dict[str, Any] = {"id": run_id}
        if expected_status is not None:
            where["status"] = expected_status
        if lease_owner is not None:
            where["lease_owner"] = lease_owner
        columns: dict[str, Any] = {
            name: changes[name] for name in ("status", "expires_at") if name in changes
        }
        status = changes.get("status")
        # A run waiting for its client, or ended, is held by no worker.
        release = status is not None and (
            status not in ACTIVE_RUN_STATUSES or status == "requires_action"
        )
        updated = await self._update_body(runs, changes, where, columns, release)
        if updated is not None and status == "queued":
            self.wakes.add(RUN_QUEUED)
        return cast("Run | None", updated)

    async def hold_run(self, run_id: str) -> None:
        await self.db.fetch(_HOLD_RUN, {"p_run_id": run_id})

    async def holds_lease(self, run_id: str, owner: str) -> bool:
        # The row stays locked to the end of the transaction (on PostgreSQL; SQLite has one
        # writer at a time), so the lease cannot change hands before its writes commit.
        rows = await self.db.fetch(_LEASE_OWNER, {"p_id": run_id})
        return bool(rows) and rows[0][0] == owner

    async def delete_run(self, run_id: str) -> bool:
        deleted = 0
        for query in _DELETE_RUN:
            deleted = await self.db.execute(query, {"p_run_id": run_id})
        return bool(deleted)

    async def page_runs(self, thread_id: str, page: PageRequest) -> Page[Run]:
        return cast("Page[Run]", await self._page(_RUN_PAGES, page, thread_id=thread_id))

    async def claim_next_runs(self, owner: str, lease_until: float, limit: int) -> list[Run]:
        claimed = await self._bodies(_NEXT_QUEUED_RUNS, p_limit=limit)
        if claimed:
            await self.db.execute(
                _SET_LEASES,
                {
                    "p_ids": [r["id"] for r in claimed],
                    "p_owner": owner,
                    "p_lease_until": lease_until,
                },
            )
        return cast("list[Run]", claimed)

    async def renew_leases(self, owner: str, run_ids: list[str], lease_until: float) -> None:
        if run_ids:
            await self.db.execute(
                _RENEW_LEASES, {"p_ids": run_ids, "p_owner": owner, "p_lease_until": lease_until}
            )

    async def release_run(self, run_id: str, owner: str) -> None:
        await self.db.execute(_RELEASE_RUN, {"p_id": run_id, "p_owner": owner})

    async def runs_with_lapsed_lease(self, now: float, limit: int) -> list[Run]:
        lapsed = await self._bodies(_LAPSED_LEASES, p_now=now, p_limit=limit)
        if lapsed:
            ids = [body["id"] for body in lapsed]
            await self.db.execute(
                _SET_LEASES, {"p_ids": ids, "p_owner": None, "p_lease_until": None}
            )
        return cast("list[Run]", lapsed)

    async def runs_past_expiry(self, now: int, limit: int) -> list[Run]:
        return cast("list[Run]", await self._bodies(_PAST_EXPIRY, p_now=now, p_limit=limit))

    async def runs_in_status(self, run_ids: list[str], status: str) -> list[str]:
        if not run_ids:
            return []
        rows = await self.db.fetch(_RUNS_IN_STATUS, {"p_ids": run_ids, "p_status": status})
        return [str(row[0]) for row in rows]

    # -- run steps -------------------------------------------------------------------------

    async def insert_step(self, step: RunStep) -> None:
        row = {"id": step["id"], "run_id": step["run_id"], "thread_id": step["thread_id"]}
        await self._insert_rows(run_steps, [{**row, "body": step}])

    async def update_step(self, run_id: str, step_id: str, changes: Obj) -> RunStep | None:
        return cast(
            "RunStep | None",
            await self._update_body(run_steps, changes, {"id": step_id, "run_id": run_id}),
        )

    async def delete_step(self, step_id: str) -> None:
        await self.db.execute(_DELETE_STEP, {"p_id": step_id})

    async def get_step(self, run_id: str, step_id: str) -> RunStep | None:
        return cast(
            "RunStep | None", await self._one_body(_GET_STEP, p_id=step_id, p_run_id=run_id)
        )

    async def steps_of_run(self, run_id: str) -> list[RunStep]:
        return cast("list[RunStep]", await self._bodies(_STEPS_OF_RUN, p_run_id=run_id))

    async def page_steps(self, run_id: str, page: PageRequest) -> Page[RunStep]:
        return cast("Page[RunStep]", await self._page(_STEP_PAGES, page, run_id=run_id))

    # -- the event log ---------------------------------------------------------------------

    async def append_events(self, run_id: str, thread_id: str, events: list[RunEvent]) -> int:
        if not events:
            return 0
        self.wakes.add(run_id)
        now = clock.seconds()
        if self.db.holds_row_locks:
            # Sequence numbers are taken at insert but become visible at commit: holding the
            # run's row makes a run's events commit in sequence order, so a follower that
            # has read up to N can never later find an event numbered below N. (SQLite has
            # one writer at a time: there, they always do.)
            await self.db.fetch(_HOLD_RUN, {"p_run_id": run_id})
        seqs = await self._insert_rows(
            run_events,
            [
                {
                    "run_id": run_id,
                    "thread_id": thread_id,
                    "event": e.event,
                    "object_id": e.data.get("id"),
                    "created_at": now,
                    "data": e.data,
                }
                for e in events
            ],
        )
        return max(seqs)

    async def withdraw_events(self, run_id: str, object_ids: list[str]) -> None:
        if object_ids:
            await self.db.execute(_WITHDRAW_EVENTS, {"p_run_id": run_id, "p_ids": object_ids})

    async def prune_events(self, older_than: float, limit: int) -> int:
        seqs = [
            int(row[0])
            for row in await self.db.fetch(_OLD_EVENTS, {"p_now": older_than, "p_limit": limit})
        ]
        if seqs:
            await self.db.execute(_DROP_EVENTS, {"p_ids": seqs})
        return len(seqs)

    async def last_event_seq(self, run_id: str) -> int:
        rows = await self.db.fetch(_LAST_EVENT_SEQ, {"p_run_id": run_id})
        return int(rows[0][0]) if rows else 0

    async def events_after(self, run_id: str, after_seq: int, limit: int) -> list[RunEvent]:
        params = {"p_run_id": run_id, "p_seq": after_seq, "p_limit": limit}
        return [
            RunEvent(event=event, data=dict(data), seq=int(seq))
            for seq, event, data in await self.db.fetch(_EVENTS_AFTER, params)
        ]

    # -- API keys --------------------------------------------------------------------------

    async def insert_api_key(self, key: ApiKey) -> None:
        row = {
            "id": key.id,
            "name": key.name,
            "projects": None if key.projects is None else list(key.projects),
            "digest": key.digest,
            "hint": key.hint,
            "created_at": key.created_at,
            "revoked_at": key.revoked_at,
        }
        await self._insert_rows(api_keys, [row])

    async def api_keys(self, *, include_revoked: bool = False) -> list[ApiKey]:
        rows = await self.db.fetch(_ALL_KEYS if include_revoked else _LIVE_KEYS)
        return [
            ApiKey(
                id=key_id,
                name=name,
                projects=None if projects is None else tuple(projects),
                digest=digest,
                hint=hint,
                created_at=int(created_at),
                revoked_at=None if revoked_at is None else int(revoked_at),
            )
            for key_id, name, projects, digest, hint, created_at, revoked_at in rows
        ]

    async def revoke_api_key(self, key_id: str, at: int) -> bool:
        return bool(await self.db.execute(_REVOKE_KEY, {"p_id": key_id, "p_at": at}))


def _active_run_conflict(thread_id: str, run_id: str | None) -> Conflict:
    which = f" {run_id}" if run_id else ""
    return Conflict(f"Thread {thread_id} already has an active run{which}.", param="thread_id")
