"""Group commit on the one SQLite connection.

Transactions take turns on the connection inside one open database transaction, each but
the first of a group in a savepoint of its own. Once a transaction that wrote something a
client waits for (durable) is among them, or another group has already committed in this
pass of the event loop, the commit waits for the end of the pass, so that the transactions
ready to run alongside join it: a burst of requests pays for one commit (and one sync to
disk) instead of one each. Committed one by one, 1,000 runs' progress rewrote the same pages
of the log three thousand times. Otherwise the group commits as soon as its transaction
ends, so a lone run's progress and the streams that follow it wait for nothing. Each
transaction returns only once its writes are committed, and one that fails rolls back its
own writes alone.

Commits run at `synchronous=NORMAL` (SQLite may not change the level inside a transaction,
and a group mixes both kinds); when a group holds a durable write, the write-ahead log is
then synced to disk (`LogSyncer`), which is what `synchronous=FULL` would have done at that
commit, and its members return once it is. Whoever waits for the data (a stream, the
worker) is woken at the commit itself, as on PostgreSQL for a commit that is not synced:
the worker may claim a run while its creation is still being synced, and since the log is
written in order, anything that depends on it is lost with it or kept with it.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from threadline.store.checkpoints import Checkpointer
from threadline.store.engine import connect_sqlite, sqlite_file
from threadline.store.log_sync import LogSyncer

# A group commits after this many transactions even if more are ready, so that under a
# steady stream of them none waits long for its commit.
MAX_GROUP = 64


class TransactionLost(sqlite3.OperationalError):
    """SQLite rolled the whole group back itself (a full disk, an I/O error)."""


class _Group:
    def __init__(self) -> None:
        self.size = 0
        self.durable = False
        self.on_commit: list[Callable[[], None]] = []
        self.committed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # A failed commit is raised in every member still waiting; none may be left.
        self.committed.add_done_callback(lambda done: done.cancelled() or done.exception())


class GroupCommit:
    def __init__(self, url: str):
        self._url = url
        self._file = sqlite_file(url)
        self._connection: sqlite3.Connection | None = None
        self._syncer: LogSyncer | None = None
        self._checkpointer: Checkpointer | None = None
        self._turn = asyncio.Lock()
        self._group: _Group | None = None
        self._commit_scheduled = False
        self._committed_this_pass = False

    @asynccontextmanager
    async def transaction(
        self, *, durable: bool, on_commit: Callable[[], None]
    ) -> AsyncIterator[sqlite3.Connection]:
        """The connection, inside a transaction of the caller's own until the block ends;
        returns once the block's writes are committed (and, if `durable`, on disk).
        `on_commit` runs as they are committed, even if the caller has stopped waiting."""
        await self._turn.acquire()
        try:
            connection = self._open()
            first = self._group is None
            group = self._join(connection)
            if not first:
                connection.execute("SAVEPOINT member")
            changes = connection.total_changes
            try:
                yield connection
            except BaseException as exc:
                self._undo(connection, group, first, exc)
                raise
            if not first:
                connection.execute("RELEASE member")
            group.durable = group.durable or (durable and connection.total_changes > changes)
            group.size += 1
            group.on_commit.append(on_commit)
            self._settle(group)
        finally:
            self._turn.release()
        await asyncio.shield(group.committed)

    async def close(self) -> None:
        async with self._turn:
            self._commit()  # a group whose commit is still due
        if self._syncer is not None:
            self._syncer.stop()
            self._syncer = None
        if self._checkpointer is not None:
            self._checkpointer.stop()
            self._checkpointer = None
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def _open(self) -> sqlite3.Connection:
        if self._connection is None:
            self._connection = connect_sqlite(self._url)
            self._connection.execute("PRAGMA synchronous=NORMAL")
            if self._file is not None:
                self._connection.execute("PRAGMA wal_autocheckpoint=0")
                self._checkpointer = Checkpointer(self._file)
                self._syncer = LogSyncer(f"{self._file}-wal")
        return self._connection

    def _join(self, connection: sqlite3.Connection) -> _Group:
        if self._group is None:
            connection.execute("BEGIN")
            self._group = _Group()
        return self._group

    def _settle(self, group: _Group) -> None:
        """After a transaction ends: commit now if it is alone, else once the others ready
        have had their turn (or the group is full).

        A transaction with nothing durable is alone unless another committed in this pass of
        the event loop: then the rest of the pass is busy too, and joins one commit."""
        if group.size >= MAX_GROUP or not (group.durable or self._committed_this_pass):
            self._commit()
        elif not self._commit_scheduled:
            self._commit_scheduled = True
            asyncio.get_running_loop().call_soon(self._commit_when_free)

    def _undo(
        self, connection: sqlite3.Connection, group: _Group, first: bool, error: BaseException
    ) -> None:
        """Roll back one transaction's writes; the rest of its group goes on as planned."""
        if connection.in_transaction and not first:
            connection.execute("ROLLBACK TO member")
            connection.execute("RELEASE member")
            self._settle(group)
            return
        # The group's first transaction (nothing else is in it), or SQLite has rolled the
        # whole group back itself: then every member still waiting has lost its writes.
        self._group = None
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        if first:
            group.committed.set_result(None)
        else:
            group.committed.set_exception(TransactionLost(f"rolled back by SQLite: {error}"))

    def _commit_when_free(self) -> None:
        self._commit_scheduled = False
        if self._turn.locked():
            return  # a transaction is under way: it settles the group as it ends
        self._commit()

    def _commit(self) -> None:
        connection, group = self._connection, self._group
        if connection is None or group is None:
            return
        self._group = None
        try:
            connection.execute("COMMIT")
        except Exception as exc:  # a disk error, a full disk
            try:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
            finally:
                group.committed.set_exception(exc)
            return
        for on_commit in group.on_commit:
            on_commit()
        if group.durable and self._syncer is not None:
            self._syncer.sync(group.committed)
        else:  # nothing durable, or an in-memory database: nothing to sync
            group.committed.set_result(None)
        if self._checkpointer is not None:
            self._checkpointer.nudge()
        if not self._committed_this_pass:
            self._committed_this_pass = True
            asyncio.get_running_loop().call_soon(self._end_pass)

    def _end_pass(self) -> None:
        self._committed_this_pass = False
