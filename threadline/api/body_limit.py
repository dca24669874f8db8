"""A cap on request bodies, enforced while they are read.

A body is refused with 413 as soon as its declared `Content-Length` or the bytes received so
far pass the cap, so the service never holds more than the cap (and one chunk) of it: a
route reads its body whole before parsing it, and four 100 MB bodies at once took the
process past a gigabyte.

Starlette's own `RequestBodyLimitMiddleware` counts the same way but answers in plain text
and lets the app run before a declared size is refused; this one answers before the app
runs and in the OpenAI error shape. Plain ASGI, so streamed responses pass untouched.

After a refusal the connection stays usable: uvicorn reads and drops the rest of the body
(its request deadline bounds how long a client may take to send it) and then serves the
next request. Only a client that asked `Expect: 100-continue` is answered with
`Connection: close`, since it may never send the body the server did not ask for.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from threadline.api.errors import error_response


class RequestTooLarge(HTTPException):
    """Raised from `receive` when the body passes the cap; an HTTPException because FastAPI
    lets only those out of its body reading unchanged (see `api.errors`)."""

    def __init__(self, limit: int):
        super().__init__(413, too_large_message(limit))
        self.limit = limit


def too_large_message(limit: int) -> str:
    return (
        f"The request body is larger than the {limit} bytes this server accepts "
        "(THREADLINE_MAX_BODY_BYTES)."
    )


def too_large_response(limit: int) -> Response:
    return error_response(
        413, too_large_message(limit), "invalid_request_error", code="request_too_large"
    )


async def on_request_too_large(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestTooLarge)
    return too_large_response(exc.limit)


# What a multipart upload adds around its file (boundaries, part headers, the purpose):
# an upload's body may be the largest file accepted plus this.
UPLOAD_ENVELOPE_BYTES = 64 * 1024


def is_upload(scope: Scope) -> bool:
    """`POST /files` (under `/v1` or a project path): the one route whose body is a file."""
    return (
        scope["method"] == "POST"
        and str(scope["path"]).rstrip("/").endswith("/files")
        and ("/vector_stores/" not in str(scope["path"]))
    )


class BodySizeLimit:
    def __init__(self, app: ASGIApp, max_bytes: int, upload_max_bytes: int | None = None):
        self.app = app
        self.max_bytes = max_bytes
        self.upload_max_bytes = max(max_bytes, upload_max_bytes or max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        limit = self.upload_max_bytes if is_upload(scope) else self.max_bytes
        declared = _declared_length(headers)
        if declared is not None and declared > limit:
            expects = headers.get("expect", "").lower() == "100-continue"
            response = too_large_response(limit)
            if expects:
                response.headers["connection"] = "close"
            await response(scope, receive, send)
            return

        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise RequestTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except RequestTooLarge as refused:
            # Routes answer it through the error handlers; this is for a reader outside
            # them (a middleware that reads the body), which would otherwise make it a 500.
            if started:
                raise
            await too_large_response(refused.limit)(scope, receive, send)


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None or not value.isdigit():
        return None  # the HTTP parser refuses a malformed one before the app sees it
    return int(value)
