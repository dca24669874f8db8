"""SQLite: transactions that wait for the connection commit together, each all or nothing;
what clients are told about is synced to disk, engine progress is not; the log reaches the
database file through a checkpoint thread."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from threadline.domain.errors import Conflict
from threadline.store.drivers import SqliteDriver
from threadline.store.signal import RUN_QUEUED
from threadline.store.sql_store import SqlStore

Run = Callable[[Any], Any]


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "threadline.db"


@pytest.fixture
def store(database: Path, run: Run) -> Iterator[SqlStore]:
    store = SqlStore(f"sqlite:///{database}")
    run(store.open())
    try:
        yield store
    finally:
        run(store.close())


@pytest.fixture
def log_syncs(database: Path, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files synced to disk with fdatasync, as they are synced."""
    synced: list[str] = []
    real = os.fdatasync

    def recording(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", recording)
    return synced


def _thread(number: int) -> dict[str, Any]:
    return {"id": f"thread_{number}", "metadata": {}}


def _stored_threads(database: Path) -> list[str]:
    """What another connection sees: committed rows only."""
    with sqlite3.connect(database) as other:
        rows = other.execute("SELECT id FROM threads ORDER BY seq").fetchall()
    return [row[0] for row in rows]


async def _insert(store: SqlStore, number: int, *, durable: bool = True) -> None:
    async with store.transaction(durable=durable) as tx:
        await tx.insert_thread("default", _thread(number))


async def _queue_a_run(store: SqlStore) -> None:
    """Durably, `thread_1` and a queued run on it."""
    thread = _thread(1)
    queued = {"id": "run_1", "thread_id": thread["id"]}
    queued.update(status="queued", expires_at=None)
    async with store.transaction() as tx:
        await tx.insert_thread("default", thread)
        await tx.insert_run("default", queued)


def test_a_durable_commit_syncs_the_log_and_engine_progress_does_not(
    store: SqlStore, database: Path, log_syncs: list[str], run: Run
) -> None:
    run(_insert(store, 1, durable=False))
    assert log_syncs == []

    run(_insert(store, 2, durable=True))
    assert log_syncs == [f"{database}-wal"]
    assert _stored_threads(database) == ["thread_1", "thread_2"]


def test_transactions_waiting_together_share_one_commit_and_one_sync(
    store: SqlStore, database: Path, log_syncs: list[str], run: Run
) -> None:
    async def burst() -> None:
        await asyncio.gather(*(_insert(store, n) for n in range(20)))

    run(burst())

    assert _stored_threads(database) == [f"thread_{n}" for n in range(20)]
    assert len(log_syncs) == 1


@pytest.fixture
def log_commits(store: SqlStore, run: Run) -> list[str]:
    """Each COMMIT the store's connection runs, as SQLite runs it."""
    commits: list[str] = []

    async def connection() -> sqlite3.Connection:
        async with store.transaction(durable=False) as tx:
            assert isinstance(tx.db, SqliteDriver)
            return tx.db.connection

    run(connection()).set_trace_callback(
        lambda sql: commits.append(sql) if sql.startswith("COMMIT") else None
    )
    return commits


def test_engine_progress_alone_commits_at_once(
    store: SqlStore, database: Path, log_commits: list[str], run: Run
) -> None:
    async def insert_then_look() -> list[str]:
        await _insert(store, 1, durable=False)
        return _stored_threads(database)

    assert run(insert_then_look()) == ["thread_1"]
    assert log_commits == ["COMMIT"]


def test_engine_progress_written_in_one_busy_moment_shares_one_commit_after_the_first(
    store: SqlStore, database: Path, log_commits: list[str], log_syncs: list[str], run: Run
) -> None:
    """The first commits at once; the others, ready in the same pass of the event loop, join
    one commit, instead of each writing the same pages of the log again."""

    async def burst() -> None:
        await asyncio.gather(*(_insert(store, n, durable=False) for n in range(20)))

    run(burst())

    assert _stored_threads(database) == [f"thread_{n}" for n in range(20)]
    assert log_commits == ["COMMIT", "COMMIT"]
    assert log_syncs == []


def test_committed_writes_reach_the_database_file_itself(
    store: SqlStore, database: Path, run: Run
) -> None:
    """The write-ahead log is copied into the database file by the store's checkpoint
    thread: a connection reading the file alone, log ignored, finds the rows there."""
    for number in range(3):
        run(_insert(store, number, durable=False))

    async def in_the_file() -> list[str]:
        async with asyncio.timeout(30):
            while True:
                with contextlib.closing(
                    sqlite3.connect(f"file:{database}?immutable=1", uri=True)
                ) as reader:
                    rows = reader.execute("SELECT id FROM threads ORDER BY seq").fetchall()
                if rows:
                    return [row[0] for row in rows]
                await asyncio.sleep(0.05)

    assert run(in_the_file()) == ["thread_0", "thread_1", "thread_2"]


def test_a_failing_transaction_rolls_back_only_its_own_writes(
    store: SqlStore, database: Path, log_syncs: list[str], run: Run
) -> None:
    async def failing() -> None:
        async with store.transaction() as tx:
            await tx.insert_thread("default", _thread(2))
            raise Conflict("refused")

    async def together() -> list[Any]:
        return await asyncio.gather(
            _insert(store, 1), failing(), _insert(store, 3), return_exceptions=True
        )

    outcomes = run(together())

    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], Conflict)
    assert _stored_threads(database) == ["thread_1", "thread_3"]
    assert len(log_syncs) == 1


