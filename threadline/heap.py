"""The garbage collector's policy for a long-running server process.

Python's full collections walk every tracked object, and most of a started server's objects
(modules, classes, the app, SQLAlchemy's compiled queries) live as long as the process. With
1,000 runs in flight, collections took a fifth of the server's CPU, most of it walking that
startup heap again and again, and young collections ran every 700 allocations of the JSON
bodies each request builds and drops.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

# Young collections every 10,000 net allocations instead of 700; the older generations keep
# their default ratios to it.
YOUNG_THRESHOLD = 10_000


@contextmanager
def startup_heap_frozen() -> Iterator[None]:
    """While serving, everything alive at the start is out of the collector's sight. Thawed
    at the end, so that a server stopped inside a process that goes on (a program embedding
    the app) can still be collected."""
    gc.collect()
    gc.freeze()
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
