"""API keys: once any key is set (`THREADLINE_API_KEYS`) or has been made (`threadline keys
create`), every request must carry one in force as a Bearer token, and reaches only the
projects its key holds.

A key on a project it does not hold gets the 404 of a project with nothing in it, for
every path under that project: the answer says nothing of what the project holds. Written
as plain ASGI middleware so streamed responses pass through untouched.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from threadline.api.errors import error_response
from threadline.api.projects import project_of_path
from threadline.service.keys import KeyRing

OPEN_PATHS = frozenset({"/health"})


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp, ring: KeyRing):
        self.app = app
        self.ring = ring

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        if not await self.ring.required():
            await self.app(scope, receive, send)
            return
        secret = _bearer_token(scope)
        grant = None if secret is None else await self.ring.grant(secret)
        if grant is None:
            await _unauthorized(scope, receive, send)
            return
        project = project_of_path(scope["path"])
        if not grant.allows(project):
            response = error_response(
                404,
                f"Project '{project}' not found.",
                "invalid_request_error",
                "project",
                "not_found",
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.partition(b" ")
            token = token.strip()
            return token if scheme.lower() == b"bearer" and token else None
    return None


async def _unauthorized(scope: Scope, receive: Receive, send: Send) -> None:
    response = error_response(
        401,
        "Incorrect or missing API key. Send a key as 'Authorization: Bearer <key>'.",
        "invalid_request_error",
        None,
        "invalid_api_key",
    )
    response.headers["www-authenticate"] = "Bearer"
    await response(scope, receive, send)
