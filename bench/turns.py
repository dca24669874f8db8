"""1. Turns: create a thread, add a message, run it to completion, read the reply.

The model is the scripted server's instant echo. The floor is a "bare turn": the same number
of HTTP requests against the bare ASGI app (three durable single-row inserts for the thread,
the message and the run, one read for the poll, one for the reply), on the same client.
"""

from __future__ import annotations

import time

import httpx

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    create_assistant,
    expect,
    http_client,
    ms,
    p50,
    p95,
    streamed_turn,
    turn,
)
from bench.floor_app import FloorServer
from bench.harness import Bench, run_concurrently


async def bare_turn(client: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    for _ in range(3):
        message = {"role": "user", "content": "hi"}
        expect(await client.post("/v1/threads/thread_x/messages", json=message), "floor insert")
    for _ in range(2):
        expect(await client.get("/v1/noop"), "floor read")
    return time.perf_counter() - started


async def measure(bench: Bench) -> Section:
    size = bench.size
    section = Section("turns", "1. Turn (instant model)")
    section.method = [
        "A turn: `POST /v1/threads`, `POST /v1/threads/{id}/messages`,"
        " `POST /v1/threads/{id}/runs`, `GET` the run until it is `completed` (waiting"
        " `openai-poll-after-ms`, 5 ms here, between polls, as the SDKs' `create_and_poll`"
        " does), then `GET .../messages?limit=1` for the reply."
        " Raw `httpx.AsyncClient` with keep-alive; one turn per new thread; SQLite.",
        f"Sequential: {size.turns_sequential} turns after {size.warmup} warm-up turns."
        f" Concurrent: {size.turns_concurrent} turns, {size.concurrency} at a time.",
        "The concurrent turns once more with the run created with `stream: true` and followed"
        " to its end instead of polled, which takes the polls' load off the server.",
        "Floor: a bare turn, the same five requests against the bare ASGI app (three durable"
        " single-row SQLite inserts, two reads), same client, same concurrency.",
    ]
    model = f"instant-{time.time_ns()}"
    with (
        ThreadlineServer(
            bench.sqlite_url("turns"), bench.workdir, model_url=bench.model.base_url
        ) as server,
        FloorServer(bench.workdir) as floor,
    ):
        async with (
            http_client(server.url) as client,
            http_client(floor.url) as bare,
        ):
            assistant = await create_assistant(client, model)
            for _ in range(size.warmup):
                await turn(client, assistant)
                await bare_turn(bare)
            cpu = server.cpu_seconds()
            sequential = [await turn(client, assistant) for _ in range(size.turns_sequential)]
            cpu_per_turn = (server.cpu_seconds() - cpu) / len(sequential)
            cpu = floor.cpu_seconds()
            bare_sequential = [await bare_turn(bare) for _ in range(size.turns_sequential)]
            bare_cpu_per_turn = (floor.cpu_seconds() - cpu) / len(bare_sequential)
            wall, concurrent = await run_concurrently(
                size.turns_concurrent, size.concurrency, lambda: turn(client, assistant)
            )
            bare_wall, bare_concurrent = await run_concurrently(
                size.turns_concurrent, size.concurrency, lambda: bare_turn(bare)
            )
            streamed_wall, streamed = await run_concurrently(
                size.turns_concurrent, size.concurrency, lambda: streamed_turn(client, assistant)
            )
        section.notes.append(f"Server peak RSS: {server.peak_rss_mb():.0f} MB.")

    seq_rate = len(sequential) / sum(sequential)
    bare_seq_rate = len(bare_sequential) / sum(bare_sequential)
    conc_rate = len(concurrent) / wall
    bare_conc_rate = len(bare_concurrent) / bare_wall
    section.add(
        Figure("Turns/s, sequential", seq_rate, "turns/s", floor=f"{bare_seq_rate:,.0f} turns/s")
    )
    for name, pick in (("p50", p50), ("p95", p95)):
        section.add(
            Figure(
                f"Turn {name}, sequential",
                ms(pick(sequential)),
                "ms",
                floor=f"{ms(pick(bare_sequential)):.1f} ms",
            )
        )
    section.add(
        Figure(
            f"Turns/s, {size.concurrency} concurrent",
            conc_rate,
            "turns/s",
            floor=f"{bare_conc_rate:,.0f} turns/s",
        )
    )
    for name, pick in (("p50", p50), ("p95", p95)):
        section.add(
            Figure(
                f"Turn {name}, {size.concurrency} concurrent",
                ms(pick(concurrent)),
                "ms",
                floor=f"{ms(pick(bare_concurrent)):.1f} ms",
            )
        )
    section.add(
        Figure(
            "Server CPU per turn, sequential",
            ms(cpu_per_turn),
            "ms",
            floor=f"{ms(bare_cpu_per_turn):.1f} ms (the bare app, per bare turn)",
        )
    )
    streamed_rate = len(streamed) / streamed_wall
    section.add(
        Figure(
            f"Turns/s, {size.concurrency} concurrent, run streamed instead of polled",
            streamed_rate,
            "turns/s",
            floor=f"{bare_conc_rate:,.0f} turns/s",
        )
    )
    section.add(
        Figure(
            f"Turn p50, {size.concurrency} concurrent, run streamed instead of polled",
            ms(p50(streamed)),
            "ms",
            floor=f"{ms(p50(bare_concurrent)):.1f} ms",
        )
    )
    return section
