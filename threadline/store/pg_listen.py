"""Carries commit notifications between processes through PostgreSQL LISTEN/NOTIFY.

Each transaction that appended events or queued a run sends one NOTIFY on commit; every
process listens on one dedicated connection and feeds what it hears to its `EventSignal`.
A lost connection is re-opened; meanwhile readers fall back on their periodic re-reads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

import asyncpg

from threadline.store.signal import EventSignal

log = logging.getLogger(__name__)

CHANNEL = "threadline"
RECONNECT_SECONDS = 1.0


class PgListener:
    def __init__(self, dsn: str, signal: EventSignal):
        self.dsn = dsn
        self.signal = signal
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._listen(), name="threadline-pg-listen")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _heard(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        self.signal.notify(str(payload).split())

    async def _listen(self) -> None:
        while True:
            try:
                connection = await asyncpg.connect(self.dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("cannot listen for notifications (%s); retrying", exc)
                await asyncio.sleep(RECONNECT_SECONDS)
                continue
            lost = asyncio.Event()
            connection.add_termination_listener(_setter(lost))
            try:
                await connection.add_listener(CHANNEL, self._heard)
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
            log.warning("notification connection lost; reconnecting")


def _setter(event: asyncio.Event) -> Callable[[object], None]:
    return lambda _connection: event.set()
