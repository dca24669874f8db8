"""Builds the ASGI application: store, provider, worker and routers, wired once."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from threadline.api.assistants_v2 import assistants, files, runs, threads, vector_stores
from threadline.api.auth import ApiKeyMiddleware
from threadline.api.body_limit import (
    UPLOAD_ENVELOPE_BYTES,
    BodySizeLimit,
    RequestTooLarge,
    on_request_too_large,
)
from threadline.api.deps import Services
from threadline.api.errors import install_error_handlers
from threadline.api.foundry import agents
from threadline.api.models import model_catalog
from threadline.api.models import router as models_router
from threadline.api.projects import ProjectPaths
from threadline.api.request_id import RequestIds
from threadline.api.responses import containers, conversations, responses
from threadline.api.text_guard import TextGuard
from threadline.config import Settings
from threadline.engine.input_tokens import PromptCounter
from threadline.engine.reembed import stale_stores
from threadline.engine.tools import connections_of
from threadline.engine.worker import Worker
from threadline.heap import startup_heap_frozen
from threadline.providers.embedders.select import embedder_for
from threadline.providers.registry import build_provider, model_routes
from threadline.service.agent_versions import AgentVersionService
from threadline.service.assistants import AssistantService
from threadline.service.containers import ContainerService
from threadline.service.conversations import ConversationService
from threadline.service.files import FileService
from threadline.service.keys import KeyRing
from threadline.service.messages import MessageService
from threadline.service.responses import ResponseService
from threadline.service.runs import RunService
from threadline.service.threads import ThreadService
from threadline.service.tool_checks import ToolChecks
from threadline.service.vector_stores import VectorStoreService
from threadline.store.blobs import blob_store_for
from threadline.store.sql_store import SqlStore
from threadline.tools.code_interpreter import availability as code_interpreter
from threadline.tools.file_search.search import Searcher

log = logging.getLogger("threadline")


def create_app(settings: Settings, *, with_worker: bool = True) -> FastAPI:
    """The API; with the embedded worker unless runs are carried by `threadline worker`s."""
    routes = model_routes(settings)
    models = model_catalog(settings, routes)
    store = SqlStore(settings.database_url, settings.database_pool_size)
    blobs = blob_store_for(settings)
    # One copy of each store's vectors in the process, for its searches and its runs'.
    searcher = Searcher(store, embedder_for(settings))
    provider = build_provider(settings, routes) if with_worker else None
    worker = Worker(store, provider, settings, blobs, searcher) if provider is not None else None
    # Counting a prompt needs the model's tokenizer: the worker's model client, or, in a
    # process without one, a client of its own made on first use.
    counter = PromptCounter(lambda: provider or build_provider(settings, routes))
    ring = (
        KeyRing(store, settings.api_keys, refresh_seconds=settings.key_refresh_seconds)
        if settings.auth
        else None
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await store.open()
        await _warn_if_open(ring)
        await _warn_if_stale(store, searcher)
        await code_interpreter.check(settings)
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
    tool_checks = ToolChecks(connections_of(settings))
    run_service = RunService(
        store,
        settings.run_expiry_seconds,
        settings.stream_keepalive_seconds,
        limits,
        tool_checks,
        models,
    )
    response_service = ResponseService(store, run_service, limits, counter)
    agent_versions = AgentVersionService(store, response_service)
    # A response naming a Foundry agent runs that agent's version.
    response_service.agents = agent_versions
    file_service = FileService(store, blobs, settings.max_file_bytes)
    app.state.services = Services(
        assistants=AssistantService(store, limits, tool_checks, models),
        threads=ThreadService(store, limits),
        messages=MessageService(store, limits),
        runs=run_service,
        files=file_service,
        vector_stores=VectorStoreService(store, searcher),
        conversations=ConversationService(store, limits),
        responses=response_service,
        agent_versions=agent_versions,
        containers=ContainerService(store, file_service),
        poll_after_ms=settings.poll_after_ms,
        models=models,
    )
    install_error_handlers(app)
    for router in (
        assistants.router,
        runs.router,
        threads.router,
        files.router,
        vector_stores.router,
        conversations.router,
        responses.router,
        containers.router,
        agents.router,
        models_router,
    ):
        app.include_router(router, prefix="/v1")
    app.add_middleware(ProjectPaths)
    app.add_middleware(TextGuard)
    if ring is not None:
        app.add_middleware(ApiKeyMiddleware, ring=ring)
    # Outside the routes and the key check, so that no body is read past the cap by anything.
    app.add_middleware(
        BodySizeLimit,
        max_bytes=settings.max_body_bytes,
        upload_max_bytes=settings.max_file_bytes + UPLOAD_ENVELOPE_BYTES,
    )
    app.add_exception_handler(RequestTooLarge, on_request_too_large)
    # Outermost, so that every answer carries one, refusals of a key or a body included.
    app.add_middleware(RequestIds)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return app


async def _warn_if_stale(store: SqlStore, searcher: Searcher) -> None:
    """Vectors of another embedding model are not compared with this one's: say so, and how
    to bring them over, rather than let searches quietly find less."""
    stale = await stale_stores(store, searcher.embedder)
    if stale:
        log.warning(
            "%d vector store(s) hold chunks embedded by another model than %s; searches find "
            "them by their words only until `threadline reembed` has run.",
            len(stale),
            searcher.embedder.model,
        )


async def _warn_if_open(ring: KeyRing | None) -> None:
    """Loud wherever the server listens: loopback is reachable by every local user and
    process, and a port is easily forwarded."""
    if ring is None:
        log.warning(
            "!!! Serving with --no-auth: ANYONE who can reach this server can read and write "
            "every project's threads. !!!"
        )
    elif not await ring.required():
        log.warning(
            "!!! No API key is set (THREADLINE_API_KEYS) or stored (`threadline keys "
            "create`): ANYONE who can reach this server can read and write every project's "
            "threads until a key exists. !!!"
        )
