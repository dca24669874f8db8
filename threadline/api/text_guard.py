"""Ids and query parameters with text no store keeps (see `domain/text.py`).

A NUL in a path can name no object: 404, as any id that names none. In a query parameter
(a cursor, an order) it is a 400 naming the parameter. Either way the database never sees
it: PostgreSQL would refuse the query, and that must not be a 500.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.api.errors import error_response
from threadline.domain.text import is_storable, refuse_unstorable


class TextGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refusal = _refusal(scope)
            if refusal is not None:
                status, message, param, code = refusal
                response = error_response(status, message, "invalid_request_error", param, code)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _refusal(scope: Scope) -> tuple[int, str, str | None, str | None] | None:
    if "\x00" in scope["path"]:
        return 404, "No such object: the path holds a NUL character.", None, "not_found"
    query: bytes = scope["query_string"]
    if b"%00" not in query:
        return None  # surrogates cannot get in: a query is decoded as UTF-8, with U+FFFD
    for name, value in parse_qsl(query.decode("latin-1"), keep_blank_values=True):
        if not (is_storable(name) and is_storable(value)):
            error = refuse_unstorable(name if is_storable(name) else "query")
            return 400, error.message, error.param, error.code
    return None
