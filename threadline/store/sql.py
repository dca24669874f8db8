"""Every query the store runs, in one file, for SQLite and PostgreSQL alike.

What differs by dialect is what SQLAlchemy already renders per dialect (`FOR UPDATE SKIP
LOCKED` is a no-op on SQLite, where a single connection serialises every transaction).
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


class SqlTx:
    def __init__(self, conn: AsyncConnection | SqliteConnection):
        self.conn = conn
        # What readers to wake once this transaction commits: run ids, and RUN_QUEUED.
        self.wakes: set[str] = set()

    # -- helpers ---------------------------------------------------------------------------

    async def _one_body(self, query: sa.Select[Any]) -> Obj | None:
        row = (await self.conn.execute(query)).first()
        return None if row is None else dict(row[0])

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
            assistants.insert().values(id=assistant["id"], project=project, body=assistant)
        )

    async def get_assistant(self, project: str, assistant_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(assistants.c.body).where(
                assistants.c.id == assistant_id, assistants.c.project == project
            )
        )

    async def replace_assistant(self, project: str, assistant: Obj) -> None:
        await self.conn.execute(
            assistants.update()
            .where(assistants.c.id == assistant["id"], assistants.c.project == project)
            .values(body=assistant)
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
            threads.insert().values(id=thread["id"], project=project, body=thread)
        )

    async def get_thread(self, project: str, thread_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(threads.c.body).where(threads.c.id == thread_id, threads.c.project == project)
        )

    async def lock_thread(self, project: str, thread_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(threads.c.body)
            .where(threads.c.id == thread_id, threads.c.project == project)
            .with_for_update()
        )

    async def replace_thread(self, project: str, thread: Obj) -> None:
        await self.conn.execute(
            threads.update()
            .where(threads.c.id == thread["id"], threads.c.project == project)
            .values(body=thread)
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
        await self.conn.execute(
            threads.update()
            .where(threads.c.id == thread_id)
            .values(message_count=threads.c.message_count + change)
        )

    async def get_message(self, thread_id: str, message_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(messages.c.body).where(
                messages.c.id == message_id, messages.c.thread_id == thread_id
            )
        )

    async def replace_message(self, message: Obj) -> None:
        await self.conn.execute(
            messages.update().where(messages.c.id == message["id"]).values(body=message)
        )

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
        query = sa.select(messages.c.seq, messages.c.body).where(messages.c.thread_id == thread_id)
        if before_seq is not None:
            query = query.where(messages.c.seq < before_seq)
        query = query.order_by(messages.c.seq.desc()).limit(limit)
        return [(int(seq), dict(body)) for seq, body in (await self.conn.execute(query)).all()]

    async def count_messages(self, thread_id: str) -> int:
        query = sa.select(threads.c.message_count).where(threads.c.id == thread_id)
        return int((await self.conn.execute(query)).scalar() or 0)

    # -- runs ------------------------------------------------------------------------------

    async def insert_run(self, project: str, run: Obj) -> None:
        active = await self.active_run(run["thread_id"])
        if active is not None:
            raise _active_run_conflict(run["thread_id"], active["id"])
        try:
            await self.conn.execute(
                runs.insert().values(
                    id=run["id"],
                    thread_id=run["thread_id"],
                    project=project,
                    status=run["status"],
                    expires_at=run.get("expires_at"),
                    body=run,
                )
            )
        except IntegrityError as exc:
            raise _active_run_conflict(run["thread_id"], None) from exc
        self.wakes.add(RUN_QUEUED)

    async def get_run(self, thread_id: str, run_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(runs.c.body).where(runs.c.id == run_id, runs.c.thread_id == thread_id)
        )

    async def get_run_by_id(self, run_id: str) -> Obj | None:
        return await self._one_body(sa.select(runs.c.body).where(runs.c.id == run_id))

    async def active_run(self, thread_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(runs.c.body).where(
                runs.c.thread_id == thread_id, runs.c.status.in_(ACTIVE_RUN_STATUSES)
            )
        )

    async def replace_run(self, run: Obj, *, expected_status: str | None = None) -> bool:
        query = runs.update().where(runs.c.id == run["id"])
        if expected_status is not None:
            query = query.where(runs.c.status == expected_status)
        values: dict[str, Any] = {
            "status": run["status"],
            "expires_at": run.get("expires_at"),
            "body": run,
        }
        if run["status"] not in ACTIVE_RUN_STATUSES or run["status"] == "requires_action":
            values.update(lease_owner=None, lease_until=None)
        result = await self.conn.execute(query.values(**values))
        if result.rowcount and run["status"] == "queued":
            self.wakes.add(RUN_QUEUED)
        return bool(result.rowcount)

    async def page_runs(self, thread_id: str, page: PageRequest) -> Page:
        return await self._page(runs, runs.c.thread_id == thread_id, page)

    async def claim_next_run(self, owner: str, lease_until: float) -> Obj | None:
        query = (
            sa.select(runs.c.id, runs.c.body)
            .where(runs.c.status == "queued", runs.c.lease_owner.is_(None))
            .order_by(runs.c.seq)
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        row = (await self.conn.execute(query)).first()
        if row is None:
            return None
        await self.conn.execute(
            runs.update()
            .where(runs.c.id == row.id)
            .values(lease_owner=owner, lease_until=lease_until)
        )
        return dict(row.body)

    async def renew_leases(self, owner: str, run_ids: list[str], lease_until: float) -> None:
        if run_ids:
            await self.conn.execute(
                runs.update()
                .where(runs.c.id.in_(run_ids), runs.c.lease_owner == owner)
                .values(lease_until=lease_until)
            )

    async def release_run(self, run_id: str, owner: str) -> None:
        await self.conn.execute(
            runs.update()
            .where(runs.c.id == run_id, runs.c.lease_owner == owner)
            .values(lease_owner=None, lease_until=None)
        )

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
        return [dict(body) for body in (await self.conn.execute(query)).scalars().all()]

    async def runs_in_status(self, run_ids: list[str], status: str) -> list[str]:
        if not run_ids:
            return []
        query = sa.select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.status == status)
        return list((await self.conn.execute(query)).scalars().all())

    # -- run steps -------------------------------------------------------------------------

    async def insert_step(self, step: Obj) -> None:
        await self.conn.execute(
            run_steps.insert().values(
                id=step["id"], run_id=step["run_id"], thread_id=step["thread_id"], body=step
            )
        )

    async def replace_step(self, step: Obj) -> None:
        await self.conn.execute(
            run_steps.update().where(run_steps.c.id == step["id"]).values(body=step)
        )

    async def delete_step(self, step_id: str) -> None:
        await self.conn.execute(run_steps.delete().where(run_steps.c.id == step_id))

    async def get_step(self, run_id: str, step_id: str) -> Obj | None:
        return await self._one_body(
            sa.select(run_steps.c.body).where(
                run_steps.c.id == step_id, run_steps.c.run_id == run_id
            )
        )

    async def steps_of_run(self, run_id: str) -> list[Obj]:
        query = (
            sa.select(run_steps.c.body)
            .where(run_steps.c.run_id == run_id)
            .order_by(run_steps.c.seq)
        )
        return [dict(body) for body in (await self.conn.execute(query)).scalars().all()]

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
            await self.conn.execute(
                sa.select(runs.c.id).where(runs.c.id == run_id).with_for_update()
            )
        query = run_events.insert().returning(run_events.c.seq, sort_by_parameter_order=True)
        rows = await self.conn.execute(
            query,
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
        query = (
            sa.select(run_events.c.seq, run_events.c.event, run_events.c.data)
            .where(run_events.c.run_id == run_id, run_events.c.seq > after_seq)
            .order_by(run_events.c.seq)
            .limit(limit)
        )
        return [
            RunEvent(event=event, data=dict(data), seq=int(seq))
            for seq, event, data in (await self.conn.execute(query)).all()
        ]


def _active_run_conflict(thread_id: str, run_id: str | None) -> Conflict:
    which = f" {run_id}" if run_id else ""
    return Conflict(f"Thread {thread_id} already has an active run{which}.", param="thread_id")
