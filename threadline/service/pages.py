"""The list envelope every list endpoint answers with."""

from __future__ import annotations

from typing import Any

from threadline.domain.errors import InvalidRequest
from threadline.domain.limits import MAX_LIST_LIMIT
from threadline.domain.records import Page, PageRequest


def page_request(limit: int, order: str, after: str | None, before: str | None) -> PageRequest:
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise InvalidRequest(
            f"Invalid 'limit': expected an integer between 1 and {MAX_LIST_LIMIT}, got {limit}.",
            param="limit",
            code="integer_out_of_range",
        )
    if order not in ("asc", "desc"):
        raise InvalidRequest(
            f"Invalid 'order': expected 'asc' or 'desc', got '{order}'.", param="order"
        )
    return PageRequest(
        limit=limit, order="asc" if order == "asc" else "desc", after=after, before=before
    )


def envelope(page: Page) -> dict[str, Any]:
    return {
        "object": "list",
        "data": page.data,
        "first_id": page.data[0]["id"] if page.data else None,
        "last_id": page.data[-1]["id"] if page.data else None,
        "has_more": page.has_more,
    }
