"""The one clock: wall-clock time as the wire format stamps it (`created_at`, ...) and as
leases, expiry and event retention count it.

Everything reads time here, so a test can set it (`use_clock`) and see a run expire or a
lease lapse without waiting for either.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

_source: Callable[[], float] = time.time


def now() -> int:
    """Whole seconds since the epoch, as the wire format's timestamps are."""
    return int(_source())


def seconds() -> float:
    """Seconds since the epoch, to the fraction: leases and event times."""
    return _source()


@contextmanager
def use_clock(source: Callable[[], float]) -> Iterator[None]:
    """Read time from `source` until the block ends (in this process)."""
    global _source
    previous, _source = _source, source
    try:
        yield
    finally:
        _source = previous
