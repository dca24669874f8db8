"""5. Many runs in flight: a burst of `POST /v1/threads/runs` against a slow model.

Completion is watched in the server's SQLite file itself (a WAL reader blocks no writer), so
watching adds no HTTP load to the server under test; a run counts as complete once its
`completed` status is committed.

The burst is sent by a bare HTTP/1.1 client (one pre-encoded request per connection, the
answer read to its Content-Length): a general-purpose client juggling 1,000 connections
used more CPU than the server it measured, on the same two cores. Its connections are open
before the clock starts, as 1,000 clients already connected would send: opened inside the
timed burst, the client's own 1,000 connects came first, and the server sat two-thirds idle
for the burst's first 0.15 s waiting for the first request.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sqlite3
import time
from collections.abc import Awaitable, Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    at_most,
    create_assistant,
    http_client,
    ms,
    p50,
    p95,
    turn,
)
from bench.floor_app import FloorServer
from bench.harness import Bench

SECONDS_TARGET = 3.0
RSS_TARGET_MB = 500.0
WATCH_EVERY = 0.01


def _statuses(path: Path) -> dict[str, int]:
    with closing(sqlite3.connect(path, timeout=30)) as connection:
        rows = connection.execute("SELECT status, count(*) FROM runs GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


async def _connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read one answer to its Content-Length; raise unless it is a 200."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        headers = dict(line.lower().split(": ", 1) for line in header_lines if ": " in line)
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        if status_line.split(" ")[1] != "200":
            raise RuntimeError(f"create thread and run: {status_line} {body[:500]!r}")
    finally:
        writer.close()


def _own_cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _floor_request(model: str) -> bytes:
    return encoded({"model": model, "content": "go"})


def encoded(fields: dict[str, object], path: str = "/v1/threads/runs") -> bytes:
    """A POST of `fields` as JSON to `path`, as the burst writes it on each connection."""
    body = json.dumps(fields).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    )
    return head.encode() + body


# What a burst sends: made on the fresh server it is sent to, once that server is warmed up
# for it, from the name of the slow model; the one request every connection writes.
Prepare = Callable[[Bench, httpx.AsyncClient, str], Awaitable[bytes]]


async def _runs_request(bench: Bench, client: httpx.AsyncClient, slow: str) -> bytes:
    """`POST /v1/threads/runs`, a new thread with one message, on an assistant of the slow
    model; the server warmed up with turns on the instant model."""
    warm = await create_assistant(client, f"instant-{time.time_ns()}")
    for _ in range(bench.size.warmup):
        await turn(client, warm)
    assistant = await create_assistant(client, slow)
    return encoded(
        {"assistant_id": assistant, "thread": {"messages": [{"role": "user", "content": "go"}]}}
    )


@dataclass
class Burst:
    started: float
    accepted: float
    done: float
    latencies: list[float]
    client_cpu: float


async def _burst(
    server: ThreadlineServer | FloorServer, path: Path, request: bytes, count: int, limit: float
) -> Burst:
    """Start `count` runs at once, each with `request`; times are seconds after `started` (a
    perf_counter stamp); raises unless all complete within `limit` seconds."""
    opened = await asyncio.gather(
        *(_connect(server.port) for _ in range(count)), return_exceptions=True
    )
    connections = [c for c in opened if not isinstance(c, BaseException)]
    try:
        if len(connections) < count:
            failure = next(c for c in opened if isinstance(c, BaseException))
            raise RuntimeError(f"{count - len(connections)} connections failed: {failure!r}")
        return await _timed(server, path, request, connections, limit)
    finally:
        for _, writer in connections:
            writer.close()


async def _timed(
    server: ThreadlineServer | FloorServer,
    path: Path,
    request: bytes,
    connections: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]],
    limit: float,
) -> Burst:
    """`request` written on every connection at once; when they were answered and when the
    runs they started all completed."""
    count = len(connections)
    before = _statuses(path).get("completed", 0)
    latencies: list[float] = []

    async def answered(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _answer(reader, writer)
        latencies.append(time.perf_counter() - started)

    cpu = _own_cpu_seconds()
    started = time.perf_counter()
    for _, writer in connections:
        writer.write(request)
    posting = asyncio.gather(*(answered(*connection) for connection in connections))
    accepted = done = None
    statuses: dict[str, int] = {}
    while done is None:
        if accepted is None and posting.done():
            await posting  # raises what a failed POST raised
            accepted = time.perf_counter() - started
        statuses = _statuses(path)
        finished = statuses.get("completed", 0) - before
        if finished >= count:
            done = time.perf_counter() - started
            break
        if statuses.get("failed", 0) or statuses.get("expired", 0):
            raise RuntimeError(f"runs failed: {statuses}; {server.log_tail()}")
        if time.perf_counter() - started > limit:
            raise RuntimeError(f"not complete after {limit:.0f} s: {statuses}")
        await asyncio.sleep(WATCH_EVERY)
    await posting
    if accepted is None:
        accepted = time.perf_counter() - started
    return Burst(started, accepted, done, latencies, _own_cpu_seconds() - cpu)


@dataclass(frozen=True)
class Reading:
    """One burst on a fresh server: when every POST was answered and when all it started
    completed (seconds after the first POST), the server's peak RSS and its idle RSS (MB)."""

    done: float
    accepted: float
    peak: float
    idle: float


