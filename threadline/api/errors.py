"""The one place where failures become OpenAI-shaped error bodies.

`{"error": {"message", "type", "param", "code"}}` with the status the hosted API uses, so
the SDKs raise the exception class their users already catch.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from threadline import json_codec
from threadline.api.json_body import NOT_AN_OBJECT
from threadline.domain.errors import ThreadlineError

log = logging.getLogger(__name__)


def error_object(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The one shape of an error, in a body or in a stream's `error` event."""
    return {"error": {"message": message, "type": error_type, "param": param, "code": code}}


def error_body(
    message: str, error_type: str, param: str | None = None, code: str | None = None
) -> bytes:
    """The body alone, for answers written below the app (`api.http_protocol`)."""
    return json_codec.dumps(error_object(message, error_type, param, code)).encode()


def error_response(
    status: int, message: str, error_type: str, param: str | None = None, code: str | None = None
) -> Response:
    body = error_body(message, error_type, param, code)
    return Response(body, status_code=status, media_type="application/json")


_UNION_LABELS = {"str", "int", "float", "bool", "none", "dict", "list"}


def _is_union_label(part: str) -> bool:
    """Pydantic names the union member it tried inside `loc` (`str`, `list[...]`, ...)."""
    return part in _UNION_LABELS or "[" in part or part.startswith("function-")


def _param(loc: tuple[Any, ...], body: Any = None) -> str | None:
    """The dotted path of the offending field, walking the body to skip union labels and tags."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path"):
        if parts[0] != "body":
            body = None
        parts = parts[1:]
    path = ""
    node = body
    tag_seen = False
    for index, part in enumerate(parts):
        if isinstance(part, int):
            path += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            tag_seen = False
            continue
        name = str(part)
        is_tag = isinstance(node, dict) and node.get("type") == name
        if is_tag and not tag_seen and index < len(parts) - 1:
            tag_seen = True
            continue  # the tag of a discriminated union, not a field
        tag_seen = False
        if isinstance(node, dict) and name in node:
            node = node[name]
        elif _is_union_label(name):
            continue
        else:
            node = None
        path += f".{name}" if path else name
    return path or None


def _validation_message(error: dict[str, Any], param: str | None) -> str:
    kind = error.get("type", "")
    if kind == "json_invalid":
        return (
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload.)"
        )
    if kind == "extra_forbidden":
        return f"Unrecognized request argument supplied: {param}"
    if kind == "missing":
        return f"Missing required parameter: '{param}'."
    if kind in ("union_tag_invalid", "literal_error", "enum"):
        return f"Invalid value for '{param}': {error.get('msg', 'not one of the allowed values')}."
    return f"Invalid '{param}': {error.get('msg', 'invalid value')}."


async def _on_threadline_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ThreadlineError)
    return error_response(exc.status_code, exc.message, exc.error_type, exc.param, exc.code)


def _most_specific(errors: list[dict[str, Any]], body: Any) -> dict[str, Any]:
    """The first error, or for a union the deepest error of a member the input's type matched.

    A type error where the union itself is (`content: 5` is neither a string nor a list)
    says only that a member did not match; one deeper down (`strict: "yes"` inside a
    `json_schema`) is inside a member that did, and is the one to name."""
    first = errors[0] if errors else {}
    param = _param(tuple(first.get("loc", ())), body) or ""
    best, depth = first, -1
    for error in errors:
        path = _param(tuple(error.get("loc", ())), body) or ""
        is_type = str(error.get("type", "")).endswith("_type")
        specific = not is_type or len(path) > len(param)
        if specific and path.startswith(param) and len(path) > depth:
            best, depth = error, len(path)
    return best


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    first = _most_specific(errors, exc.body)
    if first.get("type") == "json_invalid":
        return error_response(400, _validation_message(first, None), "invalid_request_error")
    if tuple(first.get("loc", ())) == ("body",):
        return error_response(400, NOT_AN_OBJECT, "invalid_request_error")
    param = _param(tuple(first.get("loc", ())), exc.body)
    return error_response(
        400, _validation_message(first, param), "invalid_request_error", param, None
    )


async def _on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    named = getattr(exc, "error", None)  # a body refused for a field (`json_body.RefusedBody`)
    if isinstance(named, ThreadlineError):
        return await _on_threadline_error(request, named)
    if exc.status_code == 404:
        return error_response(404, "Invalid URL: no such route.", "invalid_request_error")
    if exc.status_code == 405:
        return error_response(405, "Method not allowed for this route.", "invalid_request_error")
    return error_response(exc.status_code, str(exc.detail), "invalid_request_error")


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    log.exception("unexpected error", exc_info=exc)
    return error_response(500, "The server had an error processing your request.", "server_error")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(ThreadlineError, _on_threadline_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(HTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
