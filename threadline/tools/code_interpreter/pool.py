"""The live sandboxes of one worker, one per thread.

A thread's sandbox lives on between its calls (its variables with it) until it has been idle
for `idle_seconds`, or until a call of another thread needs its place when `max_live` are up
(the least recently used idle one goes first). A sandbox in use is never taken: a call that
finds every place busy waits its turn, first come first served. One call at a time runs in a
thread's sandbox; a second call of the same thread (parallel tool calls) waits for the first.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from threadline.tools.code_interpreter.sandbox import Launcher, Sandbox

ThreadKey = tuple[str, str]  # (project, thread id)


@dataclass
class _Place:
    sandbox: Sandbox | None = None
    busy: bool = False
    last_used: float = 0.0


@dataclass(frozen=True)
class Lease:
    """A thread's sandbox, held for one call; `fresh` when it was started for this call
    (so nothing of earlier calls is in it but the files put back)."""

    sandbox: Sandbox
    fresh: bool


class SandboxPool:
    def __init__(
        self,
        launcher: Launcher,
        *,
        max_live: int = 8,
        idle_seconds: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.launcher = launcher
        self.max_live = max_live
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._places: OrderedDict[ThreadKey, _Place] = OrderedDict()
        self._changed = asyncio.Condition()
        self._reaper: asyncio.Task[None] | None = None
        self._closing: set[asyncio.Future[None]] = set()  # sandboxes evicted, closing
        self.started = 0  # sandboxes started, in all

    def live(self) -> int:
        return sum(1 for place in self._places.values() if place.sandbox is not None)

    @contextlib.asynccontextmanager
    async def lease(self, key: ThreadKey) -> AsyncIterator[Lease]:
        place, fresh = await self._take(key)
        try:
            if place.sandbox is None:
                place.sandbox = await Sandbox.start(self.launcher)
                self.started += 1
            yield Lease(place.sandbox, fresh)
        except BaseException:
            if place.sandbox is not None and not place.sandbox.alive:
                place.sandbox = None
            raise
        finally:
            await self._give_back(key, place)

    async def _take(self, key: ThreadKey) -> tuple[_Place, bool]:
        self._start_reaper()
        async with self._changed:
            while True:
                await self._reap_idle()
                place = self._places.get(key)
                if place is not None and not place.busy:
                    if place.sandbox is not None and not place.sandbox.alive:
                        place.sandbox = None
                    place.busy = True
                    self._places.move_to_end(key)
                    return place, place.sandbox is None
                if place is None and (len(self._places) < self.max_live or self._evict_one()):
                    place = _Place(busy=True)
                    self._places[key] = place
                    return place, True
                await self._changed.wait()

    def _evict_one(self) -> bool:
        """Close the least recently used idle sandbox, for a thread that has none."""
        for key, place in self._places.items():
            if not place.busy:
                del self._places[key]
                if place.sandbox is not None:
                    closing = asyncio.ensure_future(place.sandbox.close())
                    self._closing.add(closing)
                    closing.add_done_callback(self._closing.discard)
                return True
        return False

    async def _give_back(self, key: ThreadKey, place: _Place) -> None:
        async with self._changed:
            place.busy = False
            place.last_used = self.clock()
            if place.sandbox is None and self._places.get(key) is place:
                del self._places[key]  # nothing live to keep the place for
            self._changed.notify_all()

    async def _reap_idle(self) -> None:
        deadline = self.clock() - self.idle_seconds
        stale = [
            key
            for key, place in self._places.items()
            if not place.busy and place.last_used <= deadline
        ]
        for key in stale:
            place = self._places.pop(key)
            if place.sandbox is not None:
                await place.sandbox.close()
        if stale:
            self._changed.notify_all()

    async def reap(self) -> None:
        """Close the sandboxes idle past the timeout."""
        async with self._changed:
            await self._reap_idle()

    def _start_reaper(self) -> None:
        if self._reaper is None or self._reaper.done():
            self._reaper = asyncio.create_task(self._reap_forever())

    async def _reap_forever(self) -> None:
        period = max(1.0, min(self.idle_seconds / 4, 30.0))
        while self._places:
            await asyncio.sleep(period)
            await self.reap()

    async def close(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
        async with self._changed:
            places = list(self._places.values())
            self._places.clear()
        for place in places:
            if place.sandbox is not None:
                await place.sandbox.close()