async def on_fresh_server(
    bench: Bench,
    concurrency: int | None,
    section: Section,
    prepare: Prepare,
    noun: str,
    burst_name: str = "",
) -> Reading:
    """One burst of `prepare`'s request on a server started for it with this worker
    concurrency (None: the default); what happened meanwhile goes into the section's notes.
    `noun`: what each request starts (`run`), for the notes."""
    size = bench.size
    count, delay = size.many_runs, size.many_runs_model_seconds
    slow = f"slow-{time.time_ns()}"
    bench.model.script(slow, "done", delay=delay, repeat=count)
    env = {} if concurrency is None else {"THREADLINE_WORKER_CONCURRENCY": str(concurrency)}
    path = bench.sqlite_path("many-runs")
    with ThreadlineServer(
        f"sqlite:///{path}", bench.workdir, model_url=bench.model.base_url, env=env
    ) as server:
        async with http_client(server.url) as client:
            request = await prepare(bench, client, slow)
        idle = server.rss_mb() or 0.0
        server_cpu, model_cpu = server.cpu_seconds(), bench.model.cpu_seconds()
        loop_cpu = server.main_thread_cpu_seconds()
        limit = 60.0 + 3 * count * delay / (concurrency or 256)
        burst = await _burst(server, path, request, count, limit)
        peak = server.peak_rss_mb() or 0.0
        calls = sorted(record.arrived - burst.started for record in bench.model.records(slow))
        server_cpu = server.cpu_seconds() - server_cpu
        loop_cpu = server.main_thread_cpu_seconds() - loop_cpu
        model_cpu = bench.model.cpu_seconds() - model_cpu
    setting = f"{concurrency}" if concurrency is not None else "256 (the default)"
    section.notes.append(
        f"{burst_name}Worker concurrency {setting}: all {count:,} POSTs answered after"
        f" {burst.accepted:.2f} s (POST p95 {ms(p95(burst.latencies)):.0f} ms); the model calls"
        f" reached the model server from {calls[0]:.2f} s (p50 {p50(calls):.2f} s, last"
        f" {calls[-1]:.2f} s); all {noun}s completed after {burst.done:.2f} s; CPU used"
        f" meanwhile: server {server_cpu:.1f} s ({ms(server_cpu / count):.1f} ms per {noun};"
        f" its event-loop thread alone {loop_cpu:.1f} s),"
        f" scripted model server {model_cpu:.1f} s, the burst's client {burst.client_cpu:.1f} s"
        " (all on the same 2 cores)."
    )
    return Reading(burst.done, burst.accepted, peak, idle)


async def _floor(bench: Bench, section: Section, burst_name: str) -> float:
    """The same burst against the bare app: when all its runs completed."""
    count, delay = bench.size.many_runs, bench.size.many_runs_model_seconds
    slow = f"floor-slow-{time.time_ns()}"
    bench.model.script(slow, "done", delay=delay, repeat=count)
    with FloorServer(bench.workdir, model_url=bench.model.base_url) as floor:
        model_cpu = bench.model.cpu_seconds()
        floor_cpu = floor.cpu_seconds()
        burst = await _burst(floor, floor.database, _floor_request(slow), count, 60 + 3 * delay)
        floor_cpu = floor.cpu_seconds() - floor_cpu
        model_cpu = bench.model.cpu_seconds() - model_cpu
        calls = sorted(record.arrived - burst.started for record in bench.model.records(slow))
    section.notes.append(
        f"{burst_name}Floor, the bare app:"
        f" all {count:,} POSTs answered after {burst.accepted:.2f} s; the model calls reached"
        f" the model server from {calls[0]:.2f} s (last {calls[-1]:.2f} s); all runs completed"
        f" after {burst.done:.2f} s; CPU used meanwhile: the bare app {floor_cpu:.1f} s, scripted"
        f" model server {model_cpu:.1f} s, the burst's client {burst.client_cpu:.1f} s."
    )
    return burst.done


