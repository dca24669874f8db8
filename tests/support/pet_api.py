"""A small real HTTP API for OpenAPI tools to call, served by uvicorn in a thread on
loopback, with the spec that describes it."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Self

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Route

from support.threaded_server import ThreadedServer

SECRET = "s3cret-key-0042"
BIG_BYTES = 10 * 1024 * 1024


class PetApi:
    """A small API served by uvicorn in a thread, recording what each request carried."""

    def __init__(self) -> None:
        self.seen: list[dict[str, Any]] = []
        self.base_url = ""
        self._served: ThreadedServer | None = None
        self.app = Starlette(
            routes=[
                Route("/pets/{pet_id}", self._get_pet, methods=["GET"]),
                Route("/pets", self._add_pet, methods=["POST"]),
                Route("/missing", self._missing, methods=["GET"]),
                Route("/big", self._big, methods=["GET"]),
                Route("/hops/{left:int}", self._hops, methods=["GET"]),
                Route("/slow", self._slow, methods=["GET"]),
                Route("/image", self._image, methods=["GET"]),
                Route("/secure/header", self._secure_header, methods=["GET"]),
                Route("/secure/query", self._secure_query, methods=["GET"]),
                Route("/secure/bearer", self._secure_bearer, methods=["GET"]),
                Route("/away", self._away, methods=["GET"]),
                Route("/held", self._held, methods=["GET"]),
            ]
        )
        # Where /away sends its caller: another origin (set by the test).
        self.away_to = ""
        # /held: set when a call arrives; each call answers only once the test opens `gate`
        # (threading events: the test waits and opens them from its own thread).
        self.held_entered = threading.Event()
        self.gate = threading.Event()

    def __enter__(self) -> Self:
        self._served = ThreadedServer(self.app, "pet-api").__enter__()
        self.base_url = self._served.base_url
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        assert self._served is not None
        self._served.__exit__(exc_type, exc, traceback)

    def _record(self, request: Request) -> None:
        self.seen.append(
            {
                "path": request.url.path,
                "raw_path": request.scope["raw_path"].decode(),
                "query": dict(request.query_params),
                "headers": dict(request.headers),
            }
        )

    async def _get_pet(self, request: Request) -> Response:
        self._record(request)
        return JSONResponse(
            {
                "id": request.path_params["pet_id"],
                "verbose": request.query_params.get("verbose"),
                "trace": request.headers.get("x-trace"),
            }
        )

    async def _add_pet(self, request: Request) -> Response:
        self._record(request)
        return JSONResponse({"created": await request.json()}, status_code=201)

    async def _missing(self, request: Request) -> Response:
        return JSONResponse({"error": "no such pet"}, status_code=404)

    async def _big(self, request: Request) -> Response:
        async def chunks() -> AsyncIterator[bytes]:
            piece = b"x" * 65536
            for _ in range(BIG_BYTES // len(piece)):
                yield piece

        return StreamingResponse(chunks(), media_type="text/plain")

    async def _hops(self, request: Request) -> Response:
        left = request.path_params["left"]
        self._record(request)
        if left == 0:
            return JSONResponse({"arrived": True})
        return RedirectResponse(f"/hops/{left - 1}", status_code=302)

    async def _slow(self, request: Request) -> Response:
        # Until the caller hangs up (at its time limit), at most 30 s.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(30):
                while (await request.receive())["type"] != "http.disconnect":
                    pass
        return Response("too late")

    async def _image(self, request: Request) -> Response:
        return Response(b"\x89PNG\r\n\x1a\n" + bytes(100), media_type="image/png")

    async def _secure_header(self, request: Request) -> Response:
        self._record(request)
        key = request.headers.get("x-api-key")
        if key != SECRET:
            return JSONResponse({"error": "no key"}, status_code=401)
        # An API that echoes what it was sent: the secret must still reach no model.
        return JSONResponse({"ok": True, "you_sent": key})

    async def _secure_query(self, request: Request) -> Response:
        self._record(request)
        key = request.query_params.get("api_key")
        if key != SECRET:
            return JSONResponse({"error": "no key"}, status_code=401)
        return JSONResponse({"ok": True, "url": str(request.url)})

    async def _secure_bearer(self, request: Request) -> Response:
        self._record(request)
        if request.headers.get("authorization") != f"Bearer {SECRET}":
            return JSONResponse({"error": "no key"}, status_code=401)
        return JSONResponse({"ok": True})

    async def _away(self, request: Request) -> Response:
        self._record(request)
        return RedirectResponse(self.away_to, status_code=302)

    async def _held(self, request: Request) -> Response:
        # Recorded on arrival: a caller killed while it waits here has still made the call.
        self._record(request)
        self.held_entered.set()
        # At most 30 s, so a test that fails before opening the gate does not hang shutdown.
        opened = await asyncio.to_thread(self.gate.wait, 30)
        return JSONResponse({"released": opened})


def get_operation(operation_id: str) -> dict[str, Any]:
    return {"get": {"operationId": operation_id, "responses": {"200": {"description": "ok"}}}}


def pet_spec(base_url: str) -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {"title": "Pets", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {
            "/pets/{petId}": {
                # Path-level: merged into the operation's own.
                "parameters": [
                    {
                        "name": "X-Trace",
                        "in": "header",
                        "description": "a trace id",
                        "schema": {"type": "string"},
                    }
                ],
                "get": {
                    "operationId": "getPet",
                    "summary": "Get one pet",
                    "description": "By its id.",
                    "parameters": [
                        {"$ref": "#/components/parameters/PetId"},
                        {"name": "verbose", "in": "query", "schema": {"type": "boolean"}},
                    ],
                    "responses": {
                        "200": {
                            "description": "the pet",
                            "content": {
                                "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                            },
                        }
                    },
                },
            },
            "/pets": {
                "post": {
                    "operationId": "addPet",
                    "summary": "Add a pet",
                    "requestBody": {"$ref": "#/components/requestBodies/NewPet"},
                    "responses": {"201": {"description": "added"}},
                },
                # Without an operationId: not offered.
                "get": {"responses": {"200": {"description": "all"}}},
            },
            "/missing": get_operation("missing"),
            "/big": get_operation("big"),
            "/hops/{left}": {
                "get": {
                    "operationId": "hops",
                    "parameters": [
                        {
                            "name": "left",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "integer"},
                        }
                    ],
                    "responses": {"200": {"description": "arrived"}},
                }
            },
            "/slow": get_operation("slow"),
            "/image": get_operation("image"),
        },
        "components": {
            "parameters": {
                "PetId": {
                    "name": "petId",
                    "in": "path",
                    "required": True,
                    "description": "the pet's id",
                    "schema": {"type": "string"},
                }
            },
            "requestBodies": {
                "NewPet": {
                    "required": True,
                    "content": {
                        "application/json": {"schema": {"$ref": "#/components/schemas/Pet"}}
                    },
                }
            },
            "schemas": {
                "Pet": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string"},
                        "family": {"$ref": "#/components/schemas/Family"},
                    },
                },
                # Cyclic: a family holds pets, a pet a family.
                "Family": {
                    "type": "object",
                    "properties": {
                        "members": {"type": "array", "items": {"$ref": "#/components/schemas/Pet"}}
                    },
                },
            },
        },
    }
