"""When a vector store expires: `expires_after` days after its last activity."""

from __future__ import annotations

from threadline.domain.clock import now
from threadline.domain.records import Obj, VectorStore

DAY = 86400


def expires_at(expires_after: Obj | None, last_active_at: int) -> int | None:
    if expires_after is None:
        return None
    return last_active_at + int(expires_after["days"]) * DAY


def is_expired(store: VectorStore, at: int | None = None) -> bool:
    deadline = store["expires_at"]
    return deadline is not None and (now() if at is None else at) >= deadline