def test_a_transaction_returns_only_once_its_group_has_committed(
    store: SqlStore, database: Path, run: Run
) -> None:
    seen_on_return: dict[int, list[str]] = {}

    async def insert_then_look(number: int) -> None:
        await _insert(store, number, durable=True)
        seen_on_return[number] = _stored_threads(database)

    async def burst() -> None:
        await asyncio.gather(*(insert_then_look(n) for n in range(5)))

    run(burst())

    assert len(seen_on_return) == 5
    for number, seen in seen_on_return.items():
        assert f"thread_{number}" in seen


def test_a_group_commits_when_a_member_that_waited_inside_its_transaction_fails(
    store: SqlStore, database: Path, log_syncs: list[str], run: Run
) -> None:
    """The group's commit comes due while the failing member holds the connection; its
    failure must not leave the others waiting for a commit that never comes."""

    async def waits_then_fails() -> None:
        async with store.transaction() as tx:
            await tx.insert_thread("default", _thread(2))
            await asyncio.sleep(0.01)
            raise Conflict("refused")

    async def together() -> list[Any]:
        async with asyncio.timeout(10):
            return await asyncio.gather(
                _insert(store, 1), waits_then_fails(), return_exceptions=True
            )

    outcomes = run(together())

    assert outcomes[0] is None
    assert isinstance(outcomes[1], Conflict)
    assert _stored_threads(database) == ["thread_1"]
    run(_insert(store, 3))  # the connection is free and outside any transaction
    assert _stored_threads(database) == ["thread_1", "thread_3"]


def test_reads_are_not_synced_to_disk(store: SqlStore, log_syncs: list[str], run: Run) -> None:
    async def read() -> None:
        async with store.transaction(durable=True) as tx:
            await tx.get_thread("default", "thread_none")

    async def reads() -> None:
        await asyncio.gather(*(read() for _ in range(5)))

    run(reads())

    assert log_syncs == []


def test_waiters_are_woken_when_a_group_commits_even_if_its_writer_stopped_waiting(
    store: SqlStore, database: Path, run: Run
) -> None:
    """A writer cancelled while it waits for its group's commit (a worker stopping) still
    has its writes committed, and whoever waits for them is woken."""

    async def scenario() -> bool:
        with store.signal.subscribe(RUN_QUEUED) as woken:
            writer = asyncio.create_task(_queue_a_run(store))
            await asyncio.sleep(0)  # the writer's block has run; its group's commit is due
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            async with asyncio.timeout(10):
                await woken.wait()
            return writer.cancelled()

    assert run(scenario()) is True
    assert _stored_threads(database) == ["thread_1"]


def test_waiters_wake_at_the_commit_and_the_durable_writer_once_the_log_is_synced(
    store: SqlStore, database: Path, monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    """The sync runs on a thread of its own: while it is under way the event loop goes on,
    the worker may claim the run, and only the client who created it still waits."""
    syncing, release = threading.Event(), threading.Event()
    real = os.fdatasync

    def held(fd: int) -> None:
        syncing.set()
        release.wait(30)
        real(fd)

    monkeypatch.setattr(os, "fdatasync", held)

    async def scenario() -> tuple[bool, list[str], bool]:
        with store.signal.subscribe(RUN_QUEUED) as woken:
            writer = asyncio.create_task(_queue_a_run(store))
            async with asyncio.timeout(10):
                await woken.wait()
                await asyncio.to_thread(syncing.wait, 10)
            async with store.transaction(durable=False) as tx:
                seen = await tx.get_thread("default", "thread_1")
            waiting_for_the_sync = not writer.done()
            release.set()
            async with asyncio.timeout(10):
                await writer
            return seen is not None, _stored_threads(database), waiting_for_the_sync

    assert run(scenario()) == (True, ["thread_1"], True)


def test_a_failed_sync_reaches_the_durable_writer(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch, run: Run
) -> None:
    def failing(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(os, "fdatasync", failing)

    with pytest.raises(OSError, match="Input/output error"):
        run(_insert(store, 1, durable=True))