def burst_method(bench: Bench, sent: str) -> list[str]:
    """How `measure_bursts` measures, for a section's method; `sent` says what each POST is."""
    size = bench.size
    count, delay = size.many_runs, size.many_runs_model_seconds
    return [
        f"{count:,} {sent} sent at once on {count:,} connections (a bare HTTP/1.1 client: one"
        " pre-encoded request per connection, all connections open before the clock starts,"
        " then every request written in one go) to one `threadline serve` process (SQLite,"
        f" embedded worker); the model (scripted, `Reply(delay={delay:g})`) takes {delay:g} s"
        " per run.",
        "Time until all complete: from writing the first POST until the last run's `completed`"
        f" status is committed (watched in the database every {ms(WATCH_EVERY):.0f} ms).",
        "Peak RSS: VmHWM of the server process from `/proc/<pid>/status`, read after the burst"
        " (the server started fresh for it); the reference is its RSS when idle just before.",
        f"With THREADLINE_WORKER_CONCURRENCY={count} (one process may then carry every run at"
        f" once): {size.many_runs_bursts} bursts, each on a server started fresh and each followed"
        " by the floor's; the times are the medians (the floor's too), the peak RSS the highest"
        " (beside that server's idle RSS).",
        "Floor: the same burst, watched the same way, against the bare ASGI app"
        " (`bench/floor_app.py`) on the same uvicorn settings, which per run does one durable"
        " insert before answering (a commit and a sync of its own) and then the streamed model"
        " call and one update (committed, not synced): what any service must do for a run.",
    ]


@dataclass(frozen=True)
class Bursts:
    """What `measure_bursts` found: the time figure, and the floor's time (s) it stands
    beside, and the time's target (s)."""

    figure: Figure
    floor: float
    target: float


async def measure_bursts(bench: Bench, section: Section, prepare: Prepare, noun: str) -> Bursts:
    """The bursts of `burst_method`, each followed by the floor's, and their two figures (the
    time until all complete, the peak RSS), added to the section. `noun`: what each request
    starts (`run`)."""
    size = bench.size
    count, delay = size.many_runs, size.many_runs_model_seconds
    readings: list[Reading] = []
    floors: list[float] = []
    for attempt in range(1, size.many_runs_bursts + 1):
        name = f"Burst {attempt} of {size.many_runs_bursts}. "
        readings.append(await on_fresh_server(bench, count, section, prepare, noun, name))
        floors.append(await _floor(bench, section, name))
    done, floor = p50([reading.done for reading in readings]), p50(floors)
    highest = max(readings, key=lambda reading: reading.peak)
    bursts = f"median of {len(readings)} bursts" if len(readings) > 1 else "one burst"
    target = SECONDS_TARGET * delay / 2.0
    figure = section.add(
        Figure(
            f"{count:,} {noun}s of {delay:g} s: all complete after (worker concurrency {count}),"
            f" {bursts}",
            done,
            "s",
            floor=f"{floor:.2f} s (the bare app; the model's own time: {delay:g} s)",
            target=f"≤ {target:g} s",
            ok=at_most(done, target),
            digits=2,
        )
    )
    section.add(
        Figure(
            f"Peak RSS of the server, {count:,} {noun}s in flight",
            highest.peak,
            "MB",
            floor=f"{highest.idle:.0f} MB (idle, before)",
            target=f"≤ {RSS_TARGET_MB:.0f} MB",
            ok=at_most(highest.peak, RSS_TARGET_MB),
            digits=0,
        )
    )
    return Bursts(figure, floor, target)


async def measure(bench: Bench) -> Section:
    size = bench.size
    count, delay = size.many_runs, size.many_runs_model_seconds
    section = Section("many_runs", "5. Many runs in flight")
    section.method = burst_method(
        bench, "`POST /v1/threads/runs` (each a new thread with one message)"
    )
    section.method.append(
        "Then one burst more, on a server with the default worker concurrency of 256."
    )
    bursts = await measure_bursts(bench, section, _runs_request, "run")
    if count > 256:
        default = await on_fresh_server(bench, None, section, _runs_request, "run")
        section.add(
            Figure(
                f"{count:,} runs of {delay:g} s: all complete after (default worker concurrency"
                " 256)",
                default.done,
                "s",
                floor=f"{delay * -(-count // 256):g} s ({-(-count // 256)} waves of 256)",
                digits=2,
            )
        )
        section.add(Figure("Peak RSS, default worker concurrency", default.peak, "MB", digits=0))
    if bursts.figure.ok is False:
        section.notes.append(
            "Target missed. Everything runs on the server's one event loop: the last model call"
            " can start only once every run has been created, claimed and had its context read,"
            " and the replies, which come back together 2 s later, are recorded one after"
            " another (see when the calls reached the model server above)."
            + (
                f" The floor misses it too on this machine at this pace: the bare app, doing the"
                f" least any service must for a run, took {bursts.floor:.2f} s."
                if bursts.floor > bursts.target
                else ""
            )
            + " The profile is in the issue note."
        )
    return section
