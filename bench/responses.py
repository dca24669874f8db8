"""14. Responses: the Responses API beside the Assistants API it is served by.

A response is a run (`threadline/service/responses.py`), so each figure here is read beside
the Assistants figure for the same work, measured in the same run of the bench, on the same
server, model and client, the two interleaved so that the machine's drift falls on both.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

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
    read_sse,
    streamed_post,
    thread_and_run_turn,
)
from bench.floor_app import FloorServer
from bench.harness import Bench, run_concurrently
from bench.many_runs import burst_method, encoded, measure_bursts
from bench.overhead import TARGET_MS, model_records, streamed_run

USER_TEXT = "hi"
# A stored response's reply, one chunk per piece; with no delta interval, one
# `response.output_text.delta` per chunk.
PIECE = "abc "

# Sends one streamed request for the model named; when it was sent and when its final event
# arrived.
Timed = Callable[[str], Awaitable[tuple[float, float]]]


def _user_message() -> dict[str, str]:
    return {"role": "user", "content": USER_TEXT}


# -- 1. overhead --------------------------------------------------------------------------


async def _response(client: httpx.AsyncClient, model: str) -> tuple[float, float]:
    started, events = await streamed_post(
        client, "/v1/responses", {"model": model, "input": USER_TEXT}
    )
    return started, arrival(events, "response.completed")


async def _run(client: httpx.AsyncClient, assistant: str, model: str) -> tuple[float, float]:
    """A run on a thread that already holds its message, as section 2 measures it."""
    thread = expect(
        await client.post("/v1/threads", json={"messages": [_user_message()]}), "create thread"
    )
    body = {"assistant_id": assistant, "model": model}
    started, events = await streamed_run(client, thread["id"], body)
    return started, arrival(events, "thread.run.completed")


async def _thread_and_run(
    client: httpx.AsyncClient, assistant: str, model: str
) -> tuple[float, float]:
    """The thread, its message and the run in one request, as a response makes them."""
    body = {"assistant_id": assistant, "model": model, "thread": {"messages": [_user_message()]}}
    started, events = await streamed_post(client, "/v1/threads/runs", body)
    return started, arrival(events, "thread.run.completed")


@dataclass
class _Kind:
    """One way of asking for the turn: its overheads (s) and the server's CPU it used (s)."""

    send: Timed
    overheads: list[float]
    cpu: float = 0.0


async def _overheads(
    bench: Bench, server: ThreadlineServer, client: httpx.AsyncClient
) -> dict[str, _Kind]:
    """Each kind's overhead per turn: wall time (request sent → final event received) less
    the model's own time (its request arriving → its response's last byte leaving)."""
    size = bench.size
    prefix = f"rsp-ovh-{time.time_ns()}-"
    assistant = await create_assistant(client, f"{prefix}assistant")
    kinds = {
        "response": _Kind(lambda model: _response(client, model), []),
        "run": _Kind(lambda model: _run(client, assistant, model), []),
        "thread_and_run": _Kind(lambda model: _thread_and_run(client, assistant, model), []),
    }
    walls: dict[str, tuple[str, float]] = {}  # model -> (kind, wall time)
    for index in range(size.warmup + size.overhead_runs):
        for name, kind in kinds.items():
            model = f"{prefix}{name}-{index}"
            cpu = server.cpu_seconds()
            started, done = await kind.send(model)
            if index >= size.warmup:
                kind.cpu += server.cpu_seconds() - cpu
                walls[model] = (name, done - started)
    records = model_records(bench, prefix, walls)
    for model, (name, wall) in walls.items():
        kinds[name].overheads.append(wall - records[model].seconds)
    return kinds


_ASSISTANTS = {
    "run": "thread made beforehand",
    "thread_and_run": "thread and run in one request",
}


def _add_overheads(section: Section, kinds: dict[str, _Kind], round_trip: float, runs: int) -> None:
    response, run = kinds["response"], kinds["run"]
    value = ms(p50(response.overheads))
    section.add(
        Figure(
            "Responses: overhead per response, p50",
            value,
            "ms",
            floor=f"0 ms (the Assistants run beside it: {ms(p50(run.overheads)):.2f} ms; one"
            f" bare HTTP round trip: {ms(round_trip):.2f} ms)",
            target=f"≤ {TARGET_MS:g} ms",
            ok=at_most(value, TARGET_MS),
            digits=2,
        )
    )
    section.add(
        Figure(
            "Responses: overhead per response, p95",
            ms(p95(response.overheads)),
            "ms",
            floor=f"0 ms (the Assistants run: {ms(p95(run.overheads)):.2f} ms)",
            digits=2,
        )
    )
    for name in ("run", "thread_and_run"):
        section.add(
            Figure(
                f"Assistants run, {_ASSISTANTS[name]}: overhead, p50",
                ms(p50(kinds[name].overheads)),
                "ms",
                digits=2,
            )
        )
    section.add(Figure("Server CPU per response", ms(response.cpu / runs), "ms"))
    for name in ("run", "thread_and_run"):
        label = f"Server CPU per Assistants run, {_ASSISTANTS[name]}"
        section.add(Figure(label, ms(kinds[name].cpu / runs), "ms"))


