"""Group commit on the one SQLite connection.

Transactions take turns on the connection, each inside a savepoint of its own in one open
database transaction. Once a transaction a client waits for (durable) is among them, the
commit waits one pass of the event loop, so that the transactions ready to run alongside
join it: a burst of requests pays for one commit and one sync to disk instead of one each.
Without one, there is no sync to share, and the group commits as soon as its transaction
ends, so the engine's progress and the streams that follow it wait for nothing. Each
transaction returns only once its writes are committed, and one that fails rolls back its
own writes alone.

Commits run at `synchronous=NORMAL` (SQLite may not change the level inside a transaction,
and a group mixes both kinds); when a group holds a durable transaction, the write-ahead log
is then synced to disk, which is what `synchronous=FULL` would have done at that commit.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from threadline.store.engine import connect_sqlite, sqlite_file

# A group commits after this many transactions even if more are ready, so that under a
# steady stream of them none waits long for its commit.
MAX_GROUP = 64


class _Group:
    def __init__(self) -> None:
        self.size = 0
        self.durable = False
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A failed commit is raised in every member still waiting; none may be left.
        self.committed.add_done_callback(lambda done: done.cancelled() or done.exception())


class GroupCommit:
    def __init__(self, url: str):
        self._url = url
        self._file = sqlite_file(url)
        self._connection: sqlite3.Connection | None = None
        self._wal: int | None = None
        self._turn = asyncio.Lock()
        self._group: _Group | None = None
        self._commit_scheduled = False

    @asynccontextmanager
    async def transaction(self, *, durable: bool) -> AsyncIterator[sqlite3.Connection]:
        """The connection, inside a transaction of the caller's own until the block ends;
        returns once the block's writes are committed (and, if `durable`, on disk)."""
        await self._turn.acquire()
        try:
            connection = self._open()
            # The group's first transaction needs no savepoint: if it fails, nothing else
            # is in the database transaction yet.
            first = self._group is None
            group = self._join(connection)
            if not first:
                connection.execute("SAVEPOINT member")
            try:
                yield connection
            except BaseException:
                self._undo(connection, group, first)
                raise
            if not first:
                connection.execute("RELEASE member")
            group.durable = group.durable or durable
            group.size += 1
            if not group.durable or group.size >= MAX_GROUP:
                self._commit()
            elif not self._commit_scheduled:
                self._commit_scheduled = True
                asyncio.get_running_loop().call_soon(self._commit_when_free)
        finally:
            self._turn.release()
        await asyncio.shield(group.committed)

    def close(self) -> None:
        self._commit()  # a group whose commit is still due
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect_sqlite(self._url)
            self._connection.execute("PRAGMA synchronous=NORMAL")
        return self._connection

    def _join(self, connection: sqlite3.Connection) -> _Group:
        if self._group is None:
            connection.execute("BEGIN")
            self._group = _Group()
        return self._group

    def _undo(self, connection: sqlite3.Connection, group: _Group, first: bool) -> None:
        """Roll back one transaction's writes; the rest of its group commits as planned
        (a group with others in it holds a durable one, so its commit is scheduled)."""
        if not first:
            connection.execute("ROLLBACK TO member")
            connection.execute("RELEASE member")
            return
        self._group = None
        connection.execute("ROLLBACK")
        group.committed.set_result(None)

    def _commit_when_free(self) -> None:
        self._commit_scheduled = False
        if self._turn.locked():
            return  # a transaction is under way: it schedules the commit again as it ends
        self._commit()

    def _commit(self) -> None:
        connection, group = self._connection, self._group
        if connection is None or group is None:
            return
        self._group = None
        try:
            connection.execute("COMMIT")
            if group.durable:
                self._sync_log()
        except Exception as exc:  # a disk error, a full disk
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            group.committed.set_exception(exc)
        else:
            group.committed.set_result(None)

    def _sync_log(self) -> None:
        if self._file is None:  # an in-memory database: nothing to sync
            return
        if self._wal is None:
            self._wal = os.open(f"{self._file}-wal", os.O_RDONLY)
        getattr(os, "fdatasync", os.fsync)(self._wal)  # macOS has no fdatasync
