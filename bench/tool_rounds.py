"""11. Tool rounds: what a round of a service-side tool costs, and many runs looping at once.

The tool is an OpenAPI tool whose one operation (`GET /ping`) is served by a bare ASGI app in
a process of its own (`python -m bench.tool_rounds --port P`), which answers at once and
counts what it answered. The model is the model server's `tools-K-...` model, which calls
the first offered tool K times, one call per round, then answers `read N tool answers`
(`bench/model_server.py`): it reads the conversation, so concurrent runs can share it.

A round's cost is read two ways. Paired: each run with one round is set against a run with
none, of the same assistant (the tool offered to both) and the same model server, started
just before or after it; each run's model time, stamped by the model server, is taken out
of its wall time, so what is left of the difference is what the round adds on Threadline's
side (the tool-call step written durably, the HTTP call to the tool, its answer recorded and
the step closed with the second turn's context read, the second model call's client side).
And between the two model calls of the run with a round: from the first call's response
ending to the second call's request arriving.

Beside them, what a round cannot go below on this machine: the tool's HTTP call made as the
OpenAPI tool makes it (aiohttp, a kept connection), and one sync of a file to disk in the
folder that holds the database, which the durable write of the round's step waits for.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

from bench.common import (
    Child,
    Figure,
    Section,
    SseEvent,
    ThreadlineServer,
    arrival,
    at_least,
    at_most,
    clean_environment,
    expect,
    free_port,
    http_client,
    ms,
    p50,
    p95,
    read_sse,
    wait_healthy,
)
from bench.harness import Bench
from bench.model_server import ModelRecord, tool_answers_read, tools_model
from bench.overhead import streamed_run

TARGET_MS = 3.0
OPERATION = "api_ping"  # the function the model is offered: `{tool name}_{operationId}`
_JSON = [(b"content-type", b"application/json")]


# -- the tool's API ----------------------------------------------------------------------------


def make_app() -> Any:
    """`GET /ping` answers `{"pong": true}` at once; `GET /count`, how many pings so far."""
    pings = 0

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal pings
        if scope["type"] != "http":
            return
        if scope["path"] == "/ping":
            pings += 1
            answer = b'{"pong": true}'
        elif scope["path"] == "/count":
            answer = json.dumps({"count": pings}).encode()
        elif scope["path"] == "/health":
            answer = b"{}"
        else:
            await send({"type": "http.response.start", "status": 404, "headers": _JSON})
            await send({"type": "http.response.body", "body": b"{}"})
            return
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": answer})

    return app


class ToolApi(Child):
    """The harness's handle on a `python -m bench.tool_rounds` process."""

    def __init__(self, workdir: Path):
        self.port = free_port()
        argv = [sys.executable, "-m", "bench.tool_rounds", "--port", str(self.port)]
        super().__init__(argv, clean_environment(), workdir / f"tool-api-{self.port}.log", "tool")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pings(self) -> int:
        return int(httpx.get(f"{self.url}/count", timeout=30).json()["count"])

    def __enter__(self) -> ToolApi:
        self.spawn()
        wait_healthy(self, f"{self.url}/health")
        return self


def openapi_tool(base_url: str) -> dict[str, Any]:
    """The assistant's tool: Azure's `openapi` definition with one operation."""
    operation = {
        "operationId": "ping",
        "summary": "Answers at once",
        "responses": {"200": {"description": "pong"}},
    }
    spec = {
        "openapi": "3.0.3",
        "info": {"title": "Ping", "version": "1"},
        "servers": [{"url": base_url}],
        "paths": {"/ping": {"get": operation}},
    }
    return {
        "type": "openapi",
        "openapi": {
            "name": "api",
            "description": "An API that answers at once",
            "spec": spec,
            "auth": {"type": "anonymous"},
            "default_params": [],
        },
    }


async def _tool_calls(url: str, count: int) -> list[float]:
    """The operation called `count` times as the OpenAPI tool calls it: through one aiohttp
    session, its connection kept, no cookies."""
    times = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        for _ in range(count):
            started = time.perf_counter()
            async with session.get(f"{url}/ping", allow_redirects=False) as response:
                response.raise_for_status()
                await response.read()
            times.append(time.perf_counter() - started)
    return times


