"""Copies SQLite's write-ahead log into the database file, on a thread of its own.

SQLite does this itself inside whichever commit finds the log past 1,000 pages: that commit
then writes the pages into the database file and syncs it, some 20 ms on the event loop's
thread while every request waits. With 1,000 runs started at once, such commits held the
loop for three quarters of a second. Here the store's connection never checkpoints
(`wal_autocheckpoint=0`); a thread with a connection of its own does, a little while after
commits, in PASSIVE mode: it never blocks a reader or the writer, and sqlite3 lets go of the
GIL while it copies.
"""

from __future__ import annotations

import logging
import sqlite3
import threading

log = logging.getLogger(__name__)

# After a commit, the checkpoint waits this long, so that the commits of a busy moment are
# copied together, each page once.
SETTLE_SECONDS = 0.2


class Checkpointer:
    def __init__(self, path: str):
        self._path = path
        self._due = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="threadline-checkpoint", daemon=True)
        self._thread.start()

    def nudge(self) -> None:
        """Something was committed: checkpoint soon."""
        self._due.set()

    def stop(self) -> None:
        """Wait for a checkpoint under way; the last connection's close does the final one."""
        self._stopping.set()
        self._due.set()
        self._thread.join()

    def _run(self) -> None:
        connection = sqlite3.connect(self._path, isolation_level=None, check_same_thread=True)
        try:
            connection.execute("PRAGMA synchronous=NORMAL")  # syncs the log, then the file
            while True:
                self._due.wait()
                if self._stopping.wait(SETTLE_SECONDS):
                    return
                self._due.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    log.exception("checkpointing the write-ahead log failed; trying again")
        finally:
            connection.close()
