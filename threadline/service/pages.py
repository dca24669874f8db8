"""What a list request asks for, checked once for every list."""

from __future__ import annotations

from threadline.domain.errors import InvalidRequest
from threadline.domain.limits import MAX_LIST_LIMIT
from threadline.domain.records import PageRequest


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
