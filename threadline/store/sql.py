"""Every query the store runs, in one file, for SQLite and PostgreSQL alike.

What differs by dialect is what SQLAlchemy already renders per dialect (`FOR UPDATE SKIP
LOCKED` is a no-op on SQLite, where a single connection serialises every transaction).

The queries a run takes on its way are built once, here, with bound parameters: building a
statement and deriving its cache key cost several times what SQLite takes to run it.
"""

from __future__ import annotations

import time
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from threadline.domain.errors import Conflict, InvalidRequest
from threadline.store.base import Obj, Page, PageRequest, RunEvent
from threadline.store.engine import SqliteConnection
from threadline.store.schema import (
    ACTIVE_RUN_STATUSES,
    assistants,
    messages,
    run_events,
    run_steps,
    runs,
    threads,
)
from threadline.store.signal import RUN_QUEUED


def _p(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    """A named parameter typed like `column` (so a body is stored as JSON)."""
    return sa.bindparam(name, type_=column.type)


def _ids(name: str) -> sa.BindParameter[Any]:
    return sa.bindparam(name, expanding=True)


_RUN_ID = _p("p_run_id", runs.c.id)
_THREAD_ID = _p("p_thread_id", runs.c.thread_id)
_ID = _p("p_id", runs.c.id)
_PROJECT = _p("p_project", runs.c.project)
_BODY = _p("p_body", runs.c.body)

_GET_ASSISTANT = sa.select(assistants.c.body).where(
    assistants.c.id == _ID, assistants.c.project == _PROJECT
)
_REPLACE_ASSISTANT = (
    assistants.update()
    .where(assistants.c.id == _ID, assistants.c.project == _PROJECT)
    .values(body=_BODY)
)
_GET_THREAD = sa.select(threads.c.body).where(threads.c.id == _ID, threads.c.project == _PROJECT)
_LOCK_THREAD = _GET_THREAD.with_for_update()
_REPLACE_THREAD = (
    threads.update().where(threads.c.id == _ID, threads.c.project == _PROJECT).values(body=_BODY)
)
_COUNT_MESSAGES = (
    threads.update()
    .where(threads.c.id == _THREAD_ID)
    .values(message_count=threads.c.message_count + sa.bindparam("p_change", type_=sa.Integer()))
)
_MESSAGE_COUNT = sa.select(threads.c.message_count).where(threads.c.id == _THREAD_ID)
_GET_MESSAGE = sa.select(messages.c.body).where(
    messages.c.id == _ID, messages.c.thread_id == _THREAD_ID
)
_REPLACE_MESSAGE = messages.update().where(messages.c.id == _ID).values(body=_BODY)
_NEWEST_MESSAGES = (
    sa.select(messages.c.seq, messages.c.body)
    .where(messages.c.thread_id == _THREAD_ID)
    .order_by(messages.c.seq.desc())
    .limit(sa.bindparam("p_limit", type_=sa.Integer()))
)
_NEWEST_MESSAGES_BEFORE = _NEWEST_MESSAGES.where(
    messages.c.seq < sa.bindparam("p_seq", type_=sa.BigInteger())
)
_GET_RUN = sa.select(runs.c.body).where(runs.c.id == _ID, runs.c.thread_id == _THREAD_ID)
_GET_RUN_BY_ID = sa.select(runs.c.body).where(runs.c.id == _ID)
_ACTIVE_RUN = sa.select(runs.c.body).where(
    runs.c.thread_id == _THREAD_ID, runs.c.status.in_(ACTIVE_RUN_STATUSES)
)
_NEXT_QUEUED_RUN = (
    sa.select(runs.c.id, runs.c.body)
    .where(runs.c.status == "queued", runs.c.lease_owner.is_(None))
    .order_by(runs.c.seq)
    .limit(1)
    .with_for_update(skip_locked=True)
)
_OWNER = _p("p_owner", runs.c.lease_owner)
_LEASE_UNTIL = _p("p_lease_until", runs.c.lease_until)
_TAKE_LEASE = (
    runs.update().where(runs.c.id == _ID).values(lease_owner=_OWNER, lease_until=_LEASE_UNTIL)
)
_RENEW_LEASES = (
    runs.update()
    .where(runs.c.id.in_(_ids("p_ids")), runs.c.lease_owner == _OWNER)
    .values(lease_until=_LEASE_UNTIL)
)
_RELEASE_RUN = (
    runs.update()
    .where(runs.c.id == _ID, runs.c.lease_owner == _OWNER)
    .values(lease_owner=None, lease_until=None)
)
_RUNS_IN_STATUS = sa.select(runs.c.id).where(
    runs.c.id.in_(_ids("p_ids")), runs.c.status == _p("p_status", runs.c.status)
)
_GET_STEP = sa.select(run_steps.c.body).where(run_steps.c.id == _ID, run_steps.c.run_id == _RUN_ID)
_REPLACE_STEP = run_steps.update().where(run_steps.c.id == _ID).values(body=_BODY)
_STEPS_OF_RUN = (
    sa.select(run_steps.c.body).where(run_steps.c.run_id == _RUN_ID).order_by(run_steps.c.seq)
)
_HOLD_RUN = sa.select(runs.c.id).where(runs.c.id == _RUN_ID).with_for_update()
_APPEND_EVENTS = run_events.insert().returning(run_events.c.seq, sort_by_parameter_order=True)
_EVENTS_AFTER = (
    sa.select(run_events.c.seq, run_events.c.event, run_events.c.data)
    .where(run_events.c.run_id == _RUN_ID, run_events.c.seq > sa.bindparam("p_seq"))
    .order_by(run_events.c.seq)
    .limit(sa.bindparam("p_limit", type_=sa.Integer()))
)


def _replace_run_statement(expected_status: bool, owner: bool, release_lease: bool) -> sa.Update:
    query = runs.update().where(runs.c.id == _ID)
    if expected_status:
        query = query.where(runs.c.status == _p("p_expected", runs.c.status))
    if owner:
        query = query.where(runs.c.lease_owner == _OWNER)
    values: dict[str, Any] = {
        "status": _p("p_status", runs.c.status),
        "expires_at": _p("p_expires_at", runs.c.expires_at),
        "body": _BODY,
    }
    if release_lease:
        values.update(lease_owner=None, lease_until=None)
    return query.values(**values)


_REPLACE_RUN = {
    (expected, owner, release): _replace_run_statement(expected, owner, release)
    for expected in (False, True)
    for owner in (False, True)
    for release in (False, True)
}
_LEASE_OWNER = sa.select(runs.c.lease_owner).where(runs.c.id == _ID).with_for_update()


class SqlTx:
    def __init__(self, conn: AsyncConnection | SqliteConnection):
        self.conn = conn
        # What readers to wake once this transaction commits: run ids, and RUN_QUEUED.
        self.wakes: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------

    async def _one_body(self, query: sa.Select[Any], **params: Any) -> Obj | None:
        row = (await self.conn.execute(query, params)).first()
        return None if row is None else dict(row[0])

    async def _bodies(self, query: sa.Select[Any], **params: Any) -> list[Obj]:
        return [dict(body) for body in (await self.conn.execute(query, params)).scalars().all()]

    async def _page(
        self, table: sa.Table, scope: sa.ColumnElement[bool], page: PageRequest
    ) -> Page:
        """Keyset pagination on `seq`: exact cursors, one index range scan per page."""
        query = sa.select(table.c.body).where(scope)
        ascending = page.order == "asc"
        if page.after is not None:
            after = await self._cursor_seq(table, scope, page.after, "after")
            query = query.where(table.c.seq > after if ascending else table.c.seq < after)
        if page.before is not None:
            before = await self._cursor_seq(table, scope, page.before, "before")
            query = query.where(table.c.seq < before if ascending else table.c.seq > before)
        walk_backwards = page.before is not None and page.after is None
        scan_ascending = ascending != walk_backwards
        query = query.order_by(table.c.seq.asc() if scan_ascending else table.c.seq.desc())
        rows = (await self.conn.execute(query.limit(page.limit + 1))).scalars().all()
        has_more = len(rows) > page.limit
        bodies = [dict(body) for body in rows[: page.limit]]
        if walk_backwards:
            bodies.reverse()
        return Page(data=bodies, has_more=has_more)

    async def _cursor_seq(
        self, table: sa.Table, scope: sa.ColumnElement[bool], cursor: str, param: str
    ) -> int:
        query = sa.select(table.c.seq).where(scope, table.c.id == cursor)
        seq = (await self.conn.execute(query)).scalar()
        if seq is None:
            raise InvalidRequest(f"No object found with id '{cursor}' to page from.", param=param)
        return int(seq)

    # -- assistants ------------------------------------------------------------------------

    async def insert_assistant(self, project: str, assistant: Obj) -> None:
        await self.conn.execute(
            assistants.insert(), {"id": assistant["id"], "project": project, "body": assistant}
        )

    async def get_assistant(self, project: str, assistant_id: str) -> Obj | None:
        return await self._one_body(_GET_ASSISTANT, p_id=assistant_id, p_project=project)

    async def replace_assistant(self, project: str, assistant: Obj) -> None:
        await self.conn.execute(
            _REPLACE_ASSISTANT, {"p_id": assistant["id"], "p_project": project, "p_body": assistant}
        )

    async def delete_assistant(self, project: str, assistant_id: str) -> bool:
        result = await self.conn.execute(
            assistants.delete().where(
                assistants.c.id == assistant_id, assistants.c.project == project
            )
        )
        return bool(result.rowcount)

    async def page_assistants(self, project: str, page: PageRequest) -> Page:
        return await self._page(assistants, assistants.c.project == project, page)

    # -- threads ---------------------------------------------------------------------------

    async def insert_thread(self, project: str, thread: Obj) -> None:
        await self.conn.execute(
            threads.insert(), {"id": thread["id"], "project": project, "body": thread}
        )

    async def get_thread(self, project: str, thread_id: str) -> Obj | None:
        return await self._one_body(_GET_THREAD, p_id=thread_id, p_project=project)

    async def lock_thread(self, project: str, thread_id: str) -> Obj | None:
        return await self._one_body(_LOCK_THREAD, p_id=thread_id, p_project=project)

    async def replace_thread(self, project: str, thread: Obj) -> None:
        await self.conn.execute(
            _REPLACE_THREAD, {"p_id": thread["id"], "p_project": project, "p_body": thread}
        )

    async def delete_thread(self, project: str, thread_id: str) -> bool:
        result = await self.conn.execute(
            threads.delete().where(threads.c.id == thread_id, threads.c.project == project)
        )
        if not result.rowcount:
            return False
        for table in (messages, runs, run_steps, run_events):
            await self.conn.execute(table.delete().where(table.c.thread_id == thread_id))
        return True

    # -- messages --------------------------------------------------------------------------

    async def insert_messages(self, thread_id: str, new_messages: list[Obj]) -> None:
        if not new_messages:
            return
        await self.conn.execute(
            messages.insert(),
            [
                {"id": m["id"], "thread_id": thread_id, "run_id": m.get("run_id"), "body": m}
                for m in new_messages
            ],
        )
        await self._count_messages(thread_id, len(new_messages))

    async def _count_messages(self, thread_id: str, change: int) -> None:
        await self.conn.execute(_COUNT_MESSAGES, {"p_thread_id": thread_id, "p_change": change})

    async def get_message(self, thread_id: str, message_id: str) -> Obj | None:
        return await self._one_body(_GET_MESSAGE, p_id=message_id, p_thread_id=thread_id)

    async def replace_message(self, message: Obj) -> None:
        await self.conn.execute(_REPLACE_MESSAGE, {"p_id": message["id"], "p_body": message})

    async def delete_message(self, thread_id: str, message_id: str) -> bool:
        result = await self.conn.execute(
            messages.delete().where(messages.c.id == message_id, messages.c.thread_id == thread_id)
        )
        if result.rowcount:
            await self._count_messages(thread_id, -1)
        return bool(result.rowcount)

    async def page_messages(
        self, thread_id: str, page: PageRequest, run_id: str | None = None
    ) -> Page:
        scope = messages.c.thread_id == thread_id
        if run_id is not None:
            scope = sa.and_(scope, messages.c.run_id == run_id)
        return await self._page(messages, scope, page)

    async def newest_messages(
        self, thread_id: str, limit: int, before_seq: int | None = None
    ) -> list[tuple[int, Obj]]:
        params: dict[str, Any] = {"p_thread_id": thread_id, "p_limit": limit}
        query = _NEWEST_MESSAGES
        if before_seq is not None:
            query, params["p_seq"] = _NEWEST_MESSAGES_BEFORE, before_seq
        return [(int(seq), dict(body)) for seq, body in (await self.conn.execute(query, params))]

    async def count_messages(self, thread_id: str) -> int:
        result = await self.conn.execute(_MESSAGE_COUNT, {"p_thread_id": thread_id})
        return int(result.scalar() or 0)

    # -- runs ------------------------------------------------------------------------------

    async def insert_run(self, project: str, run: Obj) -> None:
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
            await self.conn.execute(runs.insert(), row)
        except IntegrityError as exc:
            raise _active_run_conflict(run["thread_id"], None) from exc
        self.wakes.add(RUN_QUEUED)

    async def get_run(self, thread_id: str, run_id: str) -> Obj | None:
        return await self._one_body(_GET_RUN, p_id=run_id, p_thread_id=thread_id)

    async def get_run_by_id(self, run_id: str) -> Obj | None:
        return await self._one_body(_GET_RUN_BY_ID, p_id=run_id)

    async def active_run(self, thread_id: str) -> Obj | None:
        return await self._one_body(_ACTIVE_RUN, p_thread_id=thread_id)

    async def replace_run(
        self, run: Obj, *, expected_status: str | None = None, lease_owner: str | None = None
    ) -> bool:
        release = run["status"] not in ACTIVE_RUN_STATUSES or run["status"] == "requires_action"
        params = {
            "p_id": run["id"],
            "p_expected": expected_status,
            "p_owner": lease_owner,
            "p_status": run["status"],
            "p_expires_at": run.get("expires_at"),
            "p_body": run,
        }
        query = _REPLACE_RUN[expected_status is not None, lease_owner is not None, release]
        result = await self.conn.execute(query, params)
        if result.rowcount and run["status"] == "queued":
            self.wakes.add(RUN_QUEUED)
        return bool(result.rowcount)

    async def holds_lease(self, run_id: str, owner: str) -> bool:
        # The row stays locked to the end of the transaction (on PostgreSQL; SQLite has one
        # writer at a time), so the lease cannot change hands before its writes commit.
        held = (await self.conn.execute(_LEASE_OWNER, {"p_id": run_id})).scalar()
        return bool(held == owner)

    async def page_runs(self, thread_id: str, page: PageRequest) -> Page:
        return await self._page(runs, runs.c.thread_id == thread_id, page)

    async def claim_next_run(self, owner: str, lease_until: float) -> Obj | None:
        row = (await self.conn.execute(_NEXT_QUEUED_RUN)).first()
        if row is None:
            return None
        await self.conn.execute(
            _TAKE_LEASE, {"p_id": row.id, "p_owner": owner, "p_lease_until": lease_until}
        )
        return dict(row.body)

    async def renew_leases(self, owner: str, run_ids: list[str], lease_until: float) -> None:
        if run_ids:
            await self.conn.execute(
                _RENEW_LEASES, {"p_ids": run_ids, "p_owner": owner, "p_lease_until": lease_until}
            )

    async def release_run(self, run_id: str, owner: str) -> None:
        await self.conn.execute(_RELEASE_RUN, {"p_id": run_id, "p_owner": owner})

    async def runs_with_lapsed_lease(self, now: float, limit: int) -> list[Obj]:
        query = (
            sa.select(runs.c.body)
            .where(runs.c.lease_owner.is_not(None), runs.c.lease_until < now)
            .order_by(runs.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        rows = (await self.conn.execute(query)).scalars().all()
        if rows:
            await self.conn.execute(
                runs.update()
                .where(runs.c.id.in_([body["id"] for body in rows]))
                .values(lease_owner=None, lease_until=None)
            )
        return [dict(body) for body in rows]

    async def runs_past_expiry(self, now: int, limit: int) -> list[Obj]:
        query = (
            sa.select(runs.c.body)
            .where(runs.c.status.in_(ACTIVE_RUN_STATUSES), runs.c.expires_at <= now)
            .order_by(runs.c.seq)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._bodies(query)

    async def runs_in_status(self, run_ids: list[str], status: str) -> list[str]:
        if not run_ids:
            return []
        result = await self.conn.execute(_RUNS_IN_STATUS, {"p_ids": run_ids, "p_status": status})
        return list(result.scalars().all())

    # -- run steps -------------------------------------------------------------------------

    async def insert_step(self, step: Obj) -> None:
        await self.conn.execute(
            run_steps.insert(),
            {
                "id": step["id"],
                "run_id": step["run_id"],
                "thread_id": step["thread_id"],
                "body": step,
            },
        )

    async def replace_step(self, step: Obj) -> None:
        await self.conn.execute(_REPLACE_STEP, {"p_id": step["id"], "p_body": step})

    async def delete_step(self, step_id: str) -> None:
        await self.conn.execute(run_steps.delete().where(run_steps.c.id == step_id))

    async def get_step(self, run_id: str, step_id: str) -> Obj | None:
        return await self._one_body(_GET_STEP, p_id=step_id, p_run_id=run_id)

    async def steps_of_run(self, run_id: str) -> list[Obj]:
        return await self._bodies(_STEPS_OF_RUN, p_run_id=run_id)

    async def page_steps(self, run_id: str, page: PageRequest) -> Page:
        return await self._page(run_steps, run_steps.c.run_id == run_id, page)

    # -- the event log ---------------------------------------------------------------------

    async def append_events(self, run_id: str, thread_id: str, events: list[RunEvent]) -> int:
        if not events:
            return 0
        self.wakes.add(run_id)
        now = time.time()
        if not isinstance(self.conn, SqliteConnection):
            # Sequence numbers are taken at insert but become visible at commit: holding the
            # run's row makes a run's events commit in sequence order, so a follower that
            # has read up to N can never later find an event numbered below N. (SQLite has
            # one writer at a time: there, they always do.)
            await self.conn.execute(_HOLD_RUN, {"p_run_id": run_id})
        rows = await self.conn.execute(
            _APPEND_EVENTS,
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
        return int(rows.scalars().all()[-1])

    async def withdraw_events(self, run_id: str, object_ids: list[str]) -> None:
        if object_ids:
            await self.conn.execute(
                run_events.delete().where(
                    run_events.c.run_id == run_id, run_events.c.object_id.in_(object_ids)
                )
            )

    async def prune_events(self, older_than: float, limit: int) -> int:
        old = (
            sa.select(run_events.c.seq)
            .join(runs, runs.c.id == run_events.c.run_id)
            .where(run_events.c.created_at < older_than)
            .where(runs.c.status.not_in(ACTIVE_RUN_STATUSES))
            .order_by(run_events.c.created_at)
            .limit(limit)
        )
        seqs = list((await self.conn.execute(old)).scalars().all())
        if seqs:
            await self.conn.execute(run_events.delete().where(run_events.c.seq.in_(seqs)))
        return len(seqs)

    async def events_after(self, run_id: str, after_seq: int, limit: int) -> list[RunEvent]:
        params = {"p_run_id": run_id, "p_seq": after_seq, "p_limit": limit}
        return [
            RunEvent(event=event, data=dict(data), seq=int(seq))
            for seq, event, data in (await self.conn.execute(_EVENTS_AFTER, params)).all()
        ]


def _active_run_conflict(thread_id: str, run_id: str | None) -> Conflict:
    which = f" {run_id}" if run_id else ""
    return Conflict(f"Thread {thread_id} already has an active run{which}.", param="thread_id")
