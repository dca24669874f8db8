"""What every family of queries shares: typed parameters, single-row updates of a body,
multi-row inserts and keyset pages, and the transaction's helpers built on them.

`sql.py` holds the queries of assistants, threads, messages, runs and their logs;
`sql_files.py` those of files, vector stores and background jobs. Both are methods of the
one transaction class (`SqlTx`), so a use case can touch both in one transaction.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from threadline.domain.errors import InvalidRequest
from threadline.domain.records import Obj, Page, PageRequest
from threadline.store.compiled import JsonMerge, Query, param
from threadline.store.drivers import Driver
from threadline.store.schema import run_events, runs

# Inserts of several rows take one statement per row count, rendered on first use; larger
# batches go in slices of this many.
MAX_ROWS_PER_INSERT = 64


def _p(name: str, column: sa.Column[Any]) -> sa.BindParameter[Any]:
    """A named parameter typed like `column` (so a body is stored as JSON)."""
    return param(name, column.type)


_ID = _p("p_id", runs.c.id)
_LIMIT = param("p_limit", sa.Integer())


@functools.cache
def _update(
    table: sa.Table,
    fields: tuple[str, ...] | None,
    where: tuple[str, ...],
    columns: tuple[str, ...] = (),
    release_lease: bool = False,
) -> Query:
    """UPDATE of one row's body, on the row whose `where` columns equal `p_where_{column}`,
    and of the real `columns` from `p_{column}`. With `fields`, the database sets those
    fields from the JSON parameter `p_patch` and returns the body as it now is (PostgreSQL);
    without, the body is `p_body`, merged by the caller from the row as read in the same
    transaction (SQLite). A statement per shape of change, rendered once."""
    conditions = [table.c[name] == _p(f"p_where_{name}", table.c[name]) for name in where]
    values: dict[str, Any] = {
        "body": _p("p_body", table.c.body)
        if fields is None
        else JsonMerge(table.c.body, "p_patch", fields)
    }
    values.update({name: _p(f"p_{name}", table.c[name]) for name in columns})
    if release_lease:
        values.update(lease_owner=None, lease_until=None)
    statement = table.update().where(*conditions).values(**values)
    return Query(statement if fields is None else statement.returning(table.c.body))


@functools.cache
def _body_where(table: sa.Table, where: tuple[str, ...]) -> Query:
    conditions = [table.c[name] == _p(f"p_where_{name}", table.c[name]) for name in where]
    return Query(sa.select(table.c.body).where(*conditions))


@functools.cache
def _insert(table: sa.Table, columns: tuple[str, ...], rows: int) -> Query:
    """INSERT of `rows` rows; row i's values are the parameters `{column}_{i}`; on the event
    log, returning the sequence numbers taken."""
    values = [{name: _p(f"{name}_{i}", table.c[name]) for name in columns} for i in range(rows)]
    statement = table.insert().values(values)
    if table is run_events:
        statement = statement.returning(run_events.c.seq)
    return Query(statement)


@functools.cache
def _row_param_names(columns: tuple[str, ...], rows: int) -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(f"{name}_{i}" for name in columns) for i in range(rows))


def _row_params(columns: tuple[str, ...], rows: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """The parameters of `_insert(table, columns, len(rows))`; each row's keys are `columns`,
    in that order."""
    params: dict[str, Any] = {}
    for names, row in zip(_row_param_names(columns, len(rows)), rows, strict=True):
        params.update(zip(names, row.values(), strict=True))
    return params


class _Paging:
    """Keyset pagination on `seq` within a scope (a thread's messages, a run's steps, ...):
    exact cursors, one index range scan per page. A query per shape of request."""

    def __init__(self, table: sa.Table, *scope: str, only: sa.ColumnElement[bool] | None = None):
        """`only`: a condition every row of a page meets beside the scope (a thread's
        messages without its other items, say)."""
        self.table = table
        self.scope = [table.c[name] == _p(f"p_{name}", table.c[name]) for name in scope]
        self.cursor = Query(sa.select(table.c.seq).where(*self.scope, table.c.id == _ID))
        if only is not None:
            self.scope.append(only)
        self._queries: dict[tuple[bool, bool, bool, bool], Query] = {}

    def query(self, after: bool, before: bool, ascending: bool, scan_ascending: bool) -> Query:
        shape = (after, before, ascending, scan_ascending)
        if shape not in self._queries:
            self._queries[shape] = self._build(*shape)
        return self._queries[shape]

    def _build(self, after: bool, before: bool, ascending: bool, scan_ascending: bool) -> Query:
        seq = self.table.c.seq
        query = sa.select(self.table.c.body).where(*self.scope)
        if after:
            bound = param("p_after", sa.BigInteger())
            query = query.where(seq > bound if ascending else seq < bound)
        if before:
            bound = param("p_before", sa.BigInteger())
            query = query.where(seq < bound if ascending else seq > bound)
        query = query.order_by(seq.asc() if scan_ascending else seq.desc())
        return Query(query.limit(_LIMIT))


class SqlTxBase:
    def __init__(self, db: Driver, wakes: set[str] | None = None):
        self.db = db
        # What readers to wake once this transaction commits: run ids, RUN_QUEUED, JOB_QUEUED.
        self.wakes: set[str] = set() if wakes is None else wakes

    # -- helpers ---------------------------------------------------------------------------

    async def _one_body(self, query: Query, **params: Any) -> Obj | None:
        rows = await self.db.fetch(query, params)
        return dict(rows[0][0]) if rows else None

    async def _bodies(self, query: Query, **params: Any) -> list[Obj]:
        return [dict(row[0]) for row in await self.db.fetch(query, params)]

    async def _update_body(
        self,
        table: sa.Table,
        changes: Obj,
        where: dict[str, Any],
        columns: dict[str, Any] | None = None,
        release_lease: bool = False,
    ) -> Obj | None:
        if not changes:
            raise ValueError("an update changes at least one field")
        columns = columns or {}
        params: dict[str, Any] = {f"p_where_{name}": value for name, value in where.items()}
        params.update({f"p_{name}": value for name, value in columns.items()})
        if self.db.holds_row_locks:
            # PostgreSQL: the database sets the fields, under the row's lock.
            merge = _update(table, tuple(changes), tuple(where), tuple(columns), release_lease)
            return await self._one_body(merge, p_patch=changes, **params)
        # SQLite runs one writing transaction at a time, so the body read here is the one the
        # write replaces: merged in Python, the body keeps the text `json_codec` writes (its
        # JSON functions would write it minified, and integers beyond 64 bits read back as
        # floats from that).
        current = await self._one_body(_body_where(table, tuple(where)), **params)
        if current is None:
            return None
        merged = {**current, **changes}
        query = _update(table, None, tuple(where), tuple(columns), release_lease)
        await self.db.execute(query, {**params, "p_body": merged})
        return merged

    async def _insert_rows(self, table: sa.Table, rows: list[dict[str, Any]]) -> list[int]:
        """Insert rows of the same columns, in order; on the event log, the seqs taken."""
        taken: list[int] = []
        columns = tuple(rows[0])
        for start in range(0, len(rows), MAX_ROWS_PER_INSERT):
            batch = rows[start : start + MAX_ROWS_PER_INSERT]
            query = _insert(table, columns, len(batch))
            if table is run_events:
                params = _row_params(columns, batch)
                taken += [int(row[0]) for row in await self.db.fetch(query, params)]
            else:
                await self.db.execute(query, _row_params(columns, batch))
        return taken

    async def _page(self, paging: _Paging, page: PageRequest, **scope: Any) -> Page[Obj]:
        """Keyset pagination on `seq`: exact cursors, one index range scan per page."""
        params: dict[str, Any] = {f"p_{name}": value for name, value in scope.items()}
        params["p_limit"] = page.limit + 1
        if page.after is not None:
            params["p_after"] = await self._cursor_seq(paging, params, page.after, "after")
        if page.before is not None:
            params["p_before"] = await self._cursor_seq(paging, params, page.before, "before")
        ascending = page.order == "asc"
        walk_backwards = page.before is not None and page.after is None
        query = paging.query(
            page.after is not None, page.before is not None, ascending, ascending != walk_backwards
        )
        rows = await self.db.fetch(query, params)
        has_more = len(rows) > page.limit
        bodies = [dict(row[0]) for row in rows[: page.limit]]
        if walk_backwards:
            bodies.reverse()
        return Page(data=bodies, has_more=has_more)

    async def _cursor_seq(
        self, paging: _Paging, scope: dict[str, Any], cursor: str, which: str
    ) -> int:
        rows = await self.db.fetch(paging.cursor, {**scope, "p_id": cursor})
        if not rows:
            raise InvalidRequest(f"No object found with id '{cursor}' to page from.", param=which)
        return int(rows[0][0])
