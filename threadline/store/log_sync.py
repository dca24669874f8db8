"""Syncs SQLite's write-ahead log to disk on a thread of its own.

A sync takes about a millisecond here, most of it waiting for the disk; on the event loop's
thread it held every request, and the worker, for that long after each durable commit.
Here the loop commits, wakes whoever waits for the data, and goes on; the writer who was
promised durability is answered once a sync that began after its commit has ended. One sync
covers every commit made before it began, so commits that queue behind a sync under way
share the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading


class LogSyncer:
    def __init__(self, wal_path: str):
        self._path = wal_path
        self._wal: int | None = None
        self._lock = threading.Lock()
        self._wanted = threading.Condition(self._lock)
        self._waiting: list[asyncio.Future[None]] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="threadline-log-sync", daemon=True)
        self._thread.start()

    def sync(self, done: asyncio.Future[None]) -> None:
        """Resolve `done` once what is committed now is on disk (or with the sync's error)."""
        with self._lock:
            self._waiting.append(done)
            self._wanted.notify()

    def stop(self) -> None:
        """Sync what is still waiting, then end the thread."""
        with self._lock:
            self._stopping = True
            self._wanted.notify()
        self._thread.join()
        if self._wal is not None:
            os.close(self._wal)
            self._wal = None

    def _run(self) -> None:
        while True:
            with self._lock:
                while not self._waiting and not self._stopping:
                    self._wanted.wait()
                waiting, self._waiting = self._waiting, []
                if not waiting and self._stopping:
                    return
            error: OSError | None = None
            try:
                self._sync()
            except OSError as exc:
                error = exc
            for done in waiting:
                # RuntimeError: the loop has closed, and nobody waits any more.
                with contextlib.suppress(RuntimeError):
                    done.get_loop().call_soon_threadsafe(_resolve, done, error)

    def _sync(self) -> None:
        """Sync the log, (re)opened when it is new: the first time also the folder that
        holds it, as SQLite does for a file it creates."""
        if self._wal is not None and os.fstat(self._wal).st_ino != os.stat(self._path).st_ino:
            os.close(self._wal)
            self._wal = None
        if self._wal is None:
            self._wal = os.open(self._path, os.O_RDONLY)
            folder = os.open(os.path.dirname(os.path.abspath(self._path)), os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        getattr(os, "fdatasync", os.fsync)(self._wal)  # macOS has no fdatasync


def _resolve(done: asyncio.Future[None], error: OSError | None) -> None:
    if done.done():
        return
    if error is None:
        done.set_result(None)
    else:
        done.set_exception(error)