# -- 2. concurrent turns ----------------------------------------------------------------------


async def _response_turn(client: httpx.AsyncClient, model: str) -> float:
    """`POST /v1/responses`, not streamed: answered once the response has settled, with its
    output; returns its wall time (s)."""
    started = time.perf_counter()
    body = expect(
        await client.post("/v1/responses", json={"model": model, "input": USER_TEXT}),
        "create response",
    )
    elapsed = time.perf_counter() - started
    if body["status"] != "completed" or not body["output"]:
        raise RuntimeError(f"response {body['id']} ended {body['status']}: {body.get('error')}")
    return elapsed


async def _concurrent_turns(bench: Bench, client: httpx.AsyncClient, section: Section) -> None:
    size = bench.size
    model = f"instant-{time.time_ns()}"
    assistant = await create_assistant(client, model)
    for _ in range(size.warmup):
        await _response_turn(client, model)
        await thread_and_run_turn(client, assistant)
    wall, responses = await run_concurrently(
        size.turns_concurrent, size.concurrency, lambda: _response_turn(client, model)
    )
    run_wall, runs = await run_concurrently(
        size.turns_concurrent, size.concurrency, lambda: thread_and_run_turn(client, assistant)
    )
    rate, run_rate = len(responses) / wall, len(runs) / run_wall
    beside = "(Assistants, create and poll)"
    section.add(
        Figure(
            f"Responses: turns/s, {size.concurrency} concurrent",
            rate,
            "turns/s",
            floor=f"{run_rate:,.1f} turns/s {beside}",
        )
    )
    section.add(
        Figure(
            f"Responses: turn p50, {size.concurrency} concurrent",
            ms(p50(responses)),
            "ms",
            floor=f"{ms(p50(runs)):.1f} ms {beside}",
        )
    )
    section.add(
        Figure(
            f"Assistants, create and poll: turns/s, {size.concurrency} concurrent",
            run_rate,
            "turns/s",
        )
    )


# -- 3. background responses in flight ----------------------------------------------------------


async def _background_request(bench: Bench, client: httpx.AsyncClient, slow: str) -> bytes:
    """`POST /v1/responses` with `background: true` on the slow model; the server warmed up
    with responses of the instant model."""
    model = f"instant-{time.time_ns()}"
    for _ in range(bench.size.warmup):
        await _response_turn(client, model)
    return encoded({"model": slow, "input": "go", "background": True}, "/v1/responses")


# -- 4. a stream resumed from the middle --------------------------------------------------------


class _NotServed(Exception):
    """The server refuses to stream a stored response again (HTTP 400)."""


async def _replay(
    client: httpx.AsyncClient, response_id: str, starting_after: int | None
) -> tuple[float, list[SseEvent]]:
    """`GET /v1/responses/{id}?stream=true[&starting_after=N]` read to its end, as the SDK's
    `responses.retrieve(id, stream=True, starting_after=N)` sends it; when it was sent, and
    the events."""
    params: dict[str, str | int] = {"stream": "true"}
    if starting_after is not None:
        params["starting_after"] = starting_after
    started = time.perf_counter()
    async with client.stream("GET", f"/v1/responses/{response_id}", params=params) as answer:
        if answer.status_code != 200:
            await answer.aread()
            if answer.status_code == 400:
                raise _NotServed(answer.text[:300])
            raise RuntimeError(f"replay: HTTP {answer.status_code} {answer.text[:300]}")
        events = await read_sse(answer)
    if not events or events[-1].event != "response.completed":
        raise RuntimeError(f"the replay ended with {[e.event for e in events[-1:]]}")
    return started, events


