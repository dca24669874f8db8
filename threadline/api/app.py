"""Builds the ASGI application: store, provider, worker and routers, wired once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from threadline.api import assistants, runs, threads
from threadline.api.auth import ApiKeyMiddleware
from threadline.api.body_limit import BodySizeLimit, RequestTooLarge, on_request_too_large
from threadline.api.deps import Services
from threadline.api.errors import install_error_handlers
from threadline.api.projects import ProjectPaths
from threadline.config import Settings
from threadline.engine.worker import Worker
from threadline.heap import startup_heap_frozen
from threadline.providers.registry import build_provider
from threadline.service.assistants import AssistantService
from threadline.service.messages import MessageService
from threadline.service.runs import RunService
from threadline.service.threads import ThreadService
from threadline.store.sql_store import SqlStore


def create_app(settings: Settings, *, with_worker: bool = True) -> FastAPI:
    """The API; with the embedded worker unless runs are carried by `threadline worker`s."""
    store = SqlStore(settings.database_url, settings.database_pool_size)
    worker = Worker(store, build_provider(settings), settings) if with_worker else None

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        if worker is not None:
            await worker.start()
        try:
            with startup_heap_frozen():
                yield
        finally:
            if worker is not None:
                await worker.close(settings.shutdown_grace_seconds)
            await store.close()

    app = FastAPI(title="Threadline", lifespan=lifespan, docs_url=None, redoc_url=None)
    limits = settings.limits()
    app.state.services = Services(
        assistants=AssistantService(store),
        threads=ThreadService(store, limits),
        messages=MessageService(store, limits),
        runs=RunService(
            store, settings.run_expiry_seconds, settings.stream_keepalive_seconds, limits
        ),
        poll_after_ms=settings.poll_after_ms,
    )
    install_error_handlers(app)
    for router in (assistants.router, runs.router, threads.router):
        app.include_router(router, prefix="/v1")
    app.add_middleware(ProjectPaths)
    if settings.api_keys:
        app.add_middleware(ApiKeyMiddleware, keys=settings.api_keys)
    # Outermost (added last), so that no body is read past the cap by anything.
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_exception_handler(RequestTooLarge, on_request_too_large)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app
