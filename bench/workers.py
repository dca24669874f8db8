"""Turns per second by deployment: SQLite, and PostgreSQL with 0, 1 or 2 worker processes.

Issue 6's figure: the turn of measurement 1 (instant model), 16 at a time, against `threadline
serve` on SQLite (its embedded worker), on PostgreSQL with its embedded worker, and on
PostgreSQL as `threadline serve --no-worker` plus one or two `threadline worker` processes.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import ExitStack

import asyncpg

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    ThreadlineWorker,
    create_assistant,
    http_client,
    ms,
    p50,
    turn,
    use_test_support,
)
from bench.harness import Bench, run_concurrently

CONCURRENCY = 16


async def _turns(bench: Bench, database_url: str, workers: int | None) -> tuple[float, float]:
    """(turns/s, p50 s) with `workers` worker processes, or the embedded worker if None."""
    size = bench.size
    model_url = bench.model.base_url
    with ExitStack() as stack:
        server = stack.enter_context(
            ThreadlineServer(
                database_url, bench.workdir, model_url=model_url, no_worker=workers is not None
            )
        )
        for index in range(workers or 0):
            stack.enter_context(
                ThreadlineWorker(database_url, bench.workdir, model_url=model_url, index=index)
            )
        async with http_client(server.url) as client:
            assistant = await create_assistant(client, f"instant-{time.time_ns()}")
            await run_concurrently(
                max(size.warmup, CONCURRENCY), CONCURRENCY, lambda: turn(client, assistant)
            )
            wall, latencies = await run_concurrently(
                size.worker_turns, CONCURRENCY, lambda: turn(client, assistant)
            )
    return len(latencies) / wall, p50(latencies)


def _add(section: Section, label: str, rate: float, latency: float) -> None:
    section.add(Figure(f"{label}: turns/s", rate, "turns/s", digits=0))
    section.add(Figure(f"{label}: turn p50", ms(latency), "ms", digits=0))


async def _postgres_version(url: str) -> str:
    connection = await asyncpg.connect(url, timeout=10)
    try:
        return str(await connection.fetchval("SHOW server_version"))
    finally:
        await connection.close()


async def measure(bench: Bench) -> Section:
    size = bench.size
    section = Section("workers", "Turns by deployment (issue 6)")
    section.method = [
        f"The turn of measurement 1, {CONCURRENCY} at a time, {size.worker_turns} turns after"
        f" {max(size.warmup, CONCURRENCY)} warm-up turns, on a fresh database each time.",
        "PostgreSQL is the machine's (127.0.0.1:5432); workers there claim runs with"
        " `FOR UPDATE SKIP LOCKED` and are woken by LISTEN/NOTIFY.",
    ]
    rate, latency = await _turns(bench, bench.sqlite_url("workers"), None)
    _add(section, "SQLite, `serve` (embedded worker)", rate, latency)
    use_test_support()
    from support.postgres import PostgresDatabases

    databases = PostgresDatabases(prefix="threadline_bench")
    try:
        try:
            first = await asyncio.to_thread(databases.create)
        except (OSError, asyncpg.PostgresError) as exc:
            section.notes.append(f"PostgreSQL is not reachable ({exc}); its figures are skipped.")
            return section
        bench.facts["PostgreSQL"] = await _postgres_version(first)
        configurations: list[tuple[str, int | None]] = [
            ("PostgreSQL, `serve` (embedded worker)", None),
            ("PostgreSQL, `serve --no-worker` + 1 `threadline worker`", 1),
            ("PostgreSQL, `serve --no-worker` + 2 `threadline worker`s", 2),
        ]
        for index, (label, workers) in enumerate(configurations):
            url = first if index == 0 else await asyncio.to_thread(databases.create)
            rate, latency = await _turns(bench, url, workers)
            _add(section, label, rate, latency)
    finally:
        await asyncio.to_thread(databases.drop_all)
    section.notes.append(
        "Every process shares the machine's 2 cores with PostgreSQL, the model server and the"
        " client."
    )
    return section
