"""2. Overhead per run: what a run costs beyond the model's own time.

Each run is created with `stream: true` on a thread that already holds its user message, so
the client sees `thread.run.completed` the moment it is committed, without polling. The
model server stamps when the model request arrived and when its response ended; all stamps
are `perf_counter()` (CLOCK_MONOTONIC), so they subtract across processes.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

import httpx

from bench.common import (
    Figure,
    Section,
    SseEvent,
    ThreadlineServer,
    arrival,
    at_most,
    create_assistant,
    expect,
    http_client,
    ms,
    p50,
    p95,
    streamed_post,
)
from bench.floor_app import FloorServer
from bench.harness import Bench
from bench.model_server import ModelRecord

TARGET_MS = 5.0


async def streamed_run(
    client: httpx.AsyncClient, thread_id: str, body: Mapping[str, object]
) -> tuple[float, list[SseEvent]]:
    """Start a run with `stream: true`; when the request was sent, and the events."""
    return await streamed_post(client, f"/v1/threads/{thread_id}/runs", body)


def model_records(bench: Bench, prefix: str, models: Iterable[str]) -> dict[str, ModelRecord]:
    """The model server's records of `models` (all named with `prefix`), which it then
    forgets; raises if any of them never reached it."""
    wanted = set(models)
    records = {r.model: r for r in bench.model.records(prefix) if r.model in wanted}
    missing = wanted - set(records)
    if missing:
        raise RuntimeError(f"the model server saw no request for {len(missing)} runs")
    return records


async def measure(bench: Bench) -> Section:
    size = bench.size
    section = Section("overhead", "2. Overhead per run")
    section.method = [
        "Run wall time: from sending `POST /v1/threads/{id}/runs` with `stream: true` to receiving"
        " its `thread.run.completed` event (the thread already holds the user message `hi`; the"
        " instant echo model answers `echo: hi` in two chunks; SQLite).",
        "The model's own time: from the chat-completion request reaching the scripted model"
        " server to its response's last byte leaving it, stamped by the model server.",
        "Overhead = run wall time - the model's own time; everything Threadline does for a run:"
        " the create request, queueing and claiming, context building, the provider call, and"
        " recording steps, message, deltas and status changes, each committed durably, plus"
        " delivering the final event.",
        f"{size.overhead_runs} runs, one at a time, each on its own new thread, after"
        f" {size.warmup} warm-up runs.",
    ]
    prefix = f"ovh-{time.time_ns()}-"
    with (
        ThreadlineServer(
            bench.sqlite_url("overhead"), bench.workdir, model_url=bench.model.base_url
        ) as server,
        FloorServer(bench.workdir) as floor,
    ):
        async with http_client(server.url) as client, http_client(floor.url) as bare:
            assistant = await create_assistant(client, f"{prefix}assistant")
            walls: dict[str, float] = {}
            starts: dict[str, float] = {}
            completed: dict[str, float] = {}
            run_cpu = 0.0
            for index in range(size.warmup + size.overhead_runs):
                thread = expect(
                    await client.post(
                        "/v1/threads", json={"messages": [{"role": "user", "content": "hi"}]}
                    ),
                    "create thread",
                )
                model = f"{prefix}{index}"
                cpu = server.cpu_seconds()
                started, events = await streamed_run(
                    client, thread["id"], {"assistant_id": assistant, "model": model}
                )
                if index >= size.warmup:
                    run_cpu += server.cpu_seconds() - cpu
                done = arrival(events, "thread.run.completed")
                if index >= size.warmup:
                    walls[model] = done - started
                    starts[model] = started
                    completed[model] = done
            round_trips = []
            for _ in range(size.warmup + size.overhead_runs):
                started = time.perf_counter()
                expect(await bare.post("/v1/noop", json={}), "floor")
                round_trips.append(time.perf_counter() - started)
            round_trips = round_trips[size.warmup :]
    records = model_records(bench, prefix, walls)
    overheads = [walls[m] - records[m].seconds for m in walls]
    before = [records[m].arrived - starts[m] for m in walls]
    after = [completed[m] - records[m].ended for m in walls]
    model_times = [records[m].seconds for m in walls]
    value = ms(p50(overheads))
    headline = section.add(
        Figure(
            "Overhead per run, p50",
            value,
            "ms",
            floor=f"0 ms (one bare HTTP round trip: {ms(p50(round_trips)):.2f} ms)",
            target=f"≤ {TARGET_MS:g} ms",
            ok=at_most(value, TARGET_MS),
            digits=2,
        )
    )
    section.add(Figure("Overhead per run, p95", ms(p95(overheads)), "ms", floor="0 ms", digits=2))
    section.add(
        Figure("Server CPU per run (all threads, user + system)", ms(run_cpu / len(walls)), "ms")
    )
    section.add(Figure("Run wall time, p50", ms(p50(list(walls.values()))), "ms", digits=2))
    section.add(Figure("The model's own time, p50", ms(p50(model_times)), "ms", digits=2))
    section.add(
        Figure(
            "… of which before the model (send → model request), p50",
            ms(p50(before)),
            "ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "… of which after the model (model done → completed event), p50",
            ms(p50(after)),
            "ms",
            digits=2,
        )
    )
    if headline.ok is False:
        section.notes.append(
            f"Target missed. The model answers in {ms(p50(model_times)):.1f} ms, yet the server"
            f" process uses {ms(run_cpu / len(walls)):.0f} ms of CPU per run: the overhead is"
            " Threadline's own work, not waiting. The profile is in the issue note."
        )
    return section
