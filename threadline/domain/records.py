"""The records every layer passes around: a page of objects and what asks for one, and an
event of a run's log. Defined here, below the store and the API alike, so that the API
renders them without knowing the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# An object in the Assistants v2 wire shape.
Obj = dict[str, Any]


@dataclass(frozen=True)
class PageRequest:
    limit: int = 20
    order: Literal["asc", "desc"] = "desc"
    after: str | None = None
    before: str | None = None


@dataclass
class Page:
    data: list[Obj] = field(default_factory=list)
    has_more: bool = False


@dataclass(frozen=True)
class RunEvent:
    """One entry of a run's event log: its name (`thread.message.delta`, ...), the object it
    carries and its sequence number in the log."""

    event: str
    data: Obj
    seq: int = 0
