"""3. Message append over HTTP, against its floor measured in the same run.

The floor is `bench/floor_app.py`: the same request, answered by a bare ASGI app on the same
uvicorn that does one durable single-row INSERT of the same message into Threadline's own
`messages` table, in a SQLite file with the same PRAGMAs. Both are driven by the same client
loop, in alternating blocks so drift on the machine hits both alike.
"""

from __future__ import annotations

import time

import httpx

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    at_least,
    expect,
    http_client,
    ms,
    p50,
)
from bench.floor_app import FloorServer
from bench.harness import Bench, run_concurrently

TARGET = 0.5
CONTENT = (
    "Could you look at the quarterly numbers again and tell me whether the drop in March is"
    " seasonal or something we should worry about? I have attached nothing, just going by"
    " the dashboard."
)


async def append_one(client: httpx.AsyncClient, thread_id: str) -> float:
    started = time.perf_counter()
    body = {"role": "user", "content": CONTENT}
    expect(await client.post(f"/v1/threads/{thread_id}/messages", json=body), "append")
    return time.perf_counter() - started


async def measure(bench: Bench) -> Section:
    size = bench.size
    total = size.append_messages * size.append_rounds
    section = Section("append", "3. Message append over HTTP")
    section.method = [
        f"`POST /v1/threads/{{id}}/messages` with a {len(CONTENT)}-character text message,"
        " one request at a time on one keep-alive connection (raw `httpx.AsyncClient`); SQLite.",
        "Floor: the bare ASGI app (`bench/floor_app.py`) on the same uvicorn settings, doing one"
        " INSERT of the same message object into Threadline's `messages` table (same schema and"
        " indexes) in a WAL SQLite file with synchronous=FULL, committed before answering.",
        f"{size.append_rounds} alternating blocks of {size.append_messages} appends to each"
        f" ({total} in all per side) after {size.warmup} warm-up appends; rate = appends / the"
        " sum of their wall times. The same with 16 requests at a time is reported beside it.",
    ]
    with (
        ThreadlineServer(
            bench.sqlite_url("append"), bench.workdir, model_url=bench.model.base_url
        ) as server,
        FloorServer(bench.workdir) as floor,
    ):
        async with http_client(server.url) as client, http_client(floor.url) as bare:
            thread = expect(await client.post("/v1/threads", json={}), "create thread")["id"]
            for _ in range(size.warmup):
                await append_one(client, thread)
                await append_one(bare, "thread_floor")
            ours: list[float] = []
            floors: list[float] = []
            our_cpu = floor_cpu = 0.0
            for _ in range(size.append_rounds):
                cpu = server.cpu_seconds()
                ours += [await append_one(client, thread) for _ in range(size.append_messages)]
                our_cpu += server.cpu_seconds() - cpu
                cpu = floor.cpu_seconds()
                floors += [
                    await append_one(bare, "thread_floor") for _ in range(size.append_messages)
                ]
                floor_cpu += floor.cpu_seconds() - cpu
            concurrent = 16
            thread2 = expect(await client.post("/v1/threads", json={}), "create thread")["id"]
            wall, _ = await run_concurrently(total, concurrent, lambda: append_one(client, thread2))
            floor_wall, _ = await run_concurrently(
                total, concurrent, lambda: append_one(bare, "thread_floor")
            )
    rate = len(ours) / sum(ours)
    floor_rate = len(floors) / sum(floors)
    ratio = rate / floor_rate
    section.add(
        Figure(
            "Append, sequential",
            rate,
            "messages/s",
            floor=f"{floor_rate:,.0f} messages/s",
            digits=0,
        )
    )
    headline = section.add(
        Figure(
            "Append ÷ floor, sequential",
            ratio * 100,
            "%",
            floor="100 %",
            target=f"≥ {TARGET * 100:.0f} %",
            ok=at_least(ratio, TARGET),
            digits=0,
        )
    )
    section.add(
        Figure(
            "Append latency p50, sequential",
            ms(p50(ours)),
            "ms",
            floor=f"{ms(p50(floors)):.2f} ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "Server CPU per append, sequential",
            ms(our_cpu / len(ours)),
            "ms",
            floor=f"{ms(floor_cpu / len(floors)):.2f} ms",
            digits=2,
        )
    )
    conc_rate = total / wall
    floor_conc_rate = total / floor_wall
    section.add(
        Figure(
            f"Append, {concurrent} at a time",
            conc_rate,
            "messages/s",
            floor=f"{floor_conc_rate:,.0f} messages/s",
            digits=0,
        )
    )
    section.add(
        Figure(
            f"Append ÷ floor, {concurrent} at a time",
            conc_rate / floor_conc_rate * 100,
            "%",
            floor="100 %",
            digits=0,
        )
    )
    if headline.ok is False:
        section.notes.append(
            f"Target missed. Per append the server uses {ms(our_cpu / len(ours)):.2f} ms of CPU"
            f" where the floor uses {ms(floor_cpu / len(floors)):.2f} ms; both commit one durable"
            " write. The profile is in the issue note."
        )
    return section
