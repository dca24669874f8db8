"""`threadline worker`: a process that only carries runs; any number can share a database."""

from __future__ import annotations

import asyncio
import logging
import signal

from threadline.config import Settings
from threadline.engine.worker import Worker
from threadline.heap import startup_heap_frozen
from threadline.providers.embedders.select import embedder_for
from threadline.providers.registry import build_provider
from threadline.store.blobs import blob_store_for
from threadline.store.sql_store import SqlStore
from threadline.tools.code_interpreter import availability as code_interpreter
from threadline.tools.file_search.search import Searcher

log = logging.getLogger(__name__)


async def run_worker(settings: Settings) -> None:
    """Carry runs until SIGTERM or SIGINT, then finish or hand back what is in flight."""
    store = SqlStore(settings.database_url, settings.database_pool_size)
    if not store.supports_many_workers:
        raise SystemExit(
            "threadline worker needs PostgreSQL: on SQLite the worker inside "
            "`threadline serve` is the only one there can be."
        )
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stopping.set)
    await store.open()
    await code_interpreter.check(settings)
    worker = Worker(
        store,
        build_provider(settings),
        settings,
        blob_store_for(settings),
        Searcher(store, embedder_for(settings)),
    )
    await worker.start()
    log.info("worker %s carrying up to %d runs", worker.owner, settings.worker_concurrency)
    try:
        with startup_heap_frozen():
            await stopping.wait()
        log.info("stopping: runs in flight get %ss to finish", settings.shutdown_grace_seconds)
    finally:
        await worker.close(settings.shutdown_grace_seconds)
        await store.close()
