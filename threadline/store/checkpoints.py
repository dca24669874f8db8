"""Copies SQLite's write-ahead log into the database file, on a thread of its own.

SQLite does this itself inside whichever commit finds the log past 1,000 pages: that commit
then writes the pages into the database file and syncs it, some 20 ms on the event loop's
thread while every request waits. With 1,000 runs started at once, such commits held the
loop for three quarters of a second. Here the store's connection never checkpoints
(`wal_autocheckpoint=0`); a thread with a connection of its own does, in PASSIVE mode: it
never blocks a reader or the writer, and sqlite3 lets go of the GIL while it copies.

Not after every few commits, though: a checkpoint syncs the log, and a commit writing to it
meanwhile waits for that sync (streamed runs' commits took 0.9 ms at p90 with a checkpoint
every 0.2 s, 0.16 ms without). So a checkpoint comes once `COMMITS_PER_CHECKPOINT` commits
have gathered, or `MAX_WAIT_SECONDS` after the first of them.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

COMMITS_PER_CHECKPOINT = 200
MAX_WAIT_SECONDS = 1.0


class Checkpointer:
    def __init__(self, path: str):
        self._path = path
        self._pending = 0  # commits since the last checkpoint began; written on the loop
        self._due = threading.Event()  # there are commits to copy
        self._full = threading.Event()  # enough to copy now (or stopping)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """A commit happened; cheap enough to call after every one."""
        self._pending += 1
        if self._pending == 1:
            self._due.set()
        elif self._pending >= COMMITS_PER_CHECKPOINT:
            self._full.set()

    def stop(self) -> None:
        """Wait for a checkpoint under way; the last connection's close does the final one."""
        self._stopping.set()
        self._due.set()
        self._full.set()
        self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
        try:
            connection.execute("PRAGMA synchronous=NORMAL")  # syncs the log, then the file
            while True:
                self._due.wait()
                self._full.wait(MAX_WAIT_SECONDS)
                if self._stopping.is_set():
                    return
                self._due.clear()
                self._full.clear()
                self._pending = 0
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("checkpointing the write-ahead log failed; trying again")
        finally:
            connection.close()
