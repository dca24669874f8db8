"""7. Streaming: how long a model chunk takes to reach the client as `thread.message.delta`.

The model server stamps each streamed chunk as it sends it (model names starting `stamp-`),
the client stamps each SSE event as it arrives; both are `perf_counter()`, CLOCK_MONOTONIC,
one clock on one machine. A delta carries one chunk or, when chunks come within the
service's delta interval, several: each chunk is matched with the delta its text ends in.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx

from bench.common import (
    Figure,
    Section,
    SseEvent,
    ThreadlineServer,
    create_assistant,
    delta_text,
    http_client,
    ms,
    p50,
    p95,
    read_sse,
)
from bench.harness import Bench
from bench.model_server import STAMPED_PREFIX, ModelRecord
from threadline.config import Settings

WORDS = 10
USER_TEXT = " ".join(f"w{k}" for k in range(WORDS))  # echoed back as one chunk per word
ENDINGS = {"thread.run.completed", "thread.run.failed", "thread.run.incomplete"}


@dataclass
class Stream:
    model: str
    expected: str
    deltas: list[tuple[float, str]] = field(default_factory=list)
    error: str | None = None


async def _stream_run(client: httpx.AsyncClient, assistant: str, stream: Stream) -> None:
    body = {
        "assistant_id": assistant,
        "model": stream.model,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": USER_TEXT}]},
    }
    try:
        async with client.stream("POST", "/v1/threads/runs", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                stream.error = f"HTTP {response.status_code}"
                return
            events = await read_sse(response)
    except httpx.HTTPError as exc:
        stream.error = f"{type(exc).__name__}: {exc}"
        return
    stream.deltas = [
        (e.received, delta_text(e)) for e in events if e.event == "thread.message.delta"
    ]
    ends = [e.event for e in events if e.event in ENDINGS or e.event == "error"]
    if ends != ["thread.run.completed"]:
        stream.error = f"ended with {ends}"
    elif "".join(text for _, text in stream.deltas) != stream.expected:
        stream.error = "reply text differs from what the model sent"


async def _stream_direct(client: httpx.AsyncClient, model: str) -> list[SseEvent]:
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": USER_TEXT}]}
    async with client.stream("POST", "/chat/completions", json=body) as response:
        return [e for e in await read_sse(response) if _chunk_content(e)]


def _chunk_content(event: SseEvent) -> str:
    if event.data == "[DONE]":
        return ""
    choices = event.json().get("choices") or []
    return "".join((c.get("delta") or {}).get("content") or "" for c in choices)


def _latencies(stream: Stream, record: ModelRecord | None) -> list[float]:
    """Receipt - send for each chunk: received with the delta in which its text ends."""
    if record is None:
        stream.error = stream.error or "the model server saw no request"
        return []
    if "".join(text for _, text in stream.deltas) != "".join(text for _, text in record.chunks):
        stream.error = stream.error or "deltas do not add up to the model's chunks"
        return []
    arrivals: list[tuple[int, float]] = []  # (text length up to the end of a delta, receipt)
    length = 0
    for received, text in stream.deltas:
        length += len(text)
        arrivals.append((length, received))
    latencies, sent_length, index = [], 0, 0
    for sent, text in record.chunks:
        sent_length += len(text)
        while arrivals[index][0] < sent_length:
            index += 1
        latencies.append(arrivals[index][1] - sent)
    return latencies


async def measure(bench: Bench) -> Section:
    size = bench.size
    section = Section("streaming", "7. Streaming")
    section.method = [
        "A streamed run: `POST /v1/threads/runs` with `stream: true`, a new thread whose user"
        f" message the instant echo model answers in {WORDS + 1} chunks (one per word), SQLite.",
        "Delta latency: from the model server sending a chunk to the client receiving the"
        " `thread.message.delta` carrying it (both stamped with CLOCK_MONOTONIC). Between the"
        " two: the provider's client reading the chunk, the recorder committing the delta to the"
        " event log, the follower waking and reading it, the SSE frame. The model sends its"
        " chunks back to back: what has arrived when the server's event loop is next free goes"
        " out as the first delta (all of it, with the run's end, if the whole reply has), the"
        " rest come within the service's delta interval (THREADLINE_DELTA_INTERVAL_MS, default"
        f" {Settings.delta_interval_ms}) and go out together"
        " when the model's stream ends; a chunk's latency is that of the delta carrying it.",
        f"Sequential: {size.stream_sequential} streams after {size.warmup} warm-up streams. Floor:"
        " the same request sent straight to the model server, chunk sent → chunk received.",
        f"Concurrent: {size.stream_concurrent} streams opened at once on one server process; the"
        f" model waits {size.stream_concurrent_delay:g} s before answering so all are open"
        " together. An error is a non-200 answer, a broken connection, an end other than"
        " `thread.run.completed`, or deltas that do not add up to what the model sent.",
    ]
    nonce = f"{STAMPED_PREFIX}{time.time_ns()}-"
    expected = f"echo: {USER_TEXT}"
    with ThreadlineServer(
        bench.sqlite_url("streaming"), bench.workdir, model_url=bench.model.base_url
    ) as server:
        async with (
            http_client(server.url, connections=size.stream_concurrent + 8) as client,
            http_client(bench.model.base_url) as direct,
        ):
            assistant = await create_assistant(client, f"{nonce}assistant")
            sequential = [
                Stream(f"{nonce}s{index}", expected)
                for index in range(size.warmup + size.stream_sequential)
            ]
            direct_events: dict[str, list[SseEvent]] = {}
            for index, stream in enumerate(sequential):
                await _stream_run(client, assistant, stream)
                model = f"{nonce}d{index}"
                direct_events[model] = await _stream_direct(direct, model)
            concurrent = [
                Stream(f"{nonce}c{index}", " ".join(["done"] * WORDS))
                for index in range(size.stream_concurrent)
            ]
            for stream in concurrent:
                bench.model.script(
                    stream.model, stream.expected, delay=size.stream_concurrent_delay
                )
            started = time.perf_counter()
            await asyncio.gather(*(_stream_run(client, assistant, s) for s in concurrent))
            concurrent_wall = time.perf_counter() - started
        peak = server.peak_rss_mb() or 0.0
    records = {r.model: r for r in bench.model.records(nonce)}

    measured = sequential[size.warmup :]
    first: list[float] = []
    every: list[float] = []
    for stream in measured:
        latencies = _latencies(stream, records.get(stream.model))
        if latencies:
            first.append(latencies[0])
            every += latencies
    errors = [s.error for s in measured if s.error]
    if errors:
        raise RuntimeError(f"{len(errors)} sequential streams failed, e.g. {errors[0]}")
    floor_first = []
    for model, events in list(direct_events.items())[size.warmup :]:
        record = records[model]
        floor_first.append(events[0].received - record.chunks[0][0])

    loaded_first: list[float] = []
    for stream in concurrent:
        latencies = _latencies(stream, records.get(stream.model))
        if latencies:
            loaded_first.append(latencies[0])
    failures = [s.error for s in concurrent if s.error]

    section.add(
        Figure(
            "First-delta latency, p50",
            ms(p50(first)),
            "ms",
            floor=f"{ms(p50(floor_first)):.2f} ms (model server → client directly)",
            digits=2,
        )
    )
    section.add(
        Figure(
            "First-delta latency, p95",
            ms(p95(first)),
            "ms",
            floor=f"{ms(p95(floor_first)):.2f} ms",
            digits=2,
        )
    )
    section.add(Figure("Delta latency, every chunk, p50", ms(p50(every)), "ms", digits=2))
    deltas = [float(len(stream.deltas)) for stream in measured]
    section.add(
        Figure(
            "Deltas per stream, p50",
            p50(deltas),
            "",
            floor=f"{WORDS + 1} (the model's chunks)",
            digits=0,
        )
    )
    section.add(
        Figure(
            f"{size.stream_concurrent} concurrent streams: errors",
            float(len(failures)),
            "",
            floor="0",
            target="0 errors",
            ok=not failures,
            digits=0,
        )
    )
    section.add(
        Figure(
            f"{size.stream_concurrent} concurrent streams: first-delta latency, p50",
            ms(p50(loaded_first)),
            "ms",
            digits=1,
        )
    )
    section.add(
        Figure(
            f"{size.stream_concurrent} concurrent streams: all done after",
            concurrent_wall,
            "s",
            floor=f"{size.stream_concurrent_delay:g} s (the model's wait)",
            digits=2,
        )
    )
    section.add(Figure("Peak RSS of the server", peak, "MB", digits=0))
    if failures:
        section.notes.append(f"First errors: {sorted(set(failures))[:5]}")
    return section