def _disk_syncs(folder: Path, count: int) -> list[float]:
    """A page written to a file in `folder` and synced (`fdatasync`), `count` times: what the
    durable write of a round's step waits for at least (SQLite's log synced to disk)."""
    times = []
    path = folder / "sync-probe"
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        for index in range(count):
            os.pwrite(descriptor, b"\0" * 4096, (index % 16) * 4096)
            started = time.perf_counter()
            getattr(os, "fdatasync", os.fsync)(descriptor)
            times.append(time.perf_counter() - started)
    finally:
        os.close(descriptor)
        path.unlink()
    return times


# -- (a) one round, paired with none -----------------------------------------------------------


@dataclass
class Pair:
    walls: dict[int, float] = field(default_factory=dict)  # by rounds (0 or 1)
    models: dict[int, str] = field(default_factory=dict)


async def _paired_runs(
    bench: Bench, client: httpx.AsyncClient, assistant: str, prefix: str
) -> list[Pair]:
    size = bench.size
    pairs: list[Pair] = []
    for index in range(size.warmup + size.tool_round_pairs):
        pair = Pair()
        # Alternated, so that neither kind always runs on the heels of the other.
        for rounds in (0, 1) if index % 2 == 0 else (1, 0):
            thread = expect(
                await client.post(
                    "/v1/threads", json={"messages": [{"role": "user", "content": "hi"}]}
                ),
                "create thread",
            )
            model = tools_model(rounds, f"{prefix}{index}")
            started, events = await streamed_run(
                client, thread["id"], {"assistant_id": assistant, "model": model}
            )
            pair.walls[rounds] = arrival(events, "thread.run.completed") - started
            pair.models[rounds] = model
        if index >= size.warmup:
            pairs.append(pair)
    return pairs


def _model_calls(
    records: dict[str, list[ModelRecord]], model: str, count: int
) -> list[ModelRecord]:
    calls = sorted(records.get(model, []), key=lambda record: record.arrived)
    if len(calls) != count:
        raise RuntimeError(f"{model}: the model server saw {len(calls)} calls, not {count}")
    return calls


