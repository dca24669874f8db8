"""SQLite commits what clients are told about with a full sync, engine progress without."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from threadline.store.sql_store import SqlStore

FULL, NORMAL = 2, 1


def test_durable_transactions_sync_fully_and_others_do_not(
    tmp_path: Path, run: Callable[[Any], Any]
) -> None:
    store = SqlStore(f"sqlite:///{tmp_path / 'threadline.db'}")

    async def synchronous_level(durable: bool) -> int:
        async with store.transaction(durable=durable) as tx:
            (level,) = await tx.db.execute_sql("PRAGMA synchronous")
            return int(level[0])

    try:
        run(store.open())
        assert run(synchronous_level(durable=True)) == FULL
        assert run(synchronous_level(durable=False)) == NORMAL
        assert run(synchronous_level(durable=True)) == FULL
        assert run(synchronous_level(durable=False)) == NORMAL
    finally:
        run(store.close())
