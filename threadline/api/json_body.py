"""Request bodies are read as strict JSON: `NaN` and `Infinity` are refused.

Python's parser takes them, but JSON has no such numbers: the hosted API refuses a body
that holds one, and stored, one would come back as `null` (what `json_codec` writes for
it). Refused at parsing, they get the answer any malformed body gets, and nothing is kept.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import Response


def _refuse_constant(body: bytes) -> Callable[[str], Any]:
    def refuse(name: str) -> Any:
        doc = body.decode(errors="replace")
        raise json.JSONDecodeError(f"{name} is not a JSON number", doc, max(doc.find(name), 0))

    return refuse


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()
            self._json = json.loads(body, parse_constant=_refuse_constant(body))
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose endpoint reads its body through `StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive))

        return strict
