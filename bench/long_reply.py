"""8. Long replies: the server's CPU per reply chunk, at two reply lengths.

A reply's chunks each cost the server some work (reading the chunk, adding it to the turn,
writing deltas). If any of that work grows with the reply so far, a reply eight times as long
costs more than eight times the CPU, and a long reply takes over the event loop every other
request shares. The ratio of the per-chunk figures is what this measures; the figures
themselves depend on the machine.
"""

from __future__ import annotations

import time

import httpx

from bench.common import (
    Figure,
    Section,
    ThreadlineServer,
    at_most,
    create_assistant,
    delta_text,
    expect,
    http_client,
    p50,
    read_sse,
)
from bench.harness import Bench

# Reply lengths, in chunks: a short and a long one, eight times longer.
CHUNKS = {"tiny": (2_500, 20_000), "full": (25_000, 200_000)}
REPEATS = {"tiny": 1, "full": 3}
PIECE = "abc "  # each chunk's text: about a token of English
TARGET_RATIO = 1.2


async def _reply_cpu(
    client: httpx.AsyncClient, server: ThreadlineServer, bench: Bench, assistant: str, chunks: int
) -> float:
    """Server CPU (every thread) from creating a streamed run until its last event arrived,
    for a reply of `chunks` chunks sent back to back by the model."""
    model = f"long-{time.time_ns()}"
    text = PIECE * chunks
    bench.model.script(model, text, chunks=chunks)
    thread = expect(await client.post("/v1/threads", json={}), "create thread")
    message = {"role": "user", "content": "a long answer, please"}
    expect(await client.post(f"/v1/threads/{thread['id']}/messages", json=message), "add message")
    body = {"assistant_id": assistant, "model": model, "stream": True}
    cpu = server.cpu_seconds()
    async with client.stream("POST", f"/v1/threads/{thread['id']}/runs", json=body) as response:
        if response.status_code != 200:
            await response.aread()
            raise RuntimeError(f"create run: HTTP {response.status_code} {response.text[:300]}")
        events = await read_sse(response)
    used = server.cpu_seconds() - cpu
    ends = [e.event for e in events if e.event.startswith("thread.run.") and "step" not in e.event]
    if ends[-1:] != ["thread.run.completed"]:
        raise RuntimeError(f"the run ended with {ends[-1:]}")
    streamed = "".join(delta_text(e) for e in events if e.event == "thread.message.delta")
    if streamed != text:
        raise RuntimeError(f"the deltas carry {len(streamed)} characters, not {len(text)}")
    bench.model.records(model)  # forget the model server's record of it
    return used


async def measure(bench: Bench) -> Section:
    short, long = CHUNKS[bench.size.name]
    repeats = REPEATS[bench.size.name]
    section = Section("long_reply", "8. Long replies: server CPU per reply chunk")
    section.method = [
        f"A streamed run (`POST /v1/threads/{{id}}/runs` with `stream: true`, SQLite, the"
        f" default delta interval) whose model answers with {short:,} and then {long:,} chunks"
        f" of {len(PIECE)} characters each, sent back to back by the scripted model server.",
        "Server CPU: user + system time of the whole `threadline serve` process (every thread,"
        " from /proc) from sending the create request to receiving `thread.run.completed`,"
        " divided by the reply's chunks. The client checks the deltas add up to the reply.",
        f"Each length {repeats} time(s) after one warm-up run of {short:,} chunks; the median."
        " Ratio: the long reply's CPU per chunk over the short one's (1.0 means linear: eight"
        " times the chunks, eight times the CPU).",
    ]
    with ThreadlineServer(
        bench.sqlite_url("long_reply"), bench.workdir, model_url=bench.model.base_url
    ) as server:
        async with http_client(server.url) as client:
            assistant = await create_assistant(client, "long-assistant")
            await _reply_cpu(client, server, bench, assistant, short)
            short_cpu = [
                await _reply_cpu(client, server, bench, assistant, short) for _ in range(repeats)
            ]
            long_cpu = [
                await _reply_cpu(client, server, bench, assistant, long) for _ in range(repeats)
            ]
    per_short = p50(short_cpu) / short * 1e6
    per_long = p50(long_cpu) / long * 1e6
    ratio = per_long / per_short
    section.add(Figure(f"Server CPU per chunk, {short:,}-chunk reply", per_short, "µs"))
    section.add(Figure(f"Server CPU per chunk, {long:,}-chunk reply", per_long, "µs"))
    section.add(
        Figure(
            f"Per-chunk CPU, {long:,} chunks over {short:,}",
            ratio,
            "",
            floor="1.0 (linear)",
            target=f"≤ {TARGET_RATIO}",
            ok=at_most(ratio, TARGET_RATIO),
            digits=2,
        )
    )
    section.notes.append(
        f"Server CPU per reply: {short:,} chunks {p50(short_cpu):.2f} s, {long:,} chunks"
        f" {p50(long_cpu):.2f} s (medians)."
    )
    return section