async def _measure_one_round(bench: Bench, section: Section, tool: ToolApi) -> None:
    size = bench.size
    prefix = f"tr-{time.time_ns()}-"
    with ThreadlineServer(
        bench.sqlite_url("tool-rounds"), bench.workdir, model_url=bench.model.base_url
    ) as server:
        async with http_client(server.url) as client:
            assistant = expect(
                await client.post(
                    "/v1/assistants",
                    json={"model": f"{prefix}assistant", "tools": [openapi_tool(tool.url)]},
                ),
                "create assistant",
            )["id"]
            pairs = await _paired_runs(bench, client, assistant, prefix)
    calls = size.warmup + size.tool_round_pairs
    http_call = (await _tool_calls(tool.url, calls))[size.warmup :]
    sync = _disk_syncs(bench.workdir, calls)[size.warmup :]
    records: dict[str, list[ModelRecord]] = {}
    for record in bench.model.records(f"{tools_model(0, prefix)}") + bench.model.records(
        f"{tools_model(1, prefix)}"
    ):
        records.setdefault(record.model, []).append(record)
    without, with_round, added, between = [], [], [], []
    for pair in pairs:
        [alone] = _model_calls(records, pair.models[0], 1)
        first, second = _model_calls(records, pair.models[1], 2)
        overhead_0 = pair.walls[0] - alone.seconds
        overhead_1 = pair.walls[1] - first.seconds - second.seconds
        without.append(overhead_0)
        with_round.append(overhead_1)
        added.append(overhead_1 - overhead_0)
        between.append(second.arrived - first.ended)
    value = ms(p50(added))
    floor = f"{ms(p50(http_call)):.2f} ms (the tool's HTTP call) + {ms(p50(sync)):.2f} ms (a sync)"
    headline = section.add(
        Figure(
            "Overhead per tool round (paired), p50",
            value,
            "ms",
            floor=floor,
            target=f"≤ {TARGET_MS:g} ms",
            ok=at_most(value, TARGET_MS),
            digits=2,
        )
    )
    section.add(
        Figure(
            "Overhead per tool round (paired), p95",
            ms(p95(added)),
            "ms",
            floor=f"{ms(p95(http_call)):.2f} ms + {ms(p95(sync)):.2f} ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "Between the two model calls (first answer's end → second request), p50",
            ms(p50(between)),
            "ms",
            floor=floor,
            digits=2,
        )
    )
    section.add(
        Figure("Between the two model calls, p95", ms(p95(between)), "ms", floor="—", digits=2)
    )
    section.add(
        Figure(
            "Run with one round: wall time minus both model calls, p50",
            ms(p50(with_round)),
            "ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "Run with no round: wall time minus its model call, p50",
            ms(p50(without)),
            "ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "The tool's HTTP call alone (aiohttp, a kept connection, as the OpenAPI tool), p50",
            ms(p50(http_call)),
            "ms",
            digits=2,
        )
    )
    section.add(
        Figure(
            "A sync to disk in the database's folder (4 KiB written, fdatasync), p50",
            ms(p50(sync)),
            "ms",
            digits=2,
        )
    )
    if headline.ok is False:
        section.notes.append(
            f"Target missed: a round adds {value:.2f} ms (p50), of which"
            f" {ms(p50(between)):.2f} ms fall between the two model calls. Of that, the round"
            f" cannot go below its tool's HTTP call ({ms(p50(http_call)):.2f} ms here) and"
            " the sync to disk its tool-call step waits for before the tool is called"
            f" ({ms(p50(sync)):.2f} ms for a bare sync here, which varies with the disk's"
            " load); the rest is the service's own work: the step's and the outcome's writes,"
            " the next turn's context, and the second model call's client side."
        )


# -- (b) many runs looping at once -------------------------------------------------------------


@dataclass
class Looped:
    run_id: str = ""
    thread_id: str = ""
    status: str = ""
    reply: str = ""
    error: str | None = None


async def _looping_run(client: httpx.AsyncClient, assistant: str, model: str) -> Looped:
    body = {
        "assistant_id": assistant,
        "model": model,
        "stream": True,
        "thread": {"messages": [{"role": "user", "content": "go"}]},
    }
    looped = Looped()
    try:
        async with client.stream("POST", "/v1/threads/runs", json=body) as response:
            if response.status_code != 200:
                await response.aread()
                looped.error = f"HTTP {response.status_code} {response.text[:200]}"
                return looped
            events: list[SseEvent] = await read_sse(response)
    except httpx.HTTPError as exc:
        looped.error = f"{type(exc).__name__}: {exc}"
        return looped
    for event in events:
        if event.event.startswith("thread.run.") and not event.event.startswith("thread.run.step"):
            run = event.json()
            looped.run_id, looped.thread_id, looped.status = (
                run["id"],
                run["thread_id"],
                run["status"],
            )
        elif event.event == "thread.message.completed":
            parts = event.json()["content"]
            looped.reply = "".join(p["text"]["value"] for p in parts if p["type"] == "text")
    if looped.status != "completed":
        looped.error = f"the run ended {looped.status or 'unseen'}"
    return looped


async def _rounds_recorded(client: httpx.AsyncClient, looped: Looped) -> tuple[int, list[str]]:
    """Completed tool-call steps whose one call has the tool's answer as its output; and
    what is wrong with the run's steps otherwise."""
    page = expect(
        await client.get(
            f"/v1/threads/{looped.thread_id}/runs/{looped.run_id}/steps",
            params={"order": "asc", "limit": 100},
        ),
        "list steps",
    )
    recorded, wrong = 0, []
    for step in page["data"]:
        if step["type"] != "tool_calls":
            continue
        calls = step["step_details"]["tool_calls"]
        outputs = [call.get("function", {}).get("output") or "" for call in calls]
        if step["status"] == "completed" and len(calls) == 1 and outputs[0].startswith("HTTP 200"):
            recorded += 1
        else:
            wrong.append(f"step {step['id']} {step['status']}: {outputs}")
    return recorded, wrong


async def _measure_many(bench: Bench, section: Section, tool: ToolApi) -> None:
    count, rounds = bench.size.tool_concurrent_runs, bench.size.tool_rounds_per_run
    prefix = f"tm-{time.time_ns()}-"
    model = tools_model(rounds, prefix)
    with ThreadlineServer(
        bench.sqlite_url("tool-rounds-many"), bench.workdir, model_url=bench.model.base_url
    ) as server:
        async with http_client(server.url, connections=count + 8) as client:
            assistant = expect(
                await client.post(
                    "/v1/assistants",
                    json={"model": f"{prefix}assistant", "tools": [openapi_tool(tool.url)]},
                ),
                "create assistant",
            )["id"]
            for _ in range(bench.size.warmup):  # warm, and not counted
                warm = await _looping_run(client, assistant, tools_model(1, f"{prefix}warm"))
                if warm.error:
                    raise RuntimeError(f"warm-up run: {warm.error}")
            pings_before = tool.pings()
            started = time.perf_counter()
            runs = await asyncio.gather(
                *(_looping_run(client, assistant, model) for _ in range(count))
            )
            wall = time.perf_counter() - started
            pings = tool.pings() - pings_before
            recorded, problems = 0, []
            for looped in runs:
                if looped.error is None and tool_answers_read(looped.reply) != rounds:
                    looped.error = f"the model read {looped.reply!r}, not {rounds} tool answers"
                if looped.run_id:
                    found, wrong = await _rounds_recorded(client, looped)
                    recorded += found
                    problems += wrong
    bench.model.records(tools_model(1, f"{prefix}warm"))  # forget them
    bench.model.records(model)
    errors = [looped.error for looped in runs if looped.error is not None]
    expected = count * rounds
    section.add(
        Figure(
            f"{count} concurrent runs of {rounds} rounds: errors",
            len(errors),
            "",
            floor="0",
            target="0",
            ok=len(errors) == 0,
            digits=0,
        )
    )
    section.add(
        Figure(
            f"{count} concurrent runs of {rounds} rounds: rounds recorded",
            recorded,
            "",
            floor=f"{pings:,} calls answered by the tool's API",
            target=f"{expected:,} (every round, completed, with its output)",
            ok=at_least(recorded, expected) and at_most(recorded, expected),
            digits=0,
        )
    )
    section.add(
        Figure(
            f"{count} concurrent runs of {rounds} rounds: wall time",
            wall,
            "s",
            floor=f"{count * (rounds + 1):,} model calls, {expected:,} tool calls",
            digits=2,
        )
    )
    if errors:
        shown = "; ".join(sorted(set(errors))[:5])
        section.notes.append(f"{len(errors)} runs failed: {shown}")
    if problems:
        section.notes.append(f"{len(problems)} rounds not as expected: {'; '.join(problems[:3])}")


async def measure(bench: Bench) -> Section:
    size = bench.size
    rounds, count = size.tool_rounds_per_run, size.tool_concurrent_runs
    section = Section("tool_rounds", "11. Tool rounds")
    section.method = [
        "The tool: an OpenAPI tool (`type: openapi`, anonymous) with one operation, `GET /ping`,"
        " served by a bare ASGI app in a process of its own on the same uvicorn settings, which"
        ' answers `{"pong": true}` at once. The model: the model server\'s `tools-K-...` model,'
        " which calls the offered operation once per round, K rounds, then answers (instantly,"
        " streamed). One `threadline serve` process (SQLite, embedded worker) per part.",
        "Overhead per tool round (paired): runs with one round and runs with none, of the same"
        " assistant (the tool offered to both), each streamed (`stream: true`) on a new thread"
        " holding `hi`, from sending the create request to receiving `thread.run.completed`;"
        " from each run's wall time its model calls' own time (stamped by the model server) is"
        " taken out; the figure is (run with one round - its two model calls) - (run with none"
        " - its one model call), per pair of runs made back to back, in alternating order:"
        " what the round adds on Threadline's side, with the tool's own HTTP call in it."
        f" {size.tool_round_pairs} pairs, one run at a time, after {size.warmup} warm-up pairs.",
        "Between the two model calls: from the first call's response ending to the second call's"
        " request arriving, both stamped by the model server: the round itself (the tool-call"
        " step written durably, the tool called, its answer recorded and the step closed in"
        " the next turn's first transaction, that turn's context built) without what the round"
        " changes before and after the calls.",
        "Floor: the tool's HTTP call alone, made from the harness as the OpenAPI tool makes"
        " it (one aiohttp session, its connection kept), and a sync to disk: 4 KiB written"
        " to a file in the folder that holds the database, then `fdatasync`, which the"
        " durable write of the round's tool-call step waits for at least. Both are measured"
        " right after the pairs, as many times.",
        f"Many runs: {count} runs created at once, each with `stream: true` on a new thread,"
        f" each making {rounds} rounds of one call, on one server (default worker concurrency)."
        " Errors: runs that did not end `completed`, or whose reply says the model read other"
        f" than {rounds} tool answers. Rounds recorded: after all ended, each run's steps are"
        " listed; a round counts when its `tool_calls` step is `completed` and its call holds"
        " the tool's answer (`HTTP 200 ...`) as its output. Wall time: from starting the"
        " creates to the last run's completed event.",
    ]
    with ToolApi(bench.workdir) as tool:
        await _measure_one_round(bench, section, tool)
        await _measure_many(bench, section, tool)
    return section


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.tool_rounds")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    # The settings `threadline serve` runs uvicorn with (see threadline/cli.py).
    uvicorn.run(
        make_app(),
        host="127.0.0.1",
        port=args.port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
