"""Wakes waiters when the store commits something they wait for.

Keys are run ids (new events in that run's log) and `RUN_QUEUED` (a run became claimable).
Waiters subscribe before they read, so a commit that lands between their read and their
wait still wakes them. Within one process the store notifies after each commit; across
processes (PostgreSQL) a LISTEN connection feeds the same `notify`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

RUN_QUEUED = "run-queued"
JOB_QUEUED = "job-queued"


class EventSignal:
    def __init__(self) -> None:
        self._waiters: dict[str, set[asyncio.Event]] = {}

    @contextmanager
    def subscribe(self, key: str) -> Iterator[asyncio.Event]:
        event = asyncio.Event()
        self._waiters.setdefault(key, set()).add(event)
        try:
            yield event
        finally:
            waiters = self._waiters.get(key)
            if waiters is not None:
                waiters.discard(event)
                if not waiters:
                    del self._waiters[key]

    def notify(self, keys: Iterable[str]) -> None:
        for key in keys:
            for event in self._waiters.get(key, ()):
                event.set()