async def _resumed_stream(bench: Bench, section: Section) -> None:
    size = bench.size
    model = f"long-{time.time_ns()}"
    bench.model.script(model, PIECE * size.resume_chunks, chunks=size.resume_chunks)
    env = {"THREADLINE_DELTA_INTERVAL_MS": "0"}
    with (
        ThreadlineServer(
            bench.sqlite_url("responses-resume"),
            bench.workdir,
            model_url=bench.model.base_url,
            env=env,
        ) as server,
        FloorServer(bench.workdir) as floor,
    ):
        async with http_client(server.url) as client, http_client(floor.url) as bare:
            stored = expect(
                await client.post("/v1/responses", json={"model": model, "input": "at length"}),
                "create response",
            )
            try:
                _, whole = await _replay(client, stored["id"], None)
            except _NotServed as refused:
                section.notes.append(
                    "A stream resumed from the middle: not measured, the server refuses"
                    f" `GET /v1/responses/{{id}}?stream=true` (HTTP 400: {refused})."
                )
                return
            middle = len(whole) // 2
            after = int(whole[middle].json()["sequence_number"])
            resumed: list[float] = []
            resumed_all: list[float] = []
            from_start: list[float] = []
            retrieve: list[float] = []
            round_trips: list[float] = []
            for index in range(size.warmup + size.resume_reads):
                started, events = await _replay(client, stored["id"], after)
                first = events[0].json()["sequence_number"]
                if first != after + 1 or len(events) != len(whole) - middle - 1:
                    raise RuntimeError(
                        f"resumed after {after}: {len(events)} events from {first}, not"
                        f" {len(whole) - middle - 1} from {after + 1}"
                    )
                opened, again = await _replay(client, stored["id"], None)
                sent = time.perf_counter()
                expect(await client.get(f"/v1/responses/{stored['id']}"), "retrieve")
                got = time.perf_counter()
                expect(await bare.post("/v1/noop", json={}), "floor")
                if index >= size.warmup:
                    resumed.append(events[0].received - started)
                    resumed_all.append(events[-1].received - started)
                    from_start.append(again[0].received - opened)
                    retrieve.append(got - sent)
                    round_trips.append(time.perf_counter() - got)
    section.add(
        Figure(
            f"A stream of {len(whole)} events resumed after event {after}: first replayed"
            " event, p50",
            ms(p50(resumed)),
            "ms",
            floor=f"{ms(p50(from_start)):.2f} ms (the same stream from its start);"
            f" {ms(p50(retrieve)):.2f} ms (a plain retrieve); {ms(p50(round_trips)):.2f} ms"
            " (one bare HTTP round trip)",
            digits=2,
        )
    )
    section.add(
        Figure(
            "… first replayed event, p95",
            ms(p95(resumed)),
            "ms",
            floor=f"{ms(p95(from_start)):.2f} ms (from its start)",
            digits=2,
        )
    )
    section.add(
        Figure(
            f"… all {len(whole) - middle - 1} replayed events, p50",
            ms(p50(resumed_all)),
            "ms",
            digits=2,
        )
    )


# -- the section ---------------------------------------------------------------------------


async def measure(bench: Bench) -> Section:
    size = bench.size
    section = Section("responses", "14. Responses beside Assistants")
    section.method = [
        "Overhead: as section 2, wall time less the model's own time (stamped by the model"
        " server), on the instant echo model, SQLite. A response: `POST /v1/responses` with"
        f' `input: "{USER_TEXT}"` and `stream: true`, to its `response.completed` event; it'
        " makes its thread, message and run in that one request. Beside it, interleaved one by"
        " one: an Assistants run as section 2 measures it (`POST /v1/threads/{id}/runs`,"
        " streamed, on a thread made beforehand holding the message), and one created with its"
        " thread in one request (`POST /v1/threads/runs`, streamed), the Assistants request"
        f" doing what a response does. {size.overhead_runs} of each after {size.warmup} warm-up"
        " rounds. The floor is 0 ms; the bare round trip is the bare ASGI app's `POST /v1/noop`."
        " Server CPU: user + system time of the whole server process (every thread, from"
        " /proc) over each request, per request.",
        f"Concurrent turns: {size.turns_concurrent} turns, {size.concurrency} at a time, on the"
        " same server. A Responses turn is `POST /v1/responses`, not streamed, answered with the"
        " response once it has settled; the Assistants turn beside it is what"
        " `create_and_run_poll` does, `POST /v1/threads/runs` with the thread's message, the run"
        " polled until `completed` (waiting `openai-poll-after-ms`, 5 ms here), then"
        " `GET .../messages?limit=1` for the reply.",
        *burst_method(bench, '`POST /v1/responses` with `"background": true`'),
        "A stream resumed from the middle: a stored, completed response whose reply came in"
        f" {size.resume_chunks} chunks (server with THREADLINE_DELTA_INTERVAL_MS=0, so each chunk"
        " is a `response.output_text.delta` of its own), read again with"
        " `GET /v1/responses/{id}?stream=true&starting_after=N` (the SDK's"
        " `responses.retrieve(id, stream=True, starting_after=N)`), N its middle event; from"
        " sending the request to receiving the first event (numbered N + 1). Beside it, each"
        " time: the same stream from its start, a plain `GET /v1/responses/{id}`, and a bare"
        f" round trip. {size.resume_reads} reads of each after {size.warmup} warm-up reads.",
    ]
    with (
        ThreadlineServer(
            bench.sqlite_url("responses"), bench.workdir, model_url=bench.model.base_url
        ) as server,
        FloorServer(bench.workdir) as floor,
    ):
        async with (
            http_client(server.url, connections=size.concurrency + 4) as client,
            http_client(floor.url) as bare,
        ):
            kinds = await _overheads(bench, server, client)
            round_trips = []
            for _ in range(size.warmup + size.overhead_runs):
                started = time.perf_counter()
                expect(await bare.post("/v1/noop", json={}), "floor")
                round_trips.append(time.perf_counter() - started)
            _add_overheads(section, kinds, p50(round_trips[size.warmup :]), size.overhead_runs)
            await _concurrent_turns(bench, client, section)
    bursts = await measure_bursts(bench, section, _background_request, "background response")
    if bursts.figure.ok is False and bursts.floor > bursts.target:
        section.notes.append(
            f"Target missed, and by the floor too: the bare app, doing the least any service"
            f" must for a run, took {bursts.floor:.2f} s on this machine at this pace."
        )
    await _resumed_stream(bench, section)
    return section
