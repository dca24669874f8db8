"""Request bodies are read as strict JSON: `NaN`, `Infinity` and numbers beyond a float's
range (`1e999`) are refused.

Python's parser takes them, but JSON has no such numbers: the hosted API refuses a body
that holds one, and stored, one would come back as `null` (what `json_codec` writes for
it). Refused at parsing, they get the answer any malformed body gets, and nothing is kept.
So is a body nested too deeply to parse, which Python's parser gives up on with an error
of its own.

Every body this API takes is an object, so any other JSON value is refused here too: a
route whose body may be left out (`POST /threads`) would otherwise read `null` as "no body"
and act on it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Coroutine
from typing import Any, NoReturn

from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from threadline.domain.errors import ThreadlineError
from threadline.domain.text import refuse_unstorable, unstorable_param

# The escapes that can make text no store keeps: `\u0000` and a surrogate. Bodies without
# them (nearly all) are not walked.
# A raw surrogate's UTF-8 bytes (ED A0..BF) too, which `json.loads` takes as they are.
_MAY_BE_UNSTORABLE = re.compile(rb"\\u(?:0000|[dD][89a-fA-F])|\xed[\xa0-\xbf]")

NOT_AN_OBJECT = "The request body must be a JSON object."


def _refuse(body: bytes, text: str, why: str = "is not a finite number") -> NoReturn:
    doc = body.decode(errors="replace")
    raise json.JSONDecodeError(f"{text} {why}".strip(), doc, max(doc.find(text), 0))


class StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            body = await self.body()

            def finite(text: str) -> float:
                value = float(text)
                if not math.isfinite(value):  # `1e999`: too large for a float
                    _refuse(body, text)
                return value

            try:
                value = json.loads(
                    body,
                    parse_float=finite,
                    parse_constant=lambda name: _refuse(body, name),
                )
            except RecursionError:
                _refuse(body, "", "nests too deeply")
            if not isinstance(value, dict):
                # An HTTPException passes FastAPI's body reading as it is (any other error
                # there becomes "There was an error parsing the body").
                raise HTTPException(400, NOT_AN_OBJECT)
            _refuse_unstorable_text(body, value)
            self._json = value
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose endpoint reads its body through `StrictJsonRequest`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(StrictJsonRequest(request.scope, request.receive, request._send))

        return strict


class RefusedBody(HTTPException):
    """A body refused for what it holds, with the error that names the field. An
    HTTPException, since FastAPI passes those from its body reading as they are."""

    def __init__(self, error: ThreadlineError):
        super().__init__(error.status_code, error.message)
        self.error = error


def _refuse_unstorable_text(body: bytes, value: dict[str, Any]) -> None:
    """A 400 naming the field that holds a NUL or a lone surrogate."""
    if not _MAY_BE_UNSTORABLE.search(body):
        return
    param = unstorable_param(value)
    if param is not None:
        raise RefusedBody(refuse_unstorable(param))
