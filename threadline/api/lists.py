"""A page of objects as every list route answers it: the OpenAI list envelope
(`object: "list"`, `data`, `first_id`, `last_id`, `has_more`), which the SDKs' pagers walk by
its ids."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from threadline.domain.records import Obj, Page

R = TypeVar("R")


def list_body(found: Page[R], render: Callable[[R], Obj]) -> Obj:
    data = [render(item) for item in found.data]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": found.has_more,
    }
