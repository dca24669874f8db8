"""Wall-clock seconds, as the wire format stamps them (`created_at`, ...)."""

from __future__ import annotations

import time


def now() -> int:
    return int(time.time())
